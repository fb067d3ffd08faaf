//! Equality-based label selectors, as `berth.io/conflicts` takes them: `app=db`, `tier!=web`,
//! `role` (the label exists), `!canary` (it does not), joined by commas (all must hold).

use std::fmt;

use crate::manifest::StringMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed selector: every requirement must hold. Never empty (an empty selector would match
/// every pod, which is never what a conflict means).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!("{s:?}: empty requirement (write app=db,tier=x)"));
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(key(k, s)?, value(v, s)?)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key(k, s)?, value(v, s)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::Absent(key(k, s)?)
            } else {
                Requirement::Exists(key(part, s)?)
            };
            out.push(req);
        }
        Ok(Selector(out))
    }

    pub fn matches(&self, labels: &StringMap) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
        })
    }
}

fn key(k: &str, whole: &str) -> Result<String, String> {
    let k = k.trim();
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(k.to_string())
    } else {
        Err(format!("{whole:?}: {k:?} is not a label key"))
    }
}

fn value(v: &str, whole: &str) -> Result<String, String> {
    let v = v.trim();
    let ok = v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("{whole:?}: {v:?} is not a label value"))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::NotEquals(k, v) => write!(f, "{k}!={v}")?,
                Requirement::Exists(k) => write!(f, "{k}")?,
                Requirement::Absent(k) => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirements_all_hold() {
        let s = Selector::parse("app=db, tier!=web,role,!canary").unwrap();
        assert_eq!(s.to_string(), "app=db,tier!=web,role,!canary");
        assert!(s.matches(&labels(&[("app", "db"), ("role", "x")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("role", "x"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("app", "db"), ("role", "x"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("role", "x")])));
    }

    #[test]
    fn bad_selectors_are_named() {
        assert!(Selector::parse("").is_err());
        assert!(Selector::parse("app=db,,x").is_err());
        assert!(Selector::parse("a pp=db").is_err());
        assert!(Selector::parse("app=d b").is_err());
    }
}
