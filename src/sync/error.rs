//! The one error type of the Git side.
//!
//! Every variant names what the operator needs to see (remote, branch, directory, commit) so the
//! message alone is actionable. Causes from gix are attached as `#[source]`, never formatted into
//! the message, so a log line stays short and `{:#}`/error-chain printers still show the details.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while mirroring or reading the Git repository.
///
/// [`SyncError::is_transient`] tells the caller whether to keep the last good commit and try
/// again later, or to stop and report a configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The remote is neither a path nor a URL gix understands. Fatal: the configuration is wrong.
    #[error("invalid remote '{remote}'")]
    InvalidRemote {
        /// The remote as given by the caller.
        remote: String,
        /// Why gix rejected it.
        #[source]
        source: gix::Error,
    },

    /// The branch name cannot be a Git ref name (spaces, `..`, ...). Fatal.
    #[error("invalid branch name '{branch}'")]
    InvalidBranch {
        /// The branch as given by the caller.
        branch: String,
        /// Why it is not a valid ref name.
        #[source]
        source: gix::Error,
    },

    /// A commit id was not 40 lowercase or uppercase hex digits. Fatal: the caller has a bug or
    /// corrupted state.
    #[error("'{input}' is not a 40-hex commit id")]
    InvalidCommitId {
        /// The rejected text.
        input: String,
    },

    /// The mirror directory exists, is not empty, and is not a bare Git repository. Fatal: berth
    /// refuses to write into a directory it did not create.
    #[error("'{dir}' is not a bare Git repository (berth keeps its own mirror there)")]
    NotARepository {
        /// The mirror directory.
        dir: PathBuf,
        /// Why opening failed, if gix said so (absent when it opened but has a work tree).
        #[source]
        source: Option<gix::Error>,
    },

    /// Creating or configuring the mirror failed (permissions, disk). Fatal until an operator
    /// looks at the directory.
    #[error("cannot set up the mirror repository in '{dir}'")]
    Mirror {
        /// The mirror directory.
        dir: PathBuf,
        /// The underlying I/O or gix failure.
        #[source]
        source: gix::Error,
    },

    /// The mirror was created for another remote. Fatal: silently re-pointing it would mix two
    /// histories in one object database and confuse `history_between`.
    #[error("mirror '{dir}' follows remote {configured}, not {requested}; use another directory or remove it")]
    RemoteMismatch {
        /// The mirror directory.
        dir: PathBuf,
        /// The remote recorded in the mirror's config (password redacted).
        configured: String,
        /// The remote asked for now (password redacted).
        requested: String,
    },

    /// Connecting or the handshake failed: network down, host unknown, server error, or a local
    /// path that is (for now) not a repository. Transient.
    #[error("cannot reach remote {remote}")]
    Unreachable {
        /// The remote (password redacted).
        remote: String,
        /// The transport error.
        #[source]
        source: gix::Error,
    },

    /// The remote answered but refused us (bad or missing credentials, no permission). Fatal:
    /// retrying with the same credentials cannot succeed.
    #[error("access to remote {remote} denied")]
    AccessDenied {
        /// The remote (password redacted).
        remote: String,
        /// The transport error.
        #[source]
        source: gix::Error,
    },

    /// The remote does not have the branch. Not transient: it needs a push or a configuration
    /// change, though the caller may keep polling and serve the last good commit meanwhile.
    #[error("branch '{branch}' not found on remote {remote}")]
    BranchNotFound {
        /// The remote (password redacted).
        remote: String,
        /// The branch that was asked for.
        branch: String,
    },

    /// The pack transfer or the update of the tracking ref failed after the handshake worked.
    /// Transient: usually an interrupted connection or a concurrent writer.
    #[error("fetching branch '{branch}' from {remote} failed")]
    Fetch {
        /// The remote (password redacted).
        remote: String,
        /// The branch being fetched.
        branch: String,
        /// The gix failure.
        #[source]
        source: gix::Error,
    },

    /// The commit is not in the mirror (never fetched, or dropped by a force-push before this
    /// mirror saw it). Fatal for this commit: fetching again will not bring it back.
    #[error("commit {commit} not found in mirror '{dir}'")]
    CommitNotFound {
        /// The missing commit.
        commit: String,
        /// The mirror directory.
        dir: PathBuf,
    },

    /// The manifest directory does not exist (or is a file) in that commit. Fatal for this
    /// commit: the repository layout does not match the configuration.
    #[error("directory '{subdir}' not found in commit {commit}")]
    SubdirNotFound {
        /// The directory as asked for.
        subdir: String,
        /// The commit that was read.
        commit: String,
    },

    /// The commit's manifest tree is over a budget (file size, file count, total size): it is
    /// rejected whole, before any file over budget is read. Fatal for this commit.
    #[error("commit {commit} is over the manifest budgets: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    OverBudget {
        /// The commit that was read.
        commit: String,
        /// Each budget exceeded, naming the file or tree and the limit.
        problems: Vec<crate::manifest::Problem>,
    },

    /// Reading objects from the mirror failed (corrupt object, unreadable file). Fatal: the
    /// mirror needs repair.
    #[error("cannot read {what} from mirror '{dir}'")]
    Read {
        /// What was being read, e.g. "commit 3f2a…" or "tree of commit 3f2a…".
        what: String,
        /// The mirror directory.
        dir: PathBuf,
        /// The gix failure.
        #[source]
        source: gix::Error,
    },

    /// The blocking task running the Git work panicked or was cancelled at shutdown. Fatal: a
    /// panic is a bug, and a cancellation means the runtime is going away.
    #[error("git task did not complete")]
    Task(#[source] tokio::task::JoinError),

    /// The remote URL carries a password or token (`https://user:secret@host/...`). Fatal: berth
    /// refuses it at start, because a URL ends up in config files, logs, `ps` and the status
    /// API; the secret belongs in a file the process reads.
    #[error("remote {remote} has a password or token in its URL; put the token in a file and pass --repo-token-file (HTTPS), or use --ssh-key-file (SSH)")]
    SecretInUrl {
        /// The remote, password redacted.
        remote: String,
    },

    /// A credential was given that the remote's scheme cannot use (a token for an `ssh://`
    /// remote, an SSH key for an `https://` one). Fatal: the configuration is inconsistent, and
    /// silently ignoring a credential hides a typo in the remote.
    #[error("{credential} cannot be used with remote {remote}")]
    CredentialNotApplicable {
        /// Which flag, e.g. "--repo-token-file".
        credential: &'static str,
        /// The remote, password redacted.
        remote: String,
    },

    /// A credential file (token, SSH key, known hosts) cannot be read, or is empty. Fatal until
    /// an operator fixes it. The message names the file, never its content.
    #[error("cannot read credential file '{path}'")]
    CredentialFile {
        /// The file.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },

    /// The SSH server's host key is not in the known-hosts file, or differs from it. Fatal: it
    /// takes an operator to add the key (or to find out why it changed).
    #[error(
        "host key of remote {remote} is not trusted (not in the known-hosts file, or changed)"
    )]
    HostKeyNotTrusted {
        /// The remote.
        remote: String,
    },

    /// The fetch did not finish before its overall deadline. Transient: the remote was slow or
    /// trickled data; the mirror is left as it was before the fetch.
    #[error("fetching from {remote} did not finish within {deadline:?}")]
    DeadlineExceeded {
        /// The remote (password redacted).
        remote: String,
        /// The deadline that passed.
        deadline: Duration,
        /// What the transport reported when it was stopped, if it had noticed anything.
        #[source]
        source: Option<gix::Error>,
    },

    /// The remote sent nothing for the stall timeout (it accepted the connection, or sent
    /// headers, then went quiet). Transient.
    #[error("remote {remote} sent nothing for {stall:?}")]
    Stalled {
        /// The remote (password redacted).
        remote: String,
        /// The stall timeout.
        stall: Duration,
        /// The transport's timeout error.
        #[source]
        source: gix::Error,
    },

    /// The fetch was cancelled by the caller (shutdown, or leadership lost). Transient in the
    /// sense that nothing is wrong: the same fetch can run again later.
    #[error("fetching from {remote} was cancelled")]
    Cancelled {
        /// The remote (password redacted).
        remote: String,
    },

    /// Compacting the mirror (`git gc`) failed or ran out of time. Transient: the mirror is
    /// still valid (git replaces packs atomically), only bigger than it needs to be.
    #[error("compacting mirror '{dir}' failed: {reason}")]
    Compaction {
        /// The mirror directory.
        dir: PathBuf,
        /// What went wrong (git's last stderr line, or the time limit).
        reason: String,
    },

    /// The local repository cannot be watched (not a repository, inotify limits). Fatal for the
    /// watch: the caller falls back to polling.
    #[error("cannot watch repository '{path}'")]
    Watch {
        /// The repository (or directory in it) being watched.
        path: PathBuf,
        /// Why the watch failed.
        #[source]
        source: gix::Error,
    },
}

impl SyncError {
    /// `true` when trying the same call later may succeed without anyone changing anything
    /// (network trouble, a remote that is down, an interrupted transfer).
    ///
    /// Everything else needs a person: a wrong URL or branch, a directory that is not berth's, a
    /// corrupt mirror, a commit that history no longer contains.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncError::Unreachable { .. }
                | SyncError::Fetch { .. }
                | SyncError::DeadlineExceeded { .. }
                | SyncError::Stalled { .. }
                | SyncError::Cancelled { .. }
                | SyncError::Compaction { .. }
        )
    }
}

/// Turns a non-gix error (I/O on the mirror directory, mostly) into the `gix::Error` our
/// variants carry, so every variant has one source type.
pub(super) fn gix_error(err: impl std::error::Error + Send + Sync + 'static) -> gix::Error {
    gix::Error::from_error(err)
}
