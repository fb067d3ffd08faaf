//! A webhook secret: bytes that are compared and used as an HMAC key, never shown.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shared secret of one provider's webhook.
///
/// `Debug` and `Display` print `<redacted>` (not even the length), and there is no `PartialEq`:
/// the only comparison is [`Secret::matches`], which takes constant time.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

/// Why a secret file cannot be used. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read (missing, permissions, a directory).
    #[error("cannot read secret file {path}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is empty, or holds only a line break: an empty secret would let anyone in.
    #[error("secret file {path} is empty")]
    Empty { path: String },
}

impl Secret {
    /// Takes the bytes as given. An empty secret is refused by the caller (`from_file`), not
    /// here, so tests can build any value.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// Reads a secret file. One trailing line break (`\n` or `\r\n`) is dropped, because
    /// `echo secret > file` and editors add it and no host puts it in the secret; anything
    /// else, spaces included, is part of the secret.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let mut bytes = std::fs::read(path).map_err(|source| SecretError::Unreadable {
            path: path.display().to_string(),
            source,
        })?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(SecretError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(Secret(bytes))
    }

    /// The key for HMAC signatures.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// `true` when `given` is exactly the secret. Both sides are hashed first so that the
    /// comparison takes the same time whatever the length or content of `given`.
    pub fn matches(&self, given: &[u8]) -> bool {
        let ours = Sha256::digest(&self.0);
        let theirs = Sha256::digest(given);
        ours.ct_eq(&theirs).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-webhook");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(<redacted>))");
    }

    #[test]
    fn matches_only_the_exact_bytes() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abc "));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn a_file_loses_one_trailing_line_break_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "  top secret \r\n").unwrap();
        assert!(Secret::from_file(&file).unwrap().matches(b"  top secret "));
        std::fs::write(&file, "x\n\n").unwrap();
        assert!(Secret::from_file(&file).unwrap().matches(b"x\n"));
    }

    #[test]
    fn an_empty_or_missing_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty");
        std::fs::write(&file, "\n").unwrap();
        let e = Secret::from_file(&file).unwrap_err().to_string();
        assert_eq!(e, format!("secret file {} is empty", file.display()));
        let e = Secret::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, SecretError::Unreadable { .. }), "{e}");
    }
}
