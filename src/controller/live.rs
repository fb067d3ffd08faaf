//! What this controller sees right now: hosts, Git, convergence. Local, not replicated: it is
//! observation, rebuilt by every pass, and only read by the status API.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::docker::NodeInfo;
use crate::raft::state::Millis;
use crate::reconcile::ObservedContainer;

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub endpoint: String,
    pub ready: bool,
    /// Why the host is not ready.
    pub error: Option<String>,
    pub info: Option<NodeInfo>,
    #[serde(skip)]
    pub containers: Vec<ObservedContainer>,
    pub last_seen: Option<Millis>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GitStatus {
    pub ok: bool,
    pub error: Option<String>,
    pub last_fetch: Option<Millis>,
    pub head: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Live {
    pub nodes: BTreeMap<String, NodeStatus>,
    pub git: GitStatus,
    /// The commit whose desired state the last pass found in place: nothing to do, every host
    /// seen, every pod running. Reported as `in_sync` (live); `converged` is committed state.
    pub in_sync_on: Option<String>,
    /// Pods that could not be created, with why (`ErrImagePull: ...`), by `namespace/name`.
    pub pod_errors: BTreeMap<String, String>,
}

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
