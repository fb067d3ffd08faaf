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
    /// The last full pass (every key looked at, see `triggers::resync_loop`).
    pub last_pass: Option<PassTiming>,
}

/// How long the engine took to look at every key once.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PassTiming {
    pub keys: usize,
    pub millis: u64,
    pub at: Millis,
}

pub use crate::clock::now_millis;
