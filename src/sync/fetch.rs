//! Bringing the mirror up to date with the remote branch.
//!
//! Only the one branch is fetched, no tags: berth deploys a branch head, and everything else on
//! the remote is noise that would cost bandwidth and disk in every replica's mirror.
//!
//! Refs are compared before any pack is negotiated: the handshake lists the remote's refs
//! (protocol v2's `ls-refs`, filtered to the branch), and when the branch's sha equals the
//! mirror's tracking ref the connection is closed there. An unchanged remote costs one small
//! request (or one `git-upload-pack` run that only lists refs, for a local path), whatever the
//! poll interval, and the mirror is not written at all.

use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use super::deadline::Bounds;
use super::error::gix_error;
use super::source::GitSource;
use super::transport::{connect, connect_error, receive_error};
use super::{CommitId, SyncError};

/// What a fetch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// The branch's head on the remote, now also the mirror's tracking ref.
    pub head: CommitId,
    /// The tracking ref before this fetch; `None` on the first one.
    pub previous: Option<CommitId>,
}

impl Fetched {
    /// `true` when the head differs from the one the mirror had: a push (or a force-push)
    /// happened since the last fetch.
    pub fn moved(&self) -> bool {
        self.previous != Some(self.head)
    }
}

impl GitSource {
    /// Fetches the branch from the remote and returns its head.
    ///
    /// The tracking ref is force-updated, so after a force-push the returned commit is the new,
    /// rewritten head; [`GitSource::history_between`] then reports how the head moved. Bounded
    /// by the mirror's [`FetchSettings`](super::FetchSettings); see
    /// [`GitSource::fetch_interruptible`] to also stop it from outside.
    pub fn fetch(&self) -> Result<CommitId, SyncError> {
        let never = AtomicBool::new(false);
        self.fetch_interruptible(&never).map(|fetched| fetched.head)
    }

    /// [`GitSource::fetch`], stopped early (with [`SyncError::Cancelled`]) once `cancel` is set.
    ///
    /// A pack being received stops at its next read; a request waiting on the server stops at
    /// its own time limit (the stall timeout, or the deadline for ref listings). Either way the
    /// mirror keeps its previous state: refs are only updated after a complete pack.
    pub fn fetch_interruptible(&self, cancel: &AtomicBool) -> Result<Fetched, SyncError> {
        let bounds = Bounds::start(&self.location.settings);
        bounds
            .run(cancel, |interrupt| self.fetch_bounded(&bounds, interrupt))
            .map_err(|err| bounds.explain(err, cancel))
    }

    fn fetch_bounded(&self, bounds: &Bounds, interrupt: &AtomicBool) -> Result<Fetched, SyncError> {
        let location = &self.location;
        let remote_name = || location.display.clone();
        let fetch_err = |source| SyncError::Fetch {
            remote: remote_name(),
            branch: location.branch.clone(),
            source,
        };
        let previous = self.local_head()?;
        let remote = self
            .repo
            .remote_at(location.url.clone())
            .and_then(|r| r.with_refspecs(Some(location.refspec().as_str()), Direction::Fetch))
            .map_err(|source| SyncError::InvalidRemote {
                remote: remote_name(),
                source,
            })?
            .with_fetch_tags(gix::remote::fetch::Tags::None);

        let prepared = connect(&remote, location, bounds.deadline_at)?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|source| connect_error(location, source))?;

        let wanted = location.remote_ref();
        let advertised = prepared
            .ref_map()
            .mappings
            .iter()
            .find(|m| m.remote.as_name() == Some(wanted.as_bytes().as_bstr()))
            .and_then(|m| m.remote.as_id())
            .map(|id| CommitId::from(id.to_owned()));
        let Some(advertised) = advertised else {
            return Err(SyncError::BranchNotFound {
                remote: remote_name(),
                branch: location.branch.clone(),
            });
        };
        if previous == Some(advertised) {
            // Dropping `prepared` ends the session with a flush: no negotiation, no pack.
            tracing::debug!(remote = %location.display, branch = %location.branch, head = %advertised, "unchanged");
            return Ok(Fetched {
                head: advertised,
                previous,
            });
        }

        let outcome = prepared
            .receive(gix::progress::Discard, interrupt)
            .map_err(|source| receive_error(location, source))?;
        let received_pack = matches!(outcome.status, gix::remote::fetch::Status::Change { .. });
        tracing::debug!(remote = %location.display, branch = %location.branch, received_pack, "fetched");

        let head = self.local_head()?.ok_or_else(|| {
            fetch_err(gix_error(std::io::Error::other(format!(
                "{} missing after fetch",
                location.tracking_ref()
            ))))
        })?;
        Ok(Fetched { head, previous })
    }

    /// The head of the branch as of the last successful fetch, without network access; `None`
    /// before the first one.
    ///
    /// Lets a restarted process serve the last known commit while the remote is unreachable.
    pub fn local_head(&self) -> Result<Option<CommitId>, SyncError> {
        let name = self.location.tracking_ref();
        let read_err = |source| SyncError::Read {
            what: name.clone(),
            dir: self.location.dir.clone(),
            source,
        };
        let Some(mut reference) = self
            .repo
            .try_find_reference(name.as_str())
            .map_err(read_err)?
        else {
            return Ok(None);
        };
        let commit = reference.peel_to_commit().map_err(read_err)?;
        Ok(Some(CommitId::from(commit.id)))
    }
}
