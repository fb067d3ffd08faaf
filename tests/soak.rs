//! Chaos soak: a bounded, seeded run of berth against three real engines while, at random,
//! commits (valid and invalid) are pushed, containers removed and stopped, engines killed and
//! restarted, berth `kill -9`ed and restarted, and the Git remote taken away. Invariants are
//! checked all along and after a quiet end.
//!
//! `cargo test --test soak` runs it for 60 s with a fixed seed (part of CI);
//! `scripts/soak DURATION SEED` runs it as long as asked (release build). Invariants:
//! - never two running containers of one pod's container, on any host;
//! - containers berth does not manage are never touched;
//! - berth's memory and its Raft directory stay bounded;
//! - after the quiet end: exactly the desired containers run, nothing else managed exists;
//! - every pushed commit is in the history once, in push order, with an outcome allowed for it
//!   (valid: `applied` or `superseded`; invalid: `rejected` or `superseded`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use serde_json::Value;

use support::berth::{rc_yaml, Berth, Repo};
use support::{start_engines, Engine, TEST_IMAGE};

/// A tiny seeded generator (xorshift64*): the same seed, the same run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    Invalid,
}

struct Soak {
    engines: Vec<Engine>,
    repo: Repo,
    berth: Berth,
    pushed: Vec<(String, Kind)>,
    unmanaged: Vec<(usize, String)>,
    /// The desired manifests of the last valid commit: RC name → (replicas, version).
    apps: BTreeMap<String, (u32, u32)>,
    max_rss_kib: u64,
    max_raft_bytes: u64,
    actions: BTreeMap<&'static str, usize>,
}

fn duration_from_env() -> Duration {
    std::env::var("SOAK_DURATION")
        .ok()
        .and_then(|d| berth::controller::config::parse_duration(&d).ok())
        .unwrap_or(Duration::from_secs(60))
}

fn seed_from_env() -> u64 {
    std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_126)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

async fn managed(docker: &Docker) -> Result<Vec<(String, BTreeMap<String, String>, bool)>> {
    let filters: std::collections::HashMap<&str, Vec<&str>> =
        [("label", vec!["io.berth.managed=true"])].into();
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?;
    Ok(listed
        .into_iter()
        .map(|c| {
            (
                c.id.unwrap_or_default(),
                c.labels.unwrap_or_default().into_iter().collect(),
                c.state.map(|s| s.to_string()).as_deref() == Some("running"),
            )
        })
        .collect())
}

impl Soak {
    fn write_apps(&self) {
        for (name, (replicas, version)) in &self.apps {
            self.repo.write(
                &format!("apps/{name}.yaml"),
                &rc_yaml(name, *replicas, TEST_IMAGE, &version.to_string()),
            );
        }
    }

