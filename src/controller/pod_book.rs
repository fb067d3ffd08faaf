//! What the leader remembers of each pod instance beyond Docker's state (images pulled, stops
//! under way, backoff), and what it shows of each (phase, readiness, why). Local and not
//! replicated: a new leader starts with an empty book, pulls images again (cheap when present)
//! and signals containers still stopping once more.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::raft::state::Millis;
use crate::reconcile::PodMemory;

/// Backoff after a failed step: 1 s doubling to 5 minutes, per pod and spec hash, so a fixed
/// manifest (a new spec hash) is tried at once.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// One pod instance's entry.
#[derive(Debug, Clone, Default)]
pub struct PodEntry {
    pub memory: PodMemory,
    /// The (node, spec hash) that `memory.images_ready` is about.
    pub images_for: Option<(String, String)>,
    /// Consecutive failures for `failing_hash`.
    pub failures: u32,
    pub failing_hash: String,
    /// The last pull error, while the pull has not succeeded since.
    pub pull_error: Option<String>,
    /// Warnings to show on the pod (a local image used after a failed pull).
    pub warnings: Vec<String>,
    /// Restarts berth made for failed liveness probes (Docker counts only its own).
    pub liveness_restarts: u32,
    pub status: PodStatus,
    /// The fingerprint of the inputs its last work found nothing to do with, nothing to wait
    /// for (see `settled.rs`); `None` while it has something to do.
    pub settled: Option<u64>,
}

/// What the API shows of a pod instance, and what rollouts and convergence read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodStatus {
    /// `Running`, `ContainerCreating`, `Pending`, `ErrImagePull`, `ImagePullBackOff`,
    /// `CrashLoopBackOff`, `Terminating`, `Succeeded`, `Failed`, `Unknown`, `CreateError`, ...
    pub phase: String,
    pub ready: bool,
    /// Since when it has been ready without interruption (milliseconds since the epoch).
    pub ready_since: Option<Millis>,
    /// Restarts of its containers: by Docker's restart policy, and by berth for failed
    /// liveness probes.
    pub restarts: u32,
    /// Consecutive failed attempts of its current step (the backoff grows with them).
    pub failures: u32,
    /// Why it is not running or not ready, when it is not.
    pub reason: Option<String>,
    pub warnings: Vec<String>,
    /// The last failure of a readiness or liveness probe.
    pub probe_failure: Option<String>,
    /// Its images are on its host.
    pub images_ready: bool,
    /// The other pod holding a host port it needs on its host, if one does.
    pub blocked_by: Option<String>,
    /// Done: as wanted (running and ready, or completed) with nothing left to do.
    pub done: bool,
}

/// The book of every pod instance, by `namespace/name`.
#[derive(Default)]
pub struct PodBook {
    entries: Mutex<HashMap<String, PodEntry>>,
}

impl PodBook {
    pub fn with<T>(&self, key: &str, f: impl FnOnce(&mut PodEntry) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get_mut(key) {
            Some(e) => f(e),
            None => f(entries.entry(key.to_string()).or_default()),
        }
    }

    pub fn status(&self, key: &str) -> Option<PodStatus> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).map(|e| e.status.clone())
    }

    /// Whether the pod's status says done (as wanted, nothing left to do).
    pub fn is_done(&self, key: &str) -> bool {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).is_some_and(|e| e.status.done)
    }

    /// Of `prints` (key, fingerprint now), the keys that did not settle on that fingerprint.
    pub fn unsettled<'a>(&self, prints: impl Iterator<Item = (&'a str, u64)>) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        prints
            .filter(|(key, print)| entries.get(*key).and_then(|e| e.settled) != Some(*print))
            .map(|(key, _)| key.to_string())
            .collect()
    }

    /// The keys of the entries `pick` picks.
    pub fn keys_where(&self, pick: impl Fn(&str) -> bool) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.keys().filter(|k| pick(k)).cloned().collect()
    }

    /// Drops the entries of `keys` (pods neither wanted nor seen any more).
    pub fn remove(&self, keys: &[String]) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            entries.remove(k);
        }
    }

    /// Forgets everything (this controller stopped leading).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl PodEntry {
    /// Records a failed step for the pod's spec `hash`: the next attempt waits 1 s, 2 s, 4 s,
    /// ... up to 5 minutes. Returns the wait.
    pub fn failed(&mut self, hash: &str, why: String, now: Millis) -> Duration {
        if self.failing_hash != hash {
            self.failing_hash = hash.to_string();
            self.failures = 0;
        }
        self.failures += 1;
        let wait = BACKOFF_START
            .saturating_mul(1u32 << (self.failures - 1).min(16))
            .min(BACKOFF_CAP);
        self.memory.retry = Some((now + wait.as_millis() as Millis, why));
        wait
    }

    /// A step succeeded: no backoff any more.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.memory.retry = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_spec_and_a_new_spec_starts_over() {
        let mut e = PodEntry::default();
        let waits: Vec<u64> = (0..11)
            .map(|_| e.failed("h1", "x".into(), 0).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(
            e.failed("h2", "x".into(), 0).as_secs(),
            1,
            "a fixed manifest retries at once"
        );
        e.succeeded();
        assert_eq!(e.memory.retry, None);
    }
}
