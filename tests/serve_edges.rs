//! The edges of `berth serve`: force-pushes, images that cannot be pulled, the CLI against a
//! live controller, and start-up refusals. Real dockerd, Git, Raft and HTTP, as in `serve.rs`.

mod support;

use std::process::Command;

use anyhow::Result;
use serde_json::Value;

use support::berth::{git, rc_yaml, Setup};
use support::TEST_IMAGE;

fn rc(name: &str, replicas: u32, image: &str) -> String {
    rc_yaml(name, replicas, image, "1")
}

fn berth_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_push_is_followed_and_recorded() -> Result<()> {
    let w = Setup::start("host-f", &[("web.yaml", rc("web", 1, TEST_IMAGE))]).await?;
    let (repo, berth, first) = (&w.repo, &w.berth, w.first.clone());
    berth.wait_converged(&first).await?;
    repo.write("web.yaml", &rc("web", 2, TEST_IMAGE));
    let second = repo.commit("web: 2")?;
    berth.wait_converged(&second).await?;

    // Rewrite history: the branch now leads from `first` to `third`, without `second`. The
    // new commit is made on a detached HEAD and the branch moved to it in one step, as a
    // force push does: a `reset` of the branch first would let berth's watch see the branch
    // back at `first` (an ancestor, nothing to record) and then `third` as a plain child.
    git(repo.path(), &["checkout", "-q", "--detach", &first])?;
    repo.write("web.yaml", &rc("web", 3, TEST_IMAGE));
    let third = repo.commit("web: 3, rewritten")?;
    git(repo.path(), &["branch", "-q", "-f", "main", &third])?;
    git(repo.path(), &["checkout", "-q", "main"])?;
    berth.wait_converged(&third).await?;
    let record = berth.get(&format!("/api/v1/commits/{third}")).await?;
    assert_eq!(record["forced"], true, "{record}");
    assert_eq!(record["outcome"], "applied");
    let pods = berth.get("/api/v1/pods").await?;
    assert_eq!(pods.as_array().map(Vec::len), Some(3));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_marks_its_pod_and_holds_up_nothing_else() -> Result<()> {
    // Port 1 on loopback: the pull fails at once, and nothing outside this machine is asked.
    let files = [
        ("web.yaml", rc("web", 2, TEST_IMAGE)),
        ("ghost.yaml", rc("ghost", 1, "127.0.0.1:1/berth/missing:1")),
    ];
    let w = Setup::start("host-p", &files).await?;
    let (repo, berth, sha) = (&w.repo, &w.berth, w.first.clone());

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pods = loop {
        let pods = berth.get("/api/v1/pods").await?;
        let list = pods.as_array().cloned().unwrap_or_default();
        let web_running = list
            .iter()
            .filter(|p| p["owner"] == "web" && p["phase"] == "Running")
            .count();
        let ghost = list.iter().find(|p| p["owner"] == "ghost");
        if web_running == 2
            && ghost
                .is_some_and(|g| g["phase"] == "ErrImagePull" || g["phase"] == "ImagePullBackOff")
        {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pods never settled: {pods}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let ghost = pods.iter().find(|p| p["owner"] == "ghost").unwrap();
    assert!(
        ghost["reason"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1/berth/missing:1"),
        "{ghost}"
    );
    let status = berth.status().await?;
    assert_eq!(status["commit"], sha);
    assert_eq!(status["converged"], false);

    // Removing the ghost lets the tree converge.
    repo.remove("ghost.yaml");
    let fixed = repo.commit("drop the ghost")?;
    berth.wait_converged(&fixed).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_a_live_controller() -> Result<()> {
    let w = Setup::start("host-c", &[("web.yaml", rc("web", 1, TEST_IMAGE))]).await?;
    let (repo, berth) = (&w.repo, &w.berth);
    // The plan checked below is the scale 1 -> 2 alone: the first commit converges first.
    berth.wait_converged(&w.first).await?;
    repo.write("web.yaml", &rc("web", 2, TEST_IMAGE));
    let sha = repo.commit("web: 2\n\nwith a body")?;
    berth.wait_converged(&sha).await?;
    let server = format!("http://{}", berth.addr);

    let (code, out, err) = berth_cli(&["status", "--server", &server]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("commit:      {sha}")), "{out}");
    assert!(out.contains("converged:   true"), "{out}");
    assert!(out.contains("in sync:     true"), "{out}");
    assert!(out.contains("nodes ready: 1/1"), "{out}");

    let (code, out, _) = berth_cli(&["get", "pods", "--server", &server]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE   NAME"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(" web ") && l.contains("Running") && l.contains("1/1")),
        "{out}"
    );

    let (code, out, _) = berth_cli(&["get", "rc", "-o", "json", "--server", &server]);
    assert_eq!(code, 0);
    let rcs: Value = serde_json::from_str(&out)?;
    assert_eq!(rcs[0]["ready"], 2);

    let (code, out, _) = berth_cli(&["get", "commits", "--server", &server]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&sha[..12]) && out.contains("applied") && out.contains("web: 2"),
        "{out}"
    );

    let (code, out, _) = berth_cli(&["describe", "commit", &sha[..8], "--server", &server]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("Commit:     {sha}")), "{out}");
    assert!(out.contains("  with a body"), "{out}");
    // Scaling 1 -> 2: this commit's plan created exactly one replica.
    let creates = out
        .lines()
        .filter(|l| l.starts_with("  create default/web-"))
        .count();
    assert_eq!(creates, 1, "{out}");

    let (code, _, err) = berth_cli(&["describe", "commit", "0000000", "--server", &server]);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no commit 0000000"),
        "{err}"
    );

    let resp = reqwest::Client::new()
        .post(format!("{server}/api/v1/pods"))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 405);
    let resp = reqwest::get(format!("{server}/api/v1/nope")).await?;
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await?;
    assert!(body["error"].is_string());
    Ok(())
}

