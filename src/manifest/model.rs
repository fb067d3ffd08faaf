//! The typed manifest model: the subset of Kubernetes v1 that berth runs.
//!
//! These types are what the rest of berth sees once a tree of manifests has been validated: every
//! default is filled in (namespace, replicas, selector, pull policy, target ports, ...), so the
//! planner and the Docker mapping never have to re-derive them. They are serialised into the Raft
//! log as the desired state of a commit, so field names are stable (`camelCase`, as in
//! Kubernetes) and maps are `BTreeMap`s: the same manifests always hash and serialise the same.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::quantity::{Cpu, Memory};

/// Labels, annotations, selectors and node selectors.
pub type StringMap = BTreeMap<String, String>;

/// The namespace an object gets when its manifest names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// All objects of one commit (or one directory tree), in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifests {
    pub pods: Vec<Pod>,
    pub replication_controllers: Vec<ReplicationController>,
    pub services: Vec<Service>,
    /// Scheduling settings of hosts (`kind: Node`). Left out of the serialised form when there
    /// are none, so states written before Nodes existed read and compare the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
}

impl Manifests {
    /// Number of objects of all kinds.
    pub fn len(&self) -> usize {
        self.pods.len()
            + self.replication_controllers.len()
            + self.services.len()
            + self.nodes.len()
    }

    /// The Node manifest of host `name`, if the repository has one.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.metadata.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where an object was read from, for messages that point at it (`apps/web.yaml:12`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub labels: StringMap,
    pub annotations: StringMap,
}

/// A Docker host's scheduling settings, kept in Git so that cordoning and draining are
/// reviewed commits: `metadata.name` is the host's name (as `--node NAME=...`), its labels are
/// merged over the host's `--node-label`s (the manifest wins on a key both set), and
/// `spec.unschedulable` keeps new pods off it. The annotation `berth.io/drain: "true"` also
/// makes it unschedulable, and asks for its RC replicas to move elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `namespace` is empty: a host belongs to no namespace.
    pub metadata: ObjectMeta,
    pub unschedulable: bool,
    pub origin: Origin,
}

impl Node {
    /// `berth.io/drain: "true"`.
    pub fn draining(&self) -> bool {
        self.metadata
            .annotations
            .get(super::annotations::DRAIN)
            .is_some_and(|v| v == "true")
    }

    /// Takes no new pods: cordoned or draining.
    pub fn is_unschedulable(&self) -> bool {
        self.unschedulable || self.draining()
    }
}

/// A bare Pod: exactly one instance, never adopted by a ReplicationController.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationController {
    pub metadata: ObjectMeta,
    pub replicas: u32,
    /// Never empty: defaults to the template's labels, and must match them.
    pub selector: StringMap,
    pub template: PodTemplate,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    pub labels: StringMap,
    pub annotations: StringMap,
    pub spec: PodSpec,
}

impl PodTemplate {
    /// The template's revision: the spec hash its pods carry. Replicas of one revision are
    /// interchangeable; a new revision means new replicas (a rollout).
    pub fn revision(&self) -> String {
        spec_hash(&self.labels, &self.annotations, &self.spec)
    }
}

impl Pod {
    /// The spec hash of this Pod's containers.
    pub fn revision(&self) -> String {
        spec_hash(
            &self.metadata.labels,
            &self.metadata.annotations,
            &self.spec,
        )
    }
}

/// Hash of what, when it changes, needs new containers: the pod's labels, annotations and spec.
/// The commit is deliberately left out, so a revert or a change elsewhere causes no churn.
/// Sixteen hex digits of SHA-256 over the canonical JSON (maps are sorted), identical on
/// every controller and every run.
pub fn spec_hash(labels: &StringMap, annotations: &StringMap, spec: &PodSpec) -> String {
    use sha2::{Digest, Sha256};
    let bytes =
        serde_json::to_vec(&(labels, annotations, spec)).expect("pod specs always serialise");
    let digest = Sha256::digest(&bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// What one pod runs. The containers of a pod share one network namespace (they reach each
/// other on `localhost`) and the pod's `emptyDir` volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    pub restart_policy: RestartPolicy,
    pub node_selector: StringMap,
    pub termination_grace_period_seconds: u32,
}

/// Kubernetes' default grace period between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE_SECONDS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env: Vec<EnvVar>,
    pub ports: Vec<ContainerPort>,
    pub resources: Resources,
    pub image_pull_policy: PullPolicy,
    pub volume_mounts: Vec<VolumeMount>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
}

