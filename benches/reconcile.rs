//! Benchmark: end to end on one Docker host (issue "End to end on one Docker host", item 9).
//!
//! Real parts only, as in `tests/serve.rs`: a private dockerd (vfs storage, own network
//! namespace), a Git repository made with the git CLI, and the release `berth serve` binary.
//! Four figures:
//!
//! 1. commit → all containers running, for an RC scaled 0 → 1, 10 and 50 replicas (image
//!    present): berth's own `seen_at` → `converged_at` for the commit, and wall time from
//!    `git commit` until `/api/v1/status` says converged on that sha;
//! 2. self-heal: `docker rm -f` of a managed container → a new container of the same pod
//!    running, watched on the engine every 10 ms;
//! 3. CPU of a no-change poll (`--poll 200ms`, resync out of the way) from /proc/<pid>/stat;
//! 4. idle RSS (VmRSS, VmHWM) after converging on a 3-pod app.
//!
//! For scale, the engine's own floor is timed first, without berth: `docker create` + `start`
//! of a plain `sleep` container, and the `info` and `ps` calls every reconcile pass makes.
//!
//! Run with `cargo bench --bench reconcile`; figures are recorded in BENCHMARKS.md. Medians and
//! p99 use the nearest rank, so with fewer than 100 samples p99 is the maximum.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions,
};
use bollard::Docker;
use serde_json::Value;
use tempfile::TempDir;

use support::berth::Repo;
use support::{start_engine, TEST_IMAGE};

/// (replicas, trials) for figure 1: a few minutes in all on a 2-core machine.
const SCALES: [(u32, usize); 3] = [(1, 10), (10, 5), (50, 3)];
const HEAL_TRIALS: usize = 20;
const FLOOR_TRIALS: usize = 10;
const HEAL_REPLICAS: u32 = 3;
/// How often the bench looks at the status API and at the engine while timing.
const WATCH: Duration = Duration::from_millis(10);
const POLL: &str = "200ms";
const POLL_MS: f64 = 200.0;
const IDLE: Duration = Duration::from_secs(10);
const CPU_WINDOW: Duration = Duration::from_secs(30);
const RC_FILE: &str = "apps/bench.yaml";

