//! Mix (c): the repository's own valid and broken manifests, mutated.
//!
//! A mutation is data (which node, what to do), applied to a seed's tree in order, so proptest
//! shrinks a failing case by dropping mutations and simplifying each one, down to the few edits
//! of a real manifest that matter. Seeds are read from `tests/fixtures/` and
//! `manifests-example/` of this checkout, never from outside it.

use std::path::Path;
use std::sync::OnceLock;

use berth::manifest::yaml::{self, Kind, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::grammar::{layout, node, scalar};
use super::tree::{plain_is_safe, to_json, to_yaml, Layout, Style, Y};
use super::vocab::*;

/// One manifest file of the repository: its text and its documents as a tree.
pub struct Seed {
    pub text: String,
    pub docs: Vec<Y>,
    pub json: bool,
}

/// The seeds, read once.
pub fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["tests/fixtures", "manifests-example"] {
            collect(&root.join(dir), &mut files);
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|path| {
                let text = std::fs::read_to_string(&path).ok()?;
                let docs = yaml::parse(&text).map_or_else(
                    |_| Vec::new(),
                    |docs| docs.iter().flatten().map(from_node).collect(),
                );
                Some(Seed {
                    json: path.extension().is_some_and(|e| e == "json"),
                    text,
                    docs,
                })
            })
            .collect()
    })
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if berth::manifest::is_manifest_file(&path.to_string_lossy()) {
            out.push(path);
        }
    }
}

/// A parsed node as the fuzzer's tree, quoting strings that would otherwise change kind.
pub fn from_node(n: &yaml::Node) -> Y {
    match &n.value {
        Value::Scalar(s, Kind::Str) if s.contains('\n') => Y::Scalar(s.clone(), Style::Literal),
        Value::Scalar(s, Kind::Str) => {
            let looks_typed = NULLS.contains(&s.as_str())
                || BOOLS[..6].contains(&s.as_str())
                || s.starts_with(|c: char| c.is_ascii_digit() || ".+-~".contains(c));
            let style = if looks_typed || !plain_is_safe(s) {
                Style::Double
            } else {
                Style::Plain
            };
            Y::Scalar(s.clone(), style)
        }
        Value::Scalar(s, _) => Y::Scalar(s.clone(), Style::Plain),
        Value::Seq(items) => Y::Seq(items.iter().map(from_node).collect(), false),
        Value::Map(entries) => Y::Map(
            entries
                .iter()
                .map(|(k, v)| (from_node(k), from_node(v)))
                .collect(),
            false,
        ),
    }
}

/// One edit of a tree. Node numbers are taken modulo the number of candidates.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Remove a child of a collection: a field deletion.
    Delete(u32, u32),
    /// Put a generated value in place of a node: a type swap.
    Replace(u32, Y),
    /// Set a field of a mapping (added if absent): wrong kinds and apiVersions, numbers out of
    /// range, fields that do not exist.
    Set(u32, &'static str, Y),
    /// Edit a key into a near miss of a real field name.
    Rename(u32, u32, Edit),
    /// Repeat a child `n` times: a long list, as big manifests have.
    Repeat(u32, u32, usize, Copies),
    /// Anchor one node and put an alias to it in place of another.
    Alias(u32, u32),
    /// Wrap a node in `n` sequences or mappings.
    Nest(u32, usize, bool),
    /// Wrap a collection in `n` one-item sequences, each with an anchor.
    AnchorLevels(u32, usize),
    /// Graft a subtree of another seed.
    Splice(u32, usize, u32),
    /// Put every document in one `kind: List`.
    WrapInList,
}

/// How `Repeat` copies.
#[derive(Debug, Clone, Copy)]
pub enum Copies {
    Same,
    /// Through an anchor and aliases.
    Aliases,
    /// With `-1`, `-2`, ... appended to every string, so names stay distinct.
    Numbered,
}

#[derive(Debug, Clone, Copy)]
pub enum Edit {
    FlipCase(usize),
    Drop(usize),
    Double(usize),
    Swap(usize),
    Append(char),
}

/// A byte-level edit of the written text.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Insert(u32, Vec<u8>),
    Remove(u32, u16),
    Flip(u32, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..32).prop_map(Edit::FlipCase),
        (0usize..32).prop_map(Edit::Drop),
        (0usize..32).prop_map(Edit::Double),
        (0usize..32).prop_map(Edit::Swap),
        select(vec!['s', '_', '-', 'é', ' ']).prop_map(Edit::Append),
    ]
}

