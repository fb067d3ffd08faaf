//! A real Raft cluster on loopback: three `RaftNode`s with redb on disk, talking HTTP through
//! `raft_router`, as three `berth serve` would. The cluster forms once, commits on all members,
//! replaces a lost leader within the election timing, brings back members that were stopped or
//! wiped, refuses strangers, and fences a leader cut off from its quorum.

#[path = "raft_cluster/support.rs"]
mod support;

#[path = "raft_cluster/certs.rs"]
mod certs;

#[path = "raft_cluster/children.rs"]
mod children;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth::raft::cluster_config::DEFAULT_ELECTION_TIMEOUT;
use berth::raft::wire::{APPEND_PATH, HELLO_PATH, MEMBERS_PATH};
use berth::raft::{ClusterAdmin, LogCommand, MembershipError, RaftNodeError};
use certs::make_tls_dir;
use children::{await_acks, spawn_member, MEMBER_ENV};
use support::{history, seen, serve_member, token, Cluster, TOKEN, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Proposes `n` commands `{prefix}{i}`, one at a time, on whichever member leads.
async fn propose_many(cluster: &Cluster, prefix: &str, n: usize) -> Vec<String> {
    let mut shas = Vec::new();
    for i in 0..n {
        let sha = format!("{prefix}{i}");
        let answer = cluster.propose_on_leader(seen(&sha)).await;
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

    let shas = propose_many(&cluster, "c", 20).await;
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
    let mut shas = propose_many(&cluster, "a", 10).await;
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

    shas.extend(propose_many(&cluster, "b", 10).await);
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
    let mut shas = propose_many(&cluster, "a", 5).await;
    cluster.stop(follower).await;
    // Two of three still commit.
    shas.extend(propose_many(&cluster, "b", 30).await);
    cluster.restart(follower).await;
    cluster.caught_up(follower, &shas).await;
    assert_eq!(cluster.agreed_leader(&[1, 2, 3]).await, leader);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_behind_by_megabytes_catches_up_in_batches_that_fit_a_heartbeat() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.stop(follower).await;
    // Forty commands of about 250 KB, 10 MB in all: far more than one AppendEntries may carry
    // within a heartbeat (without the cap of `MAX_APPEND_BYTES` openraft sends them all at once
    // and the follower never catches up).
    for b in 0..40 {
        let commits = (0..62)
            .map(|i| {
                berth::raft::state::CommitRecord::pending(
                    format!("big{b}-{i}"),
                    vec![],
                    "A <a@example.org>".into(),
                    "m".repeat(4_000),
                    0,
                    1,
                )
            })
            .collect();
        let answer = cluster
            .propose_on_leader(berth::raft::Command::Seen { commits })
            .await;
        assert!(answer.ok);
    }
    let now = cluster.agreed_leader(&cluster.running()).await;
    let expected = history(cluster.node(now));
    cluster.restart(follower).await;
    cluster.caught_up(follower, &expected).await;
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
    let shas = propose_many(&cluster, "s", (every * 2 + 20) as usize).await;
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
    let shas = propose_many(&cluster, "p", 5).await;

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
    let shas = propose_many(&cluster, "k", 3).await;
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
    cluster.shutdown_stopped().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_member_cluster_grows_into_three_members() {
    let mut cluster = Cluster::start(1).await;
    assert_eq!(cluster.agreed_leader(&[1]).await, 1);
    let mut shas = propose_many(&cluster, "solo", 5).await;
    for id in [2, 3] {
        cluster.start_joiner(id, &[1]).await;
        let url = cluster.members[&id].addr.to_string();
        cluster
            .node(1)
            .add_member(id, url, WAIT)
            .await
            .expect("add member");
    }
    let members = cluster.node(1).members();
    assert_eq!(members.iter().filter(|m| m.voter).count(), 3, "{members:?}");
    assert!(matches!(
        cluster
            .node(1)
            .add_member(2, "elsewhere:1".into(), WAIT)
            .await,
        Err(RaftNodeError::Membership(MembershipError::AlreadyMember(2)))
    ));
    shas.extend(propose_many(&cluster, "trio", 5).await);
    for id in [1, 2, 3] {
        cluster.caught_up(id, &shas).await;
    }
    cluster.shutdown().await;
}

/// Run by `acknowledged_entries_survive_kill_9_of_the_leader_then_of_everyone` in a child
/// process: serves one member and, while it leads, proposes `m<id>-<i>` one after the other,
/// printing `ACK m<id>-<i>` once each is committed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "child process of acknowledged_entries_survive_kill_9_of_the_leader_then_of_everyone"]
async fn child_member_proposes_while_leader_until_killed() {
    let Ok(spec) = std::env::var(MEMBER_ENV) else {
        return;
    };
    let mut parts = spec.split(';');
    let (Some(id), Some(dir), Some(peers)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad {MEMBER_ENV}: {spec}");
    };
    let id: u64 = id.parse().expect("id");
    let peers: BTreeMap<u64, String> = peers
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(i, a)| (i.parse().expect("peer id"), a.to_string()))
        .collect();
    let member = serve_member(id, std::path::Path::new(dir), peers).await;
    let node = &member.node;
    for i in 0.. {
        while !node.is_leader() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let sha = format!("m{id}-{i}");
        if node
            .propose_within(seen(&sha), Duration::from_secs(2))
            .await
            .is_ok()
        {
            println!("ACK {sha}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_entries_survive_kill_9_of_the_leader_then_of_everyone() {
    let root = tempfile::tempdir().unwrap();
    let mut addrs = BTreeMap::new();
    for id in 1..=3u64 {
        // Bound then released: the child binds it again (loopback, nothing else races for it).
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(id, l.local_addr().unwrap());
    }
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel::<(u64, String)>();
    let mut children = BTreeMap::new();
    for id in 1..=3u64 {
        let mut child = spawn_member(id, &root.path().join(format!("m{id}")), &addrs);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(sha) = line.strip_prefix("ACK ") {
                    let _ = tx.send((id, sha.to_string()));
                }
            }
        });
        children.insert(id, child);
    }
    drop(tx);

    let mut acked = Vec::new();
    await_acks(&mut acks, &mut acked, 150).await;
    let leader = acked.last().unwrap().0;
    children.get_mut(&leader).unwrap().kill().await.unwrap(); // SIGKILL
    eprintln!("killed leader {leader} after {} acks", acked.len());

    // The other two elect a leader and go on; then every process is killed at once.
    let before = acked.len();
    await_acks(&mut acks, &mut acked, before + 100).await;
    let new_leader = acked.last().unwrap().0;
    assert_ne!(new_leader, leader);
    for child in children.values_mut() {
        let _ = child.start_kill();
    }
    for child in children.values_mut() {
        let _ = child.wait().await;
    }
    // Acks printed before the kills landed count too.
    while let Ok(ack) = acks.try_recv() {
        acked.push(ack);
    }
    eprintln!("killed everyone after {} acks", acked.len());

    let cluster = Cluster::reopen(root, &addrs).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    // The new leader's read of its history must not lag what a follower already applied: wait
    // until all three hold and applied the same log (the leader's first entry included).
    cluster.settled(&[1, 2, 3]).await;
    let expected = history(cluster.node(leader));
    for id in [1, 2, 3] {
        cluster.caught_up(id, &expected).await;
    }
    let kept: std::collections::BTreeSet<&String> = expected.iter().collect();
    for (_, sha) in &acked {
        assert!(kept.contains(sha), "acknowledged {sha} was lost");
    }
    // At most one unacknowledged entry per leader (the one in flight when it was killed).
    assert!(
        expected.len() <= acked.len() + 2,
        "{} entries for {} acks",
        expected.len(),
        acked.len()
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_is_built_by_size_long_before_the_entry_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = berth::raft::ClusterConfig::single(1, "127.0.0.1:1".into());
    config.snapshot_every = 100_000;
    config.snapshot_bytes = 16 << 10;
    let node = berth::raft::RaftNode::open_cluster(config, dir.path())
        .await
        .unwrap();
    node.wait_leader(WAIT).await.unwrap();
    let mut n = 0;
    while node.log_len().await.unwrap() < 80 {
        node.propose(seen(&format!("big{n}"))).await.unwrap();
        n += 1;
    }
    let m = node
        .raft()
        .wait(Some(WAIT))
        .metrics(|m| m.snapshot.is_some(), "a snapshot by size")
        .await
        .expect("no snapshot by size");
    eprintln!("snapshot by size at {:?} after {n} entries", m.snapshot);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn members_talk_over_mutual_tls_and_refuse_clients_without_a_certificate() {
    let certs = tempfile::tempdir().unwrap();
    make_tls_dir(certs.path());
    let tls = berth::raft::ClusterTls::from_dir(certs.path()).expect("tls material");
    let cluster = Cluster::start_tls(3, tls.clone()).await;
    cluster.agreed_leader(&[1, 2, 3]).await;
    let shas = propose_many(&cluster, "tls", 5).await;
    for id in [1, 2, 3] {
        cluster.caught_up(id, &shas).await;
    }
    let admin = ClusterAdmin::new(cluster.url(1), token(), Some(&tls)).unwrap();
    assert_eq!(admin.list().await.expect("list over TLS").len(), 3);

    let addr = cluster.members[&1].addr;
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}{HELLO_PATH}"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.path().join("ca.pem")).unwrap())
        .unwrap();
    let certless = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap()
        .get(format!("https://{addr}{HELLO_PATH}"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(
        certless.is_err(),
        "a client without a certificate was answered: {certless:?}"
    );
    cluster.shutdown().await;
}

/// `berth cluster recover` on a survivor of a cluster that lost its majority for good: refused
/// while the directory is open, refused for an id the directory never served, then the member
/// starts alone as a one-member cluster with its history and commits again.
#[tokio::test(flavor = "multi_thread")]
async fn recover_makes_a_survivor_a_one_member_cluster_that_keeps_its_history() {
    use berth::raft::{recover, RecoverError};
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let shas = propose_many(&cluster, "r", 5).await;
    let survivor = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.caught_up(survivor, &shas).await;
    let dir = cluster.members[&survivor].dir.clone();
    let in_use = recover(&dir, survivor, 1).expect_err("refused while running");
    assert!(matches!(in_use, RecoverError::InUse(_)), "{in_use}");
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }
    let stranger = recover(&dir, 9, 1).expect_err("not a member");
    assert!(
        matches!(stranger, RecoverError::NotAMember { id: 9, .. }),
        "{stranger}"
    );
    let plan = recover(&dir, survivor, 1234).expect("recover");
    assert_eq!(plan.from_members, vec![1, 2, 3]);

    // Started alone, as `berth serve --id N` without --peer.
    let addr = cluster.members[&survivor].addr;
    cluster.members.get_mut(&survivor).unwrap().peers =
        BTreeMap::from([(survivor, addr.to_string())]);
    cluster.restart(survivor).await;
    assert_eq!(cluster.agreed_leader(&[survivor]).await, survivor);
    let node = cluster.node(survivor);
    assert!(node.propose(seen("after")).await.expect("propose").ok);
    let mut expected = shas.clone();
    expected.push("after".into());
    assert_eq!(history(node), expected);
    let recoveries = node.state().read(|s| s.recoveries.clone());
    assert_eq!(recoveries.len(), 1, "{recoveries:?}");
    assert_eq!(recoveries[0].member, survivor);
    assert_eq!(recoveries[0].from_members, vec![1, 2, 3]);
    assert_eq!(recoveries[0].at, 1234);
    let voters: Vec<u64> = node
        .raft()
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect();
    assert_eq!(voters, vec![survivor]);
    cluster.shutdown().await;
}
