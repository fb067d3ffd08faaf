//! Benchmark: deploys without downtime and push to deploy (issues "Deploys without downtime",
//! item 8, and "Push to deploy", item 9).
//!
//! Real parts only: a private dockerd (vfs storage, own network namespace, routed bridge), Git
//! repositories made with the git CLI (and served over smart HTTP by `git http-backend` for the
//! webhook figure), and the release `berth serve`. Figures:
//!
//! 1. a rolling update of 10 replicas with a readiness probe (httpd, probed every second): total
//!    time from `git commit` to converged, the fewest replicas answering HTTP at any sample (every
//!    100 ms, checked by the bench itself, not by berth), the most containers at once, and the
//!    Raft entries written for the rollout;
//! 2. self-heal after `docker rm -f` while another pod is in a 300 s graceful stop;
//! 3. push → the new container running, by webhook (HTTP remote, `--poll 1h`) and by the watch of
//!    a local bare repository (`--poll 1h`): a one-replica change (its env), image present.
//!
//! Run with `cargo bench --bench rollout`; figures are recorded in BENCHMARKS.md. p99 is the
//! nearest rank, so with fewer than 100 samples it is the maximum.

#[path = "../tests/git_support/mod.rs"]
mod git_support;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use git_support::http::{GitHttpServer, Mode};
use git_support::Upstream;
use support::apps::{containers, ready_count, web_rc};
use support::berth::{rc_yaml, Berth, Setup};
use support::{start_engine, TEST_IMAGE};

const ROLLOUT_TRIALS: usize = 3;
const HEAL_TRIALS: usize = 20;
const PUSH_TRIALS: usize = 20;

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--bench") {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(run())
    } else {
        println!("rollout: a benchmark; run it with `cargo bench --bench rollout`");
        Ok(())
    }
}

/// Runs every part, or only those whose name contains an argument given after `--`
/// (`cargo bench --bench rollout -- push`): rollout, heal, push-webhook, push-watch.
async fn run() -> Result<()> {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    if wanted("rollout") {
        rolling_update().await?;
    }
    if wanted("heal") {
        heal_during_slow_stop().await?;
    }
    if wanted("push-webhook") {
        push_by_webhook().await?;
    }
    if wanted("push-watch") {
        push_by_watch().await?;
    }
    Ok(())
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1]
}

fn report(what: &str, samples: &mut [f64]) {
    let p50 = percentile(samples, 50.0);
    let p99 = percentile(samples, 99.0);
    println!(
        "{what}: p50 {p50:.0} ms, p99 {p99:.0} ms ({} samples)",
        samples.len()
    );
}

async fn raft_index(berth: &Berth) -> Result<u64> {
    Ok(berth.status().await?["raft"]["last_log_index"]
        .as_u64()
        .unwrap_or(0))
}

async fn rolling_update() -> Result<()> {
    let w = Setup::start(
        "bench-roll",
        &[("web.yaml", web_rc("web", 10, "v0", "/index.html", &[]))],
    )
    .await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    let http = reqwest::Client::new();
    for trial in 1..=ROLLOUT_TRIALS {
        ensure!(
            ready_count(&docker, &http, "web").await? == 10,
            "not 10 ready before trial {trial}"
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (docker, http, stop) = (docker.clone(), http.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut min_ready, mut max_total) = (usize::MAX, 0);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    max_total = max_total.max(containers(&docker, "web").await?.len());
                    min_ready = min_ready.min(ready_count(&docker, &http, "web").await?);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok::<_, anyhow::Error>((min_ready, max_total))
            })
        };
        let before = raft_index(&w.berth).await?;
        w.repo.write(
            "web.yaml",
            &web_rc("web", 10, &format!("v{trial}"), "/index.html", &[]),
        );
        let sha = w.repo.commit(&format!("web: v{trial}"))?;
        let started = Instant::now();
        w.berth.wait_converged(&sha).await?;
        let took = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (min_ready, max_total) = sampler.await??;
        let entries = raft_index(&w.berth).await? - before;
        println!(
            "rolling update of 10 replicas, trial {trial}: {:.1} s commit→converged, at least {min_ready} ready, at most {max_total} containers, {entries} Raft entries",
            took.as_secs_f64()
        );
    }
    Ok(())
}

