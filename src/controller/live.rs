//! What this controller sees right now beyond the hosts' cached views: Git and whether the
//! desired state is in place. Local, not replicated: it is observation.

use serde::Serialize;

use crate::raft::state::Millis;

#[derive(Debug, Clone, Default, Serialize)]
pub struct GitStatus {
    pub ok: bool,
    pub error: Option<String>,
    pub last_fetch: Option<Millis>,
    pub head: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Live {
    pub git: GitStatus,
    /// The commit whose desired state the last convergence check found in place (reported as
    /// `in_sync`; `converged` is committed state).
    pub in_sync_on: Option<String>,
    /// The last resync pass (see `triggers::resync_loop`).
    pub last_pass: Option<PassTiming>,
}

/// How long a resync pass took: every key looked at, those whose inputs changed since they
/// last settled worked in full (see `controller/settled.rs`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PassTiming {
    /// Keys looked at: every pod desired or seen, every RC, and the global keys.
    pub keys: usize,
    /// Of them, those worked in full.
    pub worked: usize,
    /// The whole pass, from its start until every key it asked for was done.
    pub millis: u64,
    /// Of it, the time to tell which keys to work (the pods' fingerprints compared).
    pub compare_millis: u64,
    pub at: Millis,
}

pub use crate::clock::now_millis;
