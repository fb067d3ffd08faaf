//! What the replicated state knows of each ReplicationController beyond its manifest: its
//! replicas (names, hosts, template revisions) and the rollout that is moving them.
//!
//! Every replica belongs to a template revision (the spec hash of the template it was created
//! from). While a rollout runs, the templates of older revisions stay in the state, so an old
//! replica that dies while a rollout is halted is recreated from its own template, never from
//! the new one.

use serde::{Deserialize, Serialize};

use super::Millis;

/// A replica of a ReplicationController: its name (unique, never reused), host and revision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Replica {
    pub name: String,
    pub node: String,
    /// Spec hash of the template this replica runs. Empty in states written before rollouts
    /// existed: such a replica runs the RC's template of that time (filled in on the next
    /// accepted commit).
    #[serde(default)]
    pub revision: String,
    /// When the leader added it (its deadline to become ready counts from here).
    #[serde(default)]
    pub created_at: Millis,
}

/// Where an RC's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RolloutState {
    /// Replicas of the target revision are being added and older ones retired.
    Progressing,
    /// Every replica runs the target revision, as many as desired, and they were available.
    Complete,
    /// A new replica missed its deadline: no further old replica is stopped. One reason per
    /// replica (`web-x7k2q: readiness probe failed: HTTP 500`). Final until the next commit.
    Halted { reasons: Vec<String> },
}

/// The rollout of one RC towards one template revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The commit that asked for it.
    pub sha: String,
    /// The target template revision (spec hash).
    pub revision: String,
    pub started_at: Millis,
    #[serde(flatten)]
    pub state: RolloutState,
    /// Last change of state or replicas.
    pub updated_at: Millis,
}

impl Rollout {
    pub fn is_progressing(&self) -> bool {
        self.state == RolloutState::Progressing
    }
}
