//! Compacting the mirror: `git gc` on the bare repository, bounded in time.
//!
//! Every fetch adds a pack, and every force-push leaves the replaced commits' objects behind,
//! unreachable. Left alone, a mirror that follows a branch force-pushed with large files grows
//! without bound. gix has no garbage collection, so this runs the `git` binary (Debian's `git`
//! package, which berth's tests need anyway) on the mirror:
//!
//! - everything reachable from the tracking ref is kept, so the branch's full history stays
//!   (force-push detection, superseded records and rollbacks walk it), plus the commits the
//!   caller names in [`CompactOptions::keep`] (held by temporary refs during the run);
//! - unreachable objects are pruned only once older than [`CompactOptions::prune_grace`];
//! - the git process group is killed after [`CompactOptions::time_limit`]; git replaces packs
//!   by rename, so a killed run leaves a valid mirror (and temporary files the next run removes);
//! - it never races a fetch: [`super::Syncer::compact`] takes the same gate as fetches.
//!
//! The host's git configuration is ignored (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL`), so a
//! setting there cannot change what is kept.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::source::GitSource;
use super::{CommitId, SyncError};

/// Where the commits of [`CompactOptions::keep`] are pinned during a run.
const KEEP_PREFIX: &str = "refs/berth/keep/";

/// How often a running `git gc` is checked against the time limit.
const POLL: Duration = Duration::from_millis(20);

/// What one compaction may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// Unreachable objects younger than this are kept. The mirror has one writer (berth's own
    /// fetch, which compaction never overlaps), so this is a safety margin, not a requirement;
    /// default one hour.
    pub prune_grace: Duration,
    /// The run is stopped after this long; default five minutes.
    pub time_limit: Duration,
    /// Commits to keep with their history even when the branch no longer contains them, e.g.
    /// the desired and last applied commits recorded in Raft, so a rollback to them stays
    /// possible after a force-push. Commits missing from the mirror are ignored.
    pub keep: Vec<CommitId>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            prune_grace: Duration::from_secs(3600),
            time_limit: Duration::from_secs(300),
            keep: Vec::new(),
        }
    }
}

/// The mirror's object store before and after a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Bytes under `objects/` before.
    pub bytes_before: u64,
    /// Bytes under `objects/` after.
    pub bytes_after: u64,
}

impl GitSource {
    /// Runs `git gc` on the mirror within `options`; see the module documentation.
    ///
    /// Not serialized with fetches by itself: call it through [`super::Syncer::compact`], or
    /// make sure no fetch runs meanwhile.
    pub fn compact(&self, options: &CompactOptions) -> Result<Compacted, SyncError> {
        let dir = self.dir();
        let failed = |reason: String| SyncError::Compaction {
            dir: dir.to_owned(),
            reason,
        };
        let bytes_before = disk_use(&dir.join("objects")).map_err(|e| failed(e.to_string()))?;
        let started = Instant::now();

        // Refs left by a run that was killed are dropped first, so they keep nothing forever.
        self.drop_keep_refs(options.time_limit)?;
        let pins: String = options
            .keep
            .iter()
            .filter(|id| self.repo.has_object(id.object_id()))
            .map(|id| format!("update {KEEP_PREFIX}{id} {id}\n"))
            .collect();
        if !pins.is_empty() {
            run_git(
                dir,
                &["update-ref", "--stdin"],
                Some(&pins),
                options.time_limit,
            )?;
        }

        let prune = if options.prune_grace.is_zero() {
            "--prune=now".to_owned()
        } else {
            format!(
                "--prune={}.seconds.ago",
                options.prune_grace.as_secs().max(1)
            )
        };
        let expire = format!(
            "gc.reflogExpireUnreachable={}",
            if options.prune_grace.is_zero() {
                "now".to_owned()
            } else {
                format!("{}.seconds.ago", options.prune_grace.as_secs().max(1))
            }
        );
        let left = options.time_limit.saturating_sub(started.elapsed());
        let gc = run_git(
            dir,
            &["-c", "gc.auto=0", "-c", &expire, "gc", "--quiet", &prune],
            None,
            left,
        );
        // Unpinned even when gc failed, so the pins never outlive the run that needed them.
        let unpinned = self.drop_keep_refs(options.time_limit);
        gc?;
        unpinned?;

        let bytes_after = disk_use(&dir.join("objects")).map_err(|e| failed(e.to_string()))?;
        tracing::info!(dir = %dir.display(), bytes_before, bytes_after, took_ms = started.elapsed().as_millis() as u64, "mirror compacted");
        Ok(Compacted {
            bytes_before,
            bytes_after,
        })
    }

    fn drop_keep_refs(&self, time_limit: Duration) -> Result<(), SyncError> {
        let listed = run_git(
            self.dir(),
            &["for-each-ref", "--format=delete %(refname)", KEEP_PREFIX],
            None,
            time_limit,
        )?;
        if !listed.trim().is_empty() {
            run_git(
                self.dir(),
                &["update-ref", "--stdin"],
                Some(&listed),
                time_limit,
            )?;
        }
        Ok(())
    }
}

/// Runs `git` on the bare repository `dir` with `stdin`, killing its process group after
/// `time_limit`; returns stdout.
fn run_git(
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    time_limit: Duration,
) -> Result<String, SyncError> {
    let failed = |reason: String| SyncError::Compaction {
        dir: dir.to_owned(),
        reason,
    };
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the time limit also stops the repack git gc starts.
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("cannot run git: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| failed(format!("writing to git: {e}")))?;
    }
    // Drained on threads so a chatty git never blocks on a full pipe while we wait.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status =
        wait_within(&mut child, time_limit).map_err(|e| failed(format!("waiting for git: {e}")))?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(stdout),
        Some(status) => Err(failed(format!(
            "git {} exited with {status}: {}",
            args.iter()
                .find(|a| !a.starts_with('-') && !a.contains('='))
                .unwrap_or(&"?"),
            stderr.lines().last().unwrap_or_default()
        ))),
        None => Err(failed(format!("stopped after {time_limit:?}"))),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for `child` at most `time_limit`; past it, kills its process group and returns `None`.
fn wait_within(
    child: &mut Child,
    time_limit: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let until = Instant::now() + time_limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= until {
            // The group id is the child's pid (process_group(0)); `kill` is used rather than a
            // signal call so that no unsafe code is needed for it.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// Total size of the files under `dir`.
fn disk_use(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += disk_use(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
