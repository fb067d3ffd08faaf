//! How the commands that move the desired state and its replicas change the state: seen
//! commits, accepts (whole or as changes), rollbacks, replica changes and rollout states.

use std::collections::{BTreeMap, BTreeSet};

use super::changes::{canonical, Resolved};
use super::history::{capped, CommitRecord, Outcome, Trigger, MAX_ERRORS};
use super::workload::{Replica, Rollout, RolloutState};
use super::{object_key, ClusterState, Millis, ObjectKey};
use crate::manifest::Manifests;

impl ClusterState {
    pub(super) fn seen(&mut self, commits: Vec<CommitRecord>) {
        let n = commits.len();
        // A sha may appear again (a force-push back to an old commit): each sighting is its own
        // record, and lookups find the newest.
        for (i, mut c) in commits.into_iter().enumerate() {
            if i + 1 < n {
                c.outcome = Outcome::Superseded;
            } else {
                self.last_head = Some(c.sha.clone());
            }
            self.history.push(c);
        }
    }

    /// `failed` (the desired commit) halted: it is rolled back to `to`, recorded anew, and
    /// `resolved` (`to`'s desired state) is accepted.
    pub(super) fn rollback(
        &mut self,
        failed: String,
        mut to: CommitRecord,
        (desired, replicas, pod_nodes): Resolved,
        at: Millis,
    ) -> bool {
        if self.desired_commit.as_deref() != Some(failed.as_str()) {
            return false;
        }
        let target = to.sha.clone();
        let rolled_back = self.history.update(&failed, |c| {
            if !matches!(c.outcome, Outcome::Failed | Outcome::Applying) {
                return false;
            }
            c.outcome = Outcome::RolledBack;
            c.refers_to = Some(target.clone());
            true
        });
        if rolled_back != Some(true) {
            return false;
        }
        to.outcome = Outcome::Pending;
        to.trigger = Trigger::Rollback;
        to.refers_to = Some(failed);
        to.seen_at = at;
        to.applied_at = None;
        to.converged_at = None;
        to.errors.clear();
        to.plan.clear();
        self.history.push(to);
        self.accept(target, desired, replicas, pod_nodes, false, at)
    }

