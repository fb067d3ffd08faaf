//! `GitSource`: berth's own bare mirror of one branch of one remote.
//!
//! The mirror is a bare repository (no work tree): manifests are read straight from commit trees,
//! so there is no checkout to get dirty, half-written or out of sync with the ref. It only ever
//! holds `refs/remotes/origin/<branch>`, updated by [`GitSource::fetch`].
//!
//! Opening never touches the network. An unreachable remote at start-up is then an ordinary
//! transient `fetch` error the caller retries, not a constructor failure that stops the process.

use std::path::{Path, PathBuf};

use super::error::gix_error;
use super::settings::FetchSettings;
use super::SyncError;

/// The name of the single remote in the mirror's config.
pub(super) const REMOTE_NAME: &str = "origin";

/// Where a mirror lives and what it follows.
///
/// Split from [`GitSource`] because `gix::Repository` is not `Send` with the gix features berth
/// builds with, while this is: the async facade keeps a `Location` and reopens the mirror on the
/// blocking thread for each call.
#[derive(Debug, Clone)]
pub(super) struct Location {
    /// The remote, with a relative local path made absolute.
    pub url: gix::Url,
    /// `url` for messages, password redacted.
    pub display: String,
    /// The branch name, without `refs/heads/`.
    pub branch: String,
    /// The mirror directory.
    pub dir: PathBuf,
    /// Time limits and credential files for fetching.
    pub settings: FetchSettings,
}

impl Location {
    /// Validates `remote`, `branch` and the credentials without touching the mirror or the
    /// network (credential files are opened, to fail at start rather than at the first fetch).
    pub fn new(
        remote: &str,
        branch: &str,
        dir: &Path,
        settings: FetchSettings,
    ) -> Result<Self, SyncError> {
        let invalid_remote = |source| SyncError::InvalidRemote {
            remote: remote.to_owned(),
            source,
        };
        let mut url = gix::url::parse(remote.trim()).map_err(invalid_remote)?;
        if url.scheme == gix::url::Scheme::File && Path::new(&url.path.to_string()).is_relative() {
            // A relative path would silently mean something else if the process's working
            // directory changes between runs; pin it now.
            let cwd = std::env::current_dir().map_err(|e| invalid_remote(gix_error(e)))?;
            url.canonicalize(&cwd).map_err(invalid_remote)?;
        }
        gix::refs::FullName::try_from(format!("refs/heads/{branch}")).map_err(|e| {
            SyncError::InvalidBranch {
                branch: branch.to_owned(),
                source: gix_error(e),
            }
        })?;
        let display = url.to_string();
        settings.credentials.check(&url, &display)?;
        Ok(Location {
            display,
            url,
            branch: branch.to_owned(),
            dir: dir.to_owned(),
            settings,
        })
    }

    /// The branch's name on the remote.
    pub fn remote_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// Where the mirror keeps the fetched head of the branch.
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/{REMOTE_NAME}/{}", self.branch)
    }

    /// Forced (`+`) so a force-pushed branch replaces our tracking ref instead of being refused.
    pub fn refspec(&self) -> String {
        format!("+{}:{}", self.remote_ref(), self.tracking_ref())
    }
}

/// A bare mirror of one branch of one remote, with blocking gix calls.
///
/// Use [`super::Syncer`] from async code.
pub struct GitSource {
    pub(super) repo: gix::Repository,
    pub(super) location: Location,
}

impl GitSource {
    /// Opens the mirror in `dir`, creating it (and `dir`) if missing or empty, with the default
    /// [`FetchSettings`] (no credentials).
    ///
    /// `remote` is a local path, a `file://` URL, an `http(s)://` URL, or an ssh remote
    /// (`ssh://user@host/path` or scp-style `user@host:path`). Nothing is fetched here: call
    /// [`GitSource::fetch`] next. Fails if `dir` holds something other than a bare repository,
    /// or a mirror of a different remote, or if the URL carries a password.
    pub fn open_or_clone(remote: &str, branch: &str, dir: &Path) -> Result<GitSource, SyncError> {
        GitSource::open_with(remote, branch, dir, FetchSettings::default())
    }

    /// [`GitSource::open_or_clone`] with explicit time limits and credentials.
    pub fn open_with(
        remote: &str,
        branch: &str,
        dir: &Path,
        settings: FetchSettings,
    ) -> Result<GitSource, SyncError> {
        GitSource::open_location(Location::new(remote, branch, dir, settings)?)
    }

    /// The remote this mirror follows, password redacted.
    pub fn remote(&self) -> &str {
        &self.location.display
    }

    /// The branch this mirror follows.
    pub fn branch(&self) -> &str {
        &self.location.branch
    }

    /// The mirror directory.
    pub fn dir(&self) -> &Path {
        &self.location.dir
    }

