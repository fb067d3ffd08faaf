//! The pure mapping from a [`DesiredPod`] to Docker objects: names, labels, volumes and the
//! create body of each container. No I/O here, so every mapping rule has an exact unit test.
//!
//! A pod is several Docker containers that share one network namespace. Docker can only share
//! a namespace that a container owns, so container 0 owns it: it gets the pod's hostname and
//! publishes the ports of *all* the pod's containers (Docker refuses port publishing on a
//! container that joins another's network), and containers 1.. run with
//! `network_mode: container:<id of container 0>`. The consequence to know: when container 0 is
//! recreated, the others must be recreated too, since they point at its old id.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy as DockerRestart,
    RestartPolicyNameEnum, VolumeCreateRequest,
};

use super::error::DockerError;
use crate::manifest::{RestartPolicy, VolumeSource};
use crate::reconcile::{labels, DesiredPod, DEFAULT_CLUSTER, HOLDER};
use crate::service::discovery::Discovery;

/// Kubernetes (and DNS) limit a hostname label to 63 characters.
const MAX_HOSTNAME: usize = 63;

/// Who makes the containers: the cluster (part of every name, and a label) and the Raft term
/// of the leader creating them (a label: a stale leader never removes a newer term's work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cluster: String,
    pub term: u64,
}

impl Default for Identity {
    fn default() -> Identity {
        Identity {
            cluster: DEFAULT_CLUSTER.to_string(),
            term: 0,
        }
    }
}

/// `<cluster>.<namespace>.<pod>.<container>` (`berth.` for the default cluster): the container's
/// Docker name, unique per host, and never the same for two clusters.
pub fn container_name(cluster: &str, namespace: &str, pod: &str, container: &str) -> String {
    format!(
        "{}.{}.{}.{}",
        safe(cluster),
        safe(namespace),
        safe(pod),
        safe(container)
    )
}

/// `<cluster>.<namespace>.<pod>.<volume>`: the Docker volume backing an `emptyDir`.
pub fn volume_name(cluster: &str, namespace: &str, pod: &str, volume: &str) -> String {
    container_name(cluster, namespace, pod, volume)
}

