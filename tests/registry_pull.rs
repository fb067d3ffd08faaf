//! Pulls from a private registry with credentials (`--registry-auth`, Docker's `config.json`),
//! against a real registry with htpasswd auth on the test network, and the credentials never
//! appear in any output.

mod support;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use bollard::query_parameters::RemoveImageOptionsBuilder;
use serde_json::Value;

use support::berth::{rc_yaml, Berth, Repo};
use support::{start_engine, start_registry};

async fn pod_of(berth: &Berth, owner: &str) -> Result<Value> {
    let pods = berth.get("/api/v1/pods").await?;
    Ok(pods
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["owner"] == owner)
        .cloned()
        .unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_image_is_pulled_with_the_configured_credentials_and_only_then() -> Result<()> {
    let engine = start_engine("reg-a").await?;
    let registry = start_registry(&engine).await?;
    let image = registry.push_test_image(&engine).await?;
    // Only the registry has it now: the pull must ask it.
    engine
        .docker()
        .remove_image(&image, Some(RemoveImageOptionsBuilder::new().build()), None)
        .await
        .with_context(|| format!("untagging {image}"))?;

    let dir = tempfile::tempdir()?;
    let auth = |password: &str| {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", registry.user()));
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{token}"}}}}}}"#,
            registry.address()
        )
    };
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, auth("not-the-password"))?;
    let right = dir.path().join("right.json");
    std::fs::write(&right, auth(registry.password()))?;

    let repo = Repo::new()?;
    // IfNotPresent: the image is absent, so it is pulled; no local copy to fall back on.
    repo.write("app.yaml", &rc_yaml("app", 1, &image, "1"));
    let sha = repo.commit("a private image")?;
    let nodes = [format!("a={}", engine.endpoint)];

    let data = tempfile::tempdir()?;
    let wrong_arg = wrong.display().to_string();
    let mut refused = Berth::start_with(
        repo.path(),
        data.path(),
        &nodes,
        &["--registry-auth", &wrong_arg],
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let p = pod_of(&refused, "app").await?;
        if p["phase"] == "ErrImagePull" || p["phase"] == "ImagePullBackOff" {
            break p;
        }
        if Instant::now() > deadline {
            bail!("the pull with a wrong password never failed: {p}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = pod["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains(&image), "{reason}");
    let outputs_wrong = vec![
        refused.log_text(),
        refused.get("/api/v1/pods").await?.to_string(),
    ];
    refused.terminate().await?;

    let data = tempfile::tempdir()?;
    let right_arg = right.display().to_string();
    let accepted = Berth::start_with(
        repo.path(),
        data.path(),
        &nodes,
        &["--registry-auth", &right_arg],
    )
    .await?;
    accepted.wait_converged(&sha).await?;
    let running = pod_of(&accepted, "app").await?;
    assert_eq!(running["phase"], "Running", "{running}");

    let mut outputs = outputs_wrong;
    outputs.push(accepted.log_text());
    for path in ["/api/v1/pods", "/api/v1/commits", "/api/v1/status"] {
        outputs.push(accepted.get(path).await?.to_string());
    }
    for text in &outputs {
        assert!(
            !text.contains(registry.password()),
            "the registry password leaked: {text}"
        );
        assert!(
            !text.contains("not-the-password"),
            "a password leaked: {text}"
        );
    }
    // The registry must go before the engine whose address it listens on.
    drop(accepted);
    drop(registry);
    Ok(())
}

#[test]
fn a_broken_auth_file_is_refused_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, "{\"auths\": {\"r:5000\": {\"auth\": \"%%%\"}}}").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--repo", "/tmp", "--registry-auth"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--registry-auth") && err.contains("config.json") && err.contains("r:5000"),
        "{err}"
    );
}
