//! The desired pod instances of the committed state, indexed for the engine's per-key work and
//! rebuilt when an applied Raft entry changes them.

use std::collections::{BTreeSet, HashMap};

use crate::raft::state::{object_key, ClusterState};
use crate::reconcile::{desired, DesiredPod};

#[derive(Debug, Default)]
pub struct DesiredIndex {
    /// The desired commit this index was built from.
    pub commit: Option<String>,
    /// Every desired pod instance by `namespace/name`.
    pub pods: HashMap<String, DesiredPod>,
    /// RCs (`namespace/name`) of the desired state.
    pub rcs: BTreeSet<String>,
}

impl DesiredIndex {
    pub fn of(state: &ClusterState) -> DesiredIndex {
        DesiredIndex {
            commit: state.desired_commit.clone(),
            pods: desired::pods(state)
                .into_iter()
                .map(|p| (p.key(), p))
                .collect(),
            rcs: state
                .desired
                .replication_controllers
                .iter()
                .map(|rc| object_key(&rc.metadata.namespace, &rc.metadata.name))
                .collect(),
        }
    }

    /// Pod keys whose desired instance differs between `self` and `newer` (added, removed or
    /// changed). The commit label alone does not count: it never causes a replacement.
    pub fn changed(&self, newer: &DesiredIndex) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for (k, p) in &newer.pods {
            match self.pods.get(k) {
                Some(old) if same_instance(old, p) => {}
                _ => keys.push(k.clone()),
            }
        }
        keys.extend(
            self.pods
                .keys()
                .filter(|k| !newer.pods.contains_key(*k))
                .cloned(),
        );
        keys
    }

    /// Pods placed on `node`.
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.pods
            .iter()
            .filter(move |(_, p)| p.node == node)
            .map(|(k, _)| k)
    }
}

fn same_instance(a: &DesiredPod, b: &DesiredPod) -> bool {
    a.node == b.node && a.spec_hash == b.spec_hash && a.owner == b.owner
}
