//! The decoding context: typed reads of YAML nodes that record a problem instead of stopping.
//!
//! Every reader returns `Option`: `None` means "absent or wrong", and when wrong a `Problem` has
//! already been recorded with the node's position and field path. Callers fill defaults and go
//! on, so one pass finds every problem of a file.

use crate::manifest::error::Problem;
use crate::manifest::model::StringMap;
use crate::manifest::yaml::{Kind, Node, Pos, Value};

/// Problems kept per file: enough to fix a file by, while a file of thousands of bad objects
/// (1 MiB of them fits the file budget) costs bounded memory and output. The rest are counted.
pub const MAX_PROBLEMS_PER_FILE: usize = 200;

pub struct Ctx<'a> {
    pub file: &'a str,
    pub problems: Vec<Problem>,
    /// Problems found beyond [`MAX_PROBLEMS_PER_FILE`], counted but not kept.
    pub more: usize,
}

/// `parent.key`, or `key` at the top.
pub fn field(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a str) -> Ctx<'a> {
        Ctx {
            file,
            problems: Vec::new(),
            more: 0,
        }
    }

    pub fn error_at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        if self.problems.len() >= MAX_PROBLEMS_PER_FILE {
            self.more += 1;
            return;
        }
        self.problems
            .push(Problem::new(self.file, Some(pos), path, message));
    }

    pub fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.error_at(node.pos, path, message);
    }

    fn expected(&mut self, node: &Node, path: &str, what: &str) {
        let hint = match node.value {
            Value::Scalar(ref s, Kind::Bool | Kind::Int | Kind::Float) if what == "a string" => {
                format!(" (quote it: \"{s}\")")
            }
            _ => String::new(),
        };
        self.error(
            node,
            path,
            format!("expected {what}, found {}{hint}", node.describe()),
        );
    }

    /// A mapping's fields, to be read with `Fields::take` and closed with `Fields::finish`.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Fields {
                // The parser marks a block mapping where its first value starts; its first key
                // is where a reader looks for "this mapping".
                pos: entries.first().map_or(node.pos, |(k, _)| k.pos),
                path: path.to_string(),
                entries: entries.iter().map(|(k, v)| (k, v, false)).collect(),
                asked: Vec::new(),
            }),
            _ => {
                self.expected(node, path, "a mapping");
                None
            }
        }
    }

    pub fn seq<'n>(&mut self, node: &'n Node, path: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            _ => {
                self.expected(node, path, "a list");
                &[]
            }
        }
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s, Kind::Str) => Some(s.clone()),
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    /// A string that may hold a secret (an `env` value): an error about it says what was
    /// found and how to fix it, never the value itself, since problems are stored in history
    /// and shown by the API and the CLI.
    pub fn secret_string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s, Kind::Str) => Some(s.clone()),
            Value::Scalar(_, Kind::Bool | Kind::Int | Kind::Float) => {
                let found = node.describe();
                self.error(
                    node,
                    path,
                    format!("expected a string, found {found} (put the value in quotes)"),
                );
                None
            }
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    /// A non-empty string.
    pub fn required_string(
        &mut self,
        node: Option<&Node>,
        parent: &Fields,
        key: &str,
    ) -> Option<String> {
        let path = field(&parent.path, key);
        match node {
            None => {
                self.error_at(parent.pos, &path, "required field is missing");
                None
            }
            Some(n) => match self.string(n, &path) {
                Some(s) if s.is_empty() => {
                    self.error(n, &path, "must not be empty");
                    None
                }
                other => other,
            },
        }
    }

    /// A string holding a number (`cpu: 0.5`, `memory: 128Mi`, `memory: 1000`): quantities may be
    /// written either way in Kubernetes.
    pub fn number_or_string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s, Kind::Str | Kind::Int | Kind::Float) => Some(s.clone()),
            _ => {
                self.expected(node, path, "a quantity");
                None
            }
        }
    }

    pub fn int(&mut self, node: &Node, path: &str) -> Option<i64> {
        match &node.value {
            Value::Scalar(s, Kind::Int) => match s.parse::<i64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    self.error(node, path, format!("integer {s} is out of range"));
                    None
                }
            },
            _ => {
                self.expected(node, path, "an integer");
                None
            }
        }
    }

    /// An integer in `min..=max`, with the range in the message when out of it.
    pub fn int_in(&mut self, node: &Node, path: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.int(node, path)?;
        if (min..=max).contains(&v) {
            Some(v)
        } else {
            self.error(node, path, format!("{v} is out of range {min}..{max}"));
            None
        }
    }

    pub fn port(&mut self, node: &Node, path: &str) -> Option<u16> {
        self.int_in(node, path, 1, 65535).map(|v| v as u16)
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar(s, Kind::Bool) => Some(s.eq_ignore_ascii_case("true")),
            _ => {
                self.expected(node, path, "a boolean");
                None
            }
        }
    }

    pub fn string_list(&mut self, node: &Node, path: &str) -> Vec<String> {
        let items = self.seq(node, path);
        items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.string(n, &index(path, i)))
            .collect()
    }

    /// A map of string to string (labels, selectors, annotations).
    pub fn string_map(&mut self, node: &Node, path: &str) -> StringMap {
        let mut out = StringMap::new();
        if let Value::Map(entries) = &node.value {
            for (k, v) in entries {
                let Some(key) = self.string(k, path) else {
                    continue;
                };
                let p = field(path, &key);
                if let Some(value) = self.string(v, &p) {
                    out.insert(key, value);
                }
            }
        } else if !node.is_null() {
            self.expected(node, path, "a mapping");
        }
        out
    }
}

