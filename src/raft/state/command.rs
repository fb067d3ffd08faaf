//! The changes a leader can propose: the payload of every normal Raft log entry.
//!
//! Variants are never removed or reshaped: old logs replay with every berth that may read them.
//! A command that is no longer proposed says so and stays decodable.
//!
//! Sizes: an entry is written to every member's disk and kept until the next snapshot, so a
//! command carries what changed, not the state it changes. `Seen` is bounded by the leader
//! (1000 commits per fetch, messages cut to 4 KiB, entries of 256 KiB at most), `AcceptChanges` and `RollbackChanges` by the
//! size of the change, `Replicas` by one RC's replicas, `Progress`, `Failed` and halts by the
//! caps `apply` puts on what it keeps. `Accept`, `Rollback` and `Place` carry whole states; the
//! first two are no longer proposed and the third never was by this berth.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::changes::DesiredChanges;
use super::history::CommitRecord;
use super::settings::SettingValues;
use super::workload::{Replica, RolloutState};
use super::{Millis, ObjectKey};
use crate::manifest::Manifests;

/// The changes a leader can propose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A new head (last in `commits`, newest last) was fetched; the older ones are superseded.
    Seen { commits: Vec<CommitRecord> },
    /// Written by berth before [`Command::AcceptChanges`]: the head is valid and `desired`, whole,
    /// becomes the desired state. Still read so that old logs replay; never proposed any more.
    Accept {
        sha: String,
        desired: Manifests,
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        unchanged: bool,
        at: Millis,
    },
    /// The head is valid: it becomes the desired state, given as the changes from the desired
    /// state of `changes.base` (see `changes.rs`); refused when another commit became desired
    /// meanwhile. The replicas kept (with their revisions) are the state's with the changes'
    /// lists; new ones come from [`Command::Replicas`]. Rollouts start for every RC whose
    /// replicas are not all of its template's revision and count.
    AcceptChanges {
        sha: String,
        changes: DesiredChanges,
        unchanged: bool,
        at: Millis,
    },
    /// The head is invalid: recorded with every problem; the desired state does not change.
    Reject {
        sha: String,
        errors: Vec<String>,
        at: Millis,
    },
    /// Replica placement changed without a new commit (a host came or went). Carries whole maps;
    /// not proposed by this berth.
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
        #[serde(default)]
        based_on: Option<u64>,
    },
    /// Pending pods placed: replicas (per RC, name and host) and bare Pods (host by key),
    /// computed against placement generation `based_on`; refused if stale (see `placement.rs`)
    /// or if one of them is no longer pending.
    Bind {
        replicas: BTreeMap<ObjectKey, Vec<(String, String)>>,
        pods: BTreeMap<ObjectKey, String>,
        based_on: u64,
    },
    /// Placement decisions (`Replicas` and `Bind`) the leader computed one after another
    /// against one accounting of the hosts, in one entry: one Raft commit for many RCs instead
    /// of one each. Each is accepted or refused on its own as if proposed alone, except that
    /// hosts the decisions before it in the batch chose do not make it stale (it was computed
    /// knowing them). Other commands inside are refused.
    Placements { decisions: Vec<Command> },
    /// The Services' cluster IPs and endpoints, as the leader computed them; replaces the
    /// table whole.
    Services { table: super::ServiceTable },
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
    /// Written by berth before [`Command::RollbackChanges`], with the desired state whole. Still
    /// read so that old logs replay; never proposed any more.
    Rollback {
        failed: String,
        to: Box<CommitRecord>,
        desired: Manifests,
        replicas: BTreeMap<ObjectKey, Vec<Replica>>,
        pod_nodes: BTreeMap<ObjectKey, String>,
        at: Millis,
    },
    /// `failed` (the desired commit) halted and `--on-failure rollback` applies `to.sha`, the
    /// last commit that converged, again: a new history record, then an accept of `changes`
    /// (computed against `failed`'s desired state).
    RollbackChanges {
        failed: String,
        to: Box<CommitRecord>,
        changes: DesiredChanges,
        at: Millis,
    },
    /// `berth cluster recover` carried this state into a new cluster of one member after the
    /// old cluster lost its majority for good.
    Recovered {
        /// The new cluster's only member.
        member: u64,
        /// The voters of the old cluster, as the surviving member last knew them.
        from_members: Vec<u64>,
        /// The last log index of the old cluster included in this state.
        last_index: u64,
        at: Millis,
    },
    /// The cluster adopts member `by`'s settings (the first leader's at bootstrap, later by
    /// `berth cluster settings adopt`).
    Settings {
        values: SettingValues,
        by: u64,
        at: Millis,
    },
}
