//! The replicated state: what every controller agrees on, changed only by applying `Command`s in
//! log order.
//!
//! `apply` is deterministic and does no I/O: timestamps and random names are chosen by the
//! leader and travel inside the commands, so every replica computes the same state. Commands
//! that build on the desired commit (replicas, rollout states, convergence) name it, and are
//! refused (`ok: false`) when another commit became desired meanwhile: a decision computed
//! against stale state never lands.
//!
//! Everything `apply` keeps is bounded: the history by count and bytes (`records`), each record's
//! text by caps applied on the way in (`history`), the rest by what the manifests and hosts
//! hold. Entries carry changes, not whole states (`changes`).
//!
//! Files: `command` (what a leader proposes), `history` (commit records and the outcome
//! schema), `records` (the history within its budget), `settings` (what every member
//! must agree on), `changes` (a desired state as changes
//! from the current one), `workload` (replicas, revisions, rollouts), `accept` (accepts,
//! rollbacks, replicas and rollouts applied), this file (the state and `apply`).

mod accept;
pub mod changes;
mod command;
mod history;
mod placement;
pub mod records;
mod services;
mod settings;
mod workload;

pub use changes::{DesiredChanges, Kind, ManifestChanges, Moved, ObjectRef};
pub use command::Command;
pub use history::{
    capped, truncated, CommitRecord, Outcome, Trigger, MAX_ERRORS, MAX_PARENTS, MAX_PLAN_LINES,
    MAX_TEXT_BYTES, PLAN_DROPPED,
};
pub use placement::PlacementClock;
pub use records::{History, HISTORY_BYTES, HISTORY_LIMIT};
pub use services::{Endpoint, ServiceTable};
pub use settings::{differing, SettingValues, Settings, SettingsChange, HISTORY_SIZE};
pub use workload::{Replica, Rollout, RolloutState};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{Manifests, PodTemplate};

/// The format of [`ClusterState`] and [`Command`] this build writes. States from before formats
/// were recorded read as 0 and are format 1; a state (or snapshot) of a later format is refused
/// on load rather than misread (see `state_machine.rs`). `apply` stamps a state with the format
/// of the berth applying to it.
///
/// 3: `AcceptChanges`, `RollbackChanges` and `Recovered`, the history's byte budget, desired
/// objects kept in canonical order, `recoveries`. Formats 0 to 2 load unchanged.
pub const STATE_FORMAT: u32 = 3;

/// Recoveries kept in the state: the last few say enough.
const MAX_RECOVERIES: usize = 16;

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
    /// Newest last. Capped at [`HISTORY_LIMIT`] records and [`HISTORY_BYTES`].
    pub history: History,
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
    /// Each time `berth cluster recover` carried this state into a new cluster, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recoveries: Vec<Recovery>,
    /// When placements changed, per host (see `placement.rs`).
    #[serde(default)]
    pub placement: PlacementClock,
    /// Cluster IPs and endpoints of the Services (see `services.rs`).
    #[serde(default)]
    pub services: ServiceTable,
}

/// One `berth cluster recover`: see [`Command::Recovered`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub member: u64,
    pub from_members: Vec<u64>,
    pub last_index: u64,
    pub at: Millis,
}

