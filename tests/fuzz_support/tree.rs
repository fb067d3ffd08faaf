//! The fuzzer's own YAML syntax tree, and how it is written out as YAML or JSON text.
//!
//! Generated documents (the grammar) and mutated real manifests share this tree, so both are
//! written through the same renderer, which varies what a parser must cope with: block and
//! flow styles, indentation of 1 to 4 (and sequences at their key's own indentation), the five
//! scalar styles, anchors, aliases, tags, comments, CRLF line ends and a byte-order mark. The
//! renderer aims at valid YAML but does not insist: a mostly-valid document reaches the
//! decoder, the occasional invalid one exercises the parser's errors.

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    Literal,
    Folded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Y {
    Scalar(String, Style),
    /// Items, and whether written in flow style (`[a, b]`).
    Seq(Vec<Y>, bool),
    /// Entries, and whether written in flow style (`{a: b}`).
    Map(Vec<(Y, Y)>, bool),
    Anchor(String, Box<Y>),
    Alias(String),
    Tag(String, Box<Y>),
}

impl Y {
    pub fn plain(s: &str) -> Y {
        Y::Scalar(s.to_string(), Style::Plain)
    }

    /// The node under its anchors and tags.
    fn bare(&self) -> &Y {
        match self {
            Y::Anchor(_, y) | Y::Tag(_, y) => y.bare(),
            y => y,
        }
    }

    /// ` &a !!str`: the properties in front of a node, each with a leading space.
    fn props(&self) -> String {
        match self {
            Y::Anchor(a, y) => format!(" &{a}{}", y.props()),
            Y::Tag(t, y) => format!(" {t}{}", y.props()),
            _ => String::new(),
        }
    }

    /// Written as an indented block (a non-empty collection not in flow style).
    fn is_block(&self) -> bool {
        match self.bare() {
            Y::Seq(items, flow) => !flow && !items.is_empty(),
            Y::Map(entries, flow) => !flow && !entries.is_empty(),
            Y::Scalar(_, Style::Literal | Style::Folded) => true,
            _ => false,
        }
    }
}

/// Stream-wide choices of the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Spaces per level, 1 to 4.
    pub indent: usize,
    /// Sequences under a mapping key start at the key's own column.
    pub flush_seqs: bool,
    pub comments: bool,
    pub crlf: bool,
    pub bom: bool,
    /// `---` before every document (the first one too), `...` after each.
    pub explicit_start: bool,
    pub explicit_end: bool,
    pub directive: bool,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            indent: 2,
            flush_seqs: true,
            comments: false,
            crlf: false,
            bom: false,
            explicit_start: false,
            explicit_end: false,
            directive: false,
        }
    }
}

/// A stream of documents as YAML text.
pub fn to_yaml(docs: &[Y], layout: &Layout) -> String {
    let mut out = String::new();
    if layout.bom {
        out.push('\u{feff}');
    }
    if layout.directive {
        out.push_str("%YAML 1.2\n");
    }
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 || layout.explicit_start || layout.directive {
            out.push_str("---");
            out.push_str(if doc.is_block() { "\n" } else { " " });
        }
        if layout.comments {
            out.push_str("# generated\n");
        }
        let w = Writer { layout };
        if doc.is_block() {
            let props = doc.props();
            if !props.is_empty() {
                out.push_str(props.trim_start());
                out.push('\n');
            }
            w.block(doc.bare(), 0, &mut out);
        } else {
            out.push_str(&w.flow(doc));
            out.push('\n');
        }
        if layout.explicit_end {
            out.push_str("...\n");
        }
    }
    if layout.crlf {
        out = out.replace('\n', "\r\n");
    }
    out
}

struct Writer<'a> {
    layout: &'a Layout,
}

