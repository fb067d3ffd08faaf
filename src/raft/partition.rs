//! A switch that cuts one member off the Raft network, for tests and failure drills.
//!
//! While cut, the member's outgoing RPCs fail as unreachable and its Raft routes answer `503`,
//! as if a firewall dropped its traffic both ways; the process, its stores and its other
//! listeners keep running. This is how a test makes a leader lose its quorum without stopping
//! its peers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by a member's network client and its Raft routes. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Partition(Arc<AtomicBool>);

impl Partition {
    /// Cuts (`true`) or restores (`false`) the member's Raft traffic.
    pub fn set(&self, cut: bool) {
        self.0.store(cut, Ordering::SeqCst);
    }

    /// True while cut.
    pub fn is_cut(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