/// The fields of one mapping. `take` marks a field as known; `finish` reports the rest.
pub struct Fields<'n> {
    pub pos: Pos,
    pub path: String,
    entries: Vec<(&'n Node, &'n Node, bool)>,
    asked: Vec<&'static str>,
}

/// Fields Kubernetes itself fills in (`kubectl get -o yaml` output): harmless, ignored.
const SERVER_SET: &[&str] = &[
    "status",
    "creationTimestamp",
    "uid",
    "resourceVersion",
    "generation",
    "selfLink",
    "managedFields",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "dnsPolicy",
    "schedulerName",
];

/// Real Kubernetes fields that a plain Docker host cannot honour: rejected, but not as typos.
const UNSUPPORTED: &[&str] = &[
    "initContainers",
    "ephemeralContainers",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "securityContext",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "imagePullSecrets",
    "dnsConfig",
    "hostAliases",
    "priorityClassName",
    "runtimeClassName",
    "nodeName",
    "envFrom",
    "valueFrom",
    "lifecycle",
    "startupProbe",
    "stdin",
    "tty",
    "volumeDevices",
    "externalIPs",
    "externalName",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "externalTrafficPolicy",
    "ownerReferences",
    "finalizers",
    "generateName",
    "grpc",
];

impl<'n> Fields<'n> {
    /// The value of `key`, if present and not null.
    pub fn take(&mut self, key: &'static str) -> Option<&'n Node> {
        self.asked.push(key);
        let entry = self
            .entries
            .iter_mut()
            .find(|(k, _, _)| matches!(&k.value, Value::Scalar(s, _) if s == key))?;
        entry.2 = true;
        Some(entry.1).filter(|v| !v.is_null())
    }

    /// The value of `key` when it is one of `choices` (case-sensitive, as in Kubernetes); any
    /// other value is reported with the accepted ones.
    pub fn take_enum<T: Copy>(
        &mut self,
        ctx: &mut Ctx,
        key: &'static str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let node = self.take(key)?;
        let path = self.path_of(key);
        let value = ctx.string(node, &path)?;
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == value) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let expected = match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        ctx.error(
            node,
            &path,
            format!("unsupported value {value:?}: expected {expected}"),
        );
        None
    }