    pub(super) fn accept(
        &mut self,
        sha: String,
        desired: Manifests,
        mut replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        unchanged: bool,
        at: Millis,
    ) -> bool {
        let found = self.history.update(&sha, |c| {
            c.outcome = Outcome::Applying;
            c.unchanged = unchanged;
            c.applied_at = Some(at);
        });
        if found.is_none() {
            return false;
        }
        if let Some(previous) = self.desired_commit.replace(sha.clone()) {
            if previous != sha {
                self.history.update(&previous, |p| {
                    if p.outcome == Outcome::Applying {
                        p.outcome = Outcome::Superseded;
                        p.refers_to = Some(sha.clone());
                    }
                });
            }
        }
        let mut desired = desired;
        canonical(&mut desired);
        let old = std::mem::replace(&mut self.desired, desired);
        // Templates the kept replicas run that the new desired state no longer has.
        for rc in &old.replication_controllers {
            let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
            let revision = rc.template.revision();
            self.templates
                .entry(key)
                .or_default()
                .entry(revision)
                .or_insert_with(|| rc.template.clone());
        }
        let wanted: BTreeSet<ObjectKey> = self
            .desired
            .replication_controllers
            .iter()
            .map(|rc| object_key(&rc.metadata.namespace, &rc.metadata.name))
            .collect();
        replicas.retain(|key, _| wanted.contains(key));
        // Entries written before replicas carried revisions placed replicas for this commit.
        for rc in &self.desired.replication_controllers {
            let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
            if let Some(list) = replicas.get_mut(&key) {
                let revision = rc.template.revision();
                for r in list.iter_mut().filter(|r| r.revision.is_empty()) {
                    r.revision = revision.clone();
                }
            }
        }
        self.replicas = replicas;
        self.pod_nodes = pod_nodes;
        self.placement.replaced();
        self.rollouts.retain(|key, _| wanted.contains(key));
        for rc in self.desired.replication_controllers.clone() {
            let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
            let revision = rc.template.revision();
            let list = self.replicas.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            let settled =
                list.len() == rc.replicas as usize && list.iter().all(|r| r.revision == revision);
            let same_target = self
                .rollouts
                .get(&key)
                .is_some_and(|r| r.revision == revision);
            let rollout = match self.rollouts.get(&key) {
                // A rollout to this revision already running (or done) goes on as it was.
                Some(r) if same_target && (settled || r.is_progressing()) => Rollout {
                    sha: sha.clone(),
                    ..r.clone()
                },
                _ => Rollout {
                    sha: sha.clone(),
                    revision,
                    started_at: at,
                    state: if settled {
                        RolloutState::Complete
                    } else {
                        RolloutState::Progressing
                    },
                    updated_at: at,
                },
            };
            self.rollouts.insert(key, rollout);
        }
        self.forget_unused_templates();
        true
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn change_replicas(
        &mut self,
        sha: &str,
        rc: &str,
        add: Vec<Replica>,
        retire: Vec<String>,
        at: Millis,
        based_on: Option<u64>,
        batch: Option<u64>,
    ) -> bool {
        if self.desired_commit.as_deref() != Some(sha) || !self.rollouts.contains_key(rc) {
            return false;
        }
        if let Some(g) = based_on {
            let hosts = add.iter().map(|r| r.node.as_str());
            if !self.placement.fresh_within(g, batch, hosts) {
                return false; // a host it chose took pods meanwhile: recomputed
            }
        }
        let list = self.replicas.entry(rc.to_string()).or_default();
        let taken: BTreeSet<&str> = list.iter().map(|r| r.name.as_str()).collect();
        if add.iter().any(|r| taken.contains(r.name.as_str())) {
            return false; // names are never reused: this proposal saw an older state
        }
        let (namespace, _) = rc.split_once('/').unwrap_or(("default", rc));
        let mut lines: Vec<String> = add
            .iter()
            .map(|r| match r.node.as_str() {
                "" => format!("add {namespace}/{} (pending: no host fits)", r.name),
                node => format!("add {namespace}/{} on {node}", r.name),
            })
            .collect();
        self.placement.added(
            add.iter()
                .map(|r| r.node.as_str())
                .filter(|n| !n.is_empty()),
        );
        lines.extend(retire.iter().map(|n| format!("retire {namespace}/{n}")));
        list.retain(|r| !retire.contains(&r.name));
        list.extend(add);
        if let Some(r) = self.rollouts.get_mut(rc) {
            r.updated_at = at;
        }
        self.history.update(sha, |c| c.note(lines));
        self.forget_unused_templates();
        true
    }

    /// Pending pods placed (see [`super::Command::Bind`]).
    pub(super) fn bind(
        &mut self,
        replicas: BTreeMap<ObjectKey, Vec<(String, String)>>,
        pods: BTreeMap<ObjectKey, String>,
        based_on: u64,
        batch: Option<u64>,
    ) -> bool {
        let hosts = replicas
            .values()
            .flatten()
            .map(|(_, n)| n.as_str())
            .chain(pods.values().map(String::as_str));
        if !self.placement.fresh_within(based_on, batch, hosts) {
            return false;
        }
        let desired_pods: BTreeSet<ObjectKey> = self
            .desired
            .pods
            .iter()
            .map(|p| object_key(&p.metadata.namespace, &p.metadata.name))
            .collect();
        let pods_pending = pods
            .keys()
            .all(|k| !self.pod_nodes.contains_key(k) && desired_pods.contains(k));
        let replicas_pending = replicas.iter().all(|(rc, binds)| {
            let pending: BTreeSet<&str> = self
                .replicas
                .get(rc)
                .into_iter()
                .flatten()
                .filter(|r| r.node.is_empty())
                .map(|r| r.name.as_str())
                .collect();
            binds
                .iter()
                .all(|(name, _)| pending.contains(name.as_str()))
        });
        if !pods_pending || !replicas_pending {
            return false;
        }
        let mut lines = Vec::new();
        for (rc, binds) in &replicas {
            let namespace = rc.split_once('/').map_or("default", |(ns, _)| ns);
            let Some(list) = self.replicas.get_mut(rc) else {
                continue;
            };
            let at: std::collections::HashMap<&str, &str> = binds
                .iter()
                .map(|(name, node)| (name.as_str(), node.as_str()))
                .collect();
            for r in list.iter_mut() {
                if let Some(node) = at.get(r.name.as_str()) {
                    r.node = node.to_string();
                    lines.push(format!("place {namespace}/{} on {node}", r.name));
                }
            }
        }
        for (key, node) in &pods {
            self.pod_nodes.insert(key.clone(), node.clone());
            lines.push(format!("place {key} on {node}"));
        }
        let hosts: Vec<String> = replicas
            .values()
            .flatten()
            .map(|(_, n)| n.clone())
            .chain(pods.values().cloned())
            .collect();
        self.placement.added(hosts.iter().map(String::as_str));
        if let Some(sha) = self.desired_commit.clone() {
            self.history.update(&sha, |c| {
                if c.outcome == Outcome::Applying {
                    c.note(lines);
                }
            });
        }
        true
    }

    pub(super) fn rollout_state(
        &mut self,
        sha: &str,
        rc: &str,
        state: RolloutState,
        at: Millis,
    ) -> bool {
        if self.desired_commit.as_deref() != Some(sha) {
            return false;
        }
        let Some(rollout) = self.rollouts.get_mut(rc) else {
            return false;
        };
        // Reasons come from outside (probe answers, Docker errors): kept within the same caps
        // as a commit's errors, here and in the history.
        let state = match state {
            RolloutState::Halted { reasons } => RolloutState::Halted {
                reasons: capped(reasons, MAX_ERRORS),
            },
            other => other,
        };
        rollout.state = state.clone();
        rollout.updated_at = at;
        if let RolloutState::Halted { reasons } = state {
            self.history.update(sha, |c| {
                if c.outcome == Outcome::Applying {
                    c.outcome = Outcome::Failed;
                }
                let mut errors = std::mem::take(&mut c.errors);
                errors.extend(reasons);
                c.errors = capped(errors, MAX_ERRORS);
            });
        }
        true
    }

    /// Drops older templates no replica runs any more.
    pub(super) fn forget_unused_templates(&mut self) {
        let replicas = &self.replicas;
        self.templates.retain(|key, revisions| {
            let used: BTreeSet<&str> = replicas
                .get(key)
                .into_iter()
                .flatten()
                .map(|r| r.revision.as_str())
                .collect();
            revisions.retain(|revision, _| used.contains(revision.as_str()));
            !revisions.is_empty()
        });
    }
}
