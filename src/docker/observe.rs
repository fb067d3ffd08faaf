//! What a host runs, as berth sees it: its managed containers, read back from their labels and
//! their inspected state.
//!
//! The list call finds the managed containers (the engine filters by `io.berth.managed=true`);
//! an inspect of each gives what the planner and the probes need beyond the labels: when the
//! container started (a holder that restarted after its apps left them in its old network
//! namespace), Docker's restart count, health, IP address, the namespace it joined and its
//! published ports. The mapping checks the managed label again: a container berth did not
//! create must never reach the planner, which could otherwise remove it.

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::error::{is_not_found, DockerError};
use super::host::DockerHost;
use crate::clock::parse_rfc3339;
use crate::manifest::{Protocol, DEFAULT_GRACE_SECONDS};
use crate::reconcile::{belongs_to, labels, ObservedContainer};

/// Inspects in flight at once during a full look at a host.
const INSPECT_CONCURRENCY: usize = 8;

impl DockerHost {
    /// Ids of all managed containers of the host, running or not, from one list call.
    pub async fn list_managed_ids(&self) -> Result<Vec<String>, DockerError> {
        Ok(self
            .list_managed_states()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// (id, Docker's state word: `running`, `exited`, ...) of every managed container of the
    /// host, from one list call.
    pub async fn list_managed_states(&self) -> Result<Vec<(String, String)>, DockerError> {
        let docker = self.client().await?;
        let filters = HashMap::from([("label", vec![format!("{}=true", labels::MANAGED)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.err("list containers", e))?;
        Ok(listed
            .iter()
            .filter(|s| is_managed(s))
            .filter_map(|s| {
                let state = s.state.map(|st| st.to_string()).unwrap_or_default();
                s.id.clone().map(|id| (id, state))
            })
            .collect())
    }

    /// All managed containers of the host, inspected. A container that vanishes between the
    /// list and its inspect is simply not there.
    pub async fn list_managed(&self) -> Result<Vec<ObservedContainer>, DockerError> {
        let ids = self.list_managed_ids().await?;
        self.inspect_all(ids).await
    }

    /// The containers `ids`, inspected a few at a time; those gone meanwhile are left out.
    pub async fn inspect_all(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<ObservedContainer>, DockerError> {
        let found: Vec<Option<ObservedContainer>> = stream::iter(ids)
            .map(|id| async move { self.inspect_managed(&id).await })
            .buffer_unordered(INSPECT_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// One container as the planner sees it: `None` when it is gone or not managed by berth.
    pub async fn inspect_managed(
        &self,
        id: &str,
    ) -> Result<Option<ObservedContainer>, DockerError> {
        let docker = self.client().await?;
        match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(found) => Ok(inspected(&found).filter(|_| {
                let labels = found.config.as_ref().and_then(|c| c.labels.as_ref());
                labels.is_some_and(|l| belongs_to(l, self.cluster()))
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.err(format!("inspect container {id}"), e)),
        }
    }
}

fn is_managed(summary: &ContainerSummary) -> bool {
    summary
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::MANAGED))
        .map(String::as_str)
        == Some("true")
}

/// One inspected container as the planner sees it; `None` unless it carries
/// `io.berth.managed=true`. A managed container with damaged labels is still returned (with
/// empty names), so that the planner, which wants nothing of that name, prunes it.
pub fn inspected(found: &ContainerInspectResponse) -> Option<ObservedContainer> {
    let config = found.config.as_ref()?;
    let container_labels = config.labels.as_ref()?;
    if container_labels.get(labels::MANAGED).map(String::as_str) != Some("true") {
        return None;
    }
    let label = |key: &str| container_labels.get(key).cloned().unwrap_or_default();
    let state = found.state.as_ref();
    let status = state
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_default();
    // Docker reports a container waiting out its restart backoff as `running: true` with
    // status `restarting`; berth counts only the status `running` as running.
    let running = status == "running";
    let host = found.host_config.as_ref();
    let network_owner = host
        .and_then(|h| h.network_mode.as_deref())
        .and_then(|m| m.strip_prefix("container:"))
        .map(String::from);
    let settings = found.network_settings.as_ref();
    let ip = settings.and_then(|n| n.networks.as_ref()).and_then(|nets| {
        let mut addrs: Vec<&String> = nets
            .values()
            .filter_map(|e| e.ip_address.as_ref())
            .filter(|ip| !ip.is_empty())
            .collect();
        addrs.sort();
        addrs.first().map(|ip| ip.to_string())
    });
    let mut published: Vec<(u16, Protocol, u16)> = Vec::new();
    for (key, bindings) in settings
        .and_then(|n| n.ports.as_ref())
        .into_iter()
        .flatten()
    {
        let Some((port, proto)) = key.split_once('/') else {
            continue;
        };
        let (Ok(port), Some(proto)) = (port.parse::<u16>(), protocol(proto)) else {
            continue;
        };
        for b in bindings.iter().flatten() {
            if let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse().ok()) {
                if !published.contains(&(port, proto, host_port)) {
                    published.push((port, proto, host_port));
                }
            }
        }
    }
    published.sort();
    Some(ObservedContainer {
        id: found.id.clone()?,
        namespace: label(labels::NAMESPACE),
        pod: label(labels::POD),
        container: label(labels::CONTAINER),
        owner: container_labels.get(labels::OWNER).cloned(),
        commit: label(labels::COMMIT),
        spec_hash: label(labels::SPEC_HASH),
        index: container_labels
            .get(labels::INDEX)
            .and_then(|i| i.parse().ok())
            .unwrap_or(0),
        grace_seconds: container_labels
            .get(labels::GRACE)
            .and_then(|g| g.parse().ok())
            .unwrap_or(DEFAULT_GRACE_SECONDS),
        image: config.image.clone().unwrap_or_default(),
        running,
        state: status,
        exit_code: state.and_then(|s| s.exit_code).filter(|_| !running),
        last_exit_code: state
            .and_then(|s| s.exit_code)
            .filter(|code| !running && *code != 0),
        holder: container_labels.get(labels::ROLE).map(String::as_str) == Some("holder"),
        started_at: state
            .and_then(|s| s.started_at.as_deref())
            .and_then(parse_rfc3339),
        restart_count: found
            .restart_count
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX)) as u32,
        health: state
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none"),
        ip,
        network_owner,
        stop_signal: config
            .stop_signal
            .clone()
            .filter(|s| !s.is_empty() && s != "SIGTERM" && s != "15"),
        published,
        error: state
            .and_then(|s| s.error.clone())
            .filter(|e| !e.is_empty()),
        term: container_labels
            .get(labels::TERM)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
    })
}

fn protocol(s: &str) -> Option<Protocol> {
    match s {
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerConfig, ContainerState, ContainerStateStatusEnum, EndpointSettings, HostConfig,
        NetworkSettings, PortBinding,
    };

    fn response(container_labels: &[(&str, &str)], running: bool) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("abc".into()),
            restart_count: Some(2),
            config: Some(ContainerConfig {
                image: Some("berth-test/busybox:1".into()),
                labels: Some(
                    container_labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            state: Some(ContainerState {
                status: Some(if running {
                    ContainerStateStatusEnum::RUNNING
                } else {
                    ContainerStateStatusEnum::EXITED
                }),
                running: Some(running),
                exit_code: Some(if running { 0 } else { 137 }),
                started_at: Some("2026-11-23T19:40:01.123456Z".into()),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("container:h0ld3r".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(
                    [(
                        "bridge".to_string(),
                        EndpointSettings {
                            ip_address: Some("10.214.3.7".into()),
                            ..Default::default()
                        },
                    )]
                    .into(),
                ),
                ports: Some(
                    [(
                        "80/tcp".to_string(),
                        Some(vec![PortBinding {
                            host_ip: Some("0.0.0.0".into()),
                            host_port: Some("32768".into()),
                        }]),
                    )]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn maps_labels_state_and_network() {
        let r = response(
            &[
                (labels::MANAGED, "true"),
                (labels::NAMESPACE, "shop"),
                (labels::POD, "web-1"),
                (labels::CONTAINER, "app"),
                (labels::COMMIT, "c1"),
                (labels::SPEC_HASH, "h1"),
                (labels::INDEX, "1"),
                (labels::GRACE, "5"),
            ],
            false,
        );
        let o = inspected(&r).unwrap();
        assert_eq!(
            (o.namespace.as_str(), o.pod.as_str(), o.container.as_str()),
            ("shop", "web-1", "app")
        );
        assert_eq!((o.index, o.grace_seconds, o.restart_count), (1, 5, 2));
        assert_eq!(
            (o.running, o.state.as_str(), o.exit_code),
            (false, "exited", Some(137))
        );
        assert_eq!(o.started_at, Some(1_795_462_801_123));
        assert_eq!(o.network_owner.as_deref(), Some("h0ld3r"));
        assert_eq!(o.ip.as_deref(), Some("10.214.3.7"));
        assert_eq!(o.published, vec![(80, Protocol::Tcp, 32768)]);
        assert!(!o.holder);
    }

    #[test]
    fn never_maps_an_unmanaged_container() {
        assert_eq!(inspected(&response(&[], true)), None);
        assert_eq!(
            inspected(&response(&[(labels::MANAGED, "false")], true)),
            None
        );
        let o = inspected(&response(
            &[(labels::MANAGED, "true"), (labels::ROLE, "holder")],
            true,
        ))
        .unwrap();
        assert!(o.holder && o.running);
        assert_eq!(
            (o.exit_code, o.grace_seconds),
            (None, DEFAULT_GRACE_SECONDS)
        );
    }
}
