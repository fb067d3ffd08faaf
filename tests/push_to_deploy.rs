//! Push to deploy, end to end: a signed webhook makes berth sync at once (with a remote it
//! otherwise polls only hourly), a push into a watched local bare repository applies without
//! any webhook, a rewind to an ancestor is applied and recorded once, signed-commit mode, and
//! credentials in the URL are refused.

#[path = "git_support/mod.rs"]
mod git_support;
mod support;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use git_support::http::{GitHttpServer, Mode};
use git_support::Upstream;
use support::berth::{rc_yaml, Berth};
use support::{start_engine, TEST_IMAGE};

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn record(berth: &Berth, sha: &str) -> Result<Value> {
    berth.get(&format!("/api/v1/commits/{sha}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_deploys_a_push_at_once_and_records_its_delivery() -> Result<()> {
    let engine = start_engine("push-w").await?;
    let up = Upstream::empty()?;
    up.write("web.yaml", &rc_yaml("web", 1, TEST_IMAGE, "1"))?;
    let first = up.commit("first")?;
    up.push(false)?;
    let server = GitHttpServer::start(up.tmp.path(), Mode::Normal)?;
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("generic.secret");
    std::fs::write(&secret_file, "hook-secret-9d2c\n")?;
    let secret = format!("generic={}", secret_file.display());
    let repo = server.url("remote.git");
    let mut berth = Berth::start_with(
        std::path::Path::new(&repo),
        &dir.path().join("data"),
        &[format!("a={}", engine.endpoint)],
        // Hourly polls: the first look at start-up, then only webhooks.
        &["--webhook-secret-file", &secret, "--poll", "1h"],
    )
    .await?;
    berth.wait_converged(&first).await?;

    up.write("web.yaml", &rc_yaml("web", 2, TEST_IMAGE, "1"))?;
    let second = up.commit("web: 2")?;
    up.push(false)?;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let url = format!("http://{}/webhooks/generic", berth.addr);
    let http = reqwest::Client::new();
    let pushed = Instant::now();
    let answer = http
        .post(&url)
        .header("X-Berth-Signature", sign(b"hook-secret-9d2c", body))
        .header("X-Berth-Delivery", "delivery-1")
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(answer.status().as_u16(), 202, "{}", answer.text().await?);
    berth.wait_converged(&second).await?;
    eprintln!("webhook → converged in {:?}", pushed.elapsed());
    let r = record(&berth, &second).await?;
    assert_eq!(r["trigger"]["kind"], "webhook", "{r}");
    assert_eq!(r["trigger"]["provider"], "generic");
    assert_eq!(r["trigger"]["delivery"], "delivery-1");

    // The same delivery again, a forged one, and an empty signature change nothing.
    let again = http
        .post(&url)
        .header("X-Berth-Signature", sign(b"hook-secret-9d2c", body))
        .header("X-Berth-Delivery", "delivery-1")
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 200);
    for signature in [sign(b"wrong", body), String::new()] {
        let forged = http
            .post(&url)
            .header("X-Berth-Signature", signature)
            .body(body.to_vec())
            .send()
            .await?;
        assert_eq!(forged.status().as_u16(), 401);
    }
    // Receivers without a secret are off.
    let off = http
        .post(format!("http://{}/webhooks/github", berth.addr))
        .body(body.to_vec())
        .send()
        .await?;
    assert_eq!(off.status().as_u16(), 404);
    let history = berth.get("/api/v1/commits").await?;
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
    assert!(!berth.log_text().contains("hook-secret-9d2c"));
    berth.terminate().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_into_a_watched_local_repository_applies_without_webhook_or_polling() -> Result<()> {
    let engine = start_engine("push-l").await?;
    let up = Upstream::empty()?;
    up.write("web.yaml", &rc_yaml("web", 1, TEST_IMAGE, "1"))?;
    let first = up.commit("first")?;
    up.push(false)?;
    let dir = tempfile::tempdir()?;
    let berth = Berth::start_with(
        &up.bare,
        &dir.path().join("data"),
        &[format!("a={}", engine.endpoint)],
        &["--poll", "1h"],
    )
    .await?;
    berth.wait_converged(&first).await?;

    up.write("web.yaml", &rc_yaml("web", 2, TEST_IMAGE, "1"))?;
    let second = up.commit("web: 2")?;
    let pushed = Instant::now();
    up.push(false)?;
    berth.wait_converged(&second).await?;
    eprintln!("git push → converged in {:?}", pushed.elapsed());
    let r = record(&berth, &second).await?;
    assert_eq!(r["trigger"]["kind"], "watch", "{r}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_to_an_ancestor_is_applied_and_recorded_once() -> Result<()> {
    let engine = start_engine("push-r").await?;
    let up = Upstream::empty()?;
    up.write("web.yaml", &rc_yaml("web", 1, TEST_IMAGE, "1"))?;
    let first = up.commit("first")?;
    up.push(false)?;
    let dir = tempfile::tempdir()?;
    let berth = Berth::start(
        &up.bare,
        &dir.path().join("data"),
        &[format!("a={}", engine.endpoint)],
    )
    .await?;
    berth.wait_converged(&first).await?;
    up.write("web.yaml", &rc_yaml("web", 3, TEST_IMAGE, "1"))?;
    let second = up.commit("web: 3")?;
    up.push(false)?;
    berth.wait_converged(&second).await?;

    // Roll back by resetting the branch and force-pushing.
    up.reset_hard(&first)?;
    up.push(true)?;
    berth.wait_converged(&first).await?;
    let history = berth.get("/api/v1/commits").await?;
    let newest = &history[0];
    assert_eq!(newest["sha"], first.as_str());
    assert_eq!(newest["forced"], true, "{newest}");
    assert_eq!(newest["refers_to"], second.as_str(), "the head it replaced");
    // Polling goes on (300 ms): the rewind is never recorded again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = berth.get("/api/v1/commits").await?;
    assert_eq!(later.as_array().map(Vec::len), Some(3), "{later}");
    let pods = berth.get("/api/v1/pods").await?;
    assert_eq!(
        pods.as_array().map(Vec::len),
        Some(1),
        "the rollback deployed: {pods}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_mode_applies_a_commit_signed_by_an_allowed_key_and_rejects_an_unsigned_one(
) -> Result<()> {
    let engine = start_engine("push-s").await?;
    let keys = tempfile::tempdir()?;
    let key = git_support::sshd::keygen(keys.path(), "signer")?;
    let public = std::fs::read_to_string(key.with_extension("pub"))?;
    let allowed = keys.path().join("allowed_signers");
    std::fs::write(&allowed, format!("ops@example.org {public}"))?;
    let up = Upstream::empty()?;
    up.write("web.yaml", &rc_yaml("web", 1, TEST_IMAGE, "1"))?;
    let signing = [
        "gpg.format=ssh".to_string(),
        format!("user.signingkey={}", key.display()),
    ];
    let signing: Vec<&str> = signing.iter().map(String::as_str).collect();
    let signed = up.commit_with("signed", &signing)?;
    up.push(false)?;
    let dir = tempfile::tempdir()?;
    let allowed_arg = allowed.display().to_string();
    let berth = Berth::start_with(
        &up.bare,
        &dir.path().join("data"),
        &[format!("a={}", engine.endpoint)],
        &["--verify-signatures", &allowed_arg],
    )
    .await?;
    berth.wait_converged(&signed).await?;

    up.write("web.yaml", &rc_yaml("web", 2, TEST_IMAGE, "1"))?;
    let unsigned = up.commit("not signed")?;
    up.push(false)?;
    let r = berth.wait_commit(&unsigned, &["rejected"]).await?;
    let errors = r["errors"].to_string();
    ensure!(errors.contains("signature"), "{errors}");
    assert_eq!(
        berth.status().await?["commit"],
        signed.as_str(),
        "nothing applied"
    );
    Ok(())
}

#[test]
fn a_password_in_the_repository_url_is_refused_pointing_to_the_token_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "serve",
            "--repo",
            "https://ops:hunter2@git.example.org/shop.git",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("--repo-token-file"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let leaked = walk(dir.path())
        .into_iter()
        .any(|f| std::fs::read(&f).is_ok_and(|b| String::from_utf8_lossy(&b).contains("hunter2")));
    assert!(!leaked, "the password was written under the data directory");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