    /// Where `key` itself is written (the mapping's position if absent): for problems with the
    /// field as a whole rather than with its value.
    pub fn key_pos(&self, key: &str) -> Pos {
        self.entries
            .iter()
            .find(|(k, _, _)| matches!(&k.value, Value::Scalar(s, _) if s == key))
            .map_or(self.pos, |(k, _, _)| k.pos)
    }

    /// The path of `key` under this mapping.
    pub fn path_of(&self, key: &str) -> String {
        field(&self.path, key)
    }

    /// Reports every field that was not taken: a typo (with a suggestion) or a Kubernetes field
    /// berth does not support.
    pub fn finish(self, ctx: &mut Ctx) {
        // The fields asked for, lowercased once for all the unknown keys, if there are any.
        let mut lowered: Option<Vec<(&'static str, Vec<char>)>> = None;
        for (k, _, used) in &self.entries {
            if *used {
                continue;
            }
            let Value::Scalar(key, _) = &k.value else {
                ctx.error(k, &self.path, "mapping keys must be strings");
                continue;
            };
            let path = field(&self.path, key);
            if SERVER_SET.contains(&key.as_str()) {
                continue;
            }
            if UNSUPPORTED.contains(&key.as_str()) {
                ctx.error(k, &path, "this Kubernetes field is not supported by berth");
                continue;
            }
            let asked = lowered.get_or_insert_with(|| {
                self.asked
                    .iter()
                    .map(|a| (*a, a.to_lowercase().chars().collect()))
                    .collect()
            });
            let hint = suggestion(asked, key)
                .map(|a| format!(" (did you mean {a:?}?)"))
                .unwrap_or_default();
            ctx.error(k, &path, format!("unknown field{hint}"));
        }
    }
}

/// The asked field nearest to `key`, if at most two edits away (the first of equals).
/// `asked` holds each field with its lowercased characters.
///
/// A mapping may hold tens of thousands of unknown keys, each compared with every field asked
/// for (about thirty in a volume): computing every distance in full took seconds per
/// megabyte. The distance is at least the difference in length, so most pairs need no table,
/// and a table is left as soon as a row is over two.
fn suggestion(asked: &[(&'static str, Vec<char>)], key: &str) -> Option<&'static str> {
    let key: Vec<char> = key.to_lowercase().chars().collect();
    let mut best: Option<(usize, &'static str)> = None;
    for (name, lower) in asked {
        if lower.len().abs_diff(key.len()) > 2 {
            continue;
        }
        if let Some(d) = distance(lower, &key, 2) {
            if best.is_none_or(|(b, _)| d < b) {
                best = Some((d, name));
            }
        }
    }
    best.map(|(_, name)| name)
}

/// Levenshtein distance, or `None` when it is over `max`.
fn distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = Vec::with_capacity(b.len() + 1);
    for (i, ca) in a.iter().enumerate() {
        cur.clear();
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        // No later row has a smaller value than this row's smallest.
        if cur.iter().min().is_some_and(|&m| m > max) {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Levenshtein distance, case-insensitive (so `containerport` suggests `containerPort`).
    fn edit_distance(a: &str, b: &str) -> usize {
        let lower = |s: &str| s.to_lowercase().chars().collect::<Vec<_>>();
        distance(&lower(a), &lower(b), usize::MAX).unwrap_or(usize::MAX)
    }

    #[test]
    fn a_near_miss_suggests_the_nearest_field_asked_for() {
        let asked: Vec<(&str, Vec<char>)> = ["containers", "volumes", "containerPort", "name"]
            .iter()
            .map(|a| (*a, a.to_lowercase().chars().collect()))
            .collect();
        let asked = asked.as_slice();
        assert_eq!(suggestion(asked, "containerport"), Some("containerPort"));
        assert_eq!(suggestion(asked, "volume"), Some("volumes"));
        assert_eq!(suggestion(asked, "nmae"), Some("name"));
        assert_eq!(suggestion(asked, "image"), None);
        assert_eq!(suggestion(asked, &"k".repeat(100_000)), None);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("image", "imgae"), 2);
        assert_eq!(edit_distance("containerPort", "containerport"), 0);
        assert_eq!(edit_distance("ports", "port"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