impl Container {
    /// A container with only a name and an image, every other field at its Kubernetes default.
    pub fn new(name: &str, image: &str) -> Container {
        Container {
            name: name.to_string(),
            image: image.to_string(),
            command: Vec::new(),
            args: Vec::new(),
            working_dir: None,
            env: Vec::new(),
            ports: Vec::new(),
            resources: Resources::default(),
            image_pull_policy: PullPolicy::default_for(image),
            volume_mounts: Vec::new(),
            liveness_probe: None,
            readiness_probe: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// Docker's spelling, as in `80/tcp`.
    pub fn docker(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: u16,
    pub host_port: Option<u16>,
    pub host_ip: Option<String>,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceList {
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// Kubernetes' default: `Always` for `:latest` or an untagged image, else `IfNotPresent`.
    pub fn default_for(image: &str) -> PullPolicy {
        if image.contains('@') {
            return PullPolicy::IfNotPresent;
        }
        let last = image.rsplit('/').next().unwrap_or(image);
        match last.split_once(':') {
            None => PullPolicy::Always,
            Some((_, "latest")) => PullPolicy::Always,
            Some(_) => PullPolicy::IfNotPresent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

/// The volume sources a plain Docker host can provide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VolumeSource {
    /// A Docker volume created with the pod and removed with it.
    EmptyDir,
    /// A bind mount of a directory or file of the Docker host.
    HostPath { path: String },
}

/// A port named by number or by a container port's name (`IntOrString` in Kubernetes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay_seconds: u32,
    pub timeout_seconds: u32,
    pub period_seconds: u32,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProbeAction {
    Exec {
        command: Vec<String>,
    },
    HttpGet {
        path: String,
        port: PortRef,
        host: Option<String>,
        scheme: String,
        headers: Vec<(String, String)>,
    },
    TcpSocket {
        port: PortRef,
        host: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub metadata: ObjectMeta,
    pub selector: StringMap,
    pub ports: Vec<ServicePort>,
    #[serde(rename = "type")]
    pub type_: ServiceType,
    /// `ClientIP` affinity timeout in seconds, when asked for.
    pub session_affinity_seconds: Option<u32>,
    /// The manifest's `clusterIP`, when it fixes one; otherwise berth allocates one from the
    /// service CIDR. Left out of the serialised form when absent, so states written before
    /// the field existed read (and hash) the same.
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<std::net::Ipv4Addr>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target_port: PortRef,
    pub protocol: Protocol,
    pub node_port: Option<u16>,
}

/// `LoadBalancer` is read as `NodePort`: a Docker host has no cloud load balancer to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
}

/// Does `labels` carry every pair of `selector`? An empty selector selects nothing.
pub fn selector_matches(selector: &StringMap, labels: &StringMap) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults_follow_kubernetes() {
        assert_eq!(PullPolicy::default_for("redis"), PullPolicy::Always);
        assert_eq!(PullPolicy::default_for("mongo:latest"), PullPolicy::Always);
        assert_eq!(PullPolicy::default_for("redis:7"), PullPolicy::IfNotPresent);
        assert_eq!(
            PullPolicy::default_for("localhost:5000/app"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::default_for("localhost:5000/app:v1"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::default_for("app@sha256:abcd"),
            PullPolicy::IfNotPresent
        );
    }

    #[test]
    fn empty_selector_selects_nothing() {
        let labels: StringMap = [("app".to_string(), "web".to_string())].into();
        assert!(!selector_matches(&StringMap::new(), &labels));
        assert!(selector_matches(&labels.clone(), &labels));
    }
}
