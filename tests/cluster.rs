//! A controller cluster end to end: three real `berth serve` processes on loopback forming one
//! Raft cluster over HTTP, a real Git repository and a real Docker engine. Members are killed
//! (`kill -9`), stopped (SIGTERM) and frozen (SIGSTOP, a partition as its peers see it); the
//! engine's event stream shows whether anyone still acts.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use bollard::query_parameters::{
    EventsOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::TryStreamExt;

use support::apps::{containers, wait_running};
use support::berth::{bare_pod, rc, rc_yaml, Berth, Repo};
use support::cluster::Cluster;
use support::{start_engine, TEST_IMAGE};

fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Container effects (create, start, stop, kill, destroy) the engine recorded since `since`,
/// as "action name".
async fn effects_since(docker: &Docker, since: &str) -> Result<Vec<String>> {
    let until = now();
    let filters = HashMap::from([
        ("type", vec!["container"]),
        ("event", vec!["create", "start", "stop", "kill", "destroy"]),
    ]);
    let options = EventsOptionsBuilder::new()
        .since(since)
        .until(&until)
        .filters(&filters)
        .build();
    let events: Vec<_> = docker.events(Some(options)).try_collect().await?;
    Ok(events
        .into_iter()
        .map(|e| {
            let name = e
                .actor
                .and_then(|a| a.attributes)
                .and_then(|a| a.get("name").cloned())
                .unwrap_or_default();
            format!("{} {name}", e.action.unwrap_or_default())
        })
        .collect())
}

/// Removes one running container of `owner` behind berth's back; returns its pod name.
async fn remove_one(docker: &Docker, owner: &str) -> Result<String> {
    let victim = containers(docker, owner)
        .await?
        .into_iter()
        .next()
        .context("no container to remove")?;
    docker
        .remove_container(
            &victim.id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await?;
    Ok(victim.pod)
}

async fn three(files: &[(&str, String)]) -> Result<(support::Engine, Cluster, String)> {
    let engine = start_engine("c1").await?;
    let repo = Repo::new()?;
    for (path, text) in files {
        repo.write(path, text);
    }
    let first = repo.commit("first deploy")?;
    let cluster = Cluster::start(3, repo, &[format!("a={}", engine.endpoint)], &[]).await?;
    Ok((engine, cluster, first))
}

/// (a) The cluster forms once, and every member agrees on the leader and the commit.
#[tokio::test(flavor = "multi_thread")]
async fn three_members_form_one_cluster_and_agree_on_leader_and_commit() -> Result<()> {
    let (engine, cluster, first) = three(&[("apps/web.yaml", rc("web", 3))]).await?;
    cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    // Asked again: on a loaded machine a late heartbeat can move the lead meanwhile.
    let leader = cluster.wait_leader().await?;
    for s in cluster.statuses().await {
        let s = s.context("a member stopped answering")?;
        assert_eq!(s["leader"], leader as u64 + 1, "{s}");
        assert_eq!(s["commit"], first.as_str(), "{s}");
        assert_eq!(s["converged"], true, "{s}");
        assert_eq!(s["stale"], false, "{s}");
        assert_eq!(s["cluster"], "berth", "{s}");
    }
    wait_running(engine.docker(), "web", 3).await?;
    for i in 0..3 {
        assert_eq!(
            cluster.history(i).await?,
            vec![(first.clone(), "applied".to_string())],
            "member {}",
            i + 1
        );
    }
    // Membership through the admin command, from a follower: it is passed on to the leader.
    let follower = (leader + 1) % 3;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "cluster",
            "list",
            "--member",
            &cluster.members[follower].addr,
        ])
        .arg("--cluster-token-file")
        .arg(cluster.token_path())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("voter")).count(),
        3,
        "{text}"
    );
    Ok(())
}

