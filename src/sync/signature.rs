//! Signed commits: checking a commit's SSH signature against an allowed-signers file.
//!
//! Off by default; with a [`SignaturePolicy`], the controller applies only commits signed by a
//! key of the file. Verification is `git verify-commit` on the mirror with
//! `gpg.format=ssh` and `gpg.ssh.allowedSignersFile`, exactly as a person would check by hand;
//! git runs OpenSSH's `ssh-keygen -Y find-principals` and `-Y verify`. Reimplementing the
//! signature format would be more code to trust and could disagree with git on edge cases.
//!
//! A valid signature does not make a commit new: an attacker who can push could push an old,
//! validly signed commit again. Pair this with [`super::GitSource::is_fast_forward`] against
//! the last applied commit.

use std::path::PathBuf;
use std::process::Command;

use super::error::gix_error;
use super::source::GitSource;
use super::{CommitId, SyncError};

/// Which keys may sign deployable commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// OpenSSH allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS): one
    /// `principal[,principal...] [options] key-type base64-key` per line.
    pub allowed_signers: PathBuf,
    /// Optional revoked keys (`gpg.ssh.revocationFile`): a key listed there never verifies.
    pub revoked_keys: Option<PathBuf>,
}

/// Who signed a commit, as `git verify-commit` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The principal of the allowed-signers line that matched, e.g. `alice@example.com`.
    pub principal: String,
    /// The key, e.g. `ED25519 key SHA256:ZVM6…`.
    pub key: String,
}

/// Why a commit is refused under a [`SignaturePolicy`]. Each names the commit.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The commit carries no signature at all.
    #[error("commit {commit} is not signed")]
    Unsigned {
        /// The commit.
        commit: CommitId,
    },
    /// The signature is not an SSH signature (OpenPGP or X.509); only SSH keys are configured.
    #[error("commit {commit} has an {format} signature; only SSH signatures are accepted")]
    UnsupportedFormat {
        /// The commit.
        commit: CommitId,
        /// "OpenPGP", "X.509" or "unknown".
        format: &'static str,
    },
    /// The signature is valid, but its key is not in the allowed-signers file.
    #[error("commit {commit} is signed by {key}, which is not an allowed signer")]
    UnknownKey {
        /// The commit.
        commit: CommitId,
        /// The key as ssh-keygen names it, e.g. `ED25519 key SHA256:…`.
        key: String,
    },
    /// The signature does not verify (altered commit, revoked or expired key, wrong namespace).
    #[error("commit {commit} has a bad signature: {detail}")]
    Invalid {
        /// The commit.
        commit: CommitId,
        /// What git and ssh-keygen said.
        detail: String,
    },
    /// `git` (or the `ssh-keygen` it runs) could not be started, or the allowed-signers file
    /// cannot be read.
    #[error("cannot verify commit {commit}")]
    Verifier {
        /// The commit.
        commit: CommitId,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The commit could not be read from the mirror.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl GitSource {
    /// Checks `commit`'s signature under `policy` and names its signer; see the module doc.
    pub fn verify_commit(
        &self,
        commit: &CommitId,
        policy: &SignaturePolicy,
    ) -> Result<Signer, SignatureError> {
        let verifier = |source| SignatureError::Verifier {
            commit: *commit,
            source,
        };
        std::fs::File::open(&policy.allowed_signers).map_err(verifier)?;
        self.check_signature_format(commit)?;

        let mut command = Command::new("git");
        command
            .arg("--git-dir")
            .arg(self.dir())
            .args(["-c", "gpg.format=ssh", "-c"])
            .arg(config_arg(
                "gpg.ssh.allowedSignersFile",
                &policy.allowed_signers,
            ));
        if let Some(revoked) = &policy.revoked_keys {
            command
                .arg("-c")
                .arg(config_arg("gpg.ssh.revocationFile", revoked));
        }
        let out = command
            .args(["verify-commit", &commit.to_string()])
            // Only this policy decides: no host or user config (gpg.ssh.program, ...), and
            // English messages to read.
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(verifier)?;
        let said = String::from_utf8_lossy(&out.stderr);
        interpret(*commit, out.status.success(), &said)
    }

    /// Refuses unsigned commits and non-SSH signatures before running git, with a precise
    /// reason (git itself says little about them).
    fn check_signature_format(&self, commit: &CommitId) -> Result<(), SignatureError> {
        let found = self.find_commit(commit)?;
        let decoded = found
            .decode()
            .map_err(|e| self.read_error(format!("commit {commit}"), gix_error(e)))?;
        let Some(signature) = decoded.extra_headers().pgp_signature() else {
            return Err(SignatureError::Unsigned { commit: *commit });
        };
        let format = if signature.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
            return Ok(());
        } else if signature.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
            "OpenPGP"
        } else if signature.starts_with(b"-----BEGIN SIGNED MESSAGE-----") {
            "X.509"
        } else {
            "unknown"
        };
        Err(SignatureError::UnsupportedFormat {
            commit: *commit,
            format,
        })
    }
}

fn config_arg(key: &str, path: &std::path::Path) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from(format!("{key}="));
    arg.push(path);
    arg
}

/// Reads `git verify-commit`'s verdict for an SSH signature from its exit status and stderr:
/// `Good "git" signature for PRINCIPAL with KEY` on success, `Good "git" signature with KEY`
/// followed by `No principal matched.` for a valid signature by a key not allowed.
fn interpret(commit: CommitId, success: bool, said: &str) -> Result<Signer, SignatureError> {
    const GOOD_FOR: &str = "Good \"git\" signature for ";
    const GOOD_WITH: &str = "Good \"git\" signature with ";
    if success {
        let signer = said.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(GOOD_FOR)?;
            let (principal, key) = rest.split_once(" with ")?;
            Some(Signer {
                principal: principal.to_owned(),
                key: key.to_owned(),
            })
        });
        if let Some(signer) = signer {
            return Ok(signer);
        }
    }
    if said.contains("No principal matched") {
        let key = said
            .lines()
            .find_map(|line| line.trim().strip_prefix(GOOD_WITH))
            .unwrap_or("an unknown key")
            .to_owned();
        return Err(SignatureError::UnknownKey { commit, key });
    }
    let detail = said
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Err(SignatureError::Invalid {
        commit,
        detail: if detail.is_empty() {
            "git verify-commit failed without a message".to_owned()
        } else {
            detail
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit() -> CommitId {
        CommitId::parse(&"c".repeat(40)).expect("valid id")
    }

    #[test]
    fn a_good_signature_names_principal_and_key() {
        let said = "Good \"git\" signature for alice@example.com with ED25519 key SHA256:abc\n";
        let signer = interpret(commit(), true, said).expect("good");
        assert_eq!(signer.principal, "alice@example.com");
        assert_eq!(signer.key, "ED25519 key SHA256:abc");
    }

    #[test]
    fn a_valid_signature_by_a_key_not_allowed_is_an_unknown_key() {
        let said = "Good \"git\" signature with ED25519 key SHA256:xyz\nNo principal matched.\n";
        let err = interpret(commit(), false, said).expect_err("refused");
        assert!(
            matches!(&err, SignatureError::UnknownKey { key, .. } if key == "ED25519 key SHA256:xyz"),
            "{err:?}"
        );
    }

    #[test]
    fn success_without_a_good_line_is_not_trusted() {
        let err = interpret(commit(), true, "something else\n").expect_err("refused");
        assert!(matches!(err, SignatureError::Invalid { .. }), "{err:?}");
    }
}