async fn heal_during_slow_stop() -> Result<()> {
    let slow = "apiVersion: v1\nkind: Pod\nmetadata: {name: slow}\nspec:\n  terminationGracePeriodSeconds: 300\n  containers:\n  - name: main\n    image: berth-test/busybox:1\n    command: [sleep, \"3600\"]\n";
    let w = Setup::start(
        "bench-heal",
        &[
            ("slow.yaml", slow.to_string()),
            ("heal.yaml", rc_yaml("heal", 3, TEST_IMAGE, "1")),
        ],
    )
    .await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    w.repo.remove("slow.yaml");
    let sha = w.repo.commit("remove the slow pod")?;
    w.berth
        .wait_for("the removal accepted", |s| s["commit"] == sha.as_str())
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut samples = Vec::new();
    for trial in 0..HEAL_TRIALS {
        let list = containers(&docker, "heal").await?;
        let victim = list[trial % list.len()].clone();
        let started = Instant::now();
        docker
            .remove_container(
                &victim.id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await?;
        loop {
            let now = containers(&docker, "heal").await?;
            if now
                .iter()
                .any(|c| c.pod == victim.pod && c.id != victim.id && c.running)
            {
                break;
            }
            ensure!(started.elapsed() < Duration::from_secs(30), "not healed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let slow_still = containers(&docker, "")
        .await?
        .iter()
        .any(|c| c.pod == "slow" && c.running);
    ensure!(
        slow_still,
        "the slow pod was meant to be stopping throughout"
    );
    report(
        "self-heal (rm -f → running) while another pod stops for 300 s",
        &mut samples,
    );
    Ok(())
}

/// Waits until a container of `owner` with the `VERSION` env `version` runs.
async fn wait_version(docker: &Docker, owner: &str, version: &str, since: Instant) -> Result<f64> {
    loop {
        for c in containers(docker, owner).await? {
            if !c.running {
                continue;
            }
            let env = docker
                .inspect_container(
                    &c.id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await?
                .config
                .and_then(|c| c.env)
                .unwrap_or_default();
            if env.iter().any(|e| e == &format!("VERSION={version}")) {
                return Ok(since.elapsed().as_secs_f64() * 1000.0);
            }
        }
        ensure!(
            since.elapsed() < Duration::from_secs(60),
            "version {version} never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn push_by_webhook() -> Result<()> {
    let engine = start_engine("bench-hook").await?;
    let up = Upstream::empty()?;
    up.write("app.yaml", &rc_yaml("app", 1, TEST_IMAGE, "0"))?;
    let first = up.commit("first")?;
    up.push(false)?;
    let server = GitHttpServer::start(up.tmp.path(), Mode::Normal)?;
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "bench-secret")?;
    let flag = format!("generic={}", secret.display());
    let repo = server.url("remote.git");
    let berth = Berth::start_with(
        std::path::Path::new(&repo),
        &dir.path().join("data"),
        &[format!("a={}", engine.endpoint)],
        &["--webhook-secret-file", &flag, "--poll", "1h"],
    )
    .await?;
    berth.wait_converged(&first).await?;
    let http = reqwest::Client::new();
    let url = format!("http://{}/webhooks/generic", berth.addr);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(b"bench-secret").context("hmac")?;
    mac.update(body);
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut samples = Vec::new();
    for trial in 1..=PUSH_TRIALS {
        let version = trial.to_string();
        up.write("app.yaml", &rc_yaml("app", 1, TEST_IMAGE, &version))?;
        let sha = up.commit(&format!("app: {version}"))?;
        let started = Instant::now();
        up.push(false)?;
        let answer = http
            .post(&url)
            .header("X-Berth-Signature", format!("sha256={signature}"))
            .header("X-Berth-Delivery", format!("bench-{trial}"))
            .body(body.to_vec())
            .send()
            .await?;
        ensure!(
            answer.status().as_u16() == 202,
            "webhook answered {}",
            answer.status()
        );
        samples.push(wait_version(engine.docker(), "app", &version, started).await?);
        // The old replica drains and stops (grace 1 s) before the next push: a push made
        // while it still stops would wait for it (a draining replica counts against maxSurge).
        berth.wait_converged(&sha).await?;
    }
    report("git push + webhook → new container running", &mut samples);
    Ok(())
}

async fn push_by_watch() -> Result<()> {
    let engine = start_engine("bench-watch").await?;
    let up = Upstream::empty()?;
    up.write("app.yaml", &rc_yaml("app", 1, TEST_IMAGE, "0"))?;
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
    let mut samples = Vec::new();
    for trial in 1..=PUSH_TRIALS {
        let version = trial.to_string();
        up.write("app.yaml", &rc_yaml("app", 1, TEST_IMAGE, &version))?;
        let sha = up.commit(&format!("app: {version}"))?;
        let started = Instant::now();
        up.push(false)?;
        samples.push(wait_version(engine.docker(), "app", &version, started).await?);
        berth.wait_converged(&sha).await?;
    }
    report(
        "git push into a watched bare repository → new container running",
        &mut samples,
    );
    Ok(())
}
