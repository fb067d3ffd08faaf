//! The replicated state: what every controller agrees on, changed only by applying `Command`s in
//! log order.
//!
//! `apply` is deterministic and does no I/O: timestamps and random names are chosen by the
//! leader and travel inside the commands, so every replica computes the same state. Commands
//! that build on the desired commit (replicas, rollout states, convergence) name it, and are
//! refused (`ok: false`) when another commit became desired meanwhile: a decision computed
//! against stale state never lands.
//!
//! Files: `history` (commit records and the outcome schema), `settings` (what every member
//! must agree on), `workload` (replicas, revisions, rollouts), this file (the state, the commands and `apply`).

mod history;
mod services;
mod settings;
mod workload;

pub use history::{capped, truncated, CommitRecord, Outcome, Trigger, MAX_ERRORS, MAX_TEXT_BYTES};
pub use services::{Endpoint, ServiceTable};
pub use settings::{differing, SettingValues, Settings, SettingsChange};
pub use workload::{Replica, Rollout, RolloutState};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::manifest::{Manifests, PodTemplate};

/// How many commits of history are kept before the oldest are dropped.
pub const HISTORY_LIMIT: usize = 50_000;

/// The format of [`ClusterState`] and [`Command`] this build writes. States from before formats
/// were recorded read as 0 and are format 1; a state (or snapshot) of a later format is refused
/// on load rather than misread.
pub const STATE_FORMAT: u32 = 2;

/// Milliseconds since the Unix epoch, from the leader's clock.
pub type Millis = u64;

/// `namespace/name` of a ReplicationController or Pod.
pub type ObjectKey = String;

pub fn object_key(namespace: &str, name: &str) -> ObjectKey {
    format!("{namespace}/{name}")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// See [`STATE_FORMAT`].
    #[serde(default)]
    pub format: u32,
    /// The desired state of the last accepted commit, and that commit.
    pub desired: Manifests,
    pub desired_commit: Option<String>,
    /// Newest last. Capped at `HISTORY_LIMIT`.
    pub history: VecDeque<CommitRecord>,
    /// The last head handled, whatever its outcome: the next fetch is compared with it.
    pub last_head: Option<String>,
    /// The last commit that converged: what `--on-failure rollback` goes back to.
    #[serde(default)]
    pub last_converged: Option<String>,
    /// Replicas per RC, every revision, committed before any container exists.
    pub replicas: BTreeMap<ObjectKey, Vec<Replica>>,
    /// Templates of older revisions that replicas still run, per RC, by revision.
    #[serde(default)]
    pub templates: BTreeMap<ObjectKey, BTreeMap<String, PodTemplate>>,
    /// The rollout of each RC of the desired commit.
    #[serde(default)]
    pub rollouts: BTreeMap<ObjectKey, Rollout>,
    /// Host of each bare Pod.
    pub pod_nodes: BTreeMap<ObjectKey, String>,
    /// The settings every member must share (see `settings.rs`).
    #[serde(default)]
    pub settings: Settings,
    /// Cluster IPs and endpoints of the Services (see `services.rs`).
    #[serde(default)]
    pub services: ServiceTable,
}

/// The changes a leader can propose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A new head (last in `commits`, newest last) was fetched; the older ones are superseded.
    Seen { commits: Vec<CommitRecord> },
    /// The head is valid: it becomes the desired state. `replicas` are the RC replicas kept
    /// (with their revisions); new ones come from [`Command::Replicas`]. Rollouts start for
    /// every RC whose replicas are not all of its template's revision and count.
    Accept {
        sha: String,
        desired: Manifests,
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        unchanged: bool,
        at: Millis,
    },
    /// The head is invalid: recorded with every problem; the desired state does not change.
    Reject {
        sha: String,
        errors: Vec<String>,
        at: Millis,
    },
    /// Replica placement changed without a new commit (a host came or went).
    Place {
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
    },
    /// Written by berth before rollouts existed: a reconcile pass for `sha` ran. Still read so
    /// that old logs replay; never proposed any more.
    Executed {
        sha: String,
        plan: Vec<String>,
        errors: Vec<String>,
        at: Millis,
    },
    /// Everything observed matches the desired state of `sha`.
    Converged { sha: String, at: Millis },
    /// Replicas added to, and retired from, one RC of the desired commit `sha`.
    Replicas {
        sha: String,
        rc: ObjectKey,
        add: Vec<Replica>,
        retire: Vec<String>,
        at: Millis,
    },
    /// The rollout of `rc` for `sha` completed or halted. A halt fails the commit.
    RolloutState {
        sha: String,
        rc: ObjectKey,
        state: RolloutState,
        at: Millis,
    },
    /// The commit halted outside any rollout (a bare Pod missed its deadline).
    Failed {
        sha: String,
        reasons: Vec<String>,
        at: Millis,
    },
    /// Steps done for `sha`, each recorded once however often it was retried.
    Progress { sha: String, lines: Vec<String> },
    /// `failed` (the desired commit) halted and `--on-failure rollback` applies `to.sha`, the
    /// last commit that converged, again: a new history record, then an accept.
    Rollback {
        failed: String,
        to: Box<CommitRecord>,
        desired: Manifests,
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        at: Millis,
    },
    /// The cluster adopts member `by`'s settings (the first leader's at bootstrap, later by
    /// `berth cluster settings adopt`).
    Settings {
        values: SettingValues,
        by: u64,
        at: Millis,
    },
    /// The Services' cluster IPs and endpoints, as the leader computed them; replaces the
    /// table whole.
    Services { table: ServiceTable },
}

