//! Host loss and return, end to end: three private engines (each its own host), real Git,
//! `berth serve` with a short `--node-grace`.
//!
//! - f) one engine's dockerd is killed (by pid): its RC replicas run on the other two within
//!   the grace period + 5 s, its bare Pod says `NodeLost`; when it is started again, its
//!   now-surplus containers are stopped and exactly the desired count runs.
//! - g) berth restarted without one host: that host's replicas are placed on the others, and
//!   nothing on the host it no longer sees is touched.
//! - h) a host drained by its Node manifest hands its replicas over one at a time.
//! - i) a host that flaps (down for less than the grace period, again and again) moves nothing.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use serde_json::Value;

use support::apps::containers;
use support::berth::{bare_pod, rc, Berth, Repo};
use support::{start_engines, Engine};

const GRACE: Duration = Duration::from_secs(2);
const REPLICAS: usize = 6;

fn nodes(engines: &[Engine]) -> Vec<String> {
    engines
        .iter()
        .map(|e| format!("{}={}", e.name, e.endpoint))
        .collect()
}

/// Running `web` containers per engine name.
async fn running_web(engines: &[&Engine]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in engines {
        let n = match containers(e.docker(), "web").await {
            Ok(list) => list.iter().filter(|c| c.running).count(),
            Err(_) => 0,
        };
        out.insert(e.name.clone(), n);
    }
    out
}