    pub(super) fn open_location(location: Location) -> Result<GitSource, SyncError> {
        let dir = &location.dir;
        let mirror_err = |source| SyncError::Mirror {
            dir: dir.clone(),
            source,
        };
        let fresh = is_missing_or_empty(dir).map_err(|e| mirror_err(gix_error(e)))?;
        if fresh {
            tracing::info!(dir = %dir.display(), remote = %location.display, "creating git mirror");
            std::fs::create_dir_all(dir).map_err(|e| mirror_err(gix_error(e)))?;
            gix::init_bare(dir).map_err(mirror_err)?;
        }
        let repo = gix::open(dir).map_err(|source| SyncError::NotARepository {
            dir: dir.clone(),
            source: Some(source),
        })?;
        if !repo.is_bare() {
            return Err(SyncError::NotARepository {
                dir: dir.clone(),
                source: None,
            });
        }
        let configured = repo
            .config_snapshot()
            .string(format!("remote.{REMOTE_NAME}.url").as_str())
            .map(|url| url.to_string());
        let mut repo = match configured {
            Some(configured) => {
                check_same_remote(&configured, &location)?;
                repo
            }
            // Also covers a mirror whose creation was interrupted before its config was written.
            None => {
                save_remote(&repo, &location).map_err(mirror_err)?;
                gix::open(dir).map_err(mirror_err)?
            }
        };
        configure_for_daemon(&mut repo).map_err(mirror_err)?;
        Ok(GitSource { repo, location })
    }
}

/// In-memory settings (never written to the mirror's config) for running unattended.
fn configure_for_daemon(repo: &mut gix::Repository) -> gix::Result<()> {
    // Ref updates during fetch want a committer for the reflog, and a daemon often has no Git
    // identity; this only fills in what the environment and config leave unset.
    repo.committer_or_set_fallback("berth", "berth@localhost")?;
    // Without this, a remote answering 401 makes gix ask for a username on the controlling
    // terminal, and a foreground berth would hang there instead of reporting AccessDenied.
    let mut config = repo.config_snapshot_mut();
    config.set_value(
        &gix::config::tree::gitoxide::Credentials::TERMINAL_PROMPT,
        "false",
    )?;
    config.commit()?;
    Ok(())
}

/// The repository directory when `remote` is a local path or `file://` URL, as given (relative
/// paths are not resolved); `None` for network remotes, scp-style `user@host:path` included.
///
/// For the caller's start-up check ("does the local repository exist?") and for
/// [`super::RefWatcher`], which only works on local repositories. Uses the same parser as the
/// mirror, so `git@host:org/repo.git` is never mistaken for a local path.
pub fn local_repository(remote: &str) -> Option<PathBuf> {
    let url = gix::url::parse(remote.trim()).ok()?;
    (url.scheme == gix::url::Scheme::File).then(|| PathBuf::from(url.path.to_string()))
}

fn is_missing_or_empty(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Errors unless `configured` (from the mirror's config) names the same place as the requested
/// remote. Compared by location, not spelling, so `/srv/repo` and `file:///srv/repo` match.
fn check_same_remote(configured: &str, location: &Location) -> Result<(), SyncError> {
    let mismatch = || SyncError::RemoteMismatch {
        dir: location.dir.clone(),
        configured: gix::url::parse(configured)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| configured.to_owned()),
        requested: location.display.clone(),
    };
    let configured = gix::url::parse(configured).map_err(|_| mismatch())?;
    let wanted = &location.url;
    let same = configured.scheme == wanted.scheme
        && configured.user() == wanted.user()
        && configured.host() == wanted.host()
        && configured.port_or_default() == wanted.port_or_default()
        && configured.path == wanted.path;
    if same {
        Ok(())
    } else {
        Err(mismatch())
    }
}

/// Records the remote in the mirror's own config file, so a later open can tell whether it is
/// being pointed at a different remote, and so `git fetch` run by hand in the mirror works.
fn save_remote(repo: &gix::Repository, location: &Location) -> gix::Result<()> {
    let path = repo.git_dir().join("config");
    let mut config =
        gix::config::File::from_path_no_includes(path.clone(), gix::config::Source::Local)?;
    // Unrewritten: `url.<base>.insteadOf` applies at fetch time, and must not make the next
    // open see a different remote than the one configured.
    let mut remote = repo
        .remote_at_without_url_rewrite(location.url.clone())?
        .with_refspecs(
            Some(location.refspec().as_str()),
            gix::remote::Direction::Fetch,
        )?;
    remote.save_as_to(REMOTE_NAME, &mut config)?;
    // Write aside and rename, so a crash never leaves a truncated config behind.
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, config.to_bstring()).map_err(gix_error)?;
    std::fs::rename(&tmp, &path).map_err(gix_error)?;
    Ok(())
}
