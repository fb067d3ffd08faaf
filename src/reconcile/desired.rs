//! From the committed state to the list of pod instances that should exist, each with its host
//! and spec hash.

use sha2::{Digest, Sha256};

use super::types::DesiredPod;
use crate::manifest::{PodSpec, StringMap};
use crate::raft::state::{object_key, ClusterState};

/// Hash of what, when it changes, needs new containers: the pod's labels, annotations and spec.
/// The commit is deliberately left out, so a revert or a change elsewhere causes no churn.
pub fn spec_hash(labels: &StringMap, annotations: &StringMap, spec: &PodSpec) -> String {
    let bytes =
        serde_json::to_vec(&(labels, annotations, spec)).expect("pod specs always serialise");
    let digest = Sha256::digest(&bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Every pod instance the committed state wants, placed. RC replicas without a committed
/// placement are left out: the leader places them through Raft before anything is created.
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
            spec_hash: spec_hash(&pod.metadata.labels, &pod.metadata.annotations, &pod.spec),
            spec: pod.spec.clone(),
            commit: commit.clone(),
        });
    }
    for rc in &state.desired.replication_controllers {
        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
        let hash = spec_hash(
            &rc.template.labels,
            &rc.template.annotations,
            &rc.template.spec,
        );
        for replica in state.replicas.get(&key).into_iter().flatten() {
            out.push(DesiredPod {
                namespace: rc.metadata.namespace.clone(),
                name: replica.name.clone(),
                owner: Some(rc.metadata.name.clone()),
                node: replica.node.clone(),
                labels: rc.template.labels.clone(),
                spec: rc.template.spec.clone(),
                spec_hash: hash.clone(),
                commit: commit.clone(),
            });
        }
    }
    out
}
