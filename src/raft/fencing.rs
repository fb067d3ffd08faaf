//! Leader facts for fencing: may this member still act as leader?
//!
//! openraft 0.9 keeps a leader in `ServerState::Leader` while it is cut off from its peers: it
//! learns of a new leader only when it hears from one. What does change is the time since a
//! quorum last acknowledged it (`RaftMetrics::millis_since_quorum_ack`, refreshed by every
//! heartbeat reply). The controller asks, before each batch of Docker effects, whether that
//! acknowledgement is younger than the fence (3/4 of the election timeout, `election.rs`):
//! past it, the followers may soon elect someone else, so this member must stop acting.
//!
//! Metrics are published when openraft's core loop runs (at least every tick, 1.5 heartbeats).
//! [`watch`] turns each published age into an instant ("acknowledged at"), so the age read later
//! keeps growing even if the core stops publishing; a stalled core therefore looks like a lost
//! quorum, never like a fresh one.

use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use super::types::{NodeId, Raft};

/// When a quorum last acknowledged this member as leader, and in which term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumAck {
    pub at: Instant,
    pub term: u64,
}

/// The last [`QuorumAck`], `None` while this member is not leader. Cheap to clone.
#[derive(Clone)]
pub(crate) struct QuorumClock {
    tx: std::sync::Arc<watch::Sender<Option<QuorumAck>>>,
}

impl QuorumClock {
    pub(crate) fn new() -> QuorumClock {
        QuorumClock {
            tx: std::sync::Arc::new(watch::channel(None).0),
        }
    }

    pub(crate) fn last(&self) -> Option<QuorumAck> {
        *self.tx.borrow()
    }

    /// Waits until a quorum acknowledgement is recorded.
    pub(crate) async fn acked(&self) {
        let mut rx = self.tx.subscribe();
        // Err only when the sender is gone, which `self` prevents.
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// Follows openraft's metrics until Raft stops, recording each quorum acknowledgement.
pub(crate) async fn watch(raft: Raft, clock: QuorumClock) {
    let mut rx = raft.metrics();
    loop {
        let ack = {
            let m = rx.borrow_and_update();
            match (m.state, m.millis_since_quorum_ack) {
                (ServerState::Leader, Some(ms)) => Some(QuorumAck {
                    at: Instant::now()
                        .checked_sub(Duration::from_millis(ms))
                        .unwrap_or_else(Instant::now),
                    term: m.current_term,
                }),
                _ => None,
            }
        };
        clock.tx.send_replace(ack);
        if rx.changed().await.is_err() {
            clock.tx.send_replace(None);
            return;
        }
    }
}

/// What this member knows of its leadership, read in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderFacts {
    /// This member's id.
    pub id: NodeId,
    /// The leader this member knows of (itself included), if any.
    pub leader: Option<NodeId>,
    /// openraft's state is `Leader`. Not enough to act on: see [`LeaderFacts::may_act`].
    pub raft_leader: bool,
    /// The current term.
    pub term: u64,
    /// Time since a quorum last acknowledged this member as leader of `term`; `None` when not
    /// leader or never acknowledged.
    pub quorum_ack_age: Option<Duration>,
}

impl LeaderFacts {
    pub(crate) fn read(raft: &Raft, clock: &QuorumClock) -> LeaderFacts {
        let (id, leader, raft_leader, term) = {
            let m = raft.metrics();
            let m = m.borrow();
            (
                m.id,
                m.current_leader,
                m.state == ServerState::Leader,
                m.current_term,
            )
        };
        let quorum_ack_age = clock
            .last()
            .filter(|ack| raft_leader && ack.term == term)
            .map(|ack| ack.at.elapsed());
        LeaderFacts {
            id,
            leader,
            raft_leader,
            term,
            quorum_ack_age,
        }
    }

    /// True when this member is leader and a quorum acknowledged it within `max`: it may act
    /// as leader (effects, scheduling) for now.
    pub fn may_act(&self, max: Duration) -> bool {
        self.raft_leader && self.quorum_ack_age.is_some_and(|age| age <= max)
    }
}