/// What `apply` answers to the proposer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// False when the command was refused: it referred to a commit the state does not know, or
    /// to one that is no longer desired (a stale proposal).
    pub ok: bool,
}

impl ClusterState {
    /// A new, empty state in this build's format.
    pub fn new() -> ClusterState {
        ClusterState {
            format: STATE_FORMAT,
            ..ClusterState::default()
        }
    }

    pub fn commit(&self, sha: &str) -> Option<&CommitRecord> {
        self.history.iter().rev().find(|c| c.sha == sha)
    }

    fn commit_mut(&mut self, sha: &str) -> Option<&mut CommitRecord> {
        self.history.iter_mut().rev().find(|c| c.sha == sha)
    }

    /// The desired commit's record, when `sha` is the desired commit.
    fn desired_mut(&mut self, sha: &str) -> Option<&mut CommitRecord> {
        if self.desired_commit.as_deref() != Some(sha) {
            return None;
        }
        self.commit_mut(sha)
    }

    /// The template of `revision` of the RC `key`: the desired one, or an older one still run.
    pub fn template(&self, key: &str, revision: &str) -> Option<&PodTemplate> {
        let current = self
            .desired
            .replication_controllers
            .iter()
            .find(|rc| object_key(&rc.metadata.namespace, &rc.metadata.name) == key)
            .map(|rc| &rc.template)
            .filter(|t| revision.is_empty() || t.revision() == revision);
        current.or_else(|| self.templates.get(key)?.get(revision))
    }

    pub fn apply(&mut self, cmd: Command) -> Response {
        if self.format == 0 {
            self.format = STATE_FORMAT;
        }
        let ok = match cmd {
            Command::Seen { commits } => {
                self.seen(commits);
                true
            }
            Command::Accept {
                sha,
                desired,
                replicas,
                pod_nodes,
                unchanged,
                at,
            } => self.accept(sha, desired, replicas, pod_nodes, unchanged, at),
            Command::Reject { sha, errors, at } => match self.commit_mut(&sha) {
                Some(c) => {
                    c.outcome = Outcome::Rejected;
                    c.errors = capped(errors, MAX_ERRORS);
                    c.applied_at = Some(at);
                    true
                }
                None => false,
            },
            Command::Place {
                replicas,
                pod_nodes,
            } => {
                self.replicas = replicas;
                self.pod_nodes = pod_nodes;
                self.forget_unused_templates();
                true
            }
            Command::Executed { sha, plan, at, .. } => match self.commit_mut(&sha) {
                Some(c) => {
                    c.note(plan);
                    c.applied_at.get_or_insert(at);
                    true
                }
                None => false,
            },
            Command::Converged { sha, at } => match self.desired_mut(&sha) {
                Some(c) if !matches!(c.outcome, Outcome::Failed | Outcome::RolledBack) => {
                    c.outcome = Outcome::Applied;
                    c.errors.clear();
                    c.applied_at.get_or_insert(at);
                    c.converged_at.get_or_insert(at);
                    self.last_converged = Some(sha);
                    true
                }
                _ => false,
            },
            Command::Replicas {
                sha,
                rc,
                add,
                retire,
                at,
            } => self.change_replicas(&sha, &rc, add, retire, at),
            Command::RolloutState { sha, rc, state, at } => {
                self.rollout_state(&sha, &rc, state, at)
            }
            Command::Failed { sha, reasons, at } => match self.desired_mut(&sha) {
                Some(c) if c.outcome == Outcome::Applying => {
                    c.outcome = Outcome::Failed;
                    c.errors = capped(reasons, MAX_ERRORS);
                    c.applied_at.get_or_insert(at);
                    true
                }
                _ => false,
            },
            Command::Progress { sha, lines } => match self.commit_mut(&sha) {
                Some(c) => {
                    c.note(lines);
                    true
                }
                None => false,
            },
            Command::Rollback {
                failed,
                mut to,
                desired,
                replicas,
                pod_nodes,
                at,
            } => {
                let Some(c) = self.desired_mut(&failed) else {
                    return Response { ok: false };
                };
                if !matches!(c.outcome, Outcome::Failed | Outcome::Applying) {
                    return Response { ok: false };
                }
                c.outcome = Outcome::RolledBack;
                c.refers_to = Some(to.sha.clone());
                let sha = to.sha.clone();
                to.outcome = Outcome::Pending;
                to.trigger = Trigger::Rollback;
                to.refers_to = Some(failed);
                to.seen_at = at;
                to.applied_at = None;
                to.converged_at = None;
                to.errors.clear();
                to.plan.clear();
                self.push_record(*to);
                self.accept(sha, desired, replicas, pod_nodes, false, at)
            }
            Command::Settings { values, by, at } => {
                self.settings.adopt(values, by, at);
                true
            }
            Command::Services { table } => {
                self.services = table;
                true
            }
        };
        Response { ok }
    }

