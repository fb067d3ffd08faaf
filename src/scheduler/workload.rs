//! What one pod asks of its host, worked out once per RC (or bare Pod) rather than per replica:
//! resources, host ports, node selector, anti-affinity and the scoring strategy.

use std::sync::Arc;

use crate::manifest::annotations::{CONFLICTS, MAX_PER_NODE, PLACEMENT};
use crate::manifest::{Pod, PodSpec, ReplicationController, StringMap};
use crate::raft::state::{object_key, ObjectKey};

use super::{demand, host_ports, HostPort, Resources, Selector};

/// How hosts that fit are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Fewest replicas of the same RC first, then the least allocated host (the default):
    /// losing a host loses as few replicas of each RC as possible.
    #[default]
    Spread,
    /// The most allocated host that fits (`berth.io/placement: binpack`): keeps whole hosts
    /// free for big pods.
    Binpack,
}

/// One pod instance's demands on its host.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The RC (`namespace/name`) its replicas belong to: spread and `max-per-node` count
    /// within it. `None` for a bare Pod.
    pub group: Option<ObjectKey>,
    pub demand: Resources,
    pub ports: Vec<HostPort>,
    pub node_selector: StringMap,
    /// Its pods' labels, which other pods' `conflicts` selectors look at.
    pub labels: Arc<StringMap>,
    pub max_per_node: Option<u32>,
    pub conflicts: Option<Arc<Selector>>,
    pub strategy: Strategy,
}

impl Workload {
    /// From a pod spec and the metadata the placement annotations are read from. Annotation
    /// values were checked when the manifests were loaded; one that does not parse here (an
    /// older state) is ignored.
    pub fn new(
        group: Option<ObjectKey>,
        spec: &PodSpec,
        labels: &StringMap,
        annotations: &StringMap,
    ) -> Workload {
        Workload {
            group,
            demand: demand(spec),
            ports: host_ports(spec).into_iter().collect(),
            node_selector: spec.node_selector.clone(),
            labels: Arc::new(labels.clone()),
            max_per_node: annotations
                .get(MAX_PER_NODE)
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0),
            conflicts: annotations
                .get(CONFLICTS)
                .and_then(|v| Selector::parse(v).ok())
                .map(Arc::new),
            strategy: match annotations.get(PLACEMENT).map(String::as_str) {
                Some("binpack") => Strategy::Binpack,
                _ => Strategy::Spread,
            },
        }
    }

    /// A replica of `rc` running `spec` (its template of some revision); the placement
    /// annotations are the RC's own.
    pub fn of_rc(rc: &ReplicationController, labels: &StringMap, spec: &PodSpec) -> Workload {
        Workload::new(
            Some(object_key(&rc.metadata.namespace, &rc.metadata.name)),
            spec,
            labels,
            &rc.metadata.annotations,
        )
    }

    pub fn of_pod(pod: &Pod) -> Workload {
        Workload::new(
            None,
            &pod.spec,
            &pod.metadata.labels,
            &pod.metadata.annotations,
        )
    }
}