/// (b) `kill -9` of the leader in the middle of a 20-replica rolling update: a new leader
/// finishes it, the containers are exactly the desired ones, and the history has each commit
/// once, in order, on every member.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_leader_finishes_the_rollout_of_a_killed_one() -> Result<()> {
    let (engine, mut cluster, first) = three(&[("apps/web.yaml", rc("web", 20))]).await?;
    cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    wait_running(engine.docker(), "web", 20).await?;
    let old_hash = containers(engine.docker(), "web").await?[0]
        .spec_hash
        .clone();

    cluster
        .repo
        .write("apps/web.yaml", &rc_yaml("web", 20, TEST_IMAGE, "2"));
    let second = cluster.repo.commit("version 2")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = containers(engine.docker(), "web").await?;
        let new = list.iter().filter(|c| c.spec_hash != old_hash).count();
        if new >= 3 {
            ensure!(
                new < 20,
                "the rollout finished before the leader could be killed"
            );
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the rollout did not start: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = cluster.wait_leader().await?;
    cluster.members[leader].kill9();
    let new_leader = cluster.wait_leader().await?;
    assert_ne!(new_leader, leader);
    // About 2 s a replica (surge one, stop the old one: its grace is 1 s), so up to 40 s.
    cluster.members[new_leader]
        .wait_converged_within(&second, Duration::from_secs(150))
        .await?;

    let list = containers(engine.docker(), "web").await?;
    let pods: BTreeSet<&str> = list.iter().map(|c| c.pod.as_str()).collect();
    assert_eq!(list.len(), 20, "{list:?}");
    assert_eq!(pods.len(), 20, "a pod twice: {list:?}");
    assert!(
        list.iter().all(|c| c.running && c.spec_hash != old_hash),
        "{list:?}"
    );

    cluster.members[leader].restart().await?;
    cluster.wait_converged_everywhere(&second).await?;
    for i in 0..3 {
        let shas: Vec<String> = cluster
            .history(i)
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            shas,
            vec![second.clone(), first.clone()],
            "member {}",
            i + 1
        );
    }
    Ok(())
}

/// (c) A follower killed while two commits land catches up when restarted and serves the
/// same history.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_follower_catches_up_and_serves_the_same_history() -> Result<()> {
    let (_engine, mut cluster, first) = three(&[("apps/web.yaml", rc("web", 2))]).await?;
    let leader = cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    let follower = (leader + 1) % 3;
    cluster.members[follower].kill9();

    cluster.repo.write("apps/web.yaml", &rc("web", 3));
    let second = cluster.repo.commit("three")?;
    cluster.members[leader].wait_converged(&second).await?;
    cluster.repo.write("apps/api.yaml", &rc("api", 1));
    let third = cluster.repo.commit("api")?;
    cluster.members[leader].wait_converged(&third).await?;

    cluster.members[follower].restart().await?;
    cluster.members[follower].wait_converged(&third).await?;
    let on_leader = cluster.history(leader).await?;
    assert_eq!(on_leader.len(), 3, "{on_leader:?}");
    assert_eq!(cluster.history(follower).await?, on_leader);
    let s = cluster.members[follower].status().await?;
    assert_eq!(s["raft"]["behind"], 0, "{s}");
    Ok(())
}

/// (d) Two of three stopped: the last reports no quorum, serves its state marked stale and
/// makes no Docker call; one back, and work resumes.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_quorum_the_last_member_serves_stale_status_and_acts_on_nothing() -> Result<()> {
    let (engine, mut cluster, first) = three(&[("apps/web.yaml", rc("web", 3))]).await?;
    let leader = cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    wait_running(engine.docker(), "web", 3).await?;
    // Stop the leader and one follower: the one left was a follower.
    let last = (leader + 2) % 3;
    for i in (0..3).filter(|i| *i != last) {
        cluster.members[i].terminate().await?;
    }
    let alone = &cluster.members[last];
    let s = alone
        .wait_for("the last member to say it is stale", |s| {
            s["stale"] == true && s["is_leader"] == false
        })
        .await?;
    assert_eq!(
        s["commit"],
        first.as_str(),
        "it still serves what it knew: {s}"
    );

    let since = now();
    remove_one(engine.docker(), "web").await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let effects = effects_since(engine.docker(), &since).await?;
    assert!(
        effects
            .iter()
            .all(|e| !e.starts_with("create") && !e.starts_with("start")),
        "a member without quorum acted: {effects:?}"
    );
    assert_eq!(containers(engine.docker(), "web").await?.len(), 2);
    let s = alone.status().await?;
    assert_eq!(s["stale"], true, "{s}");

    let back = (last + 1) % 3;
    cluster.members[back].restart().await?;
    cluster.wait_leader().await?;
    wait_running(engine.docker(), "web", 3).await?;
    Ok(())
}