fn field_value() -> impl Strategy<Value = (&'static str, Y)> {
    prop_oneof![
        3 => select(KINDS).prop_map(|k| ("kind", Y::plain(k))),
        2 => select(API_VERSIONS).prop_map(|v| ("apiVersion", Y::plain(v))),
        4 => (select(FIELDS), select(INTS)).prop_map(|(f, n)| (f, Y::plain(n))),
        2 => (select(FIELDS), select(FLOATS)).prop_map(|(f, n)| (f, Y::plain(n))),
        4 => (select(FIELDS), node(3)).prop_map(|(f, y)| (f, y)),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let n = any::<u32>();
    prop_oneof![
        4 => (n, n).prop_map(|(a, b)| Mutation::Delete(a, b)),
        4 => (n, prop_oneof![2 => scalar(), 1 => node(3)]).prop_map(|(a, y)| Mutation::Replace(a, y)),
        5 => (n, field_value()).prop_map(|(a, (k, y))| Mutation::Set(a, k, y)),
        3 => (n, n, edit()).prop_map(|(a, b, e)| Mutation::Rename(a, b, e)),
        3 => (
            n,
            n,
            select(vec![2usize, 3, 10, 100, 1000, 20_000]),
            select(vec![Copies::Same, Copies::Aliases, Copies::Numbered])
        )
            .prop_map(|(a, b, k, how)| Mutation::Repeat(a, b, k, how)),
        2 => (n, n).prop_map(|(a, b)| Mutation::Alias(a, b)),
        1 => (n, 1usize..80, any::<bool>()).prop_map(|(a, d, s)| Mutation::Nest(a, d, s)),
        1 => (n, 1usize..64).prop_map(|(a, d)| Mutation::AnchorLevels(a, d)),
        2 => (n, any::<usize>(), n).prop_map(|(a, s, b)| Mutation::Splice(a, s, b)),
        1 => Just(Mutation::WrapInList),
    ]
}

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let at = any::<u32>();
    prop_oneof![
        (
            at,
            prop_oneof![
                vec(any::<u8>(), 1..4),
                select(TOKENS).prop_map(|t| t.as_bytes().to_vec())
            ]
        )
            .prop_map(|(a, b)| ByteEdit::Insert(a, b)),
        (at, 1u16..64).prop_map(|(a, n)| ByteEdit::Remove(a, n)),
        (at, any::<u8>()).prop_map(|(a, b)| ByteEdit::Flip(a, b)),
    ]
}

/// (c) A seed, mutated as a tree and written out (or its original text), then edited as bytes.
/// The `bool` says whether the result is JSON.
pub fn mutant_text() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let count = seeds().len().max(1);
    (
        0..count,
        // Unmutated seeds too: accepted trees are where the rewrite properties bite.
        prop_oneof![1 => Just(Vec::new()), 3 => vec(mutation(), 1..5)],
        layout(),
        prop::bool::weighted(0.15),
        prop_oneof![3 => Just(Vec::new()), 2 => vec(byte_edit(), 1..4)],
        prop::bool::weighted(0.5),
    )
        .prop_map(|(i, muts, layout, original, bytes, as_json)| {
            let Some(seed) = seeds().get(i) else {
                return (Vec::new(), false);
            };
            let (text, json) = if original {
                (seed.text.clone().into_bytes(), seed.json)
            } else {
                let mut docs = seed.docs.clone();
                for m in &muts {
                    apply(&mut docs, m);
                }
                render(&docs, &layout, seed.json && as_json)
            };
            (edit_bytes(text, &bytes), json)
        })
}

fn render(docs: &[Y], layout: &Layout, json: bool) -> (Vec<u8>, bool) {
    match docs.first() {
        Some(first) if json => (to_json(first, true, 0).into_bytes(), true),
        _ => (to_yaml(docs, layout).into_bytes(), false),
    }
}

pub fn edit_bytes(mut text: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        let at = |p: u32| (p as usize) % (text.len() + 1);
        match e {
            ByteEdit::Insert(p, b) => {
                let p = at(*p);
                text.splice(p..p, b.iter().copied());
            }
            ByteEdit::Remove(p, n) => {
                let p = at(*p);
                let end = (p + *n as usize).min(text.len());
                text.drain(p..end);
            }
            ByteEdit::Flip(p, b) => {
                if !text.is_empty() {
                    let p = at(*p) % text.len();
                    text[p] ^= b | 1;
                }
            }
        }
    }
    text
}