#[test]
fn serve_refuses_bad_settings_with_a_clear_message() {
    let (code, _, err) = berth_cli(&["serve"]);
    assert_eq!(code, 2);
    assert!(err.contains("--repo: required"), "{err}");

    let (code, _, err) = berth_cli(&["serve", "--repo", "/tmp", "--poll", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--poll: \"soon\" is not a duration"), "{err}");

    let data = tempfile::tempdir().unwrap();
    let d = data.path().join("data");
    let (code, _, err) = berth_cli(&[
        "serve",
        "--repo",
        "/nonexistent/berth-repo",
        "--data-dir",
        d.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/berth-repo"), "{err}");

    let (code, _, err) = berth_cli(&[
        "serve",
        "--repo",
        "/tmp",
        "--data-dir",
        "/proc/berth-data",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("data directory /proc/berth-data"), "{err}");
}

#[test]
fn serve_help_lists_every_setting() {
    let (code, out, _) = berth_cli(&["serve", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--repo",
        "--branch",
        "--path",
        "--node",
        "--docker-tls-dir",
        "--data-dir",
        "--listen",
        "--poll",
        "--resync",
        "--config",
    ] {
        assert!(out.contains(flag), "{flag} missing from serve --help");
    }
    assert!(out.contains("BERTH_REPO"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_remote_that_goes_away_is_reported_and_followed_again_when_back() -> Result<()> {
    let w = Setup::start("host-g", &[("web.yaml", rc("web", 1, TEST_IMAGE))]).await?;
    let (repo, berth, first) = (&w.repo, &w.berth, w.first.clone());
    berth.wait_converged(&first).await?;

    let away = repo.path().with_extension("away");
    std::fs::rename(repo.path(), &away)?;
    let status = berth
        .wait_for("git failure in status", |s| s["git"]["ok"] == false)
        .await?;
    assert!(
        status["git"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    assert_eq!(
        status["converged"], true,
        "the running state is kept while Git is away"
    );
    std::fs::rename(&away, repo.path())?;

    repo.write("web.yaml", &rc("web", 2, TEST_IMAGE));
    let second = repo.commit("web: 2")?;
    let status = berth.wait_converged(&second).await?;
    assert_eq!(status["git"]["ok"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_over_the_budgets_are_rejected_whole_in_bounded_memory() -> Result<()> {
    let w = Setup::start("host-b", &[("web.yaml", rc("web", 1, TEST_IMAGE))]).await?;
    let (repo, berth, first) = (&w.repo, &w.berth, w.first.clone());
    berth.wait_converged(&first).await?;
    let pods = berth.get("/api/v1/pods").await?;

    // A 16 MiB manifest next to a valid change: neither is applied, and the big blob is never
    // read (its size comes from the object header).
    repo.write("web.yaml", &rc("web", 2, TEST_IMAGE));
    repo.write("big.yaml", &format!("# {}\n", "x".repeat(16 << 20)));
    let big = repo.commit("web: 2, and a huge file")?;
    let record = berth.wait_commit(&big, &["rejected"]).await?;
    let errors: Vec<String> = serde_json::from_value(record["errors"].clone())?;
    assert_eq!(
        errors,
        vec!["big.yaml: file is 16.0 MiB, over the limit of 1 MiB per file (max_file_size)"]
    );

    // A YAML alias bomb of under 1 KB.
    repo.remove("big.yaml");
    let mut bomb = String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bomb\n  annotations:\n    a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let list = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("    a{i}: &a{i} [{list}]\n"));
    }
    repo.write("bomb.yaml", &bomb);
    let laughs = repo.commit("a billion laughs")?;
    let record = berth.wait_commit(&laughs, &["rejected"]).await?;
    assert!(
        record["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("bomb.yaml:") && e.contains("alias expansion limit")),
        "{record}"
    );

    let status = berth.status().await?;
    assert_eq!(status["commit"], first, "the running state is untouched");
    assert_eq!(berth.get("/api/v1/pods").await?, pods);
    let peak = berth.peak_rss_kib()?;
    eprintln!("berth serve peak RSS after both commits: {peak} KiB");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    Ok(())
}

/// Secret values planted in manifests (valid and invalid) appear in none of berth's outputs:
/// its log, every API answer, every CLI command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_output() -> Result<()> {
    const SECRET: &str = "planted-secret-7f3a9c";
    const BAD_SECRET: &str = "918273645";
    let app = rc("web", 1, TEST_IMAGE).replace(
        "        - {name: VERSION, value: \"1\"}\n",
        &format!("        - {{name: VERSION, value: \"1\"}}\n        - {{name: PASSWORD, value: \"{SECRET}\"}}\n"),
    );
    assert!(app.contains(SECRET));
    let w = Setup::start("host-s", &[("web.yaml", app.clone())]).await?;
    let (repo, berth, first) = (&w.repo, &w.berth, w.first.clone());
    berth.wait_converged(&first).await?;
    // An invalid commit whose error is about a secret's value.
    repo.write(
        "web.yaml",
        &app.replace(&format!("\"{SECRET}\""), BAD_SECRET),
    );
    let bad = repo.commit("password as a number")?;
    let record = berth.wait_commit(&bad, &["rejected"]).await?;
    assert!(
        record["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("env[1].value")),
        "{record}"
    );

    let mut outputs = vec![berth.log_text()];
    for path in [
        "/api/v1/status",
        "/api/v1/commits",
        "/api/v1/pods",
        "/api/v1/replicationcontrollers",
        "/api/v1/services",
        "/api/v1/nodes",
    ] {
        outputs.push(berth.get(path).await?.to_string());
    }
    outputs.push(
        berth
            .get(&format!("/api/v1/commits/{bad}"))
            .await?
            .to_string(),
    );
    outputs.push(
        berth
            .get(&format!("/api/v1/commits/{first}"))
            .await?
            .to_string(),
    );
    let server = format!("http://{}", berth.addr);
    for args in [
        vec!["status"],
        vec!["get", "pods"],
        vec!["get", "rc", "-o", "json"],
        vec!["get", "commits"],
        vec!["describe", "commit", bad.as_str()],
    ] {
        let mut args = args.clone();
        args.extend(["--server", &server]);
        let (_, out, err) = berth_cli(&args);
        outputs.push(out);
        outputs.push(err);
    }
    for text in &outputs {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(BAD_SECRET), "secret leaked: {text}");
    }
    Ok(())
}
