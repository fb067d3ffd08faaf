//! Test applications with readiness, and what the engine runs of them, seen independently of
//! berth: the test lists the engine's containers itself and asks each over HTTP (the private
//! engines' bridges are routed to from the test process, see `netns.rs`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use bollard::Docker;

use super::engines::TEST_IMAGE;

/// An RC of busybox `httpd` replicas serving `/www/index.html` (holding `version`) on 8080,
/// with a readiness probe on `ready_path` every second. `annotations` go on the RC.
pub fn web_rc(
    name: &str,
    replicas: u32,
    version: &str,
    ready_path: &str,
    annotations: &[(&str, &str)],
) -> String {
    web_rc_image(name, replicas, version, ready_path, annotations, TEST_IMAGE)
}

/// [`web_rc`] with another image.
pub fn web_rc_image(
    name: &str,
    replicas: u32,
    version: &str,
    ready_path: &str,
    annotations: &[(&str, &str)],
    image: &str,
) -> String {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    format!(
        "apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
{annotations}spec:
  replicas: {replicas}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        command: [sh, -c, 'mkdir -p /www && echo $VERSION > /www/index.html && exec httpd -f -p 8080 -h /www']
        env:
        - {{name: VERSION, value: \"{version}\"}}
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {{path: {ready_path}, port: 8080}}
          periodSeconds: 1
"
    )
}

/// A managed container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub id: String,
    pub pod: String,
    pub owner: String,
    pub spec_hash: String,
    pub running: bool,
    pub ip: Option<String>,
}

/// The managed containers of `owner` (an RC name; `""` for every one), inspected.
pub async fn containers(docker: &Docker, owner: &str) -> Result<Vec<Running>> {
    let label = if owner.is_empty() {
        "io.berth.managed=true".to_string()
    } else {
        format!("io.berth.owner={owner}")
    };
    let filters: HashMap<&str, Vec<&str>> = [("label", vec![label.as_str()])].into();
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let mut out = Vec::new();
    for c in docker.list_containers(Some(opts)).await? {
        let Some(id) = c.id else { continue };
        let Ok(found) = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
        else {
            continue;
        };
        let labels = found
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if labels.get("io.berth.role").map(String::as_str) == Some("holder") {
            continue;
        }
        let ip = found
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.values().find_map(|e| e.ip_address.clone()))
            .filter(|ip| !ip.is_empty());
        out.push(Running {
            id,
            pod: labels.get("io.berth.pod").cloned().unwrap_or_default(),
            owner: labels.get("io.berth.owner").cloned().unwrap_or_default(),
            spec_hash: labels
                .get("io.berth.spec-hash")
                .cloned()
                .unwrap_or_default(),
            running: found.state.and_then(|s| s.running).unwrap_or(false),
            ip,
        });
    }
    out.sort_by(|a, b| a.pod.cmp(&b.pod));
    Ok(out)
}

/// Does `http://ip:8080/index.html` answer 200, within 300 ms?
pub async fn http_ok(http: &reqwest::Client, ip: &str) -> bool {
    http.get(format!("http://{ip}:8080/index.html"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// How many of `owner`'s containers run and answer over HTTP right now.
pub async fn ready_count(docker: &Docker, http: &reqwest::Client, owner: &str) -> Result<usize> {
    let mut n = 0;
    for c in containers(docker, owner).await? {
        if let (true, Some(ip)) = (c.running, c.ip.as_deref()) {
            if http_ok(http, ip).await {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Waits (up to 60 s) until `owner` has exactly `n` containers, all running.
pub async fn wait_running(docker: &Docker, owner: &str, n: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = containers(docker, owner).await?;
        if list.iter().filter(|c| c.running).count() == n && list.len() == n {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{owner}: wanted {n} running, have {list:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
