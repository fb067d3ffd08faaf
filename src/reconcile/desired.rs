//! From the committed state to the list of pod instances that should exist, each with its host
//! and spec hash.

use std::collections::HashMap;
use std::sync::Arc;

use super::types::DesiredPod;
use crate::manifest::{PodTemplate, ReplicationController};
use crate::raft::state::{object_key, ClusterState};

pub use crate::manifest::spec_hash;

/// Every pod instance the committed state wants, placed. RC replicas without a committed
/// placement are left out: the leader places them through Raft before anything is created.
///
/// Each replica runs the template of its own revision: during a rollout the old replicas keep
/// theirs (an old replica that dies is recreated as it was, never from the new template).
pub fn pods(state: &ClusterState) -> Vec<DesiredPod> {
    let commit = state.desired_commit.clone().unwrap_or_default();
    let mut out = Vec::new();
    bare_pods(state, &commit, &mut out);
    for rc in &state.desired.replication_controllers {
        rc_pods(state, rc, &commit, &mut out);
    }
    out
}

/// The placed replicas of one RC of the desired state, pushed onto `out`.
///
/// The RC's own revision is hashed once and each revision's template looked up once, not per
/// replica: this runs over every replica whenever the replicas change.
pub fn rc_pods(
    state: &ClusterState,
    rc: &ReplicationController,
    commit: &str,
    out: &mut Vec<DesiredPod>,
) {
    let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
    let Some(replicas) = state.replicas.get(&key) else {
        return;
    };
    let current = rc.template.revision();
    // Each revision's labels and spec, shared by its replicas.
    type Shared = (
        Arc<crate::manifest::StringMap>,
        Arc<crate::manifest::PodSpec>,
    );
    let mut templates: HashMap<&str, Option<Shared>> = HashMap::new();
    for replica in replicas {
        if replica.node.is_empty() {
            continue; // pending: no host fits it yet
        }
        let revision = if replica.revision.is_empty() {
            &current
        } else {
            &replica.revision
        };
        let template = templates.entry(revision.as_str()).or_insert_with(|| {
            let template: &PodTemplate = if *revision == current {
                &rc.template
            } else {
                state.templates.get(&key)?.get(revision)?
            };
            Some((
                Arc::new(template.labels.clone()),
                Arc::new(template.spec.clone()),
            ))
        });
        let Some((labels, spec)) = template else {
            // Not reachable through `apply`, which keeps every template a replica runs.
            tracing::error!(rc = %key, replica = %replica.name, %revision, "no template for this revision; replica left alone");
            continue;
        };
        out.push(DesiredPod {
            namespace: rc.metadata.namespace.clone(),
            name: replica.name.clone(),
            owner: Some(rc.metadata.name.clone()),
            node: replica.node.clone(),
            labels: labels.clone(),
            spec: spec.clone(),
            spec_hash: revision.clone(),
            commit: commit.to_string(),
        });
    }
}

/// The placed bare Pods of the desired state, pushed onto `out`.
pub fn bare_pods(state: &ClusterState, commit: &str, out: &mut Vec<DesiredPod>) {
    for pod in &state.desired.pods {
        let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
        let Some(node) = state.pod_nodes.get(&key) else {
            continue;
        };
        out.push(DesiredPod {
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            owner: None,
            node: node.clone(),
            labels: Arc::new(pod.metadata.labels.clone()),
            spec_hash: pod.revision(),
            spec: Arc::new(pod.spec.clone()),
            commit: commit.to_string(),
        });
    }
}
