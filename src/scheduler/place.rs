//! Where new pod instances go, and what names new replicas get.
//!
//! Existing pod instances keep their names and hosts (no churn: a host that joins takes only
//! new pods). A pod that fits on no host is left unplaced, `Pending`: a replica with an empty
//! node, a bare Pod without an entry in `pod_nodes`; [`bind_pending`] places it as soon as room
//! appears. Placement runs on the leader against committed state, and its result is committed
//! through Raft before any container exists.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::manifest::{Manifests, PodSpec, Protocol};
use crate::raft::state::{object_key, ClusterState, Millis, ObjectKey, Replica};

use super::{Load, Workload};

/// A published host port: (port, protocol).
pub type HostPort = (u16, Protocol);

/// The host ports a pod spec publishes.
pub fn host_ports(spec: &PodSpec) -> BTreeSet<HostPort> {
    spec.containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter_map(|p| p.host_port.map(|h| (h, p.protocol)))
        .collect()
}

/// Hosts for the bare Pods of `desired`: those already placed stay (on a configured host), new
/// ones go where the scheduler says. Returns every placed Pod; one that fits nowhere is left
/// out (pending).
pub fn place_pods(
    desired: &Manifests,
    current: &BTreeMap<ObjectKey, String>,
    load: &mut Load,
) -> BTreeMap<ObjectKey, String> {
    let mut out = BTreeMap::new();
    for pod in &desired.pods {
        let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
        let node = match current.get(&key) {
            Some(n) if load.has_host(n) => Some(n.clone()),
            _ => load.place(&Workload::of_pod(pod), &key),
        };
        if let Some(node) = node {
            out.insert(key, node);
        }
    }
    out
}

/// The placements of `current` that still hold for `desired` (the pod is still desired and its
/// host still configured), placing nothing new: new Pods stay pending. For a controller that
/// has not yet looked at every host, which would otherwise put every new Pod on the first
/// hosts to answer.
pub fn kept_pods(
    desired: &Manifests,
    current: &BTreeMap<ObjectKey, String>,
    load: &Load,
) -> BTreeMap<ObjectKey, String> {
    desired
        .pods
        .iter()
        .filter_map(|pod| {
            let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
            let node = current.get(&key).filter(|n| load.has_host(n))?.clone();
            Some((key, node))
        })
        .collect()
}

/// `count` new replicas of the RC `rc` (`namespace/name`) running `w` at `revision`, named
/// `<name>-<5 characters>` from `seed` (the commit sha) and never one of `taken`. Each goes
/// where the scheduler says; one that fits nowhere gets an empty node (pending).
#[allow(clippy::too_many_arguments)]
pub fn new_replicas(
    rc: &str,
    w: &Workload,
    revision: &str,
    count: usize,
    load: &mut Load,
    taken: &BTreeSet<String>,
    seed: &str,
    at: Millis,
) -> Vec<Replica> {
    let (namespace, name) = rc.split_once('/').unwrap_or(("default", rc));
    let mut out: Vec<Replica> = Vec::with_capacity(count);
    let mut fresh: HashSet<String> = HashSet::with_capacity(count);
    let mut salt = 0u32;
    let mut full = false;
    while out.len() < count {
        let replica_name = loop {
            let candidate = replica_name(name, seed, rc, salt);
            salt += 1;
            if !taken.contains(&candidate) && !fresh.contains(&candidate) {
                break candidate;
            }
        };
        // Once one replica fits nowhere, none of its siblings does either.
        let node = if full {
            None
        } else {
            load.place(w, &object_key(namespace, &replica_name))
        };
        full = node.is_none();
        fresh.insert(replica_name.clone());
        out.push(Replica {
            name: replica_name,
            node: node.unwrap_or_default(),
            revision: revision.to_string(),
            created_at: at,
        });
    }
    out
}

/// Hosts found for pending pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Per RC: (replica name, host).
    pub replicas: BTreeMap<ObjectKey, Vec<(String, String)>>,
    /// Bare Pods: host by key.
    pub pods: BTreeMap<ObjectKey, String>,
}

impl Bindings {
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty() && self.pods.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pods.len() + self.replicas.values().map(Vec::len).sum::<usize>()
    }
}

/// Places what is pending in `state` where room has appeared: bare Pods first, then replicas,
/// in manifest order (reproducible). `load` is `Load::of(state, ..)`.
pub fn bind_pending(state: &ClusterState, load: &mut Load) -> Bindings {
    let mut out = Bindings::default();
    for (key, w) in pending(state) {
        match w {
            PendingPod::Pod(w) => {
                if let Some(node) = load.place(&w, &key) {
                    out.pods.insert(key, node);
                }
            }
            PendingPod::Replica { rc, name, workload } => {
                if let Some(node) = load.place(&workload, &key) {
                    out.replicas.entry(rc).or_default().push((name, node));
                }
            }
        }
    }
    out
}

/// A pod waiting for a host, and what it asks of one.
#[derive(Debug, Clone)]
pub enum PendingPod {
    Pod(Workload),
    Replica {
        rc: ObjectKey,
        name: String,
        workload: Workload,
    },
}

impl PendingPod {
    pub fn workload(&self) -> &Workload {
        match self {
            PendingPod::Pod(w) => w,
            PendingPod::Replica { workload, .. } => workload,
        }
    }
}

/// Every pending pod of `state` by pod key (`namespace/name`), in manifest order.
pub fn pending(state: &ClusterState) -> Vec<(ObjectKey, PendingPod)> {
    let mut out = Vec::new();
    for pod in &state.desired.pods {
        let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
        if !state.pod_nodes.contains_key(&key) {
            out.push((key, PendingPod::Pod(Workload::of_pod(pod))));
        }
    }
    for rc in &state.desired.replication_controllers {
        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
        let mut workloads: HashMap<&str, Workload> = HashMap::new();
        for r in state.replicas.get(&key).into_iter().flatten() {
            if !r.node.is_empty() {
                continue;
            }
            let w = workloads
                .entry(r.revision.as_str())
                .or_insert_with(|| match state.template(&key, &r.revision) {
                    Some(t) => Workload::of_rc(rc, &t.labels, &t.spec),
                    None => Workload::of_rc(rc, &rc.template.labels, &rc.template.spec),
                })
                .clone();
            out.push((
                object_key(&rc.metadata.namespace, &r.name),
                PendingPod::Replica {
                    rc: key.clone(),
                    name: r.name.clone(),
                    workload: w,
                },
            ));
        }
    }
    out
}

/// `<rc>-<5 base-27 characters>`, like Kubernetes' generated names, cut so it stays a valid
/// DNS-1123 subdomain.
/// What every replica name of the RC named `rc` starts with: `<rc>-`, the name cut so that the
/// whole name stays within 253 characters.
pub fn replica_name_base(rc: &str) -> String {
    format!("{}-", &rc[..rc.len().min(253 - 6)])
}

fn replica_name(rc: &str, seed: &str, key: &str, salt: u32) -> String {
    let digest = Sha256::digest(format!("{seed}/{key}/{salt}").as_bytes());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = digest
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    let base = &rc[..rc.len().min(253 - 6)];
    format!("{base}-{suffix}")
}
