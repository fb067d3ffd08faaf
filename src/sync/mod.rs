//! The Git side of berth: mirror the configured branch and read manifests out of its commits.
//!
//! ```text
//! remote (path, file://, http(s)://, ssh://, user@host:path)
//!     │ fetch: refs listed first, pack only if the branch moved; one branch, force-updated,
//!     │        no tags; bounded by a deadline and a stall timeout, cancellable
//!     │        (FetchSettings: limits + credential files, never stored in the mirror)
//!     ▼
//! bare mirror in the data dir ── refs/remotes/origin/<branch>
//!     │ read_tree(commit, subdir)        → manifest files (.yaml/.yml/.json), sorted by path
//!     │ tree_id(commit, subdir)          → "did the manifests change at all?"
//!     │ history_between(old, new, limit) → commits rolled out, and how the head moved
//!     │                                    (HeadMove: fast-forward, to an ancestor, diverged)
//!     │ verify_commit(commit, policy)    → who signed it (optional SSH-signature mode)
//!     │ compact(options)                 → git gc: unreachable objects pruned, history kept
//!     ▼
//! manifest parsing ─► desired state
//!
//! RefWatcher (local repositories only): inotify on the branch's ref ─► "fetch now"
//! ```
//!
//! [`GitSource`] does the work with blocking gix calls; [`Syncer`] runs the same calls off the
//! async runtime for async callers. Nothing here decides *when* to fetch: webhooks, timers, the
//! [`RefWatcher`] and manual pokes all end in the same `fetch()`, and the caller compares heads.
//!
//! Errors say whether retrying can help ([`SyncError::is_transient`]), so the controller can keep
//! serving the last good commit through a network outage but surface a wrong URL, a refused
//! credential or an untrusted host key at once.

mod commit_id;
mod compact;
mod credentials;
mod deadline;
mod error;
mod fetch;
mod history;
mod settings;
mod signature;
mod source;
mod syncer;
mod transport;
mod tree;
mod watch;

pub use commit_id::CommitId;
pub use compact::{CompactOptions, Compacted};
pub use error::SyncError;
pub use fetch::Fetched;
pub use history::{CommitInfo, HeadMove, History};
pub use settings::{Credentials, FetchSettings};
pub use signature::{SignatureError, SignaturePolicy, Signer};
pub use source::{local_repository, GitSource};
pub use syncer::Syncer;
pub use tree::ManifestFile;
pub use watch::RefWatcher;
