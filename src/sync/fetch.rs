//! Bringing the mirror up to date with the remote branch.
//!
//! Only the one branch is fetched, no tags: berth deploys a branch head, and everything else on
//! the remote is noise that would cost bandwidth and disk in every replica's mirror.

use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use super::error::gix_error;
use super::source::GitSource;
use super::{CommitId, SyncError};

impl GitSource {
    /// Fetches the branch from the remote and returns its head.
    ///
    /// The tracking ref is force-updated, so after a force-push the returned commit is the new,
    /// rewritten head; [`GitSource::history_between`] then reports `forced`.
    pub fn fetch(&self) -> Result<CommitId, SyncError> {
        let location = &self.location;
        let remote_name = || location.display.clone();
        let fetch_err = |source| SyncError::Fetch {
            remote: remote_name(),
            branch: location.branch.clone(),
            source,
        };
        let repo = &self.repo;
        let remote = repo
            .remote_at(location.url.clone())
            .and_then(|r| r.with_refspecs(Some(location.refspec().as_str()), Direction::Fetch))
            .map_err(|source| SyncError::InvalidRemote {
                remote: remote_name(),
                source,
            })?
            .with_fetch_tags(gix::remote::fetch::Tags::None);

        let prepared = remote
            .connect(Direction::Fetch)
            .and_then(|connection| {
                connection.prepare_fetch(gix::progress::Discard, Default::default())
            })
            .map_err(|source| connect_error(remote_name(), source))?;

        let wanted = location.remote_ref();
        let advertised = prepared
            .ref_map()
            .mappings
            .iter()
            .any(|m| m.remote.as_name() == Some(wanted.as_bytes().as_bstr()));
        if !advertised {
            return Err(SyncError::BranchNotFound {
                remote: remote_name(),
                branch: location.branch.clone(),
            });
        }

        // Nothing interrupts a fetch from the outside; shutdown waits for it. It is bounded by
        // the transport's timeouts (over HTTP: 20 s to connect, reqwest's 30 s per request).
        let never = AtomicBool::new(false);
        let outcome = prepared
            .receive(gix::progress::Discard, &never)
            .map_err(fetch_err)?;
        let received_pack = matches!(outcome.status, gix::remote::fetch::Status::Change { .. });
        tracing::debug!(remote = %location.display, branch = %location.branch, received_pack, "fetched");

        self.local_head()?.ok_or_else(|| {
            fetch_err(gix_error(std::io::Error::other(format!(
                "{} missing after fetch",
                location.tracking_ref()
            ))))
        })
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

/// Splits connection failures into "refused us" (fatal) and "could not talk to it" (transient),
/// using gix's own classification of the cause, plus the transport's refusal to use credentials
/// at all (e.g. a password in an `http://` URL, which gix will not send in clear text).
fn connect_error(remote: String, source: gix::Error) -> SyncError {
    use gix::protocol::transport::client::Error as TransportError;
    let refused_identity = matches!(
        source.downcast_any_ref::<TransportError>(),
        Some(TransportError::AuthenticationRefused(_) | TransportError::AuthenticationUnsupported)
    );
    if refused_identity || source.is_unauthenticated() || source.is_permission_denied() {
        SyncError::AccessDenied { remote, source }
    } else {
        SyncError::Unreachable { remote, source }
    }
}