/// Docker names allow `[a-zA-Z0-9_.-]`. Validated Kubernetes names already fit; anything else
/// is replaced rather than sent to Docker to be refused.
fn safe(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The pod name cut to a valid hostname (63 characters, ending alphanumeric).
pub fn pod_hostname(pod: &str) -> String {
    let cut: String = pod.chars().take(MAX_HOSTNAME).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Labels of container `index`: the pod's own labels, then berth's, which win on a clash so
/// that a manifest cannot forge ownership.
pub fn container_labels(pod: &DesiredPod, index: usize, id: &Identity) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = pod
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let container = &pod.spec.containers[index];
    let mut set = |k: &str, v: String| {
        out.insert(k.to_string(), v);
    };
    set(labels::MANAGED, "true".into());
    set(labels::NAMESPACE, pod.namespace.clone());
    set(labels::POD, pod.name.clone());
    set(labels::CONTAINER, container.name.clone());
    set(labels::COMMIT, pod.commit.clone());
    set(labels::SPEC_HASH, pod.spec_hash.clone());
    set(
        labels::GRACE,
        pod.spec.termination_grace_period_seconds.to_string(),
    );
    set(labels::INDEX, index.to_string());
    set(labels::CLUSTER, id.cluster.clone());
    set(labels::TERM, id.term.to_string());
    match &pod.owner {
        Some(owner) => set(labels::OWNER, owner.clone()),
        None => {
            out.remove(labels::OWNER);
        }
    }
    out
}

/// The Docker volumes to create for the pod's `emptyDir`s (creating one is idempotent).
pub fn empty_dir_volumes(pod: &DesiredPod, id: &Identity) -> Vec<VolumeCreateRequest> {
    let labels = HashMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::CLUSTER.to_string(), id.cluster.clone()),
        (labels::NAMESPACE.to_string(), pod.namespace.clone()),
        (labels::POD.to_string(), pod.name.clone()),
    ]);
    pod.spec
        .volumes
        .iter()
        .filter(|v| v.source == VolumeSource::EmptyDir)
        .map(|v| VolumeCreateRequest {
            name: Some(volume_name(&id.cluster, &pod.namespace, &pod.name, &v.name)),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .collect()
}

/// Kubernetes' restart policies on Docker's. `Always` maps to `always`, not `unless-stopped`:
/// berth owns these containers' lifecycle, and a container stopped by hand should come back
/// after an engine restart as it would under a kubelet (the reconciler starts it anyway).
pub fn restart_policy(policy: RestartPolicy) -> DockerRestart {
    let name = match policy {
        RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
        // No retry limit: Kubernetes retries failed containers forever (with backoff).
        RestartPolicy::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
        RestartPolicy::Never => RestartPolicyNameEnum::NO,
    };
    DockerRestart {
        name: Some(name),
        maximum_retry_count: None,
    }
}

/// Labels of the pod's holder: berth's own, the pod's labels, and the holder role.
pub fn holder_labels(pod: &DesiredPod, id: &Identity) -> HashMap<String, String> {
    let mut out = container_labels(pod, 0, id);
    out.insert(labels::CONTAINER.to_string(), HOLDER.to_string());
    out.insert(labels::ROLE.to_string(), "holder".to_string());
    out.insert(labels::GRACE.to_string(), "0".to_string());
    out
}

/// The create body of the pod's holder: the pause image, the pod's hostname and every port the
/// pod publishes. Restarted by Docker whatever the pod's policy: it is the pod's network, and
/// berth restarts the apps that were left in the old namespace.
pub fn holder_body(
    pod: &DesiredPod,
    image: &str,
    ephemeral: &[u16],
    id: &Identity,
) -> ContainerCreateBody {
    let (exposed, bindings) = pod_ports(pod, ephemeral);
    ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(pod_hostname(&pod.name)),
        labels: Some(holder_labels(pod, id)),
        exposed_ports: Some(exposed),
        stop_timeout: Some(1),
        host_config: Some(HostConfig {
            restart_policy: Some(restart_policy(RestartPolicy::Always)),
            port_bindings: Some(bindings),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The create body of container `index`. `network_owner` is the id of the pod's holder for a
/// pod with one ([`DesiredPod::has_holder`]); a pod of one container owns its namespace and
/// publishes the pod's ports itself. `ephemeral` lists container ports to publish on a port the
/// engine picks (for probes from a controller that cannot reach the container's address).
pub fn container_body(
    pod: &DesiredPod,
    index: usize,
    network_owner: Option<&str>,
    ephemeral: &[u16],
    id: &Identity,
) -> Result<ContainerCreateBody, DockerError> {
    let invalid = |reason: String| DockerError::InvalidPod {
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        reason,
    };
    let c = pod
        .spec
        .containers
        .get(index)
        .ok_or_else(|| invalid(format!("no container at index {index}")))?;
    let grace = pod.spec.termination_grace_period_seconds;

    let mut host = HostConfig {
        restart_policy: Some(restart_policy(pod.spec.restart_policy)),
        memory: c
            .resources
            .limits
            .memory
            .map(|m| i64::try_from(m.0).unwrap_or(i64::MAX)),
        nano_cpus: c.resources.limits.cpu.map(|cpu| cpu.nano()),
        mounts: Some(mounts(pod, index, &id.cluster).map_err(invalid)?),
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: Some(c.image.clone()),
        // Kubernetes: `command` replaces the image's ENTRYPOINT, `args` its CMD. When only
        // `command` is set Docker does not fall back to the image's CMD either, as Kubernetes.
        entrypoint: (!c.command.is_empty()).then(|| c.command.clone()),
        cmd: (!c.args.is_empty()).then(|| c.args.clone()),
        env: Some(
            c.env
                .iter()
                .map(|e| format!("{}={}", e.name, e.value))
                .collect(),
        ),
        working_dir: c.working_dir.clone(),
        labels: Some(container_labels(pod, index, id)),
        // Also used by a plain `docker stop`, so an operator stopping by hand gets the grace too.
        stop_timeout: Some(grace.into()),
        ..Default::default()
    };

    if pod.has_holder() {
        let owner = network_owner
            .ok_or_else(|| invalid(format!("container {index} needs the id of its holder")))?;
        host.network_mode = Some(format!("container:{owner}"));
    } else {
        let (exposed, bindings) = pod_ports(pod, ephemeral);
        body.hostname = Some(pod_hostname(&pod.name));
        body.exposed_ports = Some(exposed);
        host.port_bindings = Some(bindings);
    }
    body.host_config = Some(host);
    Ok(body)
}

/// Adds the Services' variables to a container's environment, before its own (which win).
pub fn add_env(body: &mut ContainerCreateBody, discovery: &Discovery) {
    if discovery.is_empty() {
        return;
    }
    let own = body.env.take().unwrap_or_default();
    let defined: Vec<String> = own
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    let mut env = discovery.env_strings(&defined);
    env.extend(own);
    body.env = Some(env);
}

/// Adds hosts entries from the Services' names to their cluster IPs to the container that owns
/// the pod's network namespace (its `/etc/hosts` is the pod's).
pub fn add_hosts(body: &mut ContainerCreateBody, discovery: &Discovery) {
    if discovery.hosts.is_empty() {
        return;
    }
    let host = body.host_config.get_or_insert_with(HostConfig::default);
    host.extra_hosts
        .get_or_insert_with(Vec::new)
        .extend(discovery.extra_hosts());
}

/// Every port of every container of the pod: all exposed, those with a `hostPort` published,
/// and those in `ephemeral` without one published on a port the engine picks.
fn pod_ports(
    pod: &DesiredPod,
    ephemeral: &[u16],
) -> (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>) {
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in pod.spec.containers.iter().flat_map(|c| &c.ports) {
        let key = format!("{}/{}", port.container_port, port.protocol.docker());
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let host_port = match port.host_port {
            Some(p) => Some(p.to_string()),
            None if ephemeral.contains(&port.container_port) => Some(String::new()),
            None => None,
        };
        if let Some(host_port) = host_port {
            let binding = PortBinding {
                host_ip: port.host_ip.clone(),
                host_port: Some(host_port),
            };
            let list = bindings.entry(key).or_insert_with(|| Some(Vec::new()));
            let list = list.get_or_insert_with(Vec::new);
            if !list.contains(&binding) {
                list.push(binding);
            }
        }
    }
    (exposed, bindings)
}

/// Mounts of container `index`. `hostPath` is a `bind` mount through the Mounts API, which
/// refuses a missing host path: Docker's older `Binds` would silently create an empty,
/// root-owned directory and hide a typo in the manifest.
fn mounts(pod: &DesiredPod, index: usize, cluster: &str) -> Result<Vec<Mount>, String> {
    let container = &pod.spec.containers[index];
    container
        .volume_mounts
        .iter()
        .map(|m| {
            let volume = pod
                .spec
                .volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| {
                    format!(
                        "container '{}' mounts unknown volume '{}'",
                        container.name, m.name
                    )
                })?;
            let (typ, source) = match &volume.source {
                VolumeSource::EmptyDir => (
                    MountType::VOLUME,
                    volume_name(cluster, &pod.namespace, &pod.name, &volume.name),
                ),
                VolumeSource::HostPath { path } => (MountType::BIND, path.clone()),
            };
            Ok(Mount {
                target: Some(m.mount_path.clone()),
                source: Some(source),
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
