//! When a follower stands for election: berth's own timer, not openraft's.
//!
//! openraft 0.9 makes a follower wait the leader's lease (the election timeout's upper end)
//! *plus* its own random timeout before standing, and draws that random timeout once per
//! process: 3–4 s after a crash with a 1 s timeout, and two members whose draws fall within one
//! tick of each other split the vote at every election until one restarts. berth turns
//! openraft's timer off (`enable_elect = false`) and runs this one instead, as etcd does:
//!
//! - openraft's lease is T (the election timeout): a member that heard from its leader less
//!   than T ago refuses to vote for anyone else (openraft enforces this on every vote request);
//! - a follower that has heard nothing from a leader, and seen no vote change, for a silence
//!   drawn from `[1.05 T, 1.5 T)` stands (`trigger().elect()`), after the lease has expired
//!   everywhere; the draw is new after every attempt and every contact, so a split vote is not
//!   repeated;
//! - the leader stops acting once a quorum has not acknowledged it for [`fence`] (3/4 T): before
//!   any successor can collect a vote (see `fencing.rs`);
//! - a member alone in its membership stands at once; a learner never stands; a member told not
//!   to ([`Standing`], a member whose settings differ) does not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio_util::sync::CancellationToken;

use super::contact::LeaderContact;
use super::types::{NodeId, Raft};

/// How soon a member that may stand looks again at the earliest: a member alone in its
/// membership stands within one look of becoming a follower.
const TICK: Duration = Duration::from_millis(10);

/// How often a member that may not stand (the leader, a learner, a member told not to) looks
/// whether that changed. The timer sleeps otherwise: a follower wakes when its silence would
/// end, not every tick (an idle controller spent most of its CPU waking this timer).
const IDLE: Duration = Duration::from_millis(100);

/// How long a leader may go without a quorum acknowledgement before it stops acting: below the
/// lease (T) every voter grants since its last heartbeat, with T/4 to spare for delays.
pub fn fence(election_timeout: Duration) -> Duration {
    election_timeout * 3 / 4
}

/// Whether this member may stand for election. Cheap to clone; true at start.
#[derive(Clone)]
pub struct Standing(Arc<AtomicBool>);

impl Default for Standing {
    fn default() -> Self {
        Standing(Arc::new(AtomicBool::new(true)))
    }
}

impl Standing {
    pub fn set(&self, stand: bool) {
        self.0.store(stand, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A small xorshift, seeded per member and per process: jitter needs no cryptography, and no
/// dependency.
struct Jitter(u64);

impl Jitter {
    fn new(id: NodeId) -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter((nanos ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    /// A silence to wait, in `[1.05 T, 1.5 T)`.
    fn silence(&mut self, t: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = (t / 2 - t / 20).as_micros().max(1) as u64;
        t + t / 20 + Duration::from_micros(self.0 % span)
    }
}

/// Runs the election timer of member `id` until `cancel`.
pub(crate) async fn run(
    raft: Raft,
    id: NodeId,
    election_timeout: Duration,
    contact: LeaderContact,
    standing: Standing,
    cancel: CancellationToken,
) {
    let mut jitter = Jitter::new(id);
    let mut wait = jitter.silence(election_timeout);
    // The last time something showed a live leader or election: start, a vote change, an
    // accepted append, an attempt of our own.
    let mut quiet_since = Instant::now();
    let mut last_vote = None;
    let mut pause = TICK;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let (state, vote, alone, voter) = {
            let m = raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let mut voters = membership.voter_ids();
            let voter = voters.any(|v| v == id);
            let alone = voter && membership.voter_ids().count() == 1;
            (m.state, m.vote, alone, voter)
        };
        if last_vote != Some(vote) {
            last_vote = Some(vote);
            quiet_since = Instant::now();
            wait = jitter.silence(election_timeout);
        }
        if let Some((heard, _)) = contact.last() {
            if let Some(at) = Instant::now().checked_sub(heard) {
                if at > quiet_since {
                    quiet_since = at;
                    wait = jitter.silence(election_timeout);
                }
            }
        }
        if state == ServerState::Leader || !voter || !standing.get() {
            pause = IDLE;
            continue;
        }
        let stand = if alone {
            state == ServerState::Follower
        } else {
            quiet_since.elapsed() >= wait
        };
        if stand {
            tracing::debug!(id, silence = ?quiet_since.elapsed(), "standing for election");
            if raft.trigger().elect().await.is_err() {
                return; // Raft stopped
            }
            quiet_since = Instant::now();
            wait = jitter.silence(election_timeout);
        }
        // Sleep until the silence would end. A contact or vote change meanwhile is seen then,
        // and only moves the end later: standing is never earlier than with a finer look.
        pause = if alone {
            TICK
        } else {
            wait.saturating_sub(quiet_since.elapsed())
                .clamp(TICK, IDLE.max(wait))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silences_fall_in_the_range_and_vary() {
        let t = Duration::from_secs(1);
        let mut j = Jitter::new(3);
        let draws: Vec<Duration> = (0..1000).map(|_| j.silence(t)).collect();
        assert!(draws
            .iter()
            .all(|d| *d >= Duration::from_millis(1050) && *d < Duration::from_millis(1500)));
        let spread =
            draws.iter().max().unwrap().as_millis() - draws.iter().min().unwrap().as_millis();
        assert!(spread > 300, "draws spread over the range: {spread} ms");
    }

    #[test]
    fn the_fence_is_below_the_lease() {
        let t = Duration::from_millis(1000);
        assert_eq!(fence(t), Duration::from_millis(750));
        assert!(fence(t) < t);
    }
}
