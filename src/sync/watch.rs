//! `RefWatcher`: "the branch changed" for a local repository, from filesystem events.
//!
//! When the remote is a bare repository on this machine that people push to over SSH, polling
//! it is both slow (a push waits for the next poll) and wasteful. A push ends by renaming the
//! branch's loose ref into place (`refs/heads/<branch>.lock` → `refs/heads/<branch>`), or by
//! rewriting `packed-refs` the same way; inotify (through the `notify` crate) reports both.
//! Everything else in the repository (objects, other branches, logs, config) is ignored.
//!
//! A signal carries no payload: like a webhook or the poll timer, it only says "fetch now", and
//! the fetch decides what changed. Signals are coalesced and debounced in
//! [`RefWatcher::changed`] itself, so there is no background task to own or stop: dropping the
//! watcher stops the watch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::error::gix_error;
use super::SyncError;

/// Watches one branch of one local repository.
pub struct RefWatcher {
    /// Kept for its drop: dropping it ends the inotify watch and its thread.
    _watcher: notify::RecommendedWatcher,
    signals: mpsc::Receiver<()>,
    debounce: Duration,
}

impl std::fmt::Debug for RefWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefWatcher")
            .field("debounce", &self.debounce)
            .finish_non_exhaustive()
    }
}

impl RefWatcher {
    /// Starts watching `branch` of the repository at `repository` (bare, or a work tree with
    /// `.git`); see [`super::local_repository`] to get it from the configured remote.
    ///
    /// `debounce` is how long the refs must stay quiet before [`RefWatcher::changed`] returns:
    /// a push that updates the ref, then packs refs, is one signal. 100–200 ms is plenty.
    pub fn new(
        repository: &Path,
        branch: &str,
        debounce: Duration,
    ) -> Result<RefWatcher, SyncError> {
        let watch_err = |path: &Path, source| SyncError::Watch {
            path: path.to_owned(),
            source,
        };
        let repo = gix::open_opts(repository, gix::open::Options::isolated())
            .map_err(|e| watch_err(repository, gix_error(e)))?;
        let common = repo.common_dir().to_owned();
        let heads = common.join("refs").join("heads");
        let watched = WatchedRefs {
            loose: heads.join(branch),
            packed: common.join("packed-refs"),
        };

        // Capacity one: a pending signal already says everything another one would.
        let (tx, signals) = mpsc::channel(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    // Reads (git, and berth's own fetch, open the ref to read it) are not changes;
                    // counting them would make every fetch trigger the next one.
                    Ok(event) if event.kind.is_access() => false,
                    Ok(event) => event.paths.iter().any(|p| watched.matches(p)),
                    // Events may have been lost (queue overflow): looking again is always safe.
                    Err(_) => true,
                };
                if relevant {
                    let _ = tx.try_send(());
                }
            })
            .map_err(|e| watch_err(repository, gix_error(e)))?;
        // The repository directory itself for `packed-refs`; `refs/heads` recursively for
        // branches with slashes, whose directories may be created later.
        watcher
            .watch(&common, RecursiveMode::NonRecursive)
            .map_err(|e| watch_err(&common, gix_error(e)))?;
        watcher
            .watch(&heads, RecursiveMode::Recursive)
            .map_err(|e| watch_err(&heads, gix_error(e)))?;
        Ok(RefWatcher {
            _watcher: watcher,
            signals,
            debounce,
        })
    }

    /// Waits until the branch's ref changes, then until the refs have been quiet for the
    /// debounce time. Returns `false` if the watch ended (it cannot, short of a bug in the
    /// watcher's thread); the caller then falls back to polling.
    ///
    /// Cancel-safe: dropping the future loses no change (a pending signal stays queued).
    pub async fn changed(&mut self) -> bool {
        if self.signals.recv().await.is_none() {
            return false;
        }
        loop {
            match tokio::time::timeout(self.debounce, self.signals.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return true,
            }
        }
    }
}

/// The two files whose change means "the branch may have moved".
struct WatchedRefs {
    loose: PathBuf,
    packed: PathBuf,
}

impl WatchedRefs {
    fn matches(&self, path: &Path) -> bool {
        path == self.loose || path == self.packed
    }
}
