//! Leader failover end to end: three real `berth serve` processes (the release binary) on
//! loopback, a real Git repository and a private Docker engine. Each trial `kill -9`s the
//! leader and, at the same moment, removes one replica behind berth's back, so the figure is the
//! time until a *new leader reconciles*: the replica is back and running. Also timed: until
//! another member reports itself leading and acting (`is_leader` in its status). The killed
//! member is then restarted and caught up before the next trial. Not run in CI; the figures are
//! in BENCHMARKS.md.
//!
//! ```sh
//! cargo bench --bench failover            # 20 trials, ~3 min after the release build
//! BERTH_FAILOVER_TRIALS=5 cargo bench --bench failover
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::query_parameters::RemoveContainerOptionsBuilder;

use support::apps::{containers, wait_running};
use support::berth::{rc, Repo};
use support::cluster::Cluster;
use support::start_engine;

const REPLICAS: usize = 3;

fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("failover: a benchmark; run it with `cargo bench --bench failover`");
        return Ok(());
    }
    let trials: usize = std::env::var("BERTH_FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(trials))
}

async fn run(trials: usize) -> Result<()> {
    let engine = start_engine("bench-failover").await?;
    let repo = Repo::new()?;
    repo.write("apps/web.yaml", &rc("web", REPLICAS as u32));
    let first = repo.commit("web: 3")?;
    let nodes = [format!("a={}", engine.endpoint)];
    let mut cluster = Cluster::start(3, repo, &nodes, &["--poll", "1s"]).await?;
    cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    wait_running(engine.docker(), "web", REPLICAS).await?;

    let mut to_leader = Vec::new();
    let mut to_healed = Vec::new();
    for trial in 0..trials {
        let leader = cluster.wait_leader().await?;
        settle(&cluster).await?;
        let victim = containers(engine.docker(), "web")
            .await?
            .into_iter()
            .next()
            .context("no replica")?;
        let t0 = Instant::now();
        cluster.members[leader].kill9();
        engine
            .docker()
            .remove_container(
                &victim.id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await?;
        let mut led = None;
        loop {
            if led.is_none() {
                for (i, s) in cluster.statuses().await.iter().enumerate() {
                    if i != leader && s.as_ref().is_some_and(|s| s["is_leader"] == true) {
                        led = Some(t0.elapsed());
                    }
                }
            }
            let list = containers(engine.docker(), "web").await?;
            if led.is_some() && list.len() == REPLICAS && list.iter().all(|c| c.running) {
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("trial {trial}: no new leader reconciled within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let healed = t0.elapsed();
        let led = led.expect("set before the loop ends");
        eprintln!(
            "trial {:2}: member {} killed; new leader acting after {:>6.0?}, replica back after {:>6.0?}",
            trial + 1,
            leader + 1,
            led,
            healed
        );
        to_leader.push(led);
        to_healed.push(healed);
        cluster.members[leader].restart().await?;
    }
    println!(
        "leader failover, kill -9 → new leader acting ({trials} trials): {}",
        summary(&mut to_leader)
    );
    println!(
        "leader failover, kill -9 → replica healed by the new leader: {}",
        summary(&mut to_healed)
    );
    Ok(())
}

/// Every running member has applied what the leader committed and hears from it, so a trial
/// never starts with a member still catching up (it would stand with a stale log).
async fn settle(cluster: &Cluster) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let statuses = cluster.statuses().await;
        let caught_up = statuses.iter().all(|s| {
            s.as_ref().is_some_and(|s| {
                s["raft"]["behind"] == 0 && s["stale"] == false && s["leader"].is_u64()
            })
        });
        if caught_up {
            // Heartbeats have reset every follower's timer since.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("members did not settle: {statuses:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// p50, p99 (nearest rank) and max.
fn summary(v: &mut [Duration]) -> String {
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    format!(
        "p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        rank(0.50),
        rank(0.99),
        v[v.len() - 1]
    )
}