    async fn act(&mut self, rng: &mut Rng) -> Result<()> {
        let engine = rng.below(self.engines.len() as u64) as usize;
        match rng.below(100) {
            0..=29 => {
                let names: Vec<String> = self.apps.keys().cloned().collect();
                let name = &names[rng.below(names.len() as u64) as usize];
                let app = self.apps.get_mut(name).context("app")?;
                if rng.below(2) == 0 {
                    app.0 = 1 + rng.below(3) as u32;
                } else {
                    app.1 += 1;
                }
                self.write_apps();
                let sha = self.repo.commit("soak: valid change")?;
                self.pushed.push((sha, Kind::Valid));
                *self.actions.entry("valid commit").or_default() += 1;
            }
            30..=39 => {
                self.repo.write(
                    "apps/broken.yaml",
                    "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n",
                );
                let sha = self.repo.commit("soak: invalid change")?;
                self.repo.remove("apps/broken.yaml");
                self.pushed.push((sha, Kind::Invalid));
                *self.actions.entry("invalid commit").or_default() += 1;
                // The next commit (valid) makes the tree valid again.
                self.write_apps();
                let sha = self.repo.commit("soak: repair")?;
                self.pushed.push((sha, Kind::Valid));
            }
            40..=59 => {
                let docker = self.engines[engine].docker().clone();
                if let Ok(list) = managed(&docker).await {
                    if let Some((id, _, _)) = list.get(rng.below(list.len().max(1) as u64) as usize)
                    {
                        if rng.below(2) == 0 {
                            let _ = docker
                                .remove_container(
                                    id,
                                    Some(
                                        RemoveContainerOptionsBuilder::default()
                                            .force(true)
                                            .build(),
                                    ),
                                )
                                .await;
                            *self.actions.entry("container removed").or_default() += 1;
                        } else {
                            let _ = docker
                                .stop_container(
                                    id,
                                    Some(StopContainerOptionsBuilder::default().t(0).build()),
                                )
                                .await;
                            *self.actions.entry("container stopped").or_default() += 1;
                        }
                    }
                }
            }
            60..=69 => {
                self.engines[engine].kill().await;
                tokio::time::sleep(Duration::from_millis(500 + rng.below(3000))).await;
                self.engines[engine].start().await?;
                *self
                    .actions
                    .entry("engine killed and restarted")
                    .or_default() += 1;
            }
            70..=79 => {
                self.berth.kill9();
                tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
                self.berth.restart().await?;
                *self.actions.entry("berth kill -9 and restart").or_default() += 1;
            }
            80..=86 => {
                let away = self.repo.path().with_extension("away");
                std::fs::rename(self.repo.path(), &away)?;
                tokio::time::sleep(Duration::from_millis(500 + rng.below(2500))).await;
                std::fs::rename(&away, self.repo.path())?;
                *self.actions.entry("Git remote away").or_default() += 1;
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    /// The invariants that hold at every moment.
    async fn check_always(&mut self) -> Result<()> {
        for (i, engine) in self.engines.iter().enumerate() {
            let Ok(list) = managed(engine.docker()).await else {
                continue; // a killed engine: nothing to see
            };
            let mut running: BTreeMap<(String, String, String), usize> = BTreeMap::new();
            for (_, labels, is_running) in &list {
                if *is_running {
                    let key = (
                        labels
                            .get("io.berth.namespace")
                            .cloned()
                            .unwrap_or_default(),
                        labels.get("io.berth.pod").cloned().unwrap_or_default(),
                        labels
                            .get("io.berth.container")
                            .cloned()
                            .unwrap_or_default(),
                    );
                    *running.entry(key).or_default() += 1;
                }
            }
            if let Some((key, n)) = running.iter().find(|(_, n)| **n > 1) {
                bail!("{n} running containers of {key:?} on engine {i}");
            }
        }
        if let Ok(rss) = self.berth.peak_rss_kib() {
            self.max_rss_kib = self.max_rss_kib.max(rss);
        }
        self.max_raft_bytes = self
            .max_raft_bytes
            .max(dir_bytes(&self.berth.data_dir.join("raft")));
        ensure!(
            self.max_rss_kib < 300 * 1024,
            "berth RSS {} KiB",
            self.max_rss_kib
        );
        ensure!(
            self.max_raft_bytes < 64 << 20,
            "raft dir {} bytes",
            self.max_raft_bytes
        );
        Ok(())
    }

    async fn check_at_end(&self) -> Result<()> {
        let last_valid = self
            .pushed
            .iter()
            .rev()
            .find(|(_, k)| *k == Kind::Valid)
            .map(|(s, _)| s.clone())
            .context("a valid commit")?;
        self.berth.wait_converged(&last_valid).await?;
        self.berth.wait_in_sync(&last_valid).await?;
        // Exactly the desired containers: every desired pod running, nothing else managed.
        let pods = self.berth.get("/api/v1/pods").await?;
        let desired: BTreeSet<String> = pods
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .collect();
        let wanted: usize = self.apps.values().map(|(r, _)| *r as usize).sum();
        ensure!(
            desired.len() == wanted,
            "{} pods desired, the apps want {wanted}",
            desired.len()
        );
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for engine in &self.engines {
            for (_, labels, running) in managed(engine.docker()).await? {
                let pod = labels.get("io.berth.pod").cloned().unwrap_or_default();
                ensure!(running, "managed container of {pod} not running at the end");
                ensure!(
                    desired.contains(&pod),
                    "managed container of {pod}, which nothing wants"
                );
                seen.insert(pod);
            }
        }
        ensure!(seen == desired, "running {seen:?}, desired {desired:?}");
        // Unmanaged containers are untouched.
        for (i, id) in &self.unmanaged {
            let c = self.engines[*i]
                .docker()
                .inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .with_context(|| format!("unmanaged container {id} on engine {i} was removed"))?;
            let _ = c;
        }
        // Every pushed commit once, in order, with an allowed outcome.
        let history: Vec<Value> = serde_json::from_value(self.berth.get("/api/v1/commits").await?)?;
        let recorded: Vec<(String, String)> = history
            .iter()
            .rev()
            .map(|c| {
                (
                    c["sha"].as_str().unwrap_or_default().to_string(),
                    c["outcome"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let initial = 1; // the first commit, before the soak's pushes
        ensure!(
            recorded.len() == self.pushed.len() + initial,
            "{} records for {} commits: {recorded:?}",
            recorded.len(),
            self.pushed.len() + initial
        );
        for ((sha, kind), (got, outcome)) in self.pushed.iter().zip(&recorded[initial..]) {
            ensure!(
                sha == got,
                "history out of order: expected {sha}, found {got}"
            );
            let allowed: &[&str] = match kind {
                Kind::Valid => &["applied", "superseded"],
                Kind::Invalid => &["rejected", "superseded"],
            };
            ensure!(
                allowed.contains(&outcome.as_str()),
                "{kind:?} commit {sha} ended {outcome}"
            );
        }
        Ok(())
    }
}

async fn unmanaged_container(docker: &Docker, name: &str) -> Result<String> {
    let id = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                cmd: Some(vec!["sleep".into(), "86400".into()]),
                labels: Some([("io.berth.pod".to_string(), "looks-like-ours".to_string())].into()),
                ..Default::default()
            },
        )
        .await?
        .id;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await?;
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_chaos_soak_keeps_every_invariant() -> Result<()> {
    let duration = duration_from_env();
    let seed = seed_from_env();
    eprintln!("soak: {duration:?}, seed {seed}");
    let engines = start_engines(3).await?;
    let mut unmanaged = Vec::new();
    for (i, e) in engines.iter().enumerate() {
        unmanaged.push((i, unmanaged_container(e.docker(), "operator-own").await?));
    }
    let repo = Repo::new()?;
    let apps: BTreeMap<String, (u32, u32)> =
        [("web".to_string(), (3, 1)), ("api".to_string(), (2, 1))].into();
    for (name, (replicas, version)) in &apps {
        repo.write(
            &format!("apps/{name}.yaml"),
            &rc_yaml(name, *replicas, TEST_IMAGE, &version.to_string()),
        );
    }
    let first = repo.commit("soak: first")?;
    let data = tempfile::tempdir()?;
    let nodes: Vec<String> = engines
        .iter()
        .enumerate()
        .map(|(i, e)| format!("h{i}={}", e.endpoint))
        .collect();
    let berth = Berth::start(repo.path(), data.path(), &nodes).await?;
    berth.wait_converged(&first).await?;
    let mut soak = Soak {
        engines,
        repo,
        berth,
        pushed: Vec::new(),
        unmanaged,
        apps,
        max_rss_kib: 0,
        max_raft_bytes: 0,
        actions: BTreeMap::new(),
    };
    let mut rng = Rng(seed.max(1));
    let started = Instant::now();
    while started.elapsed() < duration {
        soak.act(&mut rng).await?;
        soak.check_always().await?;
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
    }
    // Quiet end: every engine up, the remote in place, berth running; one last valid commit.
    for e in soak.engines.iter_mut() {
        if e.pid().is_none() {
            e.start().await?;
        }
    }
    soak.write_apps();
    let last = soak.repo.commit("soak: last")?;
    soak.pushed.push((last, Kind::Valid));
    soak.check_at_end().await?;
    soak.check_always().await?;
    eprintln!(
        "soak done: {duration:?}, seed {seed}, {} commits, actions {:?}, peak RSS {} KiB, raft dir at most {} KiB",
        soak.pushed.len(),
        soak.actions,
        soak.max_rss_kib,
        soak.max_raft_bytes / 1024
    );
    Ok(())
}
