//! The scheduler's side of the API: what each host offers and holds, pending pods with the
//! reason each host gives, and one pod explained host by host (`berth describe pod`).
//!
//! Reasons are worked out when asked, from committed state and the hosts as this controller
//! sees them (the scheduler is pure and cheap), rather than stored in the Raft log.

use serde::Serialize;

use crate::controller::Controller;
use crate::manifest::quantity::{Cpu, Memory};
use crate::raft::state::ClusterState;
use crate::scheduler::{pending, Host, Load, PendingPod, Resources};

use super::views::{ContainerView, PodView};

/// Reasons listed per pending pod at most; the rest are counted.
const MAX_REASONS: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ResourcesView {
    /// `2`, `1500m`.
    pub cpu: String,
    /// `4Gi`, `512Mi`.
    pub memory: String,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl From<Resources> for ResourcesView {
    fn from(r: Resources) -> ResourcesView {
        ResourcesView {
            cpu: Cpu(r.cpu).to_string(),
            memory: Memory(r.memory).to_string(),
            cpu_millis: r.cpu,
            memory_bytes: r.memory,
        }
    }
}

/// What the scheduler knows of one host.
#[derive(Debug, Clone, Serialize)]
pub struct HostPlacement {
    pub labels: crate::manifest::StringMap,
    /// False when its Node manifest cordons or drains it.
    pub schedulable: bool,
    /// Its Node manifest says `berth.io/drain: "true"`.
    pub draining: bool,
    /// What pods may use: `--node-capacity`, else what the engine reports.
    pub allocatable: Option<ResourcesView>,
    /// Requests (or limits, or the small default) of the pods placed on it.
    pub allocated: ResourcesView,
    /// Pods placed on it.
    pub pods: u32,
}

/// The committed state's placements over this controller's view of the hosts.
fn load(c: &Controller, s: &ClusterState) -> (Vec<Host>, Load) {
    let hosts = c.scheduler_hosts(&s.desired.nodes);
    let load = Load::of(s, &hosts);
    (hosts, load)
}

/// Per configured host, in configuration order.
pub fn hosts(c: &Controller) -> Vec<HostPlacement> {
    c.raft.state().read(|s| {
        let (hosts, load) = load(c, s);
        hosts
            .iter()
            .map(|h| {
                let (allocated, pods) = load.allocated(&h.name).unwrap_or_default();
                HostPlacement {
                    labels: h.labels.clone(),
                    schedulable: h.schedulable,
                    draining: s.desired.node(&h.name).is_some_and(|n| n.draining()),
                    allocatable: h.capacity.map(Into::into),
                    allocated: allocated.into(),
                    pods,
                }
            })
            .collect()
    })
}

/// Pending pods, each with the reason every host gives (the first [`MAX_REASONS`]).
pub fn pending_pods(c: &Controller) -> Vec<PodView> {
    c.raft.state().read(|s| {
        let waiting = pending(s);
        if waiting.is_empty() {
            return Vec::new();
        }
        let (_, load) = load(c, s);
        waiting
            .into_iter()
            .map(|(key, p)| {
                let mut reasons: Vec<String> = Vec::new();
                let explained = load.explain(p.workload());
                let refusing = explained.iter().filter(|(_, r)| r.is_err()).count();
                for (host, r) in explained.iter().take(MAX_REASONS) {
                    match r {
                        Err(why) => reasons.push(format!("{host}: {why}")),
                        Ok(()) => reasons.push(format!("{host}: fits now (placing)")),
                    }
                }
                if explained.len() > MAX_REASONS {
                    reasons.push(format!(
                        "... and {} more hosts",
                        explained.len() - MAX_REASONS
                    ));
                }
                if explained.is_empty() {
                    reasons.push("no host is configured".into());
                }
                pending_view(s, &key, &p, refusing, reasons)
            })
            .collect()
    })
}

fn pending_view(
    s: &ClusterState,
    key: &str,
    p: &PendingPod,
    refusing: usize,
    reasons: Vec<String>,
) -> PodView {
    let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
    let (owner, spec) = match p {
        PendingPod::Pod(_) => (
            None,
            s.desired
                .pods
                .iter()
                .find(|x| x.metadata.namespace == namespace && x.metadata.name == name)
                .map(|x| &x.spec),
        ),
        PendingPod::Replica { rc, .. } => (
            rc.split_once('/').map(|(_, n)| n.to_string()),
            s.desired
                .replication_controllers
                .iter()
                .find(|r| format!("{}/{}", r.metadata.namespace, r.metadata.name) == *rc)
                .map(|r| &r.template.spec),
        ),
    };
    let containers = spec
        .map(|spec| {
            spec.containers
                .iter()
                .map(|c| ContainerView {
                    name: c.name.clone(),
                    id: None,
                    image: c.image.clone(),
                    state: "missing".into(),
                    restarts: 0,
                })
                .collect()
        })
        .unwrap_or_default();
    PodView {
        namespace: namespace.to_string(),
        name: name.to_string(),
        owner,
        node: String::new(),
        phase: "Pending".into(),
        ready: false,
        restarts: 0,
        failures: 0,
        commit: None,
        reason: Some(format!("no host fits ({refusing} refuse it)")),
        probe_failure: None,
        warnings: Vec::new(),
        containers,
        reasons,
        ready_since: None,
    }
}

/// One host's answer for one pod.
#[derive(Debug, Clone, Serialize)]
pub struct HostAnswer {
    pub host: String,
    /// Would take the pod now.
    pub fits: bool,
    /// Why not.
    pub reason: Option<String>,
}

/// `GET /api/v1/pods/{namespace}/{name}/placement`: where the pod is, or, while pending, every
/// host's answer. `None` for a pod the desired state does not have.
#[derive(Debug, Clone, Serialize)]
pub struct PodPlacement {
    pub namespace: String,
    pub name: String,
    /// Its host; empty while pending.
    pub node: String,
    pub pending: bool,
    /// While pending: every host, in name order.
    pub hosts: Vec<HostAnswer>,
}

pub fn explain(c: &Controller, namespace: &str, name: &str) -> Option<PodPlacement> {
    let key = format!("{namespace}/{name}");
    c.raft.state().read(|s| {
        let placed = s.pod_nodes.get(&key).cloned().or_else(|| {
            s.desired
                .replication_controllers
                .iter()
                .filter(|rc| rc.metadata.namespace == namespace)
                .filter_map(|rc| {
                    s.replicas
                        .get(&format!("{}/{}", rc.metadata.namespace, rc.metadata.name))
                })
                .flatten()
                .find(|r| r.name == name && !r.node.is_empty())
                .map(|r| r.node.clone())
        });
        if let Some(node) = placed {
            return Some(PodPlacement {
                namespace: namespace.to_string(),
                name: name.to_string(),
                node,
                pending: false,
                hosts: Vec::new(),
            });
        }
        let (_, p) = pending(s).into_iter().find(|(k, _)| *k == key)?;
        let (_, load) = load(c, s);
        let hosts = load
            .explain(p.workload())
            .into_iter()
            .map(|(host, r)| HostAnswer {
                host,
                fits: r.is_ok(),
                reason: r.err().map(|e| e.to_string()),
            })
            .collect();
        Some(PodPlacement {
            namespace: namespace.to_string(),
            name: name.to_string(),
            node: String::new(),
            pending: true,
            hosts,
        })
    })
}