/// The `web` pods berth reports: (name, node, phase).
async fn web_pods(berth: &Berth) -> Result<Vec<(String, String, String)>> {
    let pods = berth.get("/api/v1/pods").await?;
    Ok(pods
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["owner"] == "web")
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["node"].as_str().unwrap_or_default().to_string(),
                p["phase"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

async fn setup(repo: &Repo) -> Result<String> {
    repo.write("web.yaml", &rc("web", REPLICAS as u32));
    for i in 0..3 {
        repo.write(&format!("solo-{i}.yaml"), &bare_pod(&format!("solo-{i}")));
    }
    repo.commit("web and three bare pods")
}

#[tokio::test]
async fn f_a_killed_engine_has_its_replicas_moved_and_a_restart_leaves_the_desired_count(
) -> Result<()> {
    let started = Instant::now();
    let mut engines = start_engines(3).await?;
    let repo = Repo::new()?;
    let first = setup(&repo).await?;
    let data = tempfile::tempdir()?;
    let grace = format!("{}ms", GRACE.as_millis());
    let berth = Berth::start_with(
        repo.path(),
        data.path(),
        &nodes(&engines),
        &["--node-grace", &grace],
    )
    .await?;
    berth.wait_converged(&first).await?;
    let lost_name = engines[0].name.clone();
    let before = running_web(&engines.iter().collect::<Vec<_>>()).await;
    eprintln!(
        "converged in {:.1?}: web per engine {before:?}",
        started.elapsed()
    );
    ensure!(before.values().sum::<usize>() == REPLICAS);
    ensure!(before[&lost_name] > 0, "the engine to kill runs replicas");

    let dockerd = engines[0].pid();
    engines[0].kill().await;
    let killed = Instant::now();
    eprintln!("killed dockerd {dockerd:?} of {lost_name}");
    let others: Vec<&Engine> = engines[1..].iter().collect();
    let budget = GRACE + Duration::from_secs(5);
    loop {
        let running = running_web(&others).await;
        let pods = web_pods(&berth).await.unwrap_or_default();
        let moved = pods.len() == REPLICAS && pods.iter().all(|(_, node, _)| *node != lost_name);
        if moved && running.values().sum::<usize>() == REPLICAS {
            break;
        }
        if killed.elapsed() > budget {
            bail!(
                "replicas not moved within {budget:?}: running {running:?}, pods {pods:?}; nodes {}",
                berth.get("/api/v1/nodes").await.unwrap_or(Value::Null)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let moved_in = killed.elapsed();
    eprintln!("replicas moved to the other engines {moved_in:.1?} after the kill");

    let nodes_view = berth.get("/api/v1/nodes").await?;
    let lost_view = nodes_view
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == lost_name.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    ensure!(
        lost_view["condition"] == "NotReady" && lost_view["last_contact"].is_string(),
        "{lost_view}"
    );
    let pods = berth.get("/api/v1/pods").await?;
    let stranded: Vec<&Value> = pods
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["owner"].is_null() && p["node"] == lost_name.as_str())
        .collect();
    ensure!(
        !stranded.is_empty(),
        "a bare pod was on {lost_name}: {pods}"
    );
    for p in &stranded {
        ensure!(
            p["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("NodeLost")),
            "a bare pod on a lost host is not moved and says NodeLost: {p}"
        );
    }

    engines[0].start().await?;
    let back = Instant::now();
    let all: Vec<&Engine> = engines.iter().collect();
    loop {
        let running = running_web(&all).await;
        if running[&lost_name] == 0 && running.values().sum::<usize>() == REPLICAS {
            break;
        }
        if back.elapsed() > Duration::from_secs(60) {
            bail!("after the engine returned: running {running:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{lost_name} back: its surplus stopped {:.1?} later",
        back.elapsed()
    );
    // And it stays so: nothing is re-created there, nothing else stops.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let running = running_web(&all).await;
    ensure!(
        running[&lost_name] == 0 && running.values().sum::<usize>() == REPLICAS,
        "{running:?}"
    );
    let pods = web_pods(&berth).await?;
    ensure!(pods.len() == REPLICAS, "{pods:?}");
    eprintln!("test f took {:.1?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn g_a_host_removed_from_the_configuration_has_its_replicas_placed_on_the_others(
) -> Result<()> {
    let started = Instant::now();
    let engines = start_engines(3).await?;
    let repo = Repo::new()?;
    repo.write("web.yaml", &rc("web", REPLICAS as u32));
    let first = repo.commit("web")?;
    let data = tempfile::tempdir()?;
    let mut berth = Berth::start(repo.path(), data.path(), &nodes(&engines)).await?;
    berth.wait_converged(&first).await?;
    let all: Vec<&Engine> = engines.iter().collect();
    let before = running_web(&all).await;
    let removed = engines[2].name.clone();
    ensure!(before[&removed] > 0, "{before:?}");
    berth.terminate().await?;

    let kept = nodes(&engines[..2]);
    let restarted = Instant::now();
    let berth = Berth::start(repo.path(), data.path(), &kept).await?;
    let others: Vec<&Engine> = engines[..2].iter().collect();
    loop {
        let running = running_web(&others).await;
        let pods = web_pods(&berth).await.unwrap_or_default();
        let placed = pods.len() == REPLICAS && pods.iter().all(|(_, node, _)| *node != removed);
        if placed && running.values().sum::<usize>() == REPLICAS {
            break;
        }
        if restarted.elapsed() > Duration::from_secs(60) {
            bail!("replicas of {removed} not re-placed: running {running:?}, pods {pods:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "replicas of the removed host re-placed {:.1?} after the restart",
        restarted.elapsed()
    );
    let left = running_web(&[&engines[2]]).await;
    ensure!(
        left[&removed] == before[&removed],
        "a host berth no longer sees is not touched: {left:?}"
    );
    eprintln!("test g took {:.1?}", started.elapsed());
    Ok(())
}

/// (h) A Node manifest with `berth.io/drain: "true"` moves the host's replicas to the other
/// host one at a time: never fewer than the desired count running, at most one more (surge
/// one), and the commit converges with every replica elsewhere.
#[tokio::test]
async fn h_a_drained_host_hands_its_replicas_over_one_at_a_time() -> Result<()> {
    let engines = start_engines(2).await?;
    let repo = Repo::new()?;
    repo.write("web.yaml", &rc("web", 4));
    let first = repo.commit("web")?;
    let data = tempfile::tempdir()?;
    let berth = Berth::start(repo.path(), data.path(), &nodes(&engines)).await?;
    berth.wait_converged(&first).await?;
    let all: Vec<&Engine> = engines.iter().collect();
    let drained = engines[0].name.clone();
    let before = running_web(&all).await;
    ensure!(
        before[&drained] > 0,
        "the host to drain runs replicas: {before:?}"
    );

    repo.write(
        "node.yaml",
        &format!(
            "apiVersion: v1
kind: Node
metadata:
  name: {drained}
  annotations: {{berth.io/drain: \"true\"}}
"
        ),
    );
    let second = repo.commit("drain the first host")?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut fewest, mut most) = (usize::MAX, 0);
    loop {
        let running = running_web(&all).await;
        let total: usize = running.values().sum();
        fewest = fewest.min(total);
        most = most.max(total);
        let status = berth.status().await.unwrap_or(Value::Null);
        if running[&drained] == 0 && status["commit"] == second && status["converged"] == true {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "drain not done: running {running:?}, status {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("drained: running web between {fewest} and {most} throughout");
    assert!(
        fewest >= 4,
        "fewer than 4 running during the drain: {fewest}"
    );
    assert!(most <= 5, "more than one surge replica: {most}");
    let after = running_web(&all).await;
    assert_eq!(after[&engines[1].name], 4, "{after:?}");
    let pods = web_pods(&berth).await?;
    assert!(
        pods.iter().all(|(_, node, _)| *node != drained),
        "a pod still placed on the drained host: {pods:?}"
    );
    Ok(())
}

/// (i) A flapping host (its dockerd killed and started again, each time down for less than
/// the grace period, three times) causes no storm: no replica is moved or renamed, no
/// container is created or removed on either host, and the commit stays converged.
#[tokio::test]
async fn i_a_flapping_host_moves_nothing() -> Result<()> {
    let mut engines = start_engines(2).await?;
    let repo = Repo::new()?;
    repo.write("web.yaml", &rc("web", 4));
    let first = repo.commit("web")?;
    let data = tempfile::tempdir()?;
    // Well above how long a restart of dockerd takes on a loaded machine (up to 8 s seen).
    let grace = Duration::from_secs(15);
    let berth = Berth::start_with(
        repo.path(),
        data.path(),
        &nodes(&engines),
        &["--node-grace", &format!("{}s", grace.as_secs())],
    )
    .await?;
    berth.wait_converged(&first).await?;
    let mut before = Vec::new();
    for e in &engines {
        before.push(web_ids(e).await?);
    }
    let mut pods_before = web_pods(&berth).await?;
    pods_before.sort();
    for flap in 0..3 {
        let down = Instant::now();
        engines[0].kill().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        engines[0].start().await?;
        eprintln!("flap {flap}: down {:.1?}", down.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Long enough for any re-placement a flap might have caused to show.
    tokio::time::sleep(grace).await;
    let log = berth.log_text();
    eprintln!(
        "berth saw the host go away {} time(s)",
        log.matches("Docker host not ready").count()
    );
    ensure!(
        !log.contains("placed elsewhere"),
        "a flap moved replicas: {log}"
    );
    let mut pods_after = web_pods(&berth).await?;
    pods_after.sort();
    assert_eq!(pods_after, pods_before, "replicas moved or renamed");
    for (e, was) in engines.iter().zip(&before) {
        assert_eq!(&web_ids(e).await?, was, "containers changed on {}", e.name);
    }
    let status = berth.status().await?;
    assert!(
        status["commit"] == first && status["converged"] == true,
        "{status}"
    );
    Ok(())
}

/// The ids of the `web` containers on one engine, sorted.
async fn web_ids(engine: &Engine) -> Result<Vec<String>> {
    let mut ids: Vec<String> = containers(engine.docker(), "web")
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    Ok(ids)
}
