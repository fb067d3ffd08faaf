//! Mixes (a) and (b): raw bytes and text, and documents generated from a YAML grammar.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::tree::{to_json, to_yaml, Layout, Style, Y};
use super::vocab::*;

/// (a) Bytes and text with no structure, and soups of YAML tokens, which reach far more of the
/// scanner's states than uniform bytes do.
pub fn raw_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..2048),
        2 => vec(any::<char>(), 0..512).prop_map(|c| c.into_iter().collect::<String>().into_bytes()),
        4 => vec(select(TOKENS), 0..300).prop_map(|t| t.concat().into_bytes()),
    ]
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        8 => Just(Style::Plain),
        2 => Just(Style::Double),
        2 => Just(Style::Single),
        1 => Just(Style::Literal),
        1 => Just(Style::Folded),
    ]
}

/// Scalar text of every core-schema kind, numbers at the edges of berth's ranges, and now and
/// then a very long one (annotations are refused over 256 KiB).
pub fn scalar_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(STRINGS).prop_map(str::to_string),
        3 => select(FIELDS).prop_map(str::to_string),
        1 => select(NULLS).prop_map(str::to_string),
        1 => select(BOOLS).prop_map(str::to_string),
        3 => select(INTS).prop_map(str::to_string),
        2 => select(FLOATS).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<f64>().prop_map(|f| f.to_string()),
        2 => "\\PC{0,16}",
        1 => (select(vec!['a', 'x', '9', 'é', ' ', '\n', '-']), 0usize..300_000)
            .prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

pub fn scalar() -> impl Strategy<Value = Y> {
    (scalar_text(), style()).prop_map(|(t, s)| Y::Scalar(t, s))
}

fn key() -> impl Strategy<Value = Y> {
    prop_oneof![
        8 => select(FIELDS).prop_map(Y::plain),
        2 => scalar(),
    ]
}

/// Any node: scalars, aliases, and collections of them with anchors and tags, `depth` deep.
pub fn node(depth: u32) -> impl Strategy<Value = Y> {
    let leaf = prop_oneof![
        10 => scalar(),
        1 => select(ANCHORS).prop_map(|a| Y::Alias(a.to_string())),
    ];
    leaf.prop_recursive(depth, 96, 8, |inner| {
        prop_oneof![
            3 => (vec(inner.clone(), 0..8), any::<bool>()).prop_map(|(v, f)| Y::Seq(v, f)),
            4 => (vec((key(), inner.clone()), 0..8), any::<bool>()).prop_map(|(e, f)| Y::Map(e, f)),
            1 => (vec((inner.clone(), inner.clone()), 1..3), any::<bool>()).prop_map(|(e, f)| Y::Map(e, f)),
            1 => (select(ANCHORS), inner.clone()).prop_map(|(a, y)| Y::Anchor(a.to_string(), Box::new(y))),
            1 => (select(TAGS), inner).prop_map(|(t, y)| Y::Tag(t.to_string(), Box::new(y))),
        ]
    })
}

/// A mapping shaped like a Kubernetes object, whose parts are generated.
fn object() -> impl Strategy<Value = Y> {
    (
        select(API_VERSIONS),
        select(KINDS),
        scalar(),
        node(6),
        vec((key(), node(3)), 0..3),
        any::<bool>(),
    )
        .prop_map(|(api, kind, name, spec, extra, flow)| {
            let mut entries = vec![
                (Y::plain("apiVersion"), Y::plain(api)),
                (Y::plain("kind"), Y::plain(kind)),
                (
                    Y::plain("metadata"),
                    Y::Map(vec![(Y::plain("name"), name)], flow),
                ),
                (
                    Y::plain(if kind == "List" { "items" } else { "spec" }),
                    spec,
                ),
            ];
            entries.extend(extra);
            Y::Map(entries, false)
        })
}

pub fn layout() -> impl Strategy<Value = Layout> {
    (
        1usize..=4,
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(indent, flush_seqs, comments, crlf, bom, explicit_start, explicit_end, directive)| {
                Layout {
                    indent,
                    flush_seqs,
                    comments,
                    crlf,
                    bom,
                    explicit_start,
                    explicit_end,
                    directive,
                }
            },
        )
}

/// (b) A stream of generated documents, as YAML, or its first document as JSON (then `true`).
pub fn grammar_text() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let docs = vec(prop_oneof![3 => object(), 2 => node(8)], 1..4);
    (docs, layout(), prop::bool::weighted(0.2), any::<bool>()).prop_map(
        |(docs, layout, json, pretty)| {
            if json {
                (to_json(&docs[0], pretty, 0).into_bytes(), true)
            } else {
                (to_yaml(&docs, &layout).into_bytes(), false)
            }
        },
    )
}
