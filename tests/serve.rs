//! End to end on one Docker host: Git commits become running containers, and every commit is
//! recorded. Real parts only: a private dockerd per test, a Git repository made with the git
//! CLI, the `berth` binary with Raft on disk, and its HTTP status API.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use serde_json::Value;

use support::berth::{rc_yaml, Setup};
use support::TEST_IMAGE;

fn rc(name: &str, replicas: u32, version: &str) -> String {
    rc_yaml(name, replicas, TEST_IMAGE, version)
}

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {TEST_IMAGE}
    command: [sleep, \"3600\"]
"
    )
}

/// A managed container as the engine reports it, independently of berth's own code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    owner: String,
    pod: String,
    id: String,
    running: bool,
    labels: BTreeMap<String, String>,
}

async fn managed(docker: &Docker) -> Result<Vec<Seen>> {
    let filters: std::collections::HashMap<&str, Vec<&str>> =
        [("label", vec!["io.berth.managed=true"])].into();
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let mut out: Vec<Seen> = docker
        .list_containers(Some(opts))
        .await?
        .into_iter()
        .map(|c| {
            let labels: BTreeMap<String, String> =
                c.labels.unwrap_or_default().into_iter().collect();
            Seen {
                owner: labels.get("io.berth.owner").cloned().unwrap_or_default(),
                pod: labels.get("io.berth.pod").cloned().unwrap_or_default(),
                id: c.id.unwrap_or_default(),
                running: c.state.map(|s| s.to_string()) == Some("running".into()),
                labels,
            }
        })
        .collect();
    out.sort();
    Ok(out)
}

fn ids_of(seen: &[Seen], owner: &str) -> BTreeSet<String> {
    seen.iter()
        .filter(|s| s.owner == owner)
        .map(|s| s.id.clone())
        .collect()
}

