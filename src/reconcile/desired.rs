//! From the committed state to the list of pod instances that should exist, each with its host
//! and spec hash.

use super::types::DesiredPod;
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
            labels: pod.metadata.labels.clone(),
            spec_hash: pod.revision(),
            spec: pod.spec.clone(),
            commit: commit.clone(),
        });
    }
    for rc in &state.desired.replication_controllers {
        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
        let current = rc.template.revision();
        for replica in state.replicas.get(&key).into_iter().flatten() {
            if replica.node.is_empty() {
                continue; // pending: no host fits it yet
            }
            let revision = if replica.revision.is_empty() {
                &current
            } else {
                &replica.revision
            };
            let Some(template) = state.template(&key, revision) else {
                // Not reachable through `apply`, which keeps every template a replica runs.
                tracing::error!(rc = %key, replica = %replica.name, %revision, "no template for this revision; replica left alone");
                continue;
            };
            out.push(DesiredPod {
                namespace: rc.metadata.namespace.clone(),
                name: replica.name.clone(),
                owner: Some(rc.metadata.name.clone()),
                node: replica.node.clone(),
                labels: template.labels.clone(),
                spec: template.spec.clone(),
                spec_hash: revision.clone(),
                commit: commit.clone(),
            });
        }
    }
    out
}
