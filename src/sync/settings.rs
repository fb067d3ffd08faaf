//! How a mirror reaches its remote: time limits and credentials.
//!
//! None of this is written to the mirror: the limits live in memory, and the credentials are
//! paths to files read at each fetch (so a rotated token is picked up without a restart, and no
//! secret ever sits in the mirror's config where `git`, backups or a status page could show it).

use std::path::PathBuf;
use std::time::Duration;

/// Time limits and credentials for fetching; `Default` is what `berth serve` uses without flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// The whole fetch (connect, ref listing, pack) must end within this. A remote that trickles
    /// data cannot hold sync or shutdown for longer.
    pub deadline: Duration,
    /// The remote may send nothing for at most this long (connecting, waiting for an answer,
    /// between two reads of the pack), so a hung server is noticed long before the deadline.
    pub stall: Duration,
    /// Files holding the secrets, if any.
    pub credentials: Credentials,
}

impl FetchSettings {
    /// 60 s for a whole fetch: a first fetch of a manifests repository takes seconds, and a poll
    /// that takes longer than a minute should be reported rather than waited for.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
    /// 20 s of silence: longer than any server takes to start answering (git's own
    /// `http.lowSpeedTime` is 30 s, ssh's keep-alive checks usually 15–45 s).
    pub const DEFAULT_STALL: Duration = Duration::from_secs(20);
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            deadline: Self::DEFAULT_DEADLINE,
            stall: Self::DEFAULT_STALL,
            credentials: Credentials::default(),
        }
    }
}

/// Where the secrets for the remote are: files, read at each fetch, never copied elsewhere.
///
/// - `token_file` (`--repo-token-file`): for `https://` remotes. The token (the file's content,
///   surrounding whitespace removed) is sent as HTTP Basic authentication on every request to
///   the remote, with the URL's user name if it has one and `x-access-token` otherwise. That is
///   what GitHub (`x-access-token`), GitLab (any user name, e.g. `https://oauth2@gitlab.com/…`),
///   Gitea/Forgejo (any user name) and Bitbucket Cloud (`https://x-token-auth@bitbucket.org/…`)
///   accept for Git over HTTPS. Sent over plain `http://` only to a loopback address (a local
///   proxy); any other `http://` remote with a token is refused at start.
/// - `ssh_key_file` (`--ssh-key-file`): the private key for `ssh://` and scp-style
///   (`git@host:org/repo.git`) remotes, used alone (`IdentitiesOnly`), never the agent's keys.
/// - `ssh_known_hosts` (`--ssh-known-hosts`): the known-hosts file to check the server's key
///   against; without it, ssh's own (`~/.ssh/known_hosts`, `/etc/ssh/ssh_known_hosts`). Host
///   keys are always checked strictly: an unknown or changed key refuses the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The HTTPS token's file.
    pub token_file: Option<PathBuf>,
    /// The SSH private key's file.
    pub ssh_key_file: Option<PathBuf>,
    /// The SSH known-hosts file.
    pub ssh_known_hosts: Option<PathBuf>,
}
