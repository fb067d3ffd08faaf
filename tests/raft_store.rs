//! The Raft stores on redb: openraft's storage suite, and a single-voter `RaftNode` that keeps
//! its state across shutdowns, snapshots and a `kill -9`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::manifest::Manifests;
use berth::raft::state::{CommitRecord, Outcome};
use berth::raft::{Command, LogStore, RaftNode, StateMachine, Stores, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, StorageError, StorageIOError};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

const LEADER_WAIT: Duration = Duration::from_secs(10);

fn record(sha: &str) -> CommitRecord {
    CommitRecord::pending(
        sha.into(),
        vec![],
        "A <a@example.org>".into(),
        format!("commit {sha}"),
        0,
        1,
    )
}

fn seen(sha: &str) -> Command {
    Command::Seen {
        commits: vec![record(sha)],
    }
}

fn accept(sha: &str, at: u64) -> Command {
    Command::Accept {
        sha: sha.into(),
        desired: Manifests::default(),
        replicas: BTreeMap::new(),
        pod_nodes: BTreeMap::new(),
        unchanged: false,
        at,
    }
}

async fn open_leader(dir: &Path) -> RaftNode {
    let node = RaftNode::open(1, "127.0.0.1:0".into(), dir)
        .await
        .expect("open node");
    assert_eq!(node.wait_leader(LEADER_WAIT).await.expect("leader"), 1);
    node
}

/// Fresh stores in their own temporary directory, for openraft's suite.
struct TempStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for TempStores {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let io = |e: &(dyn std::error::Error + 'static)| {
            StorageError::from(StorageIOError::write(AnyError::from_dyn(e, None)))
        };
        let dir = tempfile::tempdir().map_err(|e| io(&e))?;
        let stores = Stores::open(dir.path()).await.map_err(|e| io(&e))?;
        Ok((dir, stores.log, stores.state_machine))
    }
}

#[test]
fn stores_pass_openraft_storage_suite() {
    Suite::test_all(TempStores).expect("openraft storage suite");
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_shutdown_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_leader(dir.path()).await;
    assert!(node.is_leader());
    assert_eq!(node.leader(), Some(1));

    let started = Instant::now();
    let n = 20;
    for i in 0..n {
        assert!(node.propose(seen(&format!("c{i}"))).await.unwrap().ok);
    }
    eprintln!(
        "propose latency (sequential, fsync per entry): {:?}",
        started.elapsed() / n
    );
    assert!(node.propose(accept("c19", 7)).await.unwrap().ok);
    assert!(!node.propose(accept("unknown", 8)).await.unwrap().ok);

    let before = node.state().cloned();
    assert_eq!(before.history.len(), 20);
    assert_eq!(before.desired_commit.as_deref(), Some("c19"));
    node.shutdown().await.unwrap();

    let started = Instant::now();
    let node = open_leader(dir.path()).await;
    eprintln!("reopen until leader: {:?}", started.elapsed());
    assert_eq!(node.state().cloned(), before);
    assert_eq!(
        node.state().read(|s| s.commit("c19").map(|c| c.outcome)),
        Some(Outcome::Applying)
    );

    // And it keeps going where it left off.
    assert!(node.propose(seen("c20")).await.unwrap().ok);
    assert_eq!(node.state().read(|s| s.history.len()), 21);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshots_keep_the_log_bounded_and_restore_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(open_leader(dir.path()).await);

    let total = 2500;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    // 16 proposers at once: openraft batches their entries into fewer appends.
    for w in 0..16 {
        let node = node.clone();
        tasks.spawn(async move {
            for i in (w..total).step_by(16) {
                assert!(node.propose(seen(&format!("c{i}"))).await.unwrap().ok);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    eprintln!("{total} proposals, 16 concurrent: {:?}", started.elapsed());

    // Snapshots are built in the background: wait for the second one and its purge.
    let metrics = node
        .raft()
        .wait(Some(Duration::from_secs(20)))
        .metrics(
            // Snapshots cover 1000 entries each, from index 0: the second ends at 1999.
            |m| {
                m.snapshot.is_some_and(|s| s.index >= 1999)
                    && m.purged.is_some_and(|p| p.index >= 1899)
            },
            "second snapshot and its purge",
        )
        .await
        .unwrap();
    let kept = node.log_len().await.unwrap();
    eprintln!(
        "snapshot at {:?}, purged to {:?}, {kept} entries kept",
        metrics.snapshot.map(|s| s.index),
        metrics.purged.map(|p| p.index)
    );
    assert!(kept < 1000, "log keeps {kept} entries");

    let before = node.state().cloned();
    assert_eq!(before.history.len(), total as usize);
    let node = Arc::into_inner(node).expect("no other handle");
    node.shutdown().await.unwrap();

    let started = Instant::now();
    let node = open_leader(dir.path()).await;
    eprintln!(
        "reopen from snapshot + log tail until leader: {:?}",
        started.elapsed()
    );
    assert_eq!(node.state().cloned(), before);
    assert!(node.log_len().await.unwrap() < 1000);
    node.shutdown().await.unwrap();
}

/// The count acknowledged by a child's output line (0 for other lines and a line cut short by
/// the kill, which can only lower the number).
fn ack(line: &str) -> usize {
    line.strip_prefix("ACK ")
        .and_then(|i| i.parse::<usize>().ok())
        .map_or(0, |i| i + 1)
}

const KILL_DIR_ENV: &str = "BERTH_TEST_RAFT_KILL_DIR";

/// Run by `acknowledged_commands_survive_kill_9` in a child process: proposes until killed,
/// printing `ACK i` once proposal `i` is committed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "child process of acknowledged_commands_survive_kill_9"]
async fn child_proposes_until_killed() {
    let Ok(dir) = std::env::var(KILL_DIR_ENV) else {
        return;
    };
    let node = open_leader(Path::new(&dir)).await;
    for i in 0..100_000 {
        node.propose(seen(&format!("c{i}"))).await.unwrap();
        println!("ACK {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_commands_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_proposes_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(KILL_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // Past the first snapshot (1000 entries), so the restart replays snapshot + log tail.
    let want = 1200;
    let mut acked = 0;
    while acked < want {
        let line = lines.next_line().await.unwrap().expect("child ended early");
        acked = acked.max(ack(&line));
    }
    child.kill().await.unwrap(); // SIGKILL, mid-proposal
                                 // Acks printed before the kill landed count too.
    while let Ok(Some(line)) = lines.next_line().await {
        acked = acked.max(ack(&line));
    }

    let started = Instant::now();
    let node = open_leader(dir.path()).await;
    eprintln!(
        "reopen after kill -9 until leader: {:?} ({acked} acked)",
        started.elapsed()
    );
    let history: Vec<String> = node
        .state()
        .read(|s| s.history.iter().map(|c| c.sha.clone()).collect());
    // Every acknowledged command is there, in order; at most the one in flight is extra.
    assert!(
        history.len() == acked || history.len() == acked + 1,
        "{} vs {acked}",
        history.len()
    );
    for (i, sha) in history.iter().enumerate() {
        assert_eq!(sha, &format!("c{i}"));
    }
    assert!(node.propose(seen("after")).await.unwrap().ok);
    node.shutdown().await.unwrap();
}