impl Writer<'_> {
    fn pad(&self, level: usize) -> String {
        " ".repeat(level)
    }

    fn comment(&self) -> &'static str {
        if self.layout.comments {
            " # note"
        } else {
            ""
        }
    }

    /// A non-empty block collection or block scalar at column `col`.
    fn block(&self, y: &Y, col: usize, out: &mut String) {
        let step = self.layout.indent;
        match y {
            Y::Map(entries, _) => {
                for (k, v) in entries {
                    out.push_str(&self.pad(col));
                    let key_is_simple =
                        !k.is_block() && !matches!(k.bare(), Y::Seq(..) | Y::Map(..));
                    if key_is_simple {
                        out.push_str(&self.flow(k));
                        // An alias key needs a space: `:` may be part of an anchor's name.
                        if matches!(k.bare(), Y::Alias(_)) {
                            out.push(' ');
                        }
                        out.push(':');
                    } else {
                        out.push('?');
                        self.value(k, col, col + step, out);
                        out.push_str(&self.pad(col));
                        out.push(':');
                    }
                    let inner = match v.bare() {
                        Y::Seq(..) if self.layout.flush_seqs => col,
                        _ => col + step,
                    };
                    self.value(v, col, inner, out);
                }
            }
            Y::Seq(items, _) => {
                for item in items {
                    out.push_str(&self.pad(col));
                    out.push('-');
                    self.value(item, col, col + step.max(2), out);
                }
            }
            Y::Scalar(text, style) => {
                // Called only for a document root: a block scalar at the top.
                out.push_str(if *style == Style::Literal { "|" } else { ">" });
                out.push('\n');
                self.scalar_lines(text, col + step, out);
            }
            other => {
                out.push_str(&self.flow(other));
                out.push('\n');
            }
        }
    }

    /// What follows `key:` or `-` (or `?`): inline, or on the next lines at column `inner`.
    fn value(&self, v: &Y, _col: usize, inner: usize, out: &mut String) {
        if !v.is_block() {
            out.push(' ');
            out.push_str(&self.flow(v));
            out.push_str(self.comment());
            out.push('\n');
            return;
        }
        out.push_str(&v.props());
        match v.bare() {
            Y::Scalar(text, style) => {
                out.push_str(if *style == Style::Literal { " |" } else { " >" });
                out.push('\n');
                self.scalar_lines(text, inner.max(1), out);
            }
            bare => {
                out.push_str(self.comment());
                out.push('\n');
                self.block(bare, inner, out);
            }
        }
    }

    fn scalar_lines(&self, text: &str, col: usize, out: &mut String) {
        for line in text.split('\n') {
            out.push_str(&self.pad(col));
            out.push_str(line);
            out.push('\n');
        }
    }

    /// A node on one line: flow collections, quoted or safe plain scalars.
    fn flow(&self, y: &Y) -> String {
        match y {
            Y::Anchor(a, inner) => format!("&{a} {}", self.flow(inner)),
            Y::Tag(t, inner) => format!("{t} {}", self.flow(inner)),
            Y::Alias(a) => format!("*{a}"),
            Y::Seq(items, _) => {
                let items: Vec<String> = items.iter().map(|i| self.flow(i)).collect();
                format!("[{}]", items.join(", "))
            }
            Y::Map(entries, _) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| {
                        let key = self.flow(k);
                        match k.bare() {
                            Y::Seq(..) | Y::Map(..) => format!("? {key} : {}", self.flow(v)),
                            Y::Alias(_) => format!("{key} : {}", self.flow(v)),
                            _ => format!("{key}: {}", self.flow(v)),
                        }
                    })
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            Y::Scalar(text, Style::Plain) if plain_is_safe(text) => text.clone(),
            Y::Scalar(text, Style::Plain) if text.is_empty() => String::new(),
            Y::Scalar(text, Style::Single) if !text.contains(['\n', '\r']) => {
                format!("'{}'", text.replace('\'', "''"))
            }
            Y::Scalar(text, _) => double_quoted(text),
        }
    }
}

/// A plain scalar that means the same inside and outside flow collections.
pub fn plain_is_safe(s: &str) -> bool {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || "._/+~(".contains(c) || (c == '-' && s.len() > 1));
    first_ok
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars()
            .all(|c| !c.is_control() && !",[]{}\u{feff}\u{85}\u{2028}\u{2029}".contains(c))
        && !(s.starts_with('-') && s[1..].starts_with([' ', '-']))
}

/// A YAML double-quoted scalar: every character outside printable ASCII is escaped, which also
/// makes it a JSON string when the text has no such characters.
pub fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A JSON string (JSON has no `\U`: astral characters go as surrogate pairs).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The document as JSON: anchors are dropped, aliases become strings, scalars keep their text
/// (so `0x1F` or `.inf` make invalid JSON, as a hand-edited file might).
pub fn to_json(y: &Y, pretty: bool, level: usize) -> String {
    let (nl, pad, pad_in) = if pretty {
        ("\n", "  ".repeat(level), "  ".repeat(level + 1))
    } else {
        ("", String::new(), String::new())
    };
    match y {
        Y::Anchor(_, inner) | Y::Tag(_, inner) => to_json(inner, pretty, level),
        Y::Alias(a) => json_string(&format!("*{a}")),
        Y::Seq(items, _) if items.is_empty() => "[]".into(),
        Y::Map(entries, _) if entries.is_empty() => "{}".into(),
        Y::Seq(items, _) => {
            let items: Vec<String> = items
                .iter()
                .map(|i| format!("{pad_in}{}", to_json(i, pretty, level + 1)))
                .collect();
            format!("[{nl}{}{nl}{pad}]", items.join(&format!(",{nl}")))
        }
        Y::Map(entries, _) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    let key = match k.bare() {
                        Y::Scalar(t, _) => json_string(t),
                        other => to_json(other, false, 0),
                    };
                    format!("{pad_in}{key}: {}", to_json(v, pretty, level + 1))
                })
                .collect();
            format!("{{{nl}{}{nl}{pad}}}", entries.join(&format!(",{nl}")))
        }
        Y::Scalar(t, Style::Plain) if !t.is_empty() && !t.contains(char::is_whitespace) => {
            t.clone()
        }
        Y::Scalar(t, _) => json_string(t),
    }
}
