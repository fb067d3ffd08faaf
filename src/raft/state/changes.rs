//! A desired state as the change from the current one: what [`Command::AcceptChanges`] and
//! [`Command::RollbackChanges`] carry instead of the whole tree.
//!
//! Why: every Raft entry is written to each member's disk, sent to each follower and replayed
//! at start-up until the next snapshot. With the whole desired state in every accept, a one-line
//! change in a tree of 1000 ReplicationControllers made an entry of about a megabyte (and the
//! replica lists of every RC on top); as changes it is the one object that changed (see the
//! `a_one_line_change_travels_as_one_object` test for the numbers).
//!
//! Objects are keyed by kind, namespace and name (unique per kind: `load` refuses duplicates).
//! An object that differs only in where it was read from (`origin`: a line added above it moves
//! every object below it in that file) travels as its key and new origin, not whole.
//!
//! Order: the state keeps each kind's objects sorted by origin (file, line), then key: the order
//! `load` reads a tree in (files sorted by path, documents in file order), so listings keep file
//! order and the result of applying changes never depends on the order they list objects in.
//!
//! Staleness: changes name the desired commit they were computed against (`base`) and apply to
//! that one only; a key they remove or move must exist. Anything else is a proposal computed
//! against an older state, and `apply` refuses it (`ok: false`) without changing anything. The
//! desired state of one commit is the same on every controller as long as they run with the
//! same `--path`, limits and hostPath policy (a cluster's members must).
//!
//! [`Command::AcceptChanges`]: super::Command::AcceptChanges
//! [`Command::RollbackChanges`]: super::Command::RollbackChanges

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ClusterState, ObjectKey, Replica};
use crate::manifest::{Manifests, Node, ObjectMeta, Origin, Pod, ReplicationController, Service};

/// The kinds of object a tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Pod,
    ReplicationController,
    Service,
    Node,
}

/// One object of a tree, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// An object unchanged but for where it was read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub origin: Origin,
}

/// What changed between two trees: objects added or replaced (whole), moved, and removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestChanges {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<Pod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replication_controllers: Vec<ReplicationController>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<Node>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<Moved>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<ObjectRef>,
}

/// The desired state of a commit as the change from the desired state of `base`: the tree, the
/// replica lists and the bare Pods' hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredChanges {
    /// The desired commit these changes were computed against; `None` when none was desired.
    pub base: Option<String>,
    pub manifests: ManifestChanges,
    /// Replica lists that differ from the state's, whole per RC; `None` drops the RC's list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<ObjectKey, Option<Vec<Replica>>>,
    /// Hosts of bare Pods that differ from the state's; `None` drops the Pod's host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_nodes: BTreeMap<ObjectKey, Option<String>>,
}

/// The desired state, replica lists and bare Pods' hosts that an accept installs.
pub type Resolved = (
    Manifests,
    BTreeMap<ObjectKey, Vec<Replica>>,
    BTreeMap<ObjectKey, String>,
);

impl DesiredChanges {
    /// The changes that turn `state`'s desired state, replicas and Pod hosts into these.
    pub fn between(
        state: &ClusterState,
        desired: &Manifests,
        replicas: &BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: &BTreeMap<ObjectKey, String>,
    ) -> DesiredChanges {
        DesiredChanges {
            base: state.desired_commit.clone(),
            manifests: ManifestChanges::between(&state.desired, desired),
            replicas: map_changes(&state.replicas, replicas),
            pod_nodes: map_changes(&state.pod_nodes, pod_nodes),
        }
    }

    /// What these changes make of `state`, or `None` when they were computed against another
    /// desired state (a stale proposal). `state` itself is left as it is.
    pub fn resolve(self, state: &ClusterState) -> Option<Resolved> {
        if self.base != state.desired_commit || !self.manifests.applies_to(&state.desired) {
            return None;
        }
        let mut desired = state.desired.clone();
        self.manifests.apply(&mut desired);
        let mut replicas = state.replicas.clone();
        apply_map(&mut replicas, self.replicas);
        let mut pod_nodes = state.pod_nodes.clone();
        apply_map(&mut pod_nodes, self.pod_nodes);
        Some((desired, replicas, pod_nodes))
    }
}

impl ManifestChanges {
    /// What changed from `old` to `new`, whatever order either lists its objects in.
    pub fn between(old: &Manifests, new: &Manifests) -> ManifestChanges {
        let mut c = ManifestChanges::default();
        diff(
            &old.pods,
            &new.pods,
            &mut c.pods,
            &mut c.moved,
            &mut c.removed,
        );
        diff(
            &old.replication_controllers,
            &new.replication_controllers,
            &mut c.replication_controllers,
            &mut c.moved,
            &mut c.removed,
        );
        diff(
            &old.services,
            &new.services,
            &mut c.services,
            &mut c.moved,
            &mut c.removed,
        );
        diff(
            &old.nodes,
            &new.nodes,
            &mut c.nodes,
            &mut c.moved,
            &mut c.removed,
        );
        c
    }

