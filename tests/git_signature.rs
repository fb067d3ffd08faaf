//! Signed commits, with real ed25519 keys made by `ssh-keygen`: a commit signed by an allowed
//! key names its signer; unsigned commits and unknown keys are typed refusals.

mod git_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Result};
use berth::sync::{GitSource, SignatureError, SignaturePolicy, Syncer};
use git_support::{id, Upstream};

/// Makes an ed25519 key pair `dir/name` (private) and `dir/name.pub`.
fn keygen(dir: &Path, name: &str) -> Result<PathBuf> {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(key)
}

/// `git -c` settings that sign a commit with `key`.
fn signing(key: &Path) -> [String; 2] {
    [
        "gpg.format=ssh".to_owned(),
        format!("user.signingkey={}", key.display()),
    ]
}

struct Keys {
    alice: PathBuf,
    mallory: PathBuf,
    policy: SignaturePolicy,
}

fn keys(up: &Upstream) -> Result<Keys> {
    let dir = up.tmp.path();
    let alice = keygen(dir, "alice")?;
    let mallory = keygen(dir, "mallory")?;
    let public = std::fs::read_to_string(dir.join("alice.pub"))?;
    let allowed = dir.join("allowed_signers");
    std::fs::write(&allowed, format!("alice@example.com {public}"))?;
    Ok(Keys {
        alice,
        mallory,
        policy: SignaturePolicy {
            allowed_signers: allowed,
            revoked_keys: None,
        },
    })
}

fn commit_signed(up: &Upstream, message: &str, key: &Path) -> Result<String> {
    let settings = signing(key);
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    up.commit_with(message, &settings)
}

#[test]
fn a_commit_signed_by_an_allowed_key_names_its_signer() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let keys = keys(&up)?;
    let signed = commit_signed(&up, "signed", &keys.alice)?;
    up.push(false)?;
    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    let head = source.fetch()?;
    assert_eq!(head.to_string(), signed);

    let signer = source.verify_commit(&head, &keys.policy)?;
    assert_eq!(signer.principal, "alice@example.com");
    assert!(
        signer.key.starts_with("ED25519 key SHA256:"),
        "{}",
        signer.key
    );
    Ok(())
}

#[test]
fn unsigned_commits_and_unknown_keys_are_refused_with_the_reason() -> Result<()> {
    let (up, unsigned) = Upstream::with_first_commit()?;
    let keys = keys(&up)?;
    let by_mallory = commit_signed(&up, "signed by someone else", &keys.mallory)?;
    up.push(false)?;
    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    source.fetch()?;

    let err = source
        .verify_commit(&id(&unsigned), &keys.policy)
        .expect_err("unsigned");
    assert!(matches!(err, SignatureError::Unsigned { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("commit {unsigned} is not signed"));

    let err = source
        .verify_commit(&id(&by_mallory), &keys.policy)
        .expect_err("unknown key");
    let SignatureError::UnknownKey { key, .. } = &err else {
        panic!("expected UnknownKey, got {err:?}");
    };
    assert!(key.starts_with("ED25519 key SHA256:"), "{key}");
    assert!(err.to_string().contains("not an allowed signer"), "{err}");

    // Revoking alice's key refuses her commits too.
    let alices = commit_signed(&up, "signed by alice", &keys.alice)?;
    up.push(false)?;
    source.fetch()?;
    let revoked = up.tmp.path().join("revoked");
    std::fs::copy(up.tmp.path().join("alice.pub"), &revoked)?;
    let strict = SignaturePolicy {
        revoked_keys: Some(revoked),
        ..keys.policy.clone()
    };
    assert!(source.verify_commit(&id(&alices), &keys.policy).is_ok());
    let err = source
        .verify_commit(&id(&alices), &strict)
        .expect_err("revoked");
    assert!(matches!(err, SignatureError::Invalid { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn replaying_an_older_signed_commit_is_not_a_fast_forward() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let keys = keys(&up)?;
    let old = commit_signed(&up, "v1", &keys.alice)?;
    let new = commit_signed(&up, "v2", &keys.alice)?;
    up.push(false)?;
    let syncer = Syncer::open_or_clone(&up.url(), "main", &up.mirror_dir("m")).await?;
    syncer.fetch().await?;
    assert!(syncer.is_fast_forward(&id(&old), &id(&new)).await?);

    up.reset_hard(&old)?;
    up.push(true)?;
    let head = syncer.fetch().await?;
    let signer = syncer.verify_commit(&head, &keys.policy).await?;
    assert_eq!(signer.principal, "alice@example.com", "validly signed...");
    assert!(
        !syncer.is_fast_forward(&id(&new), &head).await?,
        "...but older than what was applied"
    );
    Ok(())
}

#[test]
fn a_missing_allowed_signers_file_cannot_verify() -> Result<()> {
    let (up, first) = Upstream::with_first_commit()?;
    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    source.fetch()?;
    let policy = SignaturePolicy {
        allowed_signers: up.tmp.path().join("missing"),
        revoked_keys: None,
    };
    let err = source
        .verify_commit(&id(&first), &policy)
        .expect_err("no file");
    assert!(matches!(err, SignatureError::Verifier { .. }), "{err:?}");
    Ok(())
}
