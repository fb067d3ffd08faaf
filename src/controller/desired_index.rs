//! The desired pod instances of the committed state, indexed for the engine's per-key work and
//! kept current as Raft entries are applied.
//!
//! Most entries change one RC's replicas (a placement, a retirement) or nothing the index
//! holds (progress lines, rollout states). Rebuilding every desired pod after each of them
//! made a rollout of N replicas cost O(entries × N); instead the index remembers what each
//! RC's pods were built from and rebuilds only the RCs whose replicas changed. A new desired
//! commit, or placements replaced wholesale, rebuild everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::raft::state::{object_key, ClusterState, Replica, Rollout};
use crate::reconcile::{desired, DesiredPod};
use crate::rollout::{Kind, Strategy};

#[derive(Debug, Default, Clone)]
pub struct DesiredIndex {
    /// The desired commit this index was built from.
    pub commit: Option<String>,
    /// Every desired pod instance by `namespace/name`. Shared, so that copying the index (see
    /// `follow_state`) and handing a pod to its work copy no pod.
    pub pods: HashMap<String, Arc<DesiredPod>>,
    /// RCs (`namespace/name`) of the desired state.
    pub rcs: BTreeSet<String>,
    /// Those of them whose rollouts use the `Recreate` strategy (a gate for their pods).
    pub recreate: BTreeSet<String>,
    /// The placement generation of the state it was last brought up to: a reader comparing
    /// it with the state's knows whether the index has caught up with the latest placements.
    pub placed_at: u64,
    /// The keys of `pods` by host: a host going away or coming back touches its pods without
    /// a scan of every pod (5,000 hosts × 100,000 pods).
    by_node: HashMap<String, BTreeSet<String>>,
    /// What the index was built from, to tell what an applied entry changed.
    from: Sources,
}

/// The parts of the state the index was built from.
#[derive(Debug, Default, Clone)]
struct Sources {
    /// The placement generation at which placements were last replaced wholesale.
    replaced_at: u64,
    /// Per RC: its replicas and its rollout.
    rcs: HashMap<String, (Vec<Replica>, Option<Rollout>)>,
    /// Hosts of the bare Pods.
    pod_nodes: BTreeMap<String, String>,
}

/// What bringing the index up to date changed.
#[derive(Debug, Default)]
pub struct Changed {
    /// Pod keys whose desired instance was added, removed or changed.
    pub pods: Vec<String>,
    /// RCs whose replicas or rollout changed.
    pub rcs: Vec<String>,
    /// The desired commit changed (or placements were replaced): everything may read it.
    pub everything: bool,
}

impl DesiredIndex {
    pub fn of(state: &ClusterState) -> DesiredIndex {
        let mut index = DesiredIndex {
            commit: state.desired_commit.clone(),
            pods: desired::pods(state)
                .into_iter()
                .map(|p| (p.key(), Arc::new(p)))
                .collect(),
            rcs: state
                .desired
                .replication_controllers
                .iter()
                .map(|rc| object_key(&rc.metadata.namespace, &rc.metadata.name))
                .collect(),
            recreate: state
                .desired
                .replication_controllers
                .iter()
                .filter(|rc| Strategy::of(rc).kind == Kind::Recreate)
                .map(|rc| object_key(&rc.metadata.namespace, &rc.metadata.name))
                .collect(),
            from: Sources {
                replaced_at: state.placement.replaced_at,
                rcs: state
                    .desired
                    .replication_controllers
                    .iter()
                    .map(|rc| {
                        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
                        let seen = rc_sources(state, &key);
                        (key, seen)
                    })
                    .collect(),
                pod_nodes: state.pod_nodes.clone(),
            },
            by_node: HashMap::new(),
            placed_at: state.placement.generation,
        };
        for (key, pod) in &index.pods {
            index
                .by_node
                .entry(pod.node.clone())
                .or_default()
                .insert(key.clone());
        }
        index
    }