fn rc(name: &str, replicas: u32) -> String {
    support::berth::rc_yaml(name, replicas, TEST_IMAGE, "1")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and must not spend
    // minutes here (the criterion convention).
    if !std::env::args().any(|a| a == "--bench") {
        println!("reconcile: a benchmark; run it with `cargo bench --bench reconcile`");
        return Ok(());
    }
    let engine = start_engine("bench-host").await?;
    let docker = engine.docker().clone();
    let version = docker.version().await?;
    let info = docker.info().await?;
    println!(
        "engine: dockerd {} (API {}), storage driver {}, {} CPUs, berth {}",
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default(),
        info.driver.unwrap_or_default(),
        info.ncpu.unwrap_or_default(),
        env!("CARGO_BIN_EXE_berth"),
    );
    let node = format!("a={}", engine.endpoint);
    let mut rows = engine_floor(&docker).await?;

    // Figures 1 and 2, on one controller with the poll of figure 3 and the default resync.
    let repo = Repo::new()?;
    repo.write(RC_FILE, &rc("bench", 0))
        .write("README.md", "bench\n");
    let first = repo.commit("empty")?;
    let serve = Serve::start(repo.path(), &node, &["--poll", POLL]).await?;
    serve.wait_converged(&first).await?;
    // Warm-up, not counted: the first container on a fresh engine sets up its bridge.
    scale_trial(&serve, &repo, &docker, 1, 0).await?;
    for (replicas, trials) in SCALES {
        let (mut berth, mut wall) = (Vec::new(), Vec::new());
        for trial in 0..trials {
            let (b, w) = scale_trial(&serve, &repo, &docker, replicas, trial).await?;
            eprintln!(
                "  {replicas} replicas: seen→converged {b:.0} ms, commit→converged {w:.0} ms"
            );
            berth.push(b);
            wall.push(w);
        }
        rows.push(Row::new(
            format!("0→{replicas} replicas: seen_at→converged_at"),
            berth,
        ));
        rows.push(Row::new(
            format!("0→{replicas} replicas: git commit→status converged"),
            wall,
        ));
    }
    let churned = memory(serve.pid())?;

    repo.write(RC_FILE, &rc("bench", 0))
        .write("apps/heal.yaml", &rc("heal", HEAL_REPLICAS));
    let heal_sha = repo.commit("heal: 3")?;
    serve.wait_converged(&heal_sha).await?;
    let (mut heal, mut after_rm, mut rm) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 0..HEAL_TRIALS {
        let (total, removal) = heal_trial(&serve, &docker, &heal_sha, trial).await?;
        eprintln!("  self-heal: {total:.0} ms (rm -f took {removal:.0} ms)");
        heal.push(total);
        after_rm.push(total - removal);
        rm.push(removal);
    }
    rows.push(Row::new(
        "self-heal: rm -f issued→replacement running",
        heal,
    ));
    rows.push(Row::new(
        "self-heal: rm -f returned→replacement running",
        after_rm,
    ));
    rows.push(Row::new("self-heal: the rm -f call itself", rm));
    serve.stop().await?;
    remove_managed(&docker).await?;

    // Figures 3 and 4, on a fresh controller: a 3-pod app, resync out of the way so that the
    // CPU window holds polls only.
    repo.remove("apps/heal.yaml")
        .write(RC_FILE, &rc("small", 3));
    let small = repo.commit("small: 3")?;
    let serve = Serve::start(repo.path(), &node, &["--poll", POLL, "--resync", "1h"]).await?;
    serve.wait_converged(&small).await?;
    tokio::time::sleep(IDLE).await;
    let idle = memory(serve.pid())?;
    let before = cpu(serve.pid())?;
    let started = Instant::now();
    tokio::time::sleep(CPU_WINDOW).await;
    let after = cpu(serve.pid())?;
    let window = started.elapsed();
    let idle_after = memory(serve.pid())?;
    ensure!(
        serve.get("/api/v1/status").await?["in_sync"] == true,
        "the 3-pod app did not stay in sync"
    );
    serve.stop().await?;

    print_table(&rows);
    let polls = window.as_secs_f64() * 1000.0 / POLL_MS;
    let own = after.own_ms - before.own_ms;
    let children = after.children_ms - before.children_ms;
    let window_ms = window.as_secs_f64() * 1000.0;
    println!();
    println!(
        "no-change poll (--poll {POLL}, --resync 1h, {:.1} s, ≈{polls:.0} polls, clock tick {} ms):",
        window.as_secs_f64(),
        after.tick_ms
    );
    for (what, ms) in [
        ("berth itself (utime+stime)", own),
        ("reaped children (cutime+cstime)", children),
        ("both", own + children),
    ] {
        println!(
            "  {what:<34} {ms:>7.0} ms CPU  {:>6.2} ms/poll  {:>5.2} % of one core",
            ms / polls,
            100.0 * ms / window_ms
        );
    }
    println!();
    println!("berth serve memory (target: idle RSS ≤ 32 MiB):");
    for (what, m) in [
        ("3-pod app, converged, idle 10 s", idle),
        ("same, after the 30 s poll window", idle_after),
        ("first controller, after the 0→50 trials", churned),
    ] {
        println!(
            "  {what:<42} VmRSS {:>6.1} MiB  VmHWM {:>6.1} MiB",
            m.rss_kib as f64 / 1024.0,
            m.hwm_kib as f64 / 1024.0
        );
    }
    Ok(())
}

/// Times `docker create` + `start` of a plain container (then removed), `info` and a labelled
/// `ps`, straight from the bench: what any controller pays on this engine.
async fn engine_floor(docker: &Docker) -> Result<Vec<Row>> {
    let (mut run, mut info, mut list) = (Vec::new(), Vec::new(), Vec::new());
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    // One more than counted: the first container on a fresh engine sets up its bridge.
    for trial in 0..=FLOOR_TRIALS {
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            ..Default::default()
        };
        let name = format!("floor-{trial}");
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let started = Instant::now();
        let id = docker.create_container(Some(options), body).await?.id;
        docker
            .start_container(&id, None::<StartContainerOptions>)
            .await?;
        let elapsed = ms(started);
        let started = Instant::now();
        docker.info().await?;
        let info_ms = ms(started);
        let started = Instant::now();
        running_of(docker, "io.berth.owner=bench").await?;
        let list_ms = ms(started);
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        docker.remove_container(&id, Some(options)).await?;
        if trial > 0 {
            run.push(elapsed);
            info.push(info_ms);
            list.push(list_ms);
        }
    }
    Ok(vec![
        Row::new("engine alone: docker create + start", run),
        Row::new("engine alone: docker info", info),
        Row::new("engine alone: docker ps (label filter)", list),
    ])
}

