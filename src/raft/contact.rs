//! When a follower last heard from its leader, and how far the leader had committed then: what
//! a follower's status says about its own freshness ("applied 1041, leader at 1043, heard 80 ms
//! ago"). openraft 0.9 publishes neither on a follower, so the append route records them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The last append the leader sent that this member accepted. Cheap to clone.
#[derive(Clone, Default)]
pub struct LeaderContact(Arc<Mutex<Option<Contact>>>);

#[derive(Debug, Clone, Copy)]
struct Contact {
    at: Instant,
    leader_commit: Option<u64>,
}

impl LeaderContact {
    /// An append (or heartbeat) from the leader was accepted.
    pub(crate) fn record(&self, leader_commit: Option<u64>) {
        *self.0.lock().expect("contact lock") = Some(Contact {
            at: Instant::now(),
            leader_commit,
        });
    }

    /// Time since the leader was last heard, and its commit index then.
    pub fn last(&self) -> Option<(Duration, Option<u64>)> {
        self.0
            .lock()
            .expect("contact lock")
            .map(|c| (c.at.elapsed(), c.leader_commit))
    }
}