/// A private engine, a repository with `web` (2 replicas), `cache` (1) and the Pod `solo`, and
/// berth converged on its first commit.
async fn world() -> Result<(Setup, String)> {
    let files = [
        ("apps/web.yaml", rc("web", 2, "1")),
        ("apps/cache.yaml", rc("cache", 1, "1")),
        ("apps/solo.yaml", pod("solo")),
        ("README.md", "shop manifests\n".to_string()),
    ];
    let w = Setup::start("host-a", &files).await?;
    w.berth.wait_converged(&w.first).await?;
    let sha = w.first.clone();
    Ok((w, sha))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_with_two_rcs_and_a_pod_converges_with_labelled_containers() -> Result<()> {
    let (w, sha) = world().await?;
    let seen = managed(w.engine.docker()).await?;
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(seen.iter().all(|s| s.running));
    assert_eq!(ids_of(&seen, "web").len(), 2);
    assert_eq!(ids_of(&seen, "cache").len(), 1);
    let solo = seen.iter().find(|s| s.pod == "solo").expect("solo pod");
    assert!(
        !solo.labels.contains_key("io.berth.owner"),
        "a bare Pod has no owner label"
    );
    for s in &seen {
        for label in [
            "io.berth.namespace",
            "io.berth.pod",
            "io.berth.container",
            "io.berth.commit",
            "io.berth.spec-hash",
        ] {
            assert!(s.labels.contains_key(label), "{label} missing on {s:?}");
        }
        assert_eq!(s.labels["io.berth.namespace"], "default");
        assert_eq!(s.labels["io.berth.container"], "main");
        assert_eq!(s.labels["io.berth.commit"], sha);
    }
    let status = w.berth.status().await?;
    assert_eq!(status["converged"], true);
    assert_eq!(status["commit"], sha);
    assert_eq!(status["nodes_ready"], 1);
    let commit = w.berth.get(&format!("/api/v1/commits/{sha}")).await?;
    assert_eq!(commit["outcome"], "applied");
    assert_eq!(commit["author"], "Test Operator <operator@example.org>");
    assert!(commit["converged_at"].is_string());
    let plan: Vec<String> = serde_json::from_value(commit["plan"].clone())?;
    let count = |verb: &str| plan.iter().filter(|l| l.starts_with(verb)).count();
    assert_eq!(
        (count("add default/"), count("create default/")),
        (3, 4),
        "three replicas placed, four pods created: {plan:?}"
    );
    let pods = w.berth.get("/api/v1/pods").await?;
    assert_eq!(pods.as_array().map(Vec::len), Some(4));
    assert!(pods
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["phase"] == "Running" && p["ready"] == true));
    let rcs = w.berth.get("/api/v1/replicationcontrollers").await?;
    let web = rcs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web")
        .unwrap();
    assert_eq!(
        (
            web["desired"].as_u64(),
            web["current"].as_u64(),
            web["ready"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    let nodes = w.berth.get("/api/v1/nodes").await?;
    assert_eq!(nodes[0]["ready"], true);
    assert!(nodes[0]["version"].is_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_then_down_creates_and_removes_exactly_the_difference() -> Result<()> {
    let (w, _) = world().await?;
    let before = managed(w.engine.docker()).await?;
    w.repo.write("apps/web.yaml", &rc("web", 4, "1"));
    let up = w.repo.commit("web: 4 replicas")?;
    w.berth.wait_converged(&up).await?;
    let after_up = managed(w.engine.docker()).await?;
    assert_eq!(ids_of(&after_up, "web").len(), 4);
    assert!(
        ids_of(&before, "web").is_subset(&ids_of(&after_up, "web")),
        "existing replicas kept"
    );
    assert_eq!(ids_of(&after_up, "cache"), ids_of(&before, "cache"));
    assert_eq!(ids_of(&after_up, ""), ids_of(&before, ""));

    w.repo.write("apps/web.yaml", &rc("web", 1, "1"));
    let down = w.repo.commit("web: 1 replica")?;
    w.berth.wait_converged(&down).await?;
    let after_down = managed(w.engine.docker()).await?;
    assert_eq!(ids_of(&after_down, "web").len(), 1);
    assert!(
        ids_of(&after_down, "web").is_subset(&ids_of(&before, "web")),
        "the oldest replica stays"
    );
    assert_eq!(ids_of(&after_down, "cache"), ids_of(&before, "cache"));
    assert_eq!(after_down.len(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_rc_replaces_only_its_containers_and_revert_restores_it() -> Result<()> {
    let (w, _) = world().await?;
    let before = managed(w.engine.docker()).await?;
    w.repo.write("apps/web.yaml", &rc("web", 2, "2"));
    let change = w.repo.commit("web: VERSION=2")?;
    w.berth.wait_converged(&change).await?;
    let changed = managed(w.engine.docker()).await?;
    assert_eq!(ids_of(&changed, "web").len(), 2);
    assert!(
        ids_of(&changed, "web").is_disjoint(&ids_of(&before, "web")),
        "web replaced"
    );
    assert_eq!(
        ids_of(&changed, "cache"),
        ids_of(&before, "cache"),
        "cache untouched"
    );
    assert_eq!(ids_of(&changed, ""), ids_of(&before, ""), "solo untouched");
    let web_pods: BTreeSet<String> = changed
        .iter()
        .filter(|s| s.owner == "web")
        .map(|s| s.pod.clone())
        .collect();
    let old_pods: BTreeSet<String> = before
        .iter()
        .filter(|s| s.owner == "web")
        .map(|s| s.pod.clone())
        .collect();
    assert!(
        web_pods.is_disjoint(&old_pods),
        "a rolling update brings new replicas (new names) and retires the old ones"
    );

    let revert = w.repo.revert(&change)?;
    w.berth.wait_converged(&revert).await?;
    let reverted = managed(w.engine.docker()).await?;
    let hash = |seen: &[Seen]| -> BTreeSet<String> {
        seen.iter()
            .filter(|s| s.owner == "web")
            .map(|s| s.labels["io.berth.spec-hash"].clone())
            .collect()
    };
    assert_eq!(hash(&reverted), hash(&before), "the old spec is back");
    assert_eq!(ids_of(&reverted, "cache"), ids_of(&before, "cache"));
    assert_eq!(ids_of(&reverted, ""), ids_of(&before, ""));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_commit_is_rejected_whole_and_the_next_valid_one_applies() -> Result<()> {
    let (w, first) = world().await?;
    let before = managed(w.engine.docker()).await?;
    // One valid change (web to 3 replicas) next to an invalid file: nothing may be applied.
    w.repo
        .write("apps/web.yaml", &rc("web", 3, "1"))
        .write("apps/broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: main\n    imagee: x\n");
    let bad = w.repo.commit("broken")?;
    let record = w.berth.wait_commit(&bad, &["rejected"]).await?;
    let errors: Vec<String> = serde_json::from_value(record["errors"].clone())?;
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("apps/broken.yaml:4:9: metadata.name:")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("imagee: unknown field")),
        "{errors:?}"
    );
    let status = w.berth.status().await?;
    assert_eq!(
        status["commit"], first,
        "the desired state is still the first commit"
    );
    assert_eq!(
        managed(w.engine.docker()).await?,
        before,
        "nothing changed in Docker"
    );

    w.repo.remove("apps/broken.yaml");
    let fixed = w.repo.commit("fix")?;
    w.berth.wait_converged(&fixed).await?;
    assert_eq!(ids_of(&managed(w.engine.docker()).await?, "web").len(), 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_and_stopped_containers_are_healed_and_unmanaged_ones_left_alone() -> Result<()> {
    let (w, _) = world().await?;
    let docker = w.engine.docker();
    // An operator's own container on the same host.
    let body = bollard::models::ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: Some([("io.berth.pod".to_string(), "web-fake".to_string())].into()),
        ..Default::default()
    };
    let opts = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name("operator-own")
        .build();
    let own = docker.create_container(Some(opts), body).await?.id;
    docker
        .start_container(
            &own,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;

    let before = managed(docker).await?;
    let victim = before.iter().find(|s| s.owner == "web").unwrap().clone();
    docker
        .remove_container(
            &victim.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await?;
    let healed = wait_until(|| async {
        let now = managed(docker).await.ok()?;
        (ids_of(&now, "web").len() == 2
            && now.iter().all(|s| s.running)
            && !ids_of(&now, "web").contains(&victim.id))
        .then_some(now)
    })
    .await?;
    assert!(
        healed.iter().any(|s| s.pod == victim.pod),
        "the replica keeps its name"
    );
    assert_eq!(ids_of(&healed, "cache"), ids_of(&before, "cache"));

    let stopped = healed.iter().find(|s| s.owner == "cache").unwrap().clone();
    docker
        .stop_container(
            &stopped.id,
            Some(StopContainerOptionsBuilder::default().t(0).build()),
        )
        .await?;
    wait_until(|| async {
        let now = managed(docker).await.ok()?;
        now.iter()
            .any(|s| s.id == stopped.id && s.running)
            .then_some(())
    })
    .await?;

    let own_state = docker
        .inspect_container(
            &own,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await?;
    assert_eq!(
        own_state.state.and_then(|s| s.running),
        Some(true),
        "unmanaged container untouched"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_after_sigterm_and_kill9_keep_history_and_recreate_nothing() -> Result<()> {
    let (mut w, first) = world().await?;
    w.repo.write("apps/web.yaml", &rc("web", 3, "1"));
    let second = w.repo.commit("web: 3")?;
    w.berth.wait_converged(&second).await?;
    let before = managed(w.engine.docker()).await?;
    let history = w.berth.get("/api/v1/commits").await?;

    w.berth.terminate().await?;
    let log = w.berth.log_text();
    assert!(
        !log.contains(" ERROR "),
        "a clean shutdown logs no error:\n{log}"
    );
    w.berth.restart().await?;
    // The restarted process has looked at the host, so "nothing recreated" means something.
    w.berth.wait_in_sync(&second).await?;
    assert_eq!(
        w.berth.get("/api/v1/commits").await?,
        history,
        "history intact after SIGTERM"
    );
    assert_eq!(
        managed(w.engine.docker()).await?,
        before,
        "no container recreated"
    );

    w.berth.kill9();
    w.berth.restart().await?;
    w.berth.wait_in_sync(&second).await?;
    assert_eq!(
        w.berth.get("/api/v1/commits").await?,
        history,
        "history intact after kill -9"
    );
    assert_eq!(
        managed(w.engine.docker()).await?,
        before,
        "no container recreated"
    );
    let commits: Vec<Value> = serde_json::from_value(history)?;
    assert_eq!(
        commits
            .iter()
            .map(|c| c["sha"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![second.as_str(), first.as_str()]
    );

    // Reconciling resumed: a new commit still applies.
    w.repo.write("apps/web.yaml", &rc("web", 1, "1"));
    let third = w.repo.commit("web: 1")?;
    w.berth.wait_converged(&third).await?;
    assert_eq!(ids_of(&managed(w.engine.docker()).await?, "web").len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_outage_removes_nothing_and_converges_after() -> Result<()> {
    let (mut w, first) = world().await?;
    let before = managed(w.engine.docker()).await?;
    w.engine.stop().await?;
    w.berth
        .wait_for("node not ready", |s| {
            s["nodes_ready"] == 0 && s["in_sync"] == false
        })
        .await?;
    assert_eq!(
        w.berth.status().await?["converged"],
        true,
        "convergence is a fact of the commit's history: a host going away does not undo it"
    );
    let nodes = w.berth.get("/api/v1/nodes").await?;
    assert_eq!(nodes[0]["ready"], false);
    assert!(nodes[0]["error"].is_string());
    // A commit while the host is away is accepted but waits for the host.
    w.repo.write("apps/cache.yaml", &rc("cache", 2, "1"));
    let second = w.repo.commit("cache: 2")?;
    w.berth
        .wait_for("second commit accepted", |s| s["commit"] == second)
        .await?;
    assert_eq!(w.berth.status().await?["commit"], second);

    w.engine.start().await?;
    w.berth.wait_converged(&second).await?;
    let after = managed(w.engine.docker()).await?;
    assert_eq!(ids_of(&after, "cache").len(), 2);
    assert!(
        ids_of(&before, "web").is_subset(&ids_of(&after, "web")),
        "nothing was removed while the host was away"
    );
    assert_ne!(first, second);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_changes_no_manifest_is_recorded_and_touches_nothing() -> Result<()> {
    let (w, _) = world().await?;
    let before = managed(w.engine.docker()).await?;
    w.repo
        .write("README.md", "shop manifests, now documented\n");
    let docs = w.repo.commit("docs only")?;
    let record = w.berth.wait_commit(&docs, &["applied"]).await?;
    assert_eq!(record["unchanged"], true);
    w.berth.wait_converged(&docs).await?;
    assert_eq!(managed(w.engine.docker()).await?, before);
    Ok(())
}

/// Polls `check` every 100 ms for up to 60 s.
async fn wait_until<T, F, Fut>(check: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("condition not met within 60 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