/// Scales `bench` to 0 (untimed), then to `replicas`: (seen→converged, commit→converged) in ms.
/// The commit is delayed by 0-180 ms, varying with `trial`: each trial begins right after a
/// convergence, which follows a poll, and would otherwise always land at the same poll phase.
async fn scale_trial(
    serve: &Serve,
    repo: &Repo,
    docker: &Docker,
    replicas: u32,
    trial: usize,
) -> Result<(f64, f64)> {
    repo.write(RC_FILE, &rc("bench", 0));
    let down = repo.commit("bench: 0")?;
    serve.wait_converged(&down).await?;
    tokio::time::sleep(Duration::from_millis(trial as u64 * 7 % 10 * 20)).await;
    repo.write(RC_FILE, &rc("bench", replicas));
    let started = Instant::now();
    let up = repo.commit(&format!("bench: {replicas}"))?;
    serve.wait_converged(&up).await?;
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    let record = serve.converged_record(&up).await?;
    let seen = rfc3339_ms(record["seen_at"].as_str().context("seen_at")?)?;
    let converged = rfc3339_ms(record["converged_at"].as_str().context("converged_at")?)?;
    let running = running_of(docker, "io.berth.owner=bench").await?;
    ensure!(
        running.len() == replicas as usize,
        "{} containers of bench running, wanted {replicas}",
        running.len()
    );
    Ok(((converged - seen) as f64, wall))
}