/// (e) A leader cut off from its peers (both frozen with SIGSTOP) stops acting within the
/// election timeout, and the cluster acts again once they are back.
#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_leader_stops_acting_within_the_election_timeout() -> Result<()> {
    let (engine, cluster, first) = three(&[("apps/web.yaml", rc("web", 3))]).await?;
    cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    wait_running(engine.docker(), "web", 3).await?;
    // Asked again right before the cut: a late heartbeat can move the lead meanwhile.
    let leader = cluster.wait_leader().await?;
    let peers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let cut = Instant::now();
    for &i in &peers {
        cluster.signal(i, "STOP");
    }
    let s = cluster.members[leader]
        .wait_for("the cut-off leader to stop acting", |s| {
            s["is_leader"] == false
        })
        .await?;
    let fenced = cut.elapsed();
    eprintln!("leader fenced {fenced:?} after its peers froze");
    assert_eq!(s["stale"], true, "{s}");
    // The fence is the election timeout (1 s) after the last acknowledgement; the bound here
    // only allows for this status poll and a loaded machine.
    assert!(fenced < Duration::from_secs(3), "fenced after {fenced:?}");

    let since = now();
    remove_one(engine.docker(), "web").await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let effects = effects_since(engine.docker(), &since).await?;
    assert!(
        effects
            .iter()
            .all(|e| !e.starts_with("create") && !e.starts_with("start")),
        "the cut-off leader acted: {effects:?}"
    );

    for &i in &peers {
        cluster.signal(i, "CONT");
    }
    cluster.wait_leader().await?;
    wait_running(engine.docker(), "web", 3).await?;
    Ok(())
}

/// (f) Raft requests without the cluster token, or with a wrong one, are refused; so is the
/// admin command with a wrong token.
#[tokio::test(flavor = "multi_thread")]
async fn raft_requests_without_the_right_token_are_refused() -> Result<()> {
    let (_engine, cluster, _first) = three(&[("apps/web.yaml", rc("web", 1))]).await?;
    cluster.wait_leader().await?;
    let http = reqwest::Client::new();
    let url = format!("http://{}/raft/append", cluster.members[0].addr);
    let none = http.post(&url).json(&serde_json::json!({})).send().await?;
    assert_eq!(none.status(), 401);
    let wrong = http
        .post(&url)
        .bearer_auth("not-the-token-0123456789abcdef")
        .json(&serde_json::json!({}))
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let members = http
        .get(format!(
            "http://{}/raft/admin/members",
            cluster.members[0].addr
        ))
        .send()
        .await?;
    assert_eq!(members.status(), 401);

    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad-token");
    std::fs::write(&bad, "not-the-token-0123456789abcdef")?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "cluster",
            "remove",
            "2",
            "--member",
            &cluster.members[0].addr,
        ])
        .arg("--cluster-token-file")
        .arg(&bad)
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("refused the cluster token"), "{err}");
    // Nothing changed.
    let s = cluster.members[0].status().await?;
    assert!(s["leader"].is_u64(), "{s}");
    Ok(())
}

/// Container ids of pod `pod` by cluster label.
async fn pods_by_cluster(docker: &Docker, pod: &str) -> Result<Vec<(String, String)>> {
    let label = format!("io.berth.pod={pod}");
    let filters: HashMap<&str, Vec<&str>> = [("label", vec![label.as_str()])].into();
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?;
    let mut out: Vec<(String, String)> = list
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .and_then(|l| l.get("io.berth.role"))
                .is_none_or(|r| r != "holder")
        })
        .map(|c| {
            let cluster = c
                .labels
                .and_then(|l| l.get("io.berth.cluster").cloned())
                .unwrap_or_default();
            (cluster, c.id.unwrap_or_default())
        })
        .collect();
    out.sort();
    Ok(out)
}

