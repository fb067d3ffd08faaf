//! The controller cluster's Raft on loopback, three members with redb (fsync on every append):
//! commit latency, write throughput, leader failover, and the snapshot of a large state.
//! Not run in CI; the figures and how to read them are in BENCHMARKS.md.
//!
//! ```sh
//! cargo bench --bench raft_cluster
//! ```

#[path = "../tests/raft_cluster/support.rs"]
mod support;

#[path = "../tests/raft_cluster/big_state.rs"]
mod big_state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::raft::state::CommitRecord;
use berth::raft::{Command, RaftNode};
use support::{seen, serve_member, Cluster, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `id;dir;1=addr,...` of a member this process hosts alone (the snapshot receiver).
const MEMBER_ENV: &str = "BERTH_BENCH_RAFT_MEMBER";

fn main() -> anyhow::Result<()> {
    if let Ok(filter) = std::env::var("BENCH_RAFT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Ok(spec) = std::env::var(MEMBER_ENV) {
        rt.block_on(member_process(spec));
        return Ok(());
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and must not spend
    // minutes here (as benches/reconcile.rs).
    if !std::env::args().any(|a| a == "--bench") {
        println!("raft_cluster: a benchmark; run it with `cargo bench --bench raft_cluster`");
        return Ok(());
    }
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |name: &str| only.as_deref().is_none_or(|o| o == name);
    rt.block_on(async {
        if wants("latency") {
            latency().await;
        }
        if wants("throughput") {
            throughput().await;
        }
        if wants("failover") {
            failover().await;
        }
        if wants("snapshot") {
            snapshot().await;
        }
        // Not in the default run: name it.
        if only.as_deref() == Some("snapshot100k") {
            snapshot_100k().await;
        }
    });
    Ok(())
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        pct(&samples, 50.0),
        pct(&samples, 99.0),
        samples.last().copied().unwrap_or_default()
    );
}

fn shared(cluster: &Cluster, id: u64) -> Arc<RaftNode> {
    cluster.members[&id]
        .running
        .as_ref()
        .expect("running")
        .node
        .clone()
}

async fn latency() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let node = cluster.node(leader);
    for i in 0..50 {
        node.propose(seen(&format!("warm{i}")))
            .await
            .expect("propose");
    }
    let mut samples = Vec::new();
    for i in 0..1_000 {
        let started = Instant::now();
        node.propose(seen(&format!("lat{i}")))
            .await
            .expect("propose");
        samples.push(started.elapsed());
    }
    summary("commit latency, 3 members, sequential", samples);
    cluster.shutdown().await;
}