/// What `apply` answers to the proposer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// False when the command was refused: it referred to a commit the state does not know, or
    /// to one that is no longer desired (a stale proposal). For [`Command::Placements`], true
    /// when every decision was accepted.
    pub ok: bool,
    /// For [`Command::Placements`]: whether each decision was accepted, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub each: Vec<bool>,
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
        self.history.find(sha)
    }

    /// Runs `f` on the desired commit's record, when `sha` is the desired commit.
    fn update_desired<R>(
        &mut self,
        sha: &str,
        f: impl FnOnce(&mut CommitRecord) -> R,
    ) -> Option<R> {
        if self.desired_commit.as_deref() != Some(sha) {
            return None;
        }
        self.history.update(sha, f)
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
        self.format = self.format.max(STATE_FORMAT);
        // The budget is a cluster-wide setting: taken from the replicated settings before every
        // command, so every member keeps the same records (a loaded history has the default
        // until then, and drops nothing before its next change).
        self.history.set_budget(self.settings.history_budget());
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
            Command::AcceptChanges {
                sha,
                changes,
                unchanged,
                at,
            } => match changes.resolve(self) {
                Some((desired, replicas, pod_nodes)) => {
                    self.accept(sha, desired, replicas, pod_nodes, unchanged, at)
                }
                None => false,
            },
            Command::Reject { sha, errors, at } => self
                .history
                .update(&sha, |c| {
                    c.outcome = Outcome::Rejected;
                    c.errors = capped(errors, MAX_ERRORS);
                    c.applied_at = Some(at);
                })
                .is_some(),
            Command::Place {
                replicas,
                pod_nodes,
            } => {
                self.replicas = replicas;
                self.pod_nodes = pod_nodes;
                self.placement.replaced();
                self.forget_unused_templates();
                true
            }
            Command::Bind {
                replicas,
                pods,
                based_on,
            } => self.bind(replicas, pods, based_on, None),
            Command::Services { table } => {
                self.services = table;
                true
            }
            Command::Executed { sha, plan, at, .. } => self
                .history
                .update(&sha, |c| {
                    c.note(plan);
                    c.applied_at.get_or_insert(at);
                })
                .is_some(),
            Command::Converged { sha, at } => {
                let converged = self.update_desired(&sha, |c| {
                    if matches!(c.outcome, Outcome::Failed | Outcome::RolledBack) {
                        return false;
                    }
                    c.outcome = Outcome::Applied;
                    c.errors.clear();
                    c.applied_at.get_or_insert(at);
                    c.converged_at.get_or_insert(at);
                    true
                }) == Some(true);
                if converged {
                    self.last_converged = Some(sha);
                }
                converged
            }
            Command::Replicas {
                sha,
                rc,
                add,
                retire,
                at,
                based_on,
            } => self.change_replicas(&sha, &rc, add, retire, at, based_on, None),
            Command::Placements { decisions } => {
                let each = self.placements(decisions);
                let ok = each.iter().all(|ok| *ok);
                return Response { ok, each };
            }
            Command::RolloutState { sha, rc, state, at } => {
                self.rollout_state(&sha, &rc, state, at)
            }
            Command::Failed { sha, reasons, at } => {
                self.update_desired(&sha, |c| {
                    if c.outcome != Outcome::Applying {
                        return false;
                    }
                    c.outcome = Outcome::Failed;
                    c.errors = capped(reasons, MAX_ERRORS);
                    c.applied_at.get_or_insert(at);
                    true
                }) == Some(true)
            }
            Command::Progress { sha, lines } => {
                self.history.update(&sha, |c| c.note(lines)).is_some()
            }
            Command::Rollback {
                failed,
                to,
                desired,
                replicas,
                pod_nodes,
                at,
            } => self.rollback(failed, *to, (desired, replicas, pod_nodes), at),
            Command::RollbackChanges {
                failed,
                to,
                changes,
                at,
            } => match changes.resolve(self) {
                Some(resolved) => self.rollback(failed, *to, resolved, at),
                None => false,
            },
            Command::Recovered {
                member,
                from_members,
                last_index,
                at,
            } => {
                self.recoveries.push(Recovery {
                    member,
                    from_members,
                    last_index,
                    at,
                });
                let over = self.recoveries.len().saturating_sub(MAX_RECOVERIES);
                self.recoveries.drain(..over);
                true
            }
            Command::Settings { values, by, at } => {
                self.settings.adopt(values, by, at);
                true
            }
        };
        Response {
            ok,
            each: Vec::new(),
        }
    }

    /// Applies the decisions of a [`Command::Placements`] in order, each accepted or refused on
    /// its own; the placements earlier in the batch do not make a later one stale.
    fn placements(&mut self, decisions: Vec<Command>) -> Vec<bool> {
        let start = Some(self.placement.generation);
        decisions
            .into_iter()
            .map(|decision| match decision {
                Command::Replicas {
                    sha,
                    rc,
                    add,
                    retire,
                    at,
                    based_on,
                } => self.change_replicas(&sha, &rc, add, retire, at, based_on, start),
                Command::Bind {
                    replicas,
                    pods,
                    based_on,
                } => self.bind(replicas, pods, based_on, start),
                _ => false, // only placement decisions are batched
            })
            .collect()
    }
}

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod tests;