    /// Brings the index up to `state`, rebuilding only what changed since it was built.
    pub fn update(&mut self, state: &ClusterState) -> Changed {
        let wholesale = self.commit != state.desired_commit
            || self.from.replaced_at != state.placement.replaced_at
            || self.rcs.len() != state.desired.replication_controllers.len();
        if wholesale {
            let newer = DesiredIndex::of(state);
            let pods = self.changed(&newer);
            *self = newer;
            return Changed {
                pods,
                rcs: self.rcs.iter().cloned().collect(),
                everything: true,
            };
        }
        let mut changed = Changed::default();
        let commit = state.desired_commit.clone().unwrap_or_default();
        for rc in &state.desired.replication_controllers {
            let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
            let replicas = state.replicas.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            let rollout = state.rollouts.get(&key);
            let Some(seen) = self.from.rcs.get_mut(&key) else {
                // Not reachable with the same RCs; rebuilt in full to be safe.
                *self = DesiredIndex::default();
                return self.update(state);
            };
            let replicas_changed = seen.0 != replicas;
            if !replicas_changed && seen.1.as_ref() == rollout {
                continue;
            }
            changed.rcs.push(key.clone());
            if !replicas_changed {
                seen.1 = rollout.cloned();
                continue;
            }
            let mut pods = Vec::new();
            desired::rc_pods(state, rc, &commit, &mut pods);
            let old: Vec<String> = seen
                .0
                .iter()
                .map(|r| object_key(&rc.metadata.namespace, &r.name))
                .collect();
            *seen = (replicas.to_vec(), rollout.cloned());
            self.replace_group(old, pods, &mut changed.pods);
        }
        self.placed_at = state.placement.generation;
        if self.from.pod_nodes != state.pod_nodes {
            let mut pods = Vec::new();
            desired::bare_pods(state, &commit, &mut pods);
            let old: Vec<String> = self.from.pod_nodes.keys().cloned().collect();
            self.from.pod_nodes = state.pod_nodes.clone();
            self.replace_group(old, pods, &mut changed.pods);
        }
        changed
    }

    /// Sets the desired instance of `key`, noting the key when the instance changed.
    /// Puts `pods` in place of the group that held the keys `old` (one RC's pods, or the bare
    /// Pods): keys of `old` not among `pods` are removed. Changed keys go to `changed`.
    fn replace_group(
        &mut self,
        old: Vec<String>,
        pods: Vec<DesiredPod>,
        changed: &mut Vec<String>,
    ) {
        let mut kept = BTreeSet::new();
        for pod in pods {
            let k = pod.key();
            kept.insert(k.clone());
            self.put(k, pod, changed);
        }
        for k in old.into_iter().filter(|k| !kept.contains(k)) {
            if self.remove(&k) {
                changed.push(k);
            }
        }
    }

    fn put(&mut self, key: String, pod: DesiredPod, changed: &mut Vec<String>) {
        let node = pod.node.clone();
        let pod = Arc::new(pod);
        match self.pods.get_mut(&key) {
            Some(old) if same_instance(old, &pod) => *old = pod,
            Some(old) => {
                let was = std::mem::replace(old, pod);
                unlink(&mut self.by_node, &was.node, &key);
                changed.push(key.clone());
            }
            None => {
                self.pods.insert(key.clone(), pod);
                changed.push(key.clone());
            }
        }
        self.by_node.entry(node).or_default().insert(key);
    }

    /// Removes the desired instance of `key`; whether there was one.
    fn remove(&mut self, key: &str) -> bool {
        match self.pods.remove(key) {
            Some(was) => {
                unlink(&mut self.by_node, &was.node, key);
                true
            }
            None => false,
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
        self.by_node.get(node).into_iter().flatten()
    }
}

/// Takes `key` out of the pods of `node`.
fn unlink(by_node: &mut HashMap<String, BTreeSet<String>>, node: &str, key: &str) {
    if let Some(keys) = by_node.get_mut(node) {
        keys.remove(key);
        if keys.is_empty() {
            by_node.remove(node);
        }
    }
}

/// What the pods of the RC `key` are built from.
fn rc_sources(state: &ClusterState, key: &str) -> (Vec<Replica>, Option<Rollout>) {
    (
        state.replicas.get(key).cloned().unwrap_or_default(),
        state.rollouts.get(key).cloned(),
    )
}

fn same_instance(a: &DesiredPod, b: &DesiredPod) -> bool {
    a.node == b.node && a.spec_hash == b.spec_hash && a.owner == b.owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_files, Limits, SourceFile};
    use crate::raft::state::{Command, CommitRecord};

