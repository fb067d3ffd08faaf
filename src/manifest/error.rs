//! Manifest problems: each names the file, the position when the parser knows it, and the field.

use std::fmt;

use super::yaml::Pos;

/// One problem in one manifest, e.g.
/// `apps/web.yaml:14:9: spec.template.spec.containers[0].resources.limits.memory: invalid quantity "12x"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// Path of the file, as given (relative to the repository or the directory validated).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// Field path inside the object (`spec.containers[0].image`); empty for whole-file problems.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(
        file: &str,
        pos: Option<Pos>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            file: file.to_string(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.col),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// Why a tree of manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifests were read but are invalid; every problem found is listed.
    #[error("{} problem(s) in manifests", .0.len())]
    Invalid(Vec<Problem>),
    /// A file or directory could not be read at all.
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_print_file_line_column_field_and_message() {
        let p = Problem::new(
            "apps/web.yaml",
            Some(Pos { line: 14, col: 9 }),
            "spec.template.spec.containers[0].resources.limits.memory",
            "invalid quantity \"12x\"",
        );
        assert_eq!(
            p.to_string(),
            "apps/web.yaml:14:9: spec.template.spec.containers[0].resources.limits.memory: invalid quantity \"12x\""
        );
        assert_eq!(
            Problem::new("a.yaml", None, "", "empty").to_string(),
            "a.yaml: empty"
        );
    }
}
