//! Deploys without downtime, end to end: rolling updates gated on readiness, a bad image that
//! changes nothing that runs, a rollout that halts (and one rolled back). Real engines (their
//! bridges routed to from here, so the test checks readiness itself over HTTP), real Git,
//! `berth serve` with Raft on disk.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::Value;

use support::apps::{containers, ready_count, web_rc, web_rc_image};
use support::berth::Setup;

const DEADLINE: (&str, &str) = ("berth.io/progress-deadline-seconds", "8");

fn ids(list: &[support::apps::Running]) -> BTreeSet<String> {
    list.iter().map(|c| c.id.clone()).collect()
}

/// Samples the engine every 100 ms until stopped: the fewest `owner` containers that answered
/// over HTTP at once, and the most `owner` containers that existed at once.
struct Sampler {
    stop: Arc<AtomicBool>,
    min_ready: Arc<AtomicUsize>,
    max_total: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Sampler {
    fn start(docker: bollard::Docker, owner: &'static str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let min_ready = Arc::new(AtomicUsize::new(usize::MAX));
        let max_total = Arc::new(AtomicUsize::new(0));
        let (s, mr, mt) = (stop.clone(), min_ready.clone(), max_total.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !s.load(Ordering::SeqCst) {
                let total = containers(&docker, owner).await?.len();
                let ready = ready_count(&docker, &http, owner).await?;
                mr.fetch_min(ready, Ordering::SeqCst);
                mt.fetch_max(total, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        });
        Sampler {
            stop,
            min_ready,
            max_total,
            task,
        }
    }

    async fn finish(self) -> Result<(usize, usize)> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await??;
        Ok((
            self.min_ready.load(Ordering::SeqCst),
            self.max_total.load(Ordering::SeqCst),
        ))
    }
}

async fn rc_view(w: &Setup, name: &str) -> Result<Value> {
    let rcs = w.berth.get("/api/v1/replicationcontrollers").await?;
    Ok(rcs
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .cloned()
        .unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_keeps_three_ready_replicas_at_every_moment() -> Result<()> {
    let w = Setup::start(
        "roll-a",
        &[("web.yaml", web_rc("web", 3, "v1", "/index.html", &[]))],
    )
    .await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    let before = containers(&docker, "web").await?;
    assert_eq!(before.len(), 3);
    let http = reqwest::Client::new();
    assert_eq!(ready_count(&docker, &http, "web").await?, 3);

    let sampler = Sampler::start(docker.clone(), "web");
    w.repo
        .write("web.yaml", &web_rc("web", 3, "v2", "/index.html", &[]));
    let v2 = w.repo.commit("web: v2")?;
    w.berth.wait_converged(&v2).await?;
    let (min_ready, max_total) = sampler.finish().await?;
    eprintln!("during the rollout: at least {min_ready} ready, at most {max_total} containers");
    assert!(
        min_ready >= 3,
        "only {min_ready} replicas answered at one moment"
    );
    assert!(
        max_total <= 4,
        "maxSurge 1 allows 4 at most, saw {max_total}"
    );

    let after = containers(&docker, "web").await?;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(
        ids(&after).is_disjoint(&ids(&before)),
        "the old containers are gone"
    );
    for c in &after {
        let body = http
            .get(format!(
                "http://{}:8080/index.html",
                c.ip.as_deref().unwrap_or("")
            ))
            .send()
            .await?
            .text()
            .await?;
        assert_eq!(body.trim(), "v2");
    }
    let rc = rc_view(&w, "web").await?;
    assert_eq!(rc["rollout"]["state"], "complete", "{rc}");
    assert_eq!(
        (rc["updated"].as_u64(), rc["ready"].as_u64()),
        (Some(3), Some(3)),
        "{rc}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_exist_changes_nothing_that_runs_and_fails_the_commit() -> Result<()>
{
    let good = web_rc("web", 3, "v1", "/index.html", &[DEADLINE]);
    let w = Setup::start("roll-b", &[("web.yaml", good.clone())]).await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    let before = containers(&docker, "web").await?;

    // Port 1 on loopback: the pull fails at once, and nothing outside this machine is asked.
    let bad = web_rc_image(
        "web",
        3,
        "v1",
        "/index.html",
        &[DEADLINE],
        "127.0.0.1:1/berth/missing:1",
    );
    w.repo.write("web.yaml", &bad);
    let typo = w.repo.commit("web: a typo in the image")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let record = loop {
        let now = containers(&docker, "web").await?;
        let old_running: BTreeSet<String> = now
            .iter()
            .filter(|c| c.running)
            .map(|c| c.id.clone())
            .collect();
        ensure!(
            ids(&before).is_subset(&old_running),
            "an old replica stopped while the new image could not be pulled: {now:?}"
        );
        let record = w.berth.get(&format!("/api/v1/commits/{typo}")).await?;
        if record["outcome"] == "failed" {
            break record;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "never failed: {record}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let errors = record["errors"].to_string();
    assert!(
        errors.contains("ErrImagePull") && errors.contains("127.0.0.1:1/berth/missing:1"),
        "{errors}"
    );
    assert_eq!(w.berth.status().await?["converged"], false);

    // The fix (here, a revert) rolls out normally: the old replicas are current again.
    w.repo.write("web.yaml", &good);
    let fix = w.repo.commit("web: fix the image")?;
    w.berth.wait_converged(&fix).await?;
    let after = containers(&docker, "web").await?;
    assert_eq!(
        ids(&after),
        ids(&before),
        "untouched: their spec is the desired one again"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_never_gets_ready_halts_with_the_old_replicas_serving() -> Result<()> {
    let w = Setup::start(
        "roll-c",
        &[(
            "web.yaml",
            web_rc("web", 3, "v1", "/index.html", &[DEADLINE]),
        )],
    )
    .await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    let before = containers(&docker, "web").await?;
    let sampler = Sampler::start(docker.clone(), "web");

    w.repo
        .write("web.yaml", &web_rc("web", 3, "v2", "/missing", &[DEADLINE]));
    let broken = w.repo.commit("web: v2, whose readiness always fails")?;
    let record = w.berth.wait_commit(&broken, &["failed"]).await?;
    let (min_ready, max_total) = sampler.finish().await?;
    assert!(min_ready >= 3, "{min_ready}");
    assert!(
        max_total <= 4,
        "at most maxSurge new replicas: saw {max_total} containers"
    );
    let errors = record["errors"].to_string();
    assert!(
        errors.contains("readiness probe failed: HTTP 404"),
        "{errors}"
    );
    let now = containers(&docker, "web").await?;
    assert!(
        ids(&before).is_subset(&ids(&now)),
        "the old replicas keep serving"
    );
    let rc = rc_view(&w, "web").await?;
    assert_eq!(rc["rollout"]["state"], "halted", "{rc}");

    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["rollout", "status", "rc/web", "--server"])
        .arg(format!("http://{}", w.berth.addr))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("rollout halted") && stdout.contains("HTTP 404"),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["rollout", "status", "rc/nope", "--server"])
        .arg(format!("http://{}", w.berth.addr))
        .output()?;
    assert_eq!(out.status.code(), Some(2), "no such RC: cannot tell");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_failure_rollback_the_last_converged_commit_comes_back_and_says_so() -> Result<()> {
    let w = Setup::start_with(
        "roll-r",
        &[(
            "web.yaml",
            web_rc("web", 2, "v1", "/index.html", &[DEADLINE]),
        )],
        &["--on-failure", "rollback"],
    )
    .await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    let before = containers(&docker, "web").await?;

    w.repo
        .write("web.yaml", &web_rc("web", 2, "v2", "/missing", &[DEADLINE]));
    let broken = w.repo.commit("web: v2, never ready")?;
    let record = w.berth.wait_commit(&broken, &["rolled-back"]).await?;
    assert_eq!(record["refers_to"], w.first.as_str(), "{record}");
    // The first commit is applied again, as a new record of the history, and converges.
    w.berth.wait_converged(&w.first).await?;
    let history = w.berth.get("/api/v1/commits").await?;
    let newest = &history[0];
    assert_eq!(newest["sha"], w.first.as_str());
    assert_eq!(newest["trigger"]["kind"], "rollback", "{newest}");
    assert_eq!(newest["outcome"], "applied");
    let after = containers(&docker, "web").await?;
    assert_eq!(
        ids(&after),
        ids(&before),
        "the old replicas served throughout"
    );
    Ok(())
}