/// (h) Two clusters with different names share an engine: both run a bare Pod of the same
/// name, and one pruning everything leaves the other's containers alone.
#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_on_one_engine_leave_each_other_alone() -> Result<()> {
    let engine = start_engine("shared").await?;
    let node = [format!("a={}", engine.endpoint)];
    let (staging_repo, prod_repo) = (Repo::new()?, Repo::new()?);
    staging_repo.write("web.yaml", &bare_pod("web"));
    prod_repo.write("web.yaml", &bare_pod("web"));
    let (s1, p1) = (staging_repo.commit("web")?, prod_repo.commit("web")?);
    let (sd, pd) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let staging = Berth::start_with(
        staging_repo.path(),
        sd.path(),
        &node,
        &["--cluster-name", "staging"],
    )
    .await?;
    let production = Berth::start_with(
        prod_repo.path(),
        pd.path(),
        &node,
        &["--cluster-name", "production"],
    )
    .await?;
    staging.wait_converged(&s1).await?;
    production.wait_converged(&p1).await?;
    let both = pods_by_cluster(engine.docker(), "web").await?;
    let names: Vec<&str> = both.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, vec!["production", "staging"], "{both:?}");
    let prod_id = both[0].1.clone();

    // Staging removes everything: its pod goes, production's stays (same container).
    staging_repo.remove("web.yaml");
    staging_repo.write("README", "nothing deployed\n");
    let s2 = staging_repo.commit("prune all")?;
    staging.wait_in_sync(&s2).await?;
    let left = pods_by_cluster(engine.docker(), "web").await?;
    assert_eq!(left, vec![("production".to_string(), prod_id)], "{left:?}");
    let s = production.status().await?;
    assert_eq!(s["in_sync"], true, "{s}");
    Ok(())
}

/// (i) A member started with another host list says so and does not lead: the replicas stay
/// where they are, also when the leader dies and a new one is elected.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_with_another_host_list_reports_it_and_moves_nothing() -> Result<()> {
    let engine = start_engine("c1").await?;
    let repo = Repo::new()?;
    repo.write("apps/web.yaml", &rc("web", 4));
    let first = repo.commit("first deploy")?;
    let node = format!("a={}", engine.endpoint);
    let mut cluster = Cluster::start(3, repo, std::slice::from_ref(&node), &[]).await?;
    let leader = cluster.wait_leader().await?;
    cluster.wait_converged_everywhere(&first).await?;
    wait_running(engine.docker(), "web", 4).await?;
    let before: BTreeSet<String> = containers(engine.docker(), "web")
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();

    // A follower restarted with an extra host (one that does not even exist).
    let odd = (leader + 1) % 3;
    cluster.members[odd].terminate().await?;
    cluster.members[odd]
        .restart_with(&["--node", "b=unix:///nonexistent/docker.sock"])
        .await?;
    let s = cluster.members[odd]
        .wait_for("the odd member to report its settings", |s| {
            s["settings"]["agree"] == false && s["leader"].is_u64()
        })
        .await?;
    let differs = &s["settings"]["differs"];
    assert_eq!(differs[0]["name"], "nodes", "{s}");
    assert!(
        differs[0]["here"]
            .as_str()
            .unwrap_or_default()
            .contains("b=unix"),
        "{s}"
    );

    // The leader dies: the member that agrees leads, never the odd one.
    cluster.members[leader].kill9();
    let new_leader = cluster.wait_leader().await?;
    assert_ne!(
        new_leader, odd,
        "the member with other settings was elected"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: BTreeSet<String> = containers(engine.docker(), "web")
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(before, after, "replicas moved");

    // Adopting the odd member's settings makes them the cluster's, recorded with who.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "cluster",
            "settings",
            "adopt",
            "--member",
            &cluster.members[odd].addr,
        ])
        .arg("--cluster-token-file")
        .arg(cluster.token_path())
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = cluster.members[odd]
        .wait_for("the adopted settings", |s| s["settings"]["agree"] == true)
        .await?;
    let changes = s["settings"]["changes"].as_array().context("changes")?;
    assert_eq!(
        changes.last().context("a change")?["by"],
        odd as u64 + 1,
        "{s}"
    );
    Ok(())
}
