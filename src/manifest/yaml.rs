//! A YAML tree that remembers where every node was written.
//!
//! Why not `serde_yaml` straight into typed structs: serde stops at the first error and its
//! values forget their positions, while `berth validate` must report every problem of a tree at
//! once, each with `file:line:column`. So documents are first read into this small positioned
//! tree (from `yaml-rust2`'s event parser), and `decode` walks it. JSON files go through the same
//! parser: JSON is YAML's flow syntax.

use std::collections::HashMap;

use super::limits::{ALIAS_ALLOWANCE, ALIAS_RATIO, MAX_DEPTH};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        Pos {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        }
    }
}

/// How a plain scalar resolves under YAML 1.2's core schema. Quoted scalars are always `Str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The scalar's text as written (without quotes), and what it resolves to.
    Scalar(String, Kind),
    Seq(Vec<Node>),
    /// Keys in the order written; duplicate keys are reported by `parse`.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Scalar(_, Kind::Null))
    }

    /// What the node is, for "expected a string, found a mapping".
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Scalar(_, Kind::Null) => "null",
            Value::Scalar(_, Kind::Bool) => "a boolean",
            Value::Scalar(_, Kind::Int) => "an integer",
            Value::Scalar(_, Kind::Float) => "a number",
            Value::Scalar(_, Kind::Str) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A parse problem: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses every document of `text`. Empty and comment-only documents are `None` (so the caller
/// can skip them while still counting document positions). Duplicate mapping keys are errors.
///
/// Bounded whatever the input (see `limits`): collections nest at most [`MAX_DEPTH`] deep, and
/// aliases may add at most [`ALIAS_RATIO`] times the nodes written (plus [`ALIAS_ALLOWANCE`]).
/// The check comes before an alias is expanded, so a "billion laughs" file stops after a few
/// thousand nodes. The parser is driven event by event here rather than through its recursive
/// `load`, so deep nesting cannot exhaust the stack either.
pub fn parse(text: &str) -> Result<Vec<Option<Node>>, Vec<SyntaxError>> {
    let mut builder = Builder {
        end: end_of(text),
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => {
                return Err(vec![SyntaxError {
                    pos: builder.within((*e.marker()).into()),
                    message: format!("YAML syntax: {}", e.info()),
                }])
            }
        };
        if event == Event::StreamEnd {
            break;
        }
        if let Err(over) = builder.on_event(event, mark) {
            return Err(vec![over]);
        }
    }
    if builder.errors.is_empty() {
        Ok(builder.docs)
    } else {
        Err(builder.errors)
    }
}

/// Where the text ends: its last line, and the column after its last character.
fn end_of(text: &str) -> Pos {
    // Line breaks as yaml-rust2 counts them: `\r\n`, `\n` or a lone `\r`.
    let breaks =
        text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
    let last = text.rsplit(['\n', '\r']).next().unwrap_or("");
    Pos {
        line: breaks as u32 + 1,
        col: last.chars().count() as u32 + 1,
    }
}

