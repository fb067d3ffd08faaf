//! Fixtures for the Git tests: upstream repositories made with the git CLI, and a real smart-HTTP
//! Git server on loopback (`git http-backend` behind a small server) that can also misbehave.

#![allow(dead_code)] // each test binary uses a different part

pub mod http;
pub mod sshd;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use berth::sync::CommitId;
use tempfile::TempDir;

/// Commit times start here and advance one minute per commit, so "newest first" is unambiguous.
pub const EPOCH: i64 = 1_700_000_000;

/// Isolated from the machine's git config, with a fixed identity.
pub const GIT_ENV: [(&str, &str); 6] = [
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_AUTHOR_NAME", "Alice Author"),
    ("GIT_AUTHOR_EMAIL", "alice@example.com"),
    ("GIT_COMMITTER_NAME", "Carl Committer"),
    ("GIT_COMMITTER_EMAIL", "carl@example.com"),
];

/// Runs git in `dir` and returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .envs(GIT_ENV)
        .output()?;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

pub fn id(sha: &str) -> CommitId {
    CommitId::parse(sha).expect("git printed a full sha")
}

/// An upstream repository: `work` is where commits are made, `bare` is the remote berth follows.
pub struct Upstream {
    pub tmp: TempDir,
    pub work: PathBuf,
    pub bare: PathBuf,
    clock: Cell<i64>,
}

impl Upstream {
    /// A work repository and its bare remote, with one commit of `deploy/web.yaml` pushed.
    pub fn with_first_commit() -> Result<(Upstream, String)> {
        let up = Upstream::empty()?;
        up.write("deploy/web.yaml", "kind: Pod\n")?;
        let sha = up.commit("first")?;
        up.push(false)?;
        Ok((up, sha))
    }

    pub fn empty() -> Result<Upstream> {
        let tmp = TempDir::new()?;
        git(tmp.path(), &["init", "-q", "work"])?;
        git(tmp.path(), &["init", "-q", "--bare", "remote.git"])?;
        let (work, bare) = (tmp.path().join("work"), tmp.path().join("remote.git"));
        git(
            &work,
            &["remote", "add", "origin", &bare.display().to_string()],
        )?;
        Ok(Upstream {
            tmp,
            work,
            bare,
            clock: Cell::new(EPOCH),
        })
    }

    /// The bare remote as a `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// A directory for one of berth's mirrors, inside this fixture's temp dir.
    pub fn mirror_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join("mirrors").join(name)
    }

    pub fn write(&self, path: &str, content: &str) -> Result<&Self> {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().context("file has a parent")?)?;
        std::fs::write(file, content)?;
        Ok(self)
    }

    /// Stages everything and commits, one fixture minute after the previous commit; returns
    /// the sha. `extra` are `-c` settings for git (e.g. signing).
    pub fn commit_with(&self, message: &str, extra: &[&str]) -> Result<String> {
        git(&self.work, &["add", "-A"])?;
        self.clock.set(self.clock.get() + 60);
        let date = format!("{} +0000", self.clock.get());
        let mut args: Vec<&str> = Vec::new();
        for setting in extra {
            args.extend(["-c", setting]);
        }
        args.extend(["commit", "-q", "--allow-empty", "-m", message]);
        if extra.iter().any(|s| s.starts_with("user.signingkey")) {
            args.push("-S");
        }
        let out = Command::new("git")
            .current_dir(&self.work)
            .args(&args)
            .envs(GIT_ENV)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn commit(&self, message: &str) -> Result<String> {
        self.commit_with(message, &[])
    }

    pub fn push(&self, force: bool) -> Result<()> {
        let force = if force { "--force" } else { "--no-force" };
        git(&self.work, &["push", "-q", force, "origin", "main"]).map(drop)
    }

    pub fn reset_hard(&self, sha: &str) -> Result<()> {
        git(&self.work, &["reset", "-q", "--hard", sha]).map(drop)
    }
}