/// Force-removes one `heal` container and times until a new one of the same pod runs:
/// (from the call, the call itself) in ms. Returns once berth reports converged again.
async fn heal_trial(serve: &Serve, docker: &Docker, sha: &str, trial: usize) -> Result<(f64, f64)> {
    let mut pods = running_of(docker, "io.berth.owner=heal").await?;
    ensure!(
        pods.len() == HEAL_REPLICAS as usize,
        "heal has {} running",
        pods.len()
    );
    pods.sort();
    let (pod, victim) = pods[trial % pods.len()].clone();
    let started = Instant::now();
    docker
        .remove_container(
            &victim,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await?;
    let removal = started.elapsed();
    let deadline = started + Duration::from_secs(30);
    loop {
        let now = running_of(docker, &format!("io.berth.pod={pod}")).await?;
        if now.iter().any(|(_, id)| *id != victim) {
            break;
        }
        if Instant::now() > deadline {
            bail!("pod {pod} not healed within 30 s: {}", serve.log_tail());
        }
        tokio::time::sleep(WATCH).await;
    }
    let healed = started.elapsed();
    // The next trial starts once berth sees the host in line again.
    serve.wait_in_sync(sha).await?;
    Ok((
        healed.as_secs_f64() * 1000.0,
        removal.as_secs_f64() * 1000.0,
    ))
}

/// Running managed containers matching `label` (`key=value`), as (pod, id).
async fn running_of(docker: &Docker, label: &str) -> Result<Vec<(String, String)>> {
    let filters: HashMap<&str, Vec<&str>> =
        [("label", vec!["io.berth.managed=true", label])].into();
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    Ok(docker
        .list_containers(Some(options))
        .await?
        .into_iter()
        .filter(|c| c.state.map(|s| s.to_string()).as_deref() == Some("running"))
        .map(|c| {
            let pod = c.labels.and_then(|mut l| l.remove("io.berth.pod"));
            (pod.unwrap_or_default(), c.id.unwrap_or_default())
        })
        .collect())
}

/// Removes every managed container, so the next controller starts on an empty engine.
async fn remove_managed(docker: &Docker) -> Result<()> {
    let filters: HashMap<&str, Vec<&str>> = [("label", vec!["io.berth.managed=true"])].into();
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker.list_containers(Some(options)).await? {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        docker
            .remove_container(&c.id.unwrap_or_default(), Some(options))
            .await?;
    }
    Ok(())
}

/// A `berth serve` of our own: the test harness fixes `--poll 300ms --resync 2s`, and figures 3
/// and 4 need the process id.
struct Serve {
    child: Child,
    addr: String,
    http: reqwest::Client,
    log: Arc<Mutex<VecDeque<String>>>,
    _data: TempDir,
}

impl Serve {
    async fn start(repo: &Path, node: &str, flags: &[&str]) -> Result<Serve> {
        let data = tempfile::tempdir()?;
        // BENCH_BERTH_LOG=<filter> echoes berth's log with that filter, to see where time goes.
        let log_filter = std::env::var("BENCH_BERTH_LOG").ok();
        let echo = log_filter.is_some();
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--node", node, "--repo"])
            .arg(repo)
            .arg("--data-dir")
            .arg(data.path())
            .args(flags)
            .env(
                "BERTH_LOG",
                log_filter.as_deref().unwrap_or("info,openraft=warn"),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start berth serve")?;
        let stderr = child.stderr.take().context("piped stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        // Kept for errors, echoed only on request: 50 replicas log a line per step.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("status API on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
                if echo {
                    eprintln!("berth| {line}");
                }
                let mut lines = lines.lock().expect("log lock");
                if lines.len() == 40 {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        });
        let mut serve = Serve {
            child,
            addr: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            log,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = rx.try_recv() {
                serve.addr = addr;
                return Ok(serve);
            }
            if let Some(status) = serve.child.try_wait()? {
                bail!("berth serve exited with {status}: {}", serve.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "berth serve did not announce its API in 60 s: {}",
                    serve.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let lines = self.log.lock().expect("log lock");
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("http://{}{path}", self.addr);
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// Polls the status API every [`WATCH`] until it reports `sha` converged (60 s at most).
    async fn wait_converged(&self, sha: &str) -> Result<()> {
        self.wait_status(sha, "converged").await
    }

    /// Polls the status API until this controller sees every host in line with `sha` again.
    async fn wait_in_sync(&self, sha: &str) -> Result<()> {
        self.wait_status(sha, "in_sync").await
    }

    async fn wait_status(&self, sha: &str, flag: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(s) = self.get("/api/v1/status").await {
                if s["commit"] == sha && s[flag] == true {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("no {flag} on {sha} within 60 s: {}", self.log_tail());
            }
            tokio::time::sleep(WATCH).await;
        }
    }

    /// The commit's record: `converged` in status is read from the same committed state, so
    /// once status says converged, the record has `converged_at`.
    async fn converged_record(&self, sha: &str) -> Result<Value> {
        let record = self.get(&format!("/api/v1/commits/{sha}")).await?;
        ensure!(
            record["converged_at"].is_string(),
            "status said converged but {sha} has no converged_at: {record}"
        );
        Ok(record)
    }

    /// SIGTERM (by pid) and wait for a clean exit.
    async fn stop(mut self) -> Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("berth serve did not stop within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cpu {
    own_ms: f64,
    children_ms: f64,
    tick_ms: f64,
}

/// CPU time of a process from /proc/<pid>/stat: its own (utime+stime) and that of the
/// children it has waited for (cutime+cstime), in ms.
fn cpu(pid: u32) -> Result<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // "pid (comm) state ppid ...": fields after the comm start at field 3 (state).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |n: usize| -> Result<f64> { Ok(fields[n - 3].parse::<f64>()?) };
    let tick = Command::new("getconf").arg("CLK_TCK").output()?;
    let ticks_per_s: f64 = String::from_utf8_lossy(&tick.stdout).trim().parse()?;
    let tick_ms = 1000.0 / ticks_per_s;
    Ok(Cpu {
        own_ms: (field(14)? + field(15)?) * tick_ms,
        children_ms: (field(16)? + field(17)?) * tick_ms,
        tick_ms,
    })
}

#[derive(Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .with_context(|| format!("{key} missing"))?;
        Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
    };
    Ok(Memory {
        rss_kib: kib("VmRSS:")?,
        hwm_kib: kib("VmHWM:")?,
    })
}

/// `2025-11-23T18:49:01.123Z` (the API's format) as ms since the epoch.
fn rfc3339_ms(s: &str) -> Result<i64> {
    ensure!(
        s.len() == 24 && s.ends_with('Z'),
        "not an RFC 3339 ms time: {s}"
    );
    let n = |r: std::ops::Range<usize>| -> Result<i64> { Ok(s[r].parse::<i64>()?) };
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Ok(((days * 24 + n(11..13)?) * 60 + n(14..16)?) * 60_000 + n(17..19)? * 1000 + n(20..23)?)
}

struct Row {
    what: String,
    samples: Vec<f64>,
}

impl Row {
    fn new(what: impl Into<String>, mut samples: Vec<f64>) -> Row {
        samples.sort_by(f64::total_cmp);
        Row {
            what: what.into(),
            samples,
        }
    }

    fn median(&self) -> f64 {
        let s = &self.samples;
        let mid = s.len() / 2;
        if s.len() % 2 == 0 {
            (s[mid - 1] + s[mid]) / 2.0
        } else {
            s[mid]
        }
    }

    /// Nearest rank: the maximum below 100 samples.
    fn p99(&self) -> f64 {
        let rank = (0.99 * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.max(1) - 1]
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<52} {:>3} {:>9} {:>9} {:>9}",
        "latency (ms)", "n", "median", "p99*", "min"
    );
    for r in rows {
        println!(
            "{:<52} {:>3} {:>9.0} {:>9.0} {:>9.0}",
            r.what,
            r.samples.len(),
            r.median(),
            r.p99(),
            r.samples[0]
        );
    }
    println!("* nearest rank: with fewer than 100 samples p99 is the maximum");
}