fn resolve_plain(s: &str) -> Kind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return Kind::Bool,
        ".inf" | "-.inf" | "+.inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" => {
            return Kind::Float
        }
        _ => {}
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let hex_or_oct = s
        .strip_prefix("0x")
        .map(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .or_else(|| {
            s.strip_prefix("0o")
                .map(|o| !o.is_empty() && o.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        })
        .unwrap_or(false);
    if hex_or_oct || (!body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())) {
        return Kind::Int;
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((i, f)) => {
            (!i.is_empty() || !f.is_empty())
                && i.bytes().all(|b| b.is_ascii_digit())
                && f.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    } || (!mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    if mantissa_ok && exponent_ok {
        Kind::Float
    } else {
        Kind::Str
    }
}

/// Collects parser events into `Node`s.
#[derive(Default)]
struct Builder {
    docs: Vec<Option<Node>>,
    /// Open sequences and mappings, innermost last, with their anchor ids and the number of
    /// nodes under them so far (the node itself included).
    stack: Vec<(Node, usize, usize)>,
    /// Anchored nodes of the current document, with their node counts.
    anchors: HashMap<usize, (Node, usize)>,
    errors: Vec<SyntaxError>,
    in_doc: bool,
    doc_root: Option<Node>,
    /// Nodes written in the text so far (scalars, collections and aliases).
    written: usize,
    /// Nodes added by expanding aliases so far.
    expanded: usize,
    /// Where the text ends (see `within`).
    end: Pos,
}

impl Builder {
    /// `pos`, or the end of the text if `pos` lies past its last line. yaml-rust2 ends the
    /// last line before it ends the stream, so what it finds at the very end (an unclosed key,
    /// the empty value of a final `-` or `key:`) is placed on a line after the last, which no
    /// editor can show.
    fn within(&self, pos: Pos) -> Pos {
        if pos.line > self.end.line {
            self.end
        } else {
            pos
        }
    }

    /// Counts `size` nodes about to be copied against the alias budget, before they are.
    fn copying(&mut self, size: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.expanded += size;
        let budget = ALIAS_ALLOWANCE + ALIAS_RATIO * self.written;
        if self.expanded > budget {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "anchors and aliases copy more than {budget} nodes ({ALIAS_RATIO}x the {} written, plus {ALIAS_ALLOWANCE}): over the alias expansion limit for manifests",
                    self.written
                ),
            });
        }
        Ok(())
    }

    /// Adds a finished node to its parent, keeping a copy if it is anchored. The copy counts
    /// against the alias budget like an alias does: anchors nested 60 deep around a long list
    /// would otherwise copy it 60 times, about 1,400 bytes of heap per byte of YAML (found
    /// while calibrating the fuzzer's memory bound).
    fn push_value(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.copying(size, node.pos)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.doc_root = Some(node),
            Some((parent, _, parent_size)) => {
                *parent_size += size;
                match &mut parent.value {
                    Value::Seq(items) => items.push(node),
                    Value::Map(entries) => {
                        // A mapping's events alternate key, value: a pending key is stored with a
                        // placeholder value at its own position until its value arrives.
                        match entries.last_mut() {
                            Some((_, v)) if v.pos == Pos::default() => *v = node,
                            _ => entries.push((
                                node,
                                Node {
                                    pos: Pos::default(),
                                    value: Value::Scalar(String::new(), Kind::Null),
                                },
                            )),
                        }
                    }
                    Value::Scalar(..) => unreachable!("scalars are never pushed on the stack"),
                }
            }
        }
        Ok(())
    }

    fn check_duplicate_keys(&mut self, node: &Node) {
        if let Value::Map(entries) = &node.value {
            let mut seen: HashMap<&str, Pos> = HashMap::new();
            for (k, _) in entries {
                if let Value::Scalar(s, _) = &k.value {
                    if let Some(first) = seen.insert(s, k.pos) {
                        self.errors.push(SyntaxError {
                            pos: k.pos,
                            message: format!("duplicate key {s:?} (first at line {})", first.line),
                        });
                    }
                }
            }
        }
    }

    fn open(&mut self, value: Value, pos: Pos, anchor: usize) -> Result<(), SyntaxError> {
        self.written += 1;
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "nested more than {MAX_DEPTH} levels deep: over the nesting limit for manifests"
                ),
            });
        }
        self.stack.push((Node { pos, value }, anchor, 1));
        Ok(())
    }

    /// Handles one parser event. An `Err` is a budget exceeded: parsing stops there.
    fn on_event(&mut self, ev: Event, mark: Marker) -> Result<(), SyntaxError> {
        let pos = self.within(Pos::from(mark));
        match ev {
            Event::DocumentStart => {
                self.in_doc = true;
                self.doc_root = None;
                // Anchors are per document in YAML.
                self.anchors.clear();
            }
            Event::DocumentEnd => {
                if self.in_doc {
                    let root = self.doc_root.take();
                    // A document holding only `null` (or nothing) counts as empty.
                    self.docs.push(root.filter(|n| !n.is_null()));
                }
                self.in_doc = false;
            }
            Event::Scalar(text, style, anchor, _tag) => {
                self.written += 1;
                let kind = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Kind::Str
                };
                self.push_value(
                    Node {
                        pos,
                        value: Value::Scalar(text, kind),
                    },
                    anchor,
                    1,
                )?;
            }
            Event::SequenceStart(anchor, _) => self.open(Value::Seq(Vec::new()), pos, anchor)?,
            Event::MappingStart(anchor, _) => self.open(Value::Map(Vec::new()), pos, anchor)?,
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, anchor, size)) = self.stack.pop() {
                    self.check_duplicate_keys(&node);
                    self.push_value(node, anchor, size)?;
                }
            }
            Event::Alias(id) => {
                self.written += 1;
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    self.errors.push(SyntaxError {
                        pos,
                        message: "YAML syntax: alias to an unknown anchor".into(),
                    });
                    return Ok(());
                };
                // Checked before anything is copied: a bomb never grows past the budget.
                self.copying(size, pos)?;
                let mut node = self.anchors[&id].0.clone();
                node.pos = pos;
                self.push_value(node, 0, size)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_bomb_stops_at_the_budget_before_expanding() {
        // Nine anchors, each a list of nine aliases of the one before: 9^9 nodes if expanded.
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let list = [prev.as_str(); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{list}]\n"));
        }
        let started = std::time::Instant::now();
        let errs = parse(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].message.contains("over the alias expansion limit"),
            "{errs:?}"
        );
    }

    #[test]
    fn nested_anchors_count_their_copies_against_the_alias_budget() {
        // Each anchored level keeps its own copy of everything under it: 60 levels around a
        // list of 100,000 items would hold 6 million nodes with no alias in sight.
        let items = vec!["x"; 100_000].join(",");
        let text = format!("{}{items}{}", "&a [".repeat(60), "]".repeat(60));
        let errs = parse(&text).unwrap_err();
        assert!(
            errs[0].message.contains("over the alias expansion limit"),
            "{errs:?}"
        );
        // A few anchors around a document stay well within the budget.
        assert!(parse(&format!("x: &b [&c [{items}]]\nz: *b\n")).is_ok());
    }

    #[test]
    fn moderate_alias_use_is_fine() {
        let docs = parse("base: &b {a: 1, b: 2}\none: *b\ntwo: *b\nthree: *b\n").unwrap();
        assert!(docs[0].is_some());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowing_the_stack() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        let errs = parse(&deep).unwrap_err();
        assert!(
            errs[0].message.contains("nesting") || errs[0].message.contains("nested"),
            "{errs:?}"
        );
        let mut block = String::new();
        for i in 0..5000 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        let errs = parse(&block).unwrap_err();
        assert!(errs[0].message.contains("nested more than 64"), "{errs:?}");
        assert!(parse(&("[".repeat(60) + &"]".repeat(60))).is_ok());
    }

    fn scalar(node: &Node) -> (&str, Kind) {
        match &node.value {
            Value::Scalar(s, k) => (s.as_str(), *k),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn documents_keep_positions_and_skip_empty_ones() {
        let docs = parse("# only a comment\n---\na: 1\nb:\n  - x\n---\n---\n").unwrap();
        let real: Vec<&Node> = docs.iter().flatten().collect();
        assert_eq!(real.len(), 1, "{docs:?}");
        assert!(docs.len() > 1, "empty documents are kept as None: {docs:?}");
        let Value::Map(entries) = &real[0].value else {
            panic!()
        };
        assert_eq!(scalar(&entries[0].0), ("a", Kind::Str));
        assert_eq!(scalar(&entries[0].1), ("1", Kind::Int));
        assert_eq!(entries[0].1.pos, Pos { line: 3, col: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 5, col: 5 });
    }

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        for (text, kind) in [
            ("~", Kind::Null),
            ("true", Kind::Bool),
            ("12", Kind::Int),
            ("-3", Kind::Int),
            ("0x1F", Kind::Int),
            ("0.5", Kind::Float),
            ("1e3", Kind::Float),
            (".5", Kind::Float),
            ("128Mi", Kind::Str),
            ("1.5.5", Kind::Str),
            ("yes", Kind::Str),
        ] {
            assert_eq!(resolve_plain(text), kind, "{text}");
        }
    }

    #[test]
    fn quoted_scalars_are_strings_and_json_parses() {
        let docs = parse("{\"a\": \"true\", \"b\": [1, 2.5]}").unwrap();
        let Value::Map(entries) = &docs[0].as_ref().unwrap().value else {
            panic!()
        };
        assert_eq!(scalar(&entries[0].1), ("true", Kind::Str));
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_are_located() {
        let errs = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(errs[0].message.starts_with("YAML syntax"), "{errs:?}");
        let errs = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errs[0].pos.line, 3);
        assert!(errs[0].message.contains("duplicate key \"a\""));
    }

    #[test]
    fn an_error_at_the_end_of_the_text_points_into_its_last_line() {
        // Found by the fuzzer: yaml-rust2 placed this on line 4 of a three-line file.
        let errs = parse("spec:\n  a: b\n  port").unwrap_err();
        assert_eq!(errs[0].pos, Pos { line: 3, col: 7 }, "{errs:?}");
        let errs = parse("a: [1,\r\n2").unwrap_err();
        assert_eq!(errs[0].pos.line, 2, "{errs:?}");
        let errs = parse("a: [1,\r2").unwrap_err();
        assert_eq!(errs[0].pos.line, 2, "{errs:?}");
        // Also found by the fuzzer: the empty value of a final `-` was on the line after.
        let docs = parse("ports:\n  -").unwrap();
        let Value::Map(entries) = &docs[0].as_ref().unwrap().value else {
            panic!()
        };
        let Value::Seq(items) = &entries[0].1.value else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 2, col: 4 });
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let docs = parse("x: &l {app: web}\ny: *l\n").unwrap();
        let Value::Map(entries) = &docs[0].as_ref().unwrap().value else {
            panic!()
        };
        assert!(matches!(&entries[1].1.value, Value::Map(m) if m.len() == 1));
    }
}
