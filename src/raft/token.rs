//! The shared cluster token every Raft request carries.
//!
//! Why a shared secret: the members of a berth cluster are a handful of controllers set up by
//! one operator, and Raft RPCs can rewrite the whole replicated state. A token read from a file
//! (`--cluster-token-file`) is the least machinery that keeps a stranger on the network from
//! voting or appending; TLS (see `tls.rs`) adds confidentiality on top.
//!
//! The token is compared through SHA-256 digests with a constant-time equality, so neither the
//! content nor the length of the real token leaks through response timing. It never appears in
//! `Debug` output or logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Fewer bytes than this is guessable; `openssl rand -hex 32` gives 64.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Why a cluster token could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read cluster token file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The token (surrounding whitespace removed) is shorter than [`MIN_TOKEN_BYTES`].
    #[error("cluster token is {len} bytes long; at least {MIN_TOKEN_BYTES} are required")]
    TooShort { len: usize },
    /// The token holds a byte that cannot travel in an HTTP header (only visible ASCII can).
    #[error("cluster token may hold only visible ASCII characters (no spaces or controls)")]
    BadCharacter,
}

struct Secret {
    value: String,
    digest: [u8; 32],
}

/// The cluster's shared secret, or "unset" for a node that accepts no Raft request at all.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct ClusterToken(Option<Arc<Secret>>);

impl std::fmt::Debug for ClusterToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("ClusterToken(<redacted>)"),
            None => f.write_str("ClusterToken(<unset>)"),
        }
    }
}

impl ClusterToken {
    /// A token from its text. Surrounding whitespace (a file's trailing newline) is ignored.
    pub fn new(value: &str) -> Result<ClusterToken, TokenError> {
        let value = value.trim();
        if value.len() < MIN_TOKEN_BYTES {
            return Err(TokenError::TooShort { len: value.len() });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacter);
        }
        Ok(ClusterToken(Some(Arc::new(Secret {
            value: value.to_string(),
            digest: Sha256::digest(value.as_bytes()).into(),
        }))))
    }

    /// Reads the token from `path` (`--cluster-token-file`).
    pub fn from_file(path: &Path) -> Result<ClusterToken, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        warn_if_readable_by_others(path);
        ClusterToken::new(&text)
    }

    /// No token: every Raft request to this node is refused and none is sent. What a
    /// single-member node without `--cluster-token-file` runs with; it cannot grow into a
    /// cluster until it is restarted with a token.
    pub fn unset() -> ClusterToken {
        ClusterToken(None)
    }

    /// True when a token is configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// True when `presented` is the token. Constant time in the content and length of both.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let Some(secret) = &self.0 else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&secret.digest).into()
    }

    /// The `Authorization` header value for outgoing requests, marked sensitive so HTTP
    /// libraries never log it.
    pub(crate) fn authorization(&self) -> Option<reqwest::header::HeaderValue> {
        let secret = self.0.as_ref()?;
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", secret.value)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(path = %path.display(), "cluster token file is readable by every user: chmod o-r it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_verifies() {
        let token = ClusterToken::new("correct-horse-battery-staple\n").unwrap();
        assert!(token.verify(b"correct-horse-battery-staple"));
        assert!(!token.verify(b"correct-horse-battery-stapl"));
        assert!(!token.verify(b"correct-horse-battery-staple "));
        assert!(!token.verify(b""));
    }

    #[test]
    fn an_unset_token_verifies_nothing_and_sends_nothing() {
        let token = ClusterToken::unset();
        assert!(!token.verify(b""));
        assert!(token.authorization().is_none());
    }

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        assert!(matches!(
            ClusterToken::new("short"),
            Err(TokenError::TooShort { len: 5 })
        ));
        assert!(matches!(
            ClusterToken::new("has a space in the middle"),
            Err(TokenError::BadCharacter)
        ));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = ClusterToken::new("correct-horse-battery-staple").unwrap();
        assert!(!format!("{token:?}").contains("horse"));
    }
}
