//! Snapshots by size as well as by count.
//!
//! openraft 0.9's `SnapshotPolicy` only counts entries (`LogsSinceLast`). berth's entries vary
//! from a few hundred bytes (a commit seen) to megabytes (a whole desired state), so a count
//! alone lets the log, and the replay at start-up, grow with the size of the manifests. This
//! task reads the bytes appended since the last snapshot began (counted by the log store, reset
//! when a snapshot is built) and asks openraft for a snapshot past the limit; the count policy
//! stays as it was.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::log_store::LogStore;
use super::types::Raft;

/// How often the appended size is looked at: cheap (one atomic read), and a snapshot a second
/// late changes nothing.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop`: triggers a snapshot whenever `limit` bytes were appended since the last.
pub(crate) async fn run(raft: Raft, log: LogStore, limit: u64, stop: CancellationToken) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let appended = log.bytes_since_snapshot();
        if appended < limit {
            continue;
        }
        tracing::info!(
            appended,
            limit,
            "raft log grew past the snapshot size: snapshotting"
        );
        if raft.trigger().snapshot().await.is_err() {
            return; // Raft stopped.
        }
        // Until the build starts and resets the count, do not ask again every second.
        let started = tokio::time::Instant::now();
        while log.bytes_since_snapshot() >= limit && started.elapsed() < CHECK_EVERY * 30 {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
        }
    }
}