    /// A state with commit `c1` accepted: RCs `web` and `api`, two replicas each on `h1`.
    fn two_rcs() -> (ClusterState, String) {
        let rc = |name: &str| {
            format!(
                "apiVersion: v1\nkind: ReplicationController\nmetadata: {{name: {name}}}\nspec:\n  replicas: 2\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: c, image: 'i:1'}}]\n---\n"
            )
        };
        let desired = load_files(
            &[SourceFile {
                path: "m.yaml".into(),
                bytes: (rc("web") + &rc("api")).into_bytes(),
            }],
            &Limits::default(),
        )
        .unwrap();
        let mut replicas = BTreeMap::new();
        for rc in &desired.replication_controllers {
            let name = &rc.metadata.name;
            let list = (0..2)
                .map(|i| Replica {
                    name: format!("{name}-{i}"),
                    node: "h1".into(),
                    revision: rc.template.revision(),
                    created_at: 0,
                })
                .collect();
            replicas.insert(format!("default/{name}"), list);
        }
        let mut state = ClusterState::new();
        let record = CommitRecord::pending("c1".into(), vec![], "A <a@b>".into(), "m".into(), 0, 1);
        state.apply(Command::Seen {
            commits: vec![record],
        });
        assert!(
            state
                .apply(Command::Accept {
                    sha: "c1".into(),
                    desired,
                    replicas,
                    pod_nodes: BTreeMap::new(),
                    unchanged: false,
                    at: 1,
                })
                .ok
        );
        (state, "c1".into())
    }

    fn index_matches(index: &DesiredIndex, state: &ClusterState) {
        let fresh = DesiredIndex::of(state);
        let mut a: Vec<_> = index.pods.keys().collect();
        let mut b: Vec<_> = fresh.pods.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for (k, p) in &fresh.pods {
            assert!(same_instance(p, &index.pods[k]), "{k}");
        }
        assert_eq!(index.rcs, fresh.rcs);
        assert_eq!(index.placed_at, state.placement.generation, "caught up");
        for node in ["h1", "h2"] {
            let mut a: Vec<_> = index.on_node(node).collect();
            let mut b: Vec<_> = fresh
                .pods
                .iter()
                .filter(|(_, p)| p.node == node)
                .map(|(k, _)| k)
                .collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{node}");
        }
    }

    #[test]
    fn an_entry_changing_one_rc_rebuilds_that_rc_alone() {
        let (mut state, sha) = two_rcs();
        let mut index = DesiredIndex::of(&state);
        index_matches(&index, &state);

        let add = vec![Replica {
            name: "web-new".into(),
            node: "h2".into(),
            revision: state.rollouts["default/web"].revision.clone(),
            created_at: 1,
        }];
        let generation = state.placement.generation;
        assert!(
            state
                .apply(Command::Replicas {
                    sha: sha.clone(),
                    rc: "default/web".into(),
                    add,
                    retire: vec![],
                    at: 1,
                    based_on: Some(generation),
                })
                .ok
        );
        let changed = index.update(&state);
        assert!(!changed.everything);
        assert_eq!(changed.rcs, vec!["default/web".to_string()]);
        assert_eq!(changed.pods, vec!["default/web-new".to_string()]);
        index_matches(&index, &state);

        let first = state.replicas["default/api"][0].name.clone();
        assert!(
            state
                .apply(Command::Replicas {
                    sha,
                    rc: "default/api".into(),
                    add: vec![],
                    retire: vec![first.clone()],
                    at: 2,
                    based_on: None,
                })
                .ok
        );
        let changed = index.update(&state);
        assert_eq!(changed.rcs, vec!["default/api".to_string()]);
        assert_eq!(changed.pods, vec![format!("default/{first}")]);
        index_matches(&index, &state);

        let changed = index.update(&state);
        assert!(changed.rcs.is_empty() && changed.pods.is_empty());
    }
}
