//! `Syncer`: the async face of [`GitSource`].
//!
//! gix is blocking (file I/O, pack decoding, a child `git upload-pack` for local remotes), so
//! each call runs off the async runtime. With the gix features berth builds with,
//! `gix::Repository` is not `Send`, so `Syncer` keeps only the [`Location`] and reopens the mirror
//! on the blocking thread for every call; that costs a few small file reads, negligible next to a
//! fetch and cheap at poll intervals.
//!
//! Fetches run on a thread of their own rather than tokio's blocking pool: a runtime shutting
//! down waits for every blocking-pool task, and a fetch stuck on a silent server would hold
//! shutdown until its transport gave up. A cancelled or timed-out fetch returns at once; its
//! thread sees the interrupt, ends within the stall timeout, and releases the fetch gate.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::error::gix_error;
use super::source::{GitSource, Location};
use super::{
    CommitId, CommitInfo, CompactOptions, Compacted, FetchSettings, Fetched, HeadMove, History,
    ManifestFile, SignatureError, SignaturePolicy, Signer, SyncError,
};
use crate::manifest::Limits;

/// Async handle on a mirror; cheap to clone, all clones share one mirror.
///
/// Make one per mirror directory and clone it: fetches are serialized among clones only.
#[derive(Debug, Clone)]
pub struct Syncer {
    location: Arc<Location>,
    /// Serializes fetches and compaction: two fetches at once would race for the tracking
    /// ref's lock file, and `git gc` must not prune a pack a fetch is writing. Reads need no
    /// lock; objects and refs are replaced atomically on disk.
    fetch_gate: Arc<Mutex<()>>,
}

impl Syncer {
    /// Async [`GitSource::open_or_clone`]: validates and creates or opens the mirror, no network.
    pub async fn open_or_clone(
        remote: &str,
        branch: &str,
        dir: &Path,
    ) -> Result<Syncer, SyncError> {
        Syncer::open_with(remote, branch, dir, FetchSettings::default()).await
    }

    /// Async [`GitSource::open_with`]: the same with time limits and credentials.
    pub async fn open_with(
        remote: &str,
        branch: &str,
        dir: &Path,
        settings: FetchSettings,
    ) -> Result<Syncer, SyncError> {
        let location = Location::new(remote, branch, dir, settings)?;
        let checked = location.clone();
        blocking(move || GitSource::open_location(checked).map(drop)).await?;
        Ok(Syncer {
            location: Arc::new(location),
            fetch_gate: Arc::new(Mutex::new(())),
        })
    }

    /// The remote this mirror follows, password redacted.
    pub fn remote(&self) -> &str {
        &self.location.display
    }

    /// The branch this mirror follows.
    pub fn branch(&self) -> &str {
        &self.location.branch
    }

    /// The time limits and credential files fetches use.
    pub fn settings(&self) -> &FetchSettings {
        &self.location.settings
    }

    /// See [`GitSource::fetch`]; bounded by the deadline, not cancellable.
    pub async fn fetch(&self) -> Result<CommitId, SyncError> {
        self.fetch_cancellable(&CancellationToken::new())
            .await
            .map(|fetched| fetched.head)
    }

    /// Fetches the branch; returns at the latest when `cancel` fires ([`SyncError::Cancelled`])
    /// or the deadline passes ([`SyncError::DeadlineExceeded`]), whatever the remote does.
    ///
    /// Dropping the future also interrupts the fetch.
    pub async fn fetch_cancellable(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Fetched, SyncError> {
        let interrupt = InterruptOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&interrupt.0);
        let (done, result) = tokio::sync::oneshot::channel();
        let location = Location::clone(&self.location);
        let gate = Arc::clone(&self.fetch_gate);
        let remote = || self.location.display.clone();
        std::thread::Builder::new()
            .name("berth-git-fetch".to_owned())
            .spawn(move || {
                let _serialized = take(&gate);
                let fetched = GitSource::open_location(location)
                    .and_then(|source| source.fetch_interruptible(&flag));
                let _ = done.send(fetched);
            })
            .map_err(|e| SyncError::Fetch {
                remote: remote(),
                branch: self.location.branch.clone(),
                source: gix_error(e),
            })?;

        let deadline = self.location.settings.deadline;
        tokio::select! {
            fetched = result => fetched.unwrap_or_else(|_| Err(SyncError::Fetch {
                remote: remote(),
                branch: self.location.branch.clone(),
                source: gix_error(std::io::Error::other("the fetch thread panicked")),
            })),
            _ = cancel.cancelled() => Err(SyncError::Cancelled { remote: remote() }),
            // The thread enforces the same deadline; this one also covers waiting for the gate
            // behind an earlier fetch that is still winding down.
            _ = tokio::time::sleep(deadline) => Err(SyncError::DeadlineExceeded {
                remote: remote(),
                deadline,
                source: None,
            }),
        }
    }

