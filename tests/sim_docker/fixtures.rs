//! Fixtures of `tests/sim_docker.rs`: a simulator in a temp dir, bollard clients built as
//! berth builds them, a raw client for the control socket, and polling with a deadline.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bollard::models::{ContainerCreateBody, EventMessage};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    StartContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sim::{Sim, SimConfig};

pub const TEST_IMAGE: &str = "berth-test/busybox:1";
/// Upper bound for what takes milliseconds against the simulation.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A simulator of `hosts` hosts in a temp dir (kept alive by the returned guard).
pub async fn simulator(hosts: usize) -> Result<(TempDir, Sim)> {
    let dir = tempfile::tempdir()?;
    let sim = Sim::start(SimConfig::new(dir.path(), hosts)).await?;
    Ok((dir, sim))
}

/// A bollard client for host `n`, built as berth builds it: newest API, then negotiated.
pub async fn client(sim: &Sim, n: usize) -> Result<Docker> {
    let path = sim.host(n).socket.display().to_string();
    let docker = Docker::connect_with_unix(&path, 5, API_DEFAULT_VERSION)?;
    Ok(docker.negotiate_version().await?)
}

pub fn body(labels: &[(&str, &str)]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

pub async fn create(docker: &Docker, name: &str, body: ContainerCreateBody) -> Result<String> {
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    Ok(docker.create_container(Some(options), body).await?.id)
}

pub async fn start(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
}

pub async fn kill(docker: &Docker, id: &str, signal: &str) -> Result<(), bollard::errors::Error> {
    let options = KillContainerOptionsBuilder::new().signal(signal).build();
    docker.kill_container(id, Some(options)).await
}

pub async fn state(docker: &Docker, id: &str) -> Result<bollard::models::ContainerState> {
    let found = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await?;
    found.state.context("inspect without State")
}

pub fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Events of host `n`'s engine through bollard, forwarded by a task once subscribed: bollard
/// sends the request only when the stream is first polled.
pub async fn subscribe(
    sim: &Sim,
    n: usize,
    docker: &Docker,
    options: Option<bollard::query_parameters::EventsOptions>,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<Result<EventMessage, bollard::errors::Error>>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut stream = docker.events(options);
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let host = sim.host(n).clone();
    eventually("the event subscription", || async {
        Ok(host.engine().events.is_watched().then_some(()))
    })
    .await?;
    Ok(rx)
}

/// One request to the control socket; returns the status and the JSON answer.
pub async fn control(sim: &Sim, method: &str, path: &str) -> Result<(u16, serde_json::Value)> {
    let mut stream = tokio::net::UnixStream::connect(sim.control_socket()).await?;
    let request = format!("{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, json) = text.split_once("\r\n\r\n").context("an HTTP answer")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("a status")?;
    Ok((status, serde_json::from_str(json)?))
}

/// Polls `check` until it returns `Some`, for at most [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
