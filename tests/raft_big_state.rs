//! Issue 9 (g): the state of 100,000 replicas and 50,000 history records through a snapshot to
//! a new member. In its own test binary: it is CPU- and memory-heavy for about 15 s, and beside
//! the timing-sensitive tests of tests/raft_cluster.rs it made their proposals miss deadlines on
//! a loaded machine.

#[path = "raft_cluster/support.rs"]
mod support;

#[path = "raft_cluster/big_state.rs"]
mod big_state;

use std::time::{Duration, Instant};

use support::{history, seen, Cluster};

/// Issue 9 (g), the CI form: a state of 100,000 replicas and 50,000 history records, built by
/// proposals as the controller makes them, snapshots on its member, and a new member that can
/// only catch up from the snapshot (the log behind it is purged) installs it and holds the same
/// state. The snapshot stays within its budget: the history's byte budget plus the replicas. The
/// timings and the receiving process's peak RSS in release are `cargo bench --bench
/// raft_cluster -- snapshot100k` (BENCHMARKS.md).
#[tokio::test(flavor = "multi_thread")]
async fn a_state_of_100k_replicas_and_50k_records_snapshots_and_installs_on_a_new_member() {
    use berth::raft::state::HISTORY_BYTES;
    use big_state::{peak_rss_mib, replica_count, PER_RC, RCS, RECORDS};
    let mut cluster = Cluster::start_with(1, 1_000_000).await;
    let leader = cluster.agreed_leader(&[1]).await;
    let node = cluster.node(leader);
    let started = Instant::now();
    for cmd in big_state::seen_batches() {
        assert!(node.propose(cmd).await.expect("propose").ok);
    }
    for cmd in node.state().read(big_state::accept_and_replicas) {
        assert!(node.propose(cmd).await.expect("propose").ok);
    }
    // Past the entries kept behind a snapshot, so the big ones are purged with it.
    for i in 0..120 {
        assert!(
            node.propose(seen(&format!("small{i}")))
                .await
                .expect("propose")
                .ok
        );
    }
    let (records, replicas, history_bytes, state_bytes) = node.state().read(|s| {
        (
            s.history.len(),
            replica_count(s),
            s.history.estimated_bytes(),
            serde_json::to_vec(s).expect("json").len(),
        )
    });
    eprintln!(
        "built in {:.2?}: {records} records ({:.1} MiB estimated), {replicas} replicas, \
         state {:.1} MiB of JSON",
        started.elapsed(),
        history_bytes as f64 / (1 << 20) as f64,
        state_bytes as f64 / (1 << 20) as f64
    );
    assert_eq!(records, RECORDS);
    assert_eq!(replicas, RCS * PER_RC);
    assert!(history_bytes <= HISTORY_BYTES);
    // Budget: the history's bytes, plus about 150 bytes of JSON per replica (name, host,
    // revision, time) and the tree.
    let budget = HISTORY_BYTES as usize + RCS * PER_RC * 150 + (1 << 20);
    assert!(
        state_bytes < budget,
        "{state_bytes} bytes of state, budget {budget}"
    );

    let started = Instant::now();
    node.raft().trigger().snapshot().await.expect("trigger");
    node.raft()
        .wait(Some(Duration::from_secs(60)))
        .metrics(
            |m| m.snapshot.is_some() && m.purged.is_some(),
            "snapshot built and log purged",
        )
        .await
        .expect("snapshot");
    eprintln!("snapshot built and stored in {:.2?}", started.elapsed());

    cluster.start_joiner(2, &[leader]).await;
    let started = Instant::now();
    let addr = cluster.members[&2].addr.to_string();
    cluster
        .node(leader)
        .add_member(2, addr, Duration::from_secs(60))
        .await
        .expect("add member");
    eprintln!(
        "transferred, installed and promoted in {:.2?}; peak RSS of this process (both \
         members, the build, the comparison): {:.0} MiB",
        started.elapsed(),
        peak_rss_mib()
    );
    let joined = cluster.node(2);
    assert!(
        joined.raft().metrics().borrow().snapshot.is_some(),
        "caught up without a snapshot"
    );
    cluster.caught_up(2, &history(cluster.node(leader))).await;
    let (a, b) = (
        cluster.node(leader).state().cloned(),
        cluster.node(2).state().cloned(),
    );
    assert!(a == b, "the new member's state differs from the leader's");
    cluster.shutdown().await;
}