    /// No object changed.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
            && self.replication_controllers.is_empty()
            && self.services.is_empty()
            && self.nodes.is_empty()
            && self.moved.is_empty()
            && self.removed.is_empty()
    }

    /// Every object these changes remove or move exists in `desired`.
    fn applies_to(&self, desired: &Manifests) -> bool {
        let keys: BTreeSet<ObjectRef> = keys(&desired.pods)
            .chain(keys(&desired.replication_controllers))
            .chain(keys(&desired.services))
            .chain(keys(&desired.nodes))
            .collect();
        self.removed
            .iter()
            .chain(self.moved.iter().map(|m| &m.object))
            .all(|r| keys.contains(r))
    }

    /// Applies the changes to `desired` and leaves it in canonical order.
    fn apply(self, desired: &mut Manifests) {
        apply_kind(&mut desired.pods, self.pods, &self.moved, &self.removed);
        apply_kind(
            &mut desired.replication_controllers,
            self.replication_controllers,
            &self.moved,
            &self.removed,
        );
        apply_kind(
            &mut desired.services,
            self.services,
            &self.moved,
            &self.removed,
        );
        apply_kind(&mut desired.nodes, self.nodes, &self.moved, &self.removed);
    }
}

/// Puts every kind's objects of `m` in the order the state keeps them in (see the module doc).
pub fn canonical(m: &mut Manifests) {
    sort(&mut m.pods);
    sort(&mut m.replication_controllers);
    sort(&mut m.services);
    sort(&mut m.nodes);
}

/// What the three kinds share, for the generic diff.
trait Object: Clone + PartialEq {
    const KIND: Kind;
    fn meta(&self) -> &ObjectMeta;
    fn origin_mut(&mut self) -> &mut Origin;
    fn origin(&self) -> &Origin;
}

macro_rules! object {
    ($t:ty, $kind:expr) => {
        impl Object for $t {
            const KIND: Kind = $kind;
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn origin(&self) -> &Origin {
                &self.origin
            }
            fn origin_mut(&mut self) -> &mut Origin {
                &mut self.origin
            }
        }
    };
}
object!(Pod, Kind::Pod);
object!(ReplicationController, Kind::ReplicationController);
object!(Service, Kind::Service);
object!(Node, Kind::Node);

fn object_ref<T: Object>(o: &T) -> ObjectRef {
    ObjectRef {
        kind: T::KIND,
        namespace: o.meta().namespace.clone(),
        name: o.meta().name.clone(),
    }
}

fn name<T: Object>(o: &T) -> (&str, &str) {
    (&o.meta().namespace, &o.meta().name)
}

fn keys<T: Object>(objects: &[T]) -> impl Iterator<Item = ObjectRef> + '_ {
    objects.iter().map(object_ref)
}

fn diff<T: Object>(
    old: &[T],
    new: &[T],
    upsert: &mut Vec<T>,
    moved: &mut Vec<Moved>,
    removed: &mut Vec<ObjectRef>,
) {
    let before: BTreeMap<(&str, &str), &T> = old.iter().map(|o| (name(o), o)).collect();
    let after: BTreeSet<(&str, &str)> = new.iter().map(name).collect();
    for n in new {
        match before.get(&name(n)) {
            Some(o) if *o == n => {}
            Some(o)
                if o.origin() != n.origin() && {
                    let mut same = (*o).clone();
                    *same.origin_mut() = n.origin().clone();
                    same == *n
                } =>
            {
                moved.push(Moved {
                    object: object_ref(n),
                    origin: n.origin().clone(),
                })
            }
            _ => upsert.push(n.clone()),
        }
    }
    removed.extend(
        old.iter()
            .filter(|o| !after.contains(&name(*o)))
            .map(object_ref),
    );
}

fn apply_kind<T: Object>(
    objects: &mut Vec<T>,
    upsert: Vec<T>,
    moved: &[Moved],
    removed: &[ObjectRef],
) {
    let gone: BTreeSet<(&str, &str)> = removed
        .iter()
        .filter(|r| r.kind == T::KIND)
        .map(|r| (r.namespace.as_str(), r.name.as_str()))
        .collect();
    objects.retain(|o| !gone.contains(&name(o)));
    let moves: BTreeMap<(&str, &str), &Origin> = moved
        .iter()
        .filter(|m| m.object.kind == T::KIND)
        .map(|m| {
            (
                (m.object.namespace.as_str(), m.object.name.as_str()),
                &m.origin,
            )
        })
        .collect();
    let mut at: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, o) in objects.iter_mut().enumerate() {
        if let Some(origin) = moves.get(&name(o)) {
            *o.origin_mut() = (*origin).clone();
        }
        let (ns, n) = name(o);
        at.insert((ns.to_string(), n.to_string()), i);
    }
    for o in upsert {
        let (ns, n) = name(&o);
        match at.get(&(ns.to_string(), n.to_string())) {
            Some(i) => objects[*i] = o,
            None => {
                at.insert((ns.to_string(), n.to_string()), objects.len());
                objects.push(o);
            }
        }
    }
    sort(objects);
}

fn sort<T: Object>(objects: &mut [T]) {
    fn key<T: Object>(o: &T) -> (&str, u32, (&str, &str)) {
        (&o.origin().file, o.origin().line, name(o))
    }
    objects.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// The entries of `new` that differ from `old`, and `None` for the keys `new` lacks.
fn map_changes<V: Clone + PartialEq>(
    old: &BTreeMap<ObjectKey, V>,
    new: &BTreeMap<ObjectKey, V>,
) -> BTreeMap<ObjectKey, Option<V>> {
    let mut changes: BTreeMap<ObjectKey, Option<V>> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    changes.extend(
        old.keys()
            .filter(|k| !new.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    changes
}

fn apply_map<V>(map: &mut BTreeMap<ObjectKey, V>, changes: BTreeMap<ObjectKey, Option<V>>) {
    for (k, v) in changes {
        match v {
            Some(v) => map.insert(k, v),
            None => map.remove(&k),
        };
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