    fn seen(&mut self, commits: Vec<CommitRecord>) {
        let n = commits.len();
        // A sha may appear again (a force-push back to an old commit): each sighting is its own
        // record, and lookups find the newest.
        for (i, mut c) in commits.into_iter().enumerate() {
            if i + 1 < n {
                c.outcome = Outcome::Superseded;
            } else {
                self.last_head = Some(c.sha.clone());
            }
            self.push_record(c);
        }
    }

    fn push_record(&mut self, c: CommitRecord) {
        self.history.push_back(c);
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
    }

    fn accept(
        &mut self,
        sha: String,
        desired: Manifests,
        mut replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        unchanged: bool,
        at: Millis,
    ) -> bool {
        let Some(c) = self.commit_mut(&sha) else {
            return false;
        };
        c.outcome = Outcome::Applying;
        c.unchanged = unchanged;
        c.applied_at = Some(at);
        if let Some(previous) = self.desired_commit.replace(sha.clone()) {
            if previous != sha {
                if let Some(p) = self.commit_mut(&previous) {
                    if p.outcome == Outcome::Applying {
                        p.outcome = Outcome::Superseded;
                        p.refers_to = Some(sha.clone());
                    }
                }
            }
        }
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

    fn change_replicas(
        &mut self,
        sha: &str,
        rc: &str,
        add: Vec<Replica>,
        retire: Vec<String>,
        at: Millis,
    ) -> bool {
        if self.desired_commit.as_deref() != Some(sha) || !self.rollouts.contains_key(rc) {
            return false;
        }
        let list = self.replicas.entry(rc.to_string()).or_default();
        let taken: BTreeSet<&str> = list.iter().map(|r| r.name.as_str()).collect();
        if add.iter().any(|r| taken.contains(r.name.as_str())) {
            return false; // names are never reused: this proposal saw an older state
        }
        let (namespace, _) = rc.split_once('/').unwrap_or(("default", rc));
        let mut lines: Vec<String> = add
            .iter()
            .map(|r| format!("add {namespace}/{} on {}", r.name, r.node))
            .collect();
        lines.extend(retire.iter().map(|n| format!("retire {namespace}/{n}")));
        list.retain(|r| !retire.contains(&r.name));
        list.extend(add);
        if let Some(r) = self.rollouts.get_mut(rc) {
            r.updated_at = at;
        }
        if let Some(c) = self.commit_mut(sha) {
            c.note(lines);
        }
        self.forget_unused_templates();
        true
    }

    fn rollout_state(&mut self, sha: &str, rc: &str, state: RolloutState, at: Millis) -> bool {
        if self.desired_commit.as_deref() != Some(sha) {
            return false;
        }
        let Some(rollout) = self.rollouts.get_mut(rc) else {
            return false;
        };
        rollout.state = state.clone();
        rollout.updated_at = at;
        if let RolloutState::Halted { reasons } = state {
            if let Some(c) = self.commit_mut(sha) {
                if c.outcome == Outcome::Applying {
                    c.outcome = Outcome::Failed;
                }
                let mut errors = std::mem::take(&mut c.errors);
                errors.extend(reasons);
                c.errors = capped(errors, MAX_ERRORS);
            }
        }
        true
    }

    /// Drops older templates no replica runs any more.
    fn forget_unused_templates(&mut self) {
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

#[cfg(test)]
mod tests;