async fn throughput() {
    for concurrency in [1usize, 16, 64] {
        let cluster = Cluster::start(3).await;
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        let node = shared(&cluster, leader);
        let total = if concurrency == 1 { 500 } else { 4_000 };
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..concurrency {
            let node = node.clone();
            tasks.spawn(async move {
                for i in (w..total).step_by(concurrency) {
                    node.propose(seen(&format!("t{i}"))).await.expect("propose");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("proposer");
        }
        let took = started.elapsed();
        println!(
            "write throughput, {concurrency} concurrent proposers: {total} commits in {took:.2?} = {:.0}/s",
            total as f64 / took.as_secs_f64()
        );
        drop(node);
        cluster.shutdown().await;
    }
}

/// The leader is cut off (its traffic dropped both ways, as a crash looks to the others); timed
/// until the other two agree on a new leader that a quorum acknowledges, and until the old
/// leader's own `is_leader` turns false. Every member has caught up before each cut.
async fn failover() {
    let cluster = Cluster::start(3).await;
    let mut elected = Vec::new();
    let mut fenced = Vec::new();
    for _ in 0..20 {
        let old = cluster.agreed_leader(&[1, 2, 3]).await;
        // A member healed from the last trial must have caught up first, or it stands with a
        // stale log, is refused, and the election takes another round (measured apart below).
        cluster.settled(&[1, 2, 3]).await;
        let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
        let cut = Instant::now();
        cluster.node(old).partition().set(true);
        let (mut new_at, mut fence_at) = (None, None);
        while new_at.is_none() || fence_at.is_none() {
            if fence_at.is_none() && !cluster.node(old).is_leader() {
                fence_at = Some(cut.elapsed());
            }
            if new_at.is_none() {
                let leaders: Vec<_> = rest.iter().map(|id| cluster.node(*id).leader()).collect();
                if let Some(l) = leaders[0] {
                    if leaders.iter().all(|x| *x == Some(l))
                        && rest.contains(&l)
                        && cluster.node(l).is_leader()
                    {
                        new_at = Some(cut.elapsed());
                    }
                }
            }
            assert!(cut.elapsed() < WAIT, "no failover");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        elected.extend(new_at);
        fenced.extend(fence_at);
        cluster.node(old).partition().set(false);
    }
    summary(
        "failover: cut → new leader acknowledged by a quorum",
        elected,
    );
    summary("failover: cut → old leader's is_leader() false", fenced);
    cluster.shutdown().await;
}

/// Bytes of VmHWM (peak RSS) of this process.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .map_or("?".into(), |kb| format!("{kb} kB"))
}

fn big_seen(batch: usize, per: usize, text: usize) -> Command {
    let commits = (0..per)
        .map(|i| {
            CommitRecord::pending(
                format!("b{batch}-{i}"),
                vec![],
                "A <a@example.org>".into(),
                "m".repeat(text),
                0,
                1,
            )
        })
        .collect();
    Command::Seen { commits }
}

async fn snapshot() {
    // No automatic snapshot while the state is built: the build below is timed alone.
    let cluster = Cluster::start_with(3, 1_000_000).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let node = cluster.node(leader);
    let batches = std::env::var("BENCH_RAFT_SNAPSHOT_BATCHES")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(25);
    let (per, text) = (500, 4_000);
    let started = Instant::now();
    for b in 0..batches {
        node.propose(big_seen(b, per, text)).await.expect("propose");
    }
    let state_bytes = node
        .state()
        .read(|s| serde_json::to_vec(s).map(|v| v.len()).unwrap_or(0));
    println!(
        "snapshot: state of {} commits, {:.1} MiB of JSON, proposed in {:.2?}",
        batches * per,
        state_bytes as f64 / (1 << 20) as f64,
        started.elapsed()
    );

    // Small entries past the 100 kept behind a snapshot, so the big ones are purged with it and
    // a new member can only catch up from the snapshot.
    for i in 0..120 {
        node.propose(seen(&format!("small{i}")))
            .await
            .expect("propose");
    }
    let started = Instant::now();
    node.raft().trigger().snapshot().await.expect("trigger");
    node.raft()
        .wait(Some(Duration::from_secs(120)))
        .metrics(
            |m| m.snapshot.is_some() && m.purged.is_some(),
            "snapshot built and log purged",
        )
        .await
        .expect("snapshot");
    println!(
        "snapshot: build (clone, serialise, fsync into redb) on the leader: {:.2?}",
        started.elapsed()
    );
    println!(
        "snapshot: peak RSS of the bench process (3 members, each holding the state): {}",
        peak_rss()
    );
    transfer_to_a_new_member(cluster, leader).await;
}

/// Issue 9's state: 100,000 replicas and 50,000 history records (tests/raft_cluster/
/// big_state.rs), built by proposals on three members, snapshotted, and sent to a fourth
/// member in its own process.
async fn snapshot_100k() {
    let cluster = Cluster::start_with(3, 1_000_000).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let node = cluster.node(leader);
    let started = Instant::now();
    for cmd in big_state::seen_batches() {
        node.propose(cmd).await.expect("propose");
    }
    for cmd in node.state().read(big_state::accept_and_replicas) {
        node.propose(cmd).await.expect("propose");
    }
    for i in 0..120 {
        node.propose(seen(&format!("small{i}")))
            .await
            .expect("propose");
    }
    let (records, replicas, history_bytes, state_bytes) = node.state().read(|s| {
        (
            s.history.len(),
            big_state::replica_count(s),
            s.history.estimated_bytes(),
            serde_json::to_vec(s).map(|v| v.len()).unwrap_or(0),
        )
    });
    println!(
        "snapshot100k: {records} records ({:.1} MiB estimated), {replicas} replicas, state of \
         {:.1} MiB of JSON, proposed in {:.2?}",
        history_bytes as f64 / (1 << 20) as f64,
        state_bytes as f64 / (1 << 20) as f64,
        started.elapsed()
    );
    let started = Instant::now();
    node.raft().trigger().snapshot().await.expect("trigger");
    node.raft()
        .wait(Some(Duration::from_secs(120)))
        .metrics(
            |m| m.snapshot.is_some() && m.purged.is_some(),
            "snapshot built and log purged",
        )
        .await
        .expect("snapshot");
    println!(
        "snapshot100k: build (clone, serialise, fsync into redb) on the leader: {:.2?}",
        started.elapsed()
    );
    println!(
        "snapshot100k: peak RSS of the bench process (3 members, each holding the state): {}",
        peak_rss()
    );
    transfer_to_a_new_member(cluster, leader).await;
}

/// A fourth member in its own process receives the leader's snapshot as a learner; prints the
/// time from `add_member` to promotion and the receiver's peak RSS.
async fn transfer_to_a_new_member(mut cluster: Cluster, leader: u64) {
    let node = cluster.node(leader);
    // A fourth member in its own process receives it as a learner.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let peers: BTreeMap<u64, String> = [(leader, cluster.members[&leader].addr), (4, addr)]
        .into_iter()
        .map(|(id, a)| (id, a.to_string()))
        .collect();
    let dir = cluster.root.path().join("m4");
    let spec = format!(
        "4;{};{}",
        dir.display(),
        peers
            .iter()
            .map(|(i, a)| format!("{i}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(MEMBER_ENV, spec)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn member");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("READY") {
            println!("snapshot: receiver started, {line}");
            break;
        }
    }
    let started = Instant::now();
    node.add_member(4, addr.to_string(), Duration::from_secs(120))
        .await
        .expect("add member");
    println!(
        "snapshot: transfer + install on a new member (add → caught up and promoted): {:.2?}",
        started.elapsed()
    );
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("INSTALLED") {
            println!("snapshot: receiver {line}");
            break;
        }
    }
    child.kill().await.ok();
    cluster.members.remove(&4);
    cluster.shutdown().await;
}

/// The snapshot receiver: serves member 4 and reports its peak RSS once it holds a snapshot.
async fn member_process(spec: String) {
    let mut parts = spec.splitn(3, ';');
    let (Some(id), Some(dir), Some(peers)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad {MEMBER_ENV}");
    };
    let peers: BTreeMap<u64, String> = peers
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(i, a)| (i.parse().expect("id"), a.to_string()))
        .collect();
    let member = serve_member(id.parse().expect("id"), std::path::Path::new(dir), peers).await;
    println!("READY peak RSS {}", peak_rss());
    let raft = member.node.raft().clone();
    raft.wait(None)
        .metrics(|m| m.snapshot.is_some(), "snapshot installed")
        .await
        .expect("snapshot");
    println!("INSTALLED peak RSS {}", peak_rss());
    std::future::pending::<()>().await;
}