/// Calls `f` on the node numbered `target` in pre-order over `docs` (keys included), if any.
fn with_node(docs: &mut [Y], target: usize, f: &mut dyn FnMut(&mut Y)) -> bool {
    fn walk(y: &mut Y, n: &mut usize, target: usize, f: &mut dyn FnMut(&mut Y)) -> bool {
        if *n == target {
            f(y);
            return true;
        }
        *n += 1;
        match y {
            Y::Seq(items, _) => items.iter_mut().any(|i| walk(i, n, target, f)),
            Y::Map(entries, _) => entries
                .iter_mut()
                .any(|(k, v)| walk(k, n, target, f) || walk(v, n, target, f)),
            Y::Anchor(_, inner) | Y::Tag(_, inner) => walk(inner, n, target, f),
            _ => false,
        }
    }
    let mut n = 0;
    docs.iter_mut().any(|d| walk(d, &mut n, target, f))
}

fn count(docs: &[Y]) -> usize {
    fn c(y: &Y) -> usize {
        1 + match y {
            Y::Seq(items, _) => items.iter().map(c).sum(),
            Y::Map(entries, _) => entries.iter().map(|(k, v)| c(k) + c(v)).sum(),
            Y::Anchor(_, inner) | Y::Tag(_, inner) => c(inner),
            _ => 0,
        }
    }
    docs.iter().map(c).sum()
}

fn node_at(docs: &[Y], sel: u32) -> Option<Y> {
    let total = count(docs);
    if total == 0 {
        return None;
    }
    let mut docs = docs.to_vec();
    let mut found = None;
    with_node(&mut docs, sel as usize % total, &mut |y| {
        found = Some(y.clone())
    });
    found
}

fn on_node(docs: &mut [Y], sel: u32, f: &mut dyn FnMut(&mut Y)) {
    let total = count(docs);
    if total > 0 {
        with_node(docs, sel as usize % total, f);
    }
}

pub fn apply(docs: &mut Vec<Y>, m: &Mutation) {
    match m {
        Mutation::Delete(a, b) => on_node(docs, *a, &mut |y| match y {
            Y::Seq(items, _) if !items.is_empty() => {
                items.remove(*b as usize % items.len());
            }
            Y::Map(entries, _) if !entries.is_empty() => {
                entries.remove(*b as usize % entries.len());
            }
            _ => {}
        }),
        Mutation::Replace(a, new) => on_node(docs, *a, &mut |y| *y = new.clone()),
        Mutation::Set(a, key, value) => on_node(docs, *a, &mut |y| {
            if let Y::Map(entries, _) = y {
                match entries.iter_mut().find(|(k, _)| *k == Y::plain(key)) {
                    Some((_, v)) => *v = value.clone(),
                    None => entries.push((Y::plain(key), value.clone())),
                }
            }
        }),
        Mutation::Rename(a, b, e) => on_node(docs, *a, &mut |y| {
            if let Y::Map(entries, _) = y {
                if !entries.is_empty() {
                    let i = *b as usize % entries.len();
                    if let Y::Scalar(text, _) = &mut entries[i].0 {
                        *text = edited(text, *e);
                    }
                }
            }
        }),
        Mutation::Repeat(a, b, times, how) => on_node(docs, *a, &mut |y| match y {
            Y::Seq(items, _) if !items.is_empty() => {
                let i = *b as usize % items.len();
                let copies: Vec<Y> = match how {
                    Copies::Same => vec![items[i].clone(); *times],
                    Copies::Aliases => {
                        items[i] = Y::Anchor("r".into(), Box::new(items[i].clone()));
                        vec![Y::Alias("r".into()); *times]
                    }
                    Copies::Numbered => (1..=*times).map(|n| numbered(&items[i], n)).collect(),
                };
                items.splice(i + 1..i + 1, copies);
            }
            Y::Map(entries, _) if !entries.is_empty() => {
                let (k, v) = entries[*b as usize % entries.len()].clone();
                match how {
                    // Distinct keys near a real one: a mapping of many unknown fields.
                    Copies::Numbered => {
                        entries.extend((1..=*times).map(|n| (numbered(&k, n), numbered(&v, n))))
                    }
                    // Repeated keys are duplicates: a few show the problem, thousands add
                    // nothing.
                    _ => entries.extend(std::iter::repeat_n((k, v), (*times).min(100))),
                }
            }
            _ => {}
        }),
        Mutation::Alias(a, b) => {
            let Some(target) = node_at(docs, *a) else {
                return;
            };
            if matches!(target, Y::Alias(_) | Y::Anchor(..)) {
                return;
            }
            on_node(docs, *a, &mut |y| {
                *y = Y::Anchor("m".into(), Box::new(y.clone()));
            });
            on_node(docs, *b, &mut |y| *y = Y::Alias("m".into()));
        }
        Mutation::Nest(a, depth, seq) => on_node(docs, *a, &mut |y| {
            for _ in 0..*depth {
                let inner = std::mem::replace(y, Y::plain("~"));
                *y = if *seq {
                    Y::Seq(vec![inner], false)
                } else {
                    Y::Map(vec![(Y::plain("spec"), inner)], false)
                };
            }
        }),
        Mutation::AnchorLevels(a, depth) => {
            let collections = collections(docs);
            if collections.is_empty() {
                return;
            }
            let target = collections[*a as usize % collections.len()];
            with_node(docs, target, &mut |y| {
                for level in 0..*depth {
                    let inner = std::mem::replace(y, Y::plain("~"));
                    let anchored = Y::Anchor(format!("l{level}"), Box::new(inner));
                    *y = Y::Seq(vec![anchored], false);
                }
            });
        }
        Mutation::Splice(a, other, b) => {
            let all = seeds();
            let Some(graft) = all
                .get(other % all.len().max(1))
                .and_then(|s| node_at(&s.docs, *b))
            else {
                return;
            };
            on_node(docs, *a, &mut |y| *y = graft.clone());
        }
        Mutation::WrapInList => {
            let items = std::mem::take(docs);
            docs.push(Y::Map(
                vec![
                    (Y::plain("apiVersion"), Y::plain("v1")),
                    (Y::plain("kind"), Y::plain("List")),
                    (Y::plain("items"), Y::Seq(items, false)),
                ],
                false,
            ));
        }
    }
}

