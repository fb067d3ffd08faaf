//! A real Raft cluster on loopback: three `RaftNode`s with redb on disk, talking HTTP through
//! `raft_router`, as three `berth serve` would. The cluster forms once, commits on all members,
//! replaces a lost leader within the election timing, brings back members that were stopped or
//! wiped, refuses strangers, and fences a leader cut off from its quorum.

#[path = "raft_cluster/support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::raft::cluster_config::DEFAULT_ELECTION_TIMEOUT;
use berth::raft::wire::{APPEND_PATH, HELLO_PATH, MEMBERS_PATH};
use berth::raft::{ClusterAdmin, LogCommand, MembershipError, RaftNodeError};
use support::{history, seen, token, Cluster, TOKEN, WAIT};

/// Proposes `n` commands `{prefix}{i}` on `leader`, `concurrency` at a time.
async fn propose_many(cluster: &Cluster, leader: u64, prefix: &str, n: usize) -> Vec<String> {
    let node = cluster.node(leader);
    let mut shas = Vec::new();
    for i in 0..n {
        let sha = format!("{prefix}{i}");
        let answer = node.propose(seen(&sha)).await.expect("propose");
        assert!(answer.ok);
        shas.push(sha);
    }
    shas
}

#[tokio::test(flavor = "multi_thread")]
async fn three_members_form_one_cluster_and_commit_on_all_of_them() {
    let cluster = Cluster::start(3).await;
    let started = Instant::now();
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    eprintln!(
        "cluster formed, leader {leader} after {:?}",
        started.elapsed()
    );
    for id in [1, 2, 3] {
        let members = cluster.node(id).members();
        assert_eq!(members.len(), 3, "{members:?}");
        assert!(members.iter().all(|m| m.voter));
    }

    let shas = propose_many(&cluster, leader, "c", 20).await;
    for id in [1, 2, 3] {
        cluster.caught_up(id, &shas).await;
    }
    // Followers refuse writes and name the leader.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    match cluster.node(follower).propose(seen("x")).await {
        Err(RaftNodeError::NotLeader { leader: Some(l) }) => assert_eq!(l, leader),
        other => panic!("follower accepted a write: {other:?}"),
    }
    assert!(!cluster.node(follower).is_leader());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leaders_shutdown_elects_a_new_leader_within_the_election_timing() {
    let mut cluster = Cluster::start(3).await;
    let old = cluster.agreed_leader(&[1, 2, 3]).await;
    let mut shas = propose_many(&cluster, old, "a", 10).await;
    let term = cluster.node(old).current_term();

    let stopped = Instant::now();
    cluster.stop(old).await;
    eprintln!("stopping leader {old} took {:?}", stopped.elapsed());
    let rest: Vec<u64> = cluster.running();
    let new = cluster.agreed_leader(&rest).await;
    let failover = stopped.elapsed();
    eprintln!("leader {old} stopped: {new} leads after {failover:?}");
    assert_ne!(new, old);
    assert!(cluster.node(new).current_term() > term);
    // Followers stand after openraft's lease (2T) plus [T, 2T): see cluster_config.rs. One tick
    // and one election round trip on top.
    assert!(
        failover < DEFAULT_ELECTION_TIMEOUT * 4 + Duration::from_secs(1),
        "failover took {failover:?}"
    );

    shas.extend(propose_many(&cluster, new, "b", 10).await);
    // The old leader comes back as a follower and catches up by the log.
    cluster.restart(old).await;
    cluster.caught_up(old, &shas).await;
    assert_eq!(cluster.agreed_leader(&[1, 2, 3]).await, new);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_restarted_catches_up_by_the_log() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let mut shas = propose_many(&cluster, leader, "a", 5).await;
    cluster.stop(follower).await;
    // Two of three still commit.
    shas.extend(propose_many(&cluster, leader, "b", 30).await);
    cluster.restart(follower).await;
    cluster.caught_up(follower, &shas).await;
    assert_eq!(cluster.agreed_leader(&[1, 2, 3]).await, leader);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_follower_removed_and_added_again_catches_up_by_snapshot() {
    let every = 100;
    let mut cluster = Cluster::start_with(3, every).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .unwrap();
    cluster.stop(follower).await;
    cluster.wipe(follower);

    // Through the admin routes of the remaining follower, which forwards to the leader.
    let admin = ClusterAdmin::new(cluster.url(other), token(), None).unwrap();
    let members = admin.remove(follower).await.expect("remove");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(matches!(
        admin.remove(follower).await,
        Err(berth::raft::AdminError::Membership(MembershipError::NotAMember(id))) if id == follower
    ));

    // Past a snapshot and its purge, so the log alone can no longer bring a member up.
    let shas = propose_many(&cluster, leader, "s", (every * 2 + 20) as usize).await;
    let leader_node = cluster.node(leader);
    leader_node
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.purged.is_some(), "a snapshot and a purge")
        .await
        .expect("leader purged its log");

    cluster.start_joiner(follower, &[leader, other]).await;
    let members = admin
        .add(follower, cluster.members[&follower].addr.to_string(), WAIT)
        .await
        .expect("add");
    assert_eq!(members.iter().filter(|m| m.voter).count(), 3, "{members:?}");
    cluster.caught_up(follower, &shas).await;
    let m = cluster.node(follower).raft().metrics().borrow().clone();
    assert!(m.snapshot.is_some(), "caught up without a snapshot: {m:?}");
    assert!(cluster.node(follower).log_len().await.unwrap() < shas.len() as u64);
    assert_eq!(admin.list().await.unwrap().len(), 3);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_or_with_a_wrong_token_are_refused_with_401() {
    let cluster = Cluster::start(3).await;
    cluster.agreed_leader(&[1, 2, 3]).await;
    let http = reqwest::Client::new();
    let base = cluster.url(1);
    for path in [APPEND_PATH, HELLO_PATH, MEMBERS_PATH] {
        let url = format!("{base}{path}");
        let none = http.post(&url).body("{}").send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without a token");
        let wrong = http
            .post(&url)
            .bearer_auth("not-the-cluster-token-at-all")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
    }
    let hello = http
        .get(format!("{base}{HELLO_PATH}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    let admin = ClusterAdmin::new(
        base,
        berth::raft::ClusterToken::new("not-the-cluster-token-at-all").unwrap(),
        None,
    )
    .unwrap();
    assert!(matches!(
        admin.list().await,
        Err(berth::raft::AdminError::Unauthorized { .. })
    ));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_leader_stops_being_leader_within_about_the_election_timeout() {
    let cluster = Cluster::start(3).await;
    let old = cluster.agreed_leader(&[1, 2, 3]).await;
    let node = cluster.node(old);
    assert!(node.quorum_acked_within(Duration::from_millis(500)));

    let cut = Instant::now();
    node.partition().set(true);
    while node.is_leader() {
        assert!(cut.elapsed() < WAIT, "still leader after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fenced = cut.elapsed();
    let facts = node.leader_facts();
    eprintln!("partitioned leader fenced after {fenced:?}: {facts:?}");
    assert!(
        fenced < DEFAULT_ELECTION_TIMEOUT + Duration::from_millis(500),
        "fenced after {fenced:?}"
    );
    match node
        .propose_within(seen("lost"), Duration::from_millis(500))
        .await
    {
        Err(RaftNodeError::Timeout(d)) => assert_eq!(d, Duration::from_millis(500)),
        other => panic!("a partitioned leader committed: {other:?}"),
    }
    assert!(node
        .ensure_linearizable_within(Duration::from_millis(500))
        .await
        .is_err());

    // The others elect a leader of their own and go on.
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    let new = cluster.agreed_leader(&rest).await;
    let shas = propose_many(&cluster, new, "p", 5).await;

    // Healed, the old leader follows the new one and has exactly the committed entries.
    node.partition().set(false);
    assert_eq!(cluster.agreed_leader(&[1, 2, 3]).await, new);
    cluster.caught_up(old, &shas).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_from_a_newer_berth_stops_every_member_instead_of_being_misread() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let shas = propose_many(&cluster, leader, "k", 3).await;
    for id in [1, 2, 3] {
        cluster.caught_up(id, &shas).await;
    }
    let future: LogCommand =
        serde_json::from_value(serde_json::json!({"FromTheFuture": {"x": 1}})).unwrap();
    assert!(matches!(future, LogCommand::Unknown { .. }));
    let node = cluster.node(leader);
    // The leader's own apply refuses it: the write never answers.
    let written =
        tokio::time::timeout(Duration::from_secs(5), node.raft().client_write(future)).await;
    assert!(!matches!(written, Ok(Ok(_))), "{written:?}");
    // Every member that learns the entry is committed stops at it: the leader at once, then
    // the leader the other two elect (it commits the entry again in its term). The last one
    // never learns it is committed, so it neither applies nor stops: it has no quorum anyway.
    let started = Instant::now();
    loop {
        let stopped: Vec<u64> = [1, 2, 3]
            .into_iter()
            .filter(|id| {
                cluster
                    .node(*id)
                    .raft()
                    .metrics()
                    .borrow()
                    .running_state
                    .is_err()
            })
            .collect();
        if stopped.contains(&leader) && stopped.len() >= 2 {
            eprintln!("members {stopped:?} stopped after {:?}", started.elapsed());
            break;
        }
        assert!(started.elapsed() < WAIT, "only {stopped:?} stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in [1, 2, 3] {
        // Nothing after the unknown command, nor a guess of it, was applied.
        assert_eq!(history(cluster.node(id)), shas);
    }
    // Stopped members still shut down cleanly enough to release their files.
    for (id, m) in cluster.members {
        if let Some(r) = m.running {
            let node = Arc::into_inner(r.node).expect("unique");
            let _ = node.shutdown().await;
            let _ = id;
        }
    }
}