    /// See [`GitSource::local_head`].
    pub async fn local_head(&self) -> Result<Option<CommitId>, SyncError> {
        self.run(|source| source.local_head()).await
    }

    /// See [`GitSource::commit_info`].
    pub async fn commit_info(&self, id: &CommitId) -> Result<CommitInfo, SyncError> {
        let id = *id;
        self.run(move |source| source.commit_info(&id)).await
    }

    /// See [`GitSource::history_between`].
    pub async fn history_between(
        &self,
        old: Option<&CommitId>,
        new: &CommitId,
        limit: usize,
    ) -> Result<History, SyncError> {
        let (old, new) = (old.copied(), *new);
        self.run(move |source| source.history_between(old.as_ref(), &new, limit))
            .await
    }

    /// See [`GitSource::head_move`].
    pub async fn head_move(&self, old: &CommitId, new: &CommitId) -> Result<HeadMove, SyncError> {
        let (old, new) = (*old, *new);
        self.run(move |source| source.head_move(&old, &new)).await
    }

    /// See [`GitSource::is_fast_forward`].
    pub async fn is_fast_forward(&self, old: &CommitId, new: &CommitId) -> Result<bool, SyncError> {
        let (old, new) = (*old, *new);
        self.run(move |source| source.is_fast_forward(&old, &new))
            .await
    }

    /// See [`GitSource::read_tree`].
    pub async fn read_tree(
        &self,
        id: &CommitId,
        subdir: &str,
        limits: &Limits,
    ) -> Result<Vec<ManifestFile>, SyncError> {
        let (id, subdir, limits) = (*id, subdir.to_owned(), *limits);
        self.run(move |source| source.read_tree(&id, &subdir, &limits))
            .await
    }

    /// See [`GitSource::tree_id`].
    pub async fn tree_id(
        &self,
        id: &CommitId,
        subdir: &str,
    ) -> Result<Option<gix::ObjectId>, SyncError> {
        let (id, subdir) = (*id, subdir.to_owned());
        self.run(move |source| source.tree_id(&id, &subdir)).await
    }

    /// [`GitSource::compact`], holding the fetch gate: it waits for a running fetch to end,
    /// and no fetch starts until it is done (at most `options.time_limit`).
    pub async fn compact(&self, options: CompactOptions) -> Result<Compacted, SyncError> {
        let gate = Arc::clone(&self.fetch_gate);
        self.run(move |source| {
            let _serialized = take(&gate);
            source.compact(&options)
        })
        .await
    }

    /// See [`GitSource::verify_commit`].
    pub async fn verify_commit(
        &self,
        id: &CommitId,
        policy: &SignaturePolicy,
    ) -> Result<Signer, SignatureError> {
        let (id, policy) = (*id, policy.clone());
        let location = Location::clone(&self.location);
        tokio::task::spawn_blocking(move || {
            GitSource::open_location(location)?.verify_commit(&id, &policy)
        })
        .await
        .map_err(|e| SignatureError::Sync(SyncError::Task(e)))?
    }

    async fn run<T, F>(&self, work: F) -> Result<T, SyncError>
    where
        T: Send + 'static,
        F: FnOnce(&GitSource) -> Result<T, SyncError> + Send + 'static,
    {
        let location = Location::clone(&self.location);
        blocking(move || work(&GitSource::open_location(location)?)).await
    }
}

/// The guarded value is `()`, so a panic in another holder leaves nothing inconsistent behind:
/// a poisoned lock is simply taken over.
fn take(gate: &Mutex<()>) -> MutexGuard<'_, ()> {
    gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Raises the fetch thread's interrupt when the awaiting future ends for any reason (result,
/// cancellation, deadline, or being dropped); after a result it is a no-op.
struct InterruptOnDrop(Arc<AtomicBool>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(SyncError::Task)?
}
