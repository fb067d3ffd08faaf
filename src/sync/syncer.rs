//! `Syncer`: the async face of [`GitSource`].
//!
//! gix is blocking (file I/O, pack decoding, a child `git upload-pack` for local remotes), so
//! each call runs on tokio's blocking pool. With the gix features berth builds with,
//! `gix::Repository` is not `Send`, so `Syncer` keeps only the [`Location`] and reopens the mirror
//! on the blocking thread for every call; that costs a few small file reads, negligible next to a
//! fetch and cheap at poll intervals.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::source::{GitSource, Location};
use super::{CommitId, CommitInfo, History, ManifestFile, SyncError};
use crate::manifest::Limits;

/// Async handle on a mirror; cheap to clone, all clones share one mirror.
///
/// Make one per mirror directory and clone it: fetches are serialized among clones only.
#[derive(Debug, Clone)]
pub struct Syncer {
    location: Arc<Location>,
    /// Serializes fetches: two at once would race for the tracking ref's lock file and one would
    /// fail. Reads need no lock; objects and refs are replaced atomically on disk.
    fetch_gate: Arc<Mutex<()>>,
}

impl Syncer {
    /// Async [`GitSource::open_or_clone`]: validates and creates or opens the mirror, no network.
    pub async fn open_or_clone(
        remote: &str,
        branch: &str,
        dir: &Path,
    ) -> Result<Syncer, SyncError> {
        let location = Location::new(remote, branch, dir)?;
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

    /// See [`GitSource::fetch`].
    pub async fn fetch(&self) -> Result<CommitId, SyncError> {
        let gate = Arc::clone(&self.fetch_gate);
        self.run(move |source| {
            // The guarded value is `()`, so a panic in another fetch leaves nothing inconsistent
            // behind: a poisoned lock is simply taken over.
            let _serialized = gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            source.fetch()
        })
        .await
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

    async fn run<T, F>(&self, work: F) -> Result<T, SyncError>
    where
        T: Send + 'static,
        F: FnOnce(&GitSource) -> Result<T, SyncError> + Send + 'static,
    {
        let location = Location::clone(&self.location);
        blocking(move || work(&GitSource::open_location(location)?)).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(SyncError::Task)?
}
