//! Placement across three real Docker engines (issue 10, item 8 a–e): spread, `nodeSelector`,
//! `berth.io/max-per-node`, configured capacities and host ports. One `berth serve` drives
//! three private engines through a sequence of commits, each scenario checked both in the API
//! (`/api/v1/pods`, `/api/v1/nodes`) and on the engines themselves.
//!
//! One test function on purpose: starting three engines is most of the cost, so the five
//! scenarios share them (about a minute on a 2-core machine).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use serde_json::Value;

use support::apps::containers;
use support::berth::{Berth, Repo};
use support::{start_engines, TEST_IMAGE};

/// An RC of `sleep` containers asking for `memory_mi` of memory, with optional placement.
struct Rc<'a> {
    name: &'a str,
    replicas: u32,
    memory_mi: u32,
    node_selector: Option<(&'a str, &'a str)>,
    annotations: &'a [(&'a str, &'a str)],
    host_port: Option<u16>,
}

impl<'a> Rc<'a> {
    fn new(name: &'a str, replicas: u32) -> Rc<'a> {
        Rc {
            name,
            replicas,
            memory_mi: 16,
            node_selector: None,
            annotations: &[],
            host_port: None,
        }
    }

    fn yaml(&self) -> String {
        let Rc {
            name,
            replicas,
            memory_mi,
            ..
        } = self;
        let annotations: String = self
            .annotations
            .iter()
            .map(|(k, v)| format!("\n    {k}: \"{v}\""))
            .collect();
        let annotations = if annotations.is_empty() {
            String::new()
        } else {
            format!("\n  annotations:{annotations}")
        };
        let selector = self
            .node_selector
            .map(|(k, v)| format!("\n      nodeSelector: {{{k}: {v}}}"))
            .unwrap_or_default();
        let ports = self
            .host_port
            .map(|p| format!("\n        ports: [{{containerPort: 80, hostPort: {p}}}]"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}{annotations}
spec:
  replicas: {replicas}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1{selector}
      containers:
      - name: main
        image: {TEST_IMAGE}
        command: [sleep, \"3600\"]{ports}
        resources:
          requests: {{cpu: 50m, memory: {memory_mi}Mi}}
"
        )
    }
}

/// The pods of RC `owner` in the API, by host ("" for pending).
async fn pods_by_host(berth: &Berth, owner: &str) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for p in pods_of(berth, owner).await? {
        *out.entry(p["node"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    Ok(out)
}

async fn pods_of(berth: &Berth, owner: &str) -> Result<Vec<Value>> {
    let pods = berth.get("/api/v1/pods").await?;
    Ok(pods
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["owner"] == owner)
        .cloned()
        .collect())
}

/// Polls the API until `check` holds for the pods of `owner` (60 s at most).
async fn wait_pods(
    berth: &Berth,
    owner: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pods = pods_of(berth, owner).await?;
        if check(&pods) {
            return Ok(pods);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}: {pods:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the berth CLI; its standard output, or an error with both outputs.
fn cli(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "berth {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

fn node_count(pods: &[Value], node: &str) -> usize {
    pods.iter().filter(|p| p["node"] == node).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_placed_by_spread_selector_anti_affinity_capacity_and_host_ports() -> Result<()>
{
    let started = Instant::now();
    let engines = start_engines(3).await?;
    let names = ["h0", "h1", "h2"];
    let nodes: Vec<String> = names
        .iter()
        .zip(&engines)
        .map(|(n, e)| format!("{n}={}", e.endpoint))
        .collect();
    let mut extra: Vec<String> = Vec::new();
    for (n, e) in names.iter().zip(&engines) {
        extra.push("--node-capacity".into());
        extra.push(format!("{n}=cpu=2,memory=256Mi"));
        extra.push("--node-advertise".into());
        extra.push(format!("{n}={}", e.advertise_ip()));
    }
    for n in ["h0", "h1"] {
        extra.push("--node-label".into());
        extra.push(format!("{n}=disk=ssd"));
    }
    let repo = Repo::new()?;
    repo.write("README.md", "placement\n");
    let empty = repo.commit("empty")?;
    let data = tempfile::tempdir()?;
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let berth = Berth::start_with(repo.path(), data.path(), &nodes, &extra).await?;
    berth.wait_converged(&empty).await?;
    let nodes_view = berth.get("/api/v1/nodes").await?;
    ensure!(
        nodes_view[0]["labels"]["disk"] == "ssd"
            && nodes_view[2]["labels"] == serde_json::json!({}),
        "labels from --node-label: {nodes_view}"
    );
    ensure!(
        nodes_view[0]["allocatable"]["memory"] == "256Mi",
        "--node-capacity overrides the engine: {nodes_view}"
    );

    // a) six replicas, two per host.
    repo.write("web.yaml", &Rc::new("web", 6).yaml());
    let a = repo.commit("web: 6 replicas")?;
    berth.wait_converged(&a).await?;
    let web = pods_by_host(&berth, "web").await?;
    ensure!(
        web == BTreeMap::from([("h0".into(), 2), ("h1".into(), 2), ("h2".into(), 2)]),
        "a) spread: {web:?}"
    );
    for e in &engines {
        ensure!(containers(e.docker(), "web").await?.len() == 2);
    }
    eprintln!("a) spread 2/2/2 at {:?}", started.elapsed());

    // b) a nodeSelector sends replicas only to the labelled hosts.
    let mut db = Rc::new("db", 4);
    db.node_selector = Some(("disk", "ssd"));
    repo.write("db.yaml", &db.yaml());
    let b = repo.commit("db: on ssd hosts")?;
    berth.wait_converged(&b).await?;
    let on = pods_by_host(&berth, "db").await?;
    ensure!(
        on == BTreeMap::from([("h0".into(), 2), ("h1".into(), 2)]),
        "b) nodeSelector: {on:?}"
    );
    ensure!(containers(engines[2].docker(), "db").await?.is_empty());
    eprintln!("b) nodeSelector at {:?}", started.elapsed());

    // c) max-per-node 1, four replicas on three hosts: one pending, with every host's reason.
    let mut uniq = Rc::new("uniq", 4);
    uniq.annotations = &[("berth.io/max-per-node", "1")];
    // e) a fixed hostPort, four replicas on three hosts: one pending, naming the holder.
    let mut port = Rc::new("port", 4);
    port.host_port = Some(18080);
    repo.write("uniq.yaml", &uniq.yaml())
        .write("port.yaml", &port.yaml());
    repo.commit("uniq and port: more replicas than hosts")?;
    let pods = wait_pods(&berth, "uniq", "c) one uniq replica pending", |p| {
        p.len() == 4 && node_count(p, "") == 1
    })
    .await?;
    for n in names {
        ensure!(node_count(&pods, n) == 1, "c) one per host: {pods:#?}");
    }
    let pending = pods.iter().find(|p| p["node"] == "").unwrap();
    ensure!(pending["phase"] == "Pending");
    let reasons: Vec<&str> = pending["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        reasons
            == [
                "h0: max-per-node 1: host already runs 1 of this RC",
                "h1: max-per-node 1: host already runs 1 of this RC",
                "h2: max-per-node 1: host already runs 1 of this RC"
            ],
        "c) reasons: {reasons:?}"
    );
    let name = pending["name"].as_str().unwrap_or_default();
    let explained = berth
        .get(&format!("/api/v1/pods/default/{name}/placement"))
        .await?;
    ensure!(
        explained["pending"] == true && explained["hosts"].as_array().map(Vec::len) == Some(3),
        "c) describe: {explained}"
    );
    let server = format!("http://{}", berth.addr);
    let described = cli(&["describe", "pod", name, "--server", &server])?;
    ensure!(
        described.contains("pending, no host fits")
            && described.contains("h2")
            && described.contains("max-per-node 1: host already runs 1 of this RC"),
        "c) berth describe pod: {described}"
    );
    let listed = cli(&["get", "pods", "--server", &server])?;
    ensure!(
        listed.contains("pending: max-per-node 1: host already runs 1 of this RC (3 hosts)"),
        "c) berth get pods: {listed}"
    );
    let nodes_table = cli(&["get", "nodes", "--server", &server])?;
    ensure!(
        nodes_table.contains("disk=ssd") && nodes_table.contains("/256Mi"),
        "berth get nodes: {nodes_table}"
    );
    eprintln!("c) max-per-node at {:?}", started.elapsed());

    let pods = wait_pods(&berth, "port", "e) one port replica pending", |p| {
        p.len() == 4
            && node_count(p, "") == 1
            && p.iter().filter(|x| x["ready"] == true).count() == 3
    })
    .await?;
    let pending = pods.iter().find(|p| p["node"] == "").unwrap();
    let reasons = pending["reasons"].to_string();
    ensure!(
        reasons.contains("h0: hostPort 18080 in use by default/port-")
            && reasons.contains("h2: hostPort 18080 in use by default/port-"),
        "e) reasons: {reasons}"
    );
    for e in &engines {
        ensure!(
            containers(e.docker(), "port").await?.len() == 1,
            "e) one per host"
        );
    }
    eprintln!("e) hostPort at {:?}", started.elapsed());

    // d) capacities: 256Mi per host. "big" asks for 200Mi a replica: with web, db, uniq and
    // port placed, none fits; scaling web down and removing the others makes room.
    let mut big = Rc::new("big", 3);
    big.memory_mi = 200;
    repo.write("big.yaml", &big.yaml());
    repo.commit("big: does not fit yet")?;
    let pods = wait_pods(&berth, "big", "d) big pending", |p| {
        p.len() == 3 && node_count(p, "") == 3
    })
    .await?;
    let reasons = pods[0]["reasons"].to_string();
    ensure!(
        reasons.contains("insufficient memory: requests 200Mi, free"),
        "d) reasons: {reasons}"
    );
    repo.write("web.yaml", &Rc::new("web", 0).yaml())
        .remove("db.yaml")
        .remove("uniq.yaml")
        .remove("port.yaml");
    let d = repo.commit("make room")?;
    berth.wait_converged(&d).await?;
    let big = pods_by_host(&berth, "big").await?;
    ensure!(
        big == BTreeMap::from([("h0".into(), 1), ("h1".into(), 1), ("h2".into(), 1)]),
        "d) placed once room appeared: {big:?}"
    );
    eprintln!("d) capacity at {:?}", started.elapsed());
    eprintln!("placement: whole test {:?}", started.elapsed());
    Ok(())
}