/// `y` with `-n` appended to every string scalar.
fn numbered(y: &Y, n: usize) -> Y {
    match y {
        Y::Scalar(text, style) => Y::Scalar(format!("{text}-{n}"), *style),
        Y::Seq(items, flow) => Y::Seq(items.iter().map(|i| numbered(i, n)).collect(), *flow),
        Y::Map(entries, flow) => Y::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), numbered(v, n)))
                .collect(),
            *flow,
        ),
        Y::Anchor(a, inner) => Y::Anchor(a.clone(), Box::new(numbered(inner, n))),
        Y::Tag(t, inner) => Y::Tag(t.clone(), Box::new(numbered(inner, n))),
        Y::Alias(a) => Y::Alias(a.clone()),
    }
}

/// Pre-order numbers of the sequences and mappings of `docs`.
fn collections(docs: &[Y]) -> Vec<usize> {
    fn walk(y: &Y, n: &mut usize, out: &mut Vec<usize>) {
        if matches!(y, Y::Seq(..) | Y::Map(..)) {
            out.push(*n);
        }
        *n += 1;
        match y {
            Y::Seq(items, _) => items.iter().for_each(|i| walk(i, n, out)),
            Y::Map(entries, _) => entries.iter().for_each(|(k, v)| {
                walk(k, n, out);
                walk(v, n, out);
            }),
            Y::Anchor(_, inner) | Y::Tag(_, inner) => walk(inner, n, out),
            _ => {}
        }
    }
    let (mut n, mut out) = (0, Vec::new());
    docs.iter().for_each(|d| walk(d, &mut n, &mut out));
    out
}

fn edited(text: &str, e: Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return "x".into();
    }
    let len = chars.len();
    match e {
        Edit::FlipCase(i) => {
            let c = chars[i % len];
            chars[i % len] = if c.is_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
        }
        Edit::Drop(i) => {
            chars.remove(i % len);
        }
        Edit::Double(i) => chars.insert(i % len, chars[i % len]),
        Edit::Swap(i) if len > 1 => chars.swap(i % (len - 1), i % (len - 1) + 1),
        Edit::Swap(_) => {}
        Edit::Append(c) => chars.push(c),
    }
    chars.into_iter().collect()
}
