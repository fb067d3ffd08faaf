//! Several real `berth serve` processes forming one controller cluster on loopback, sharing a
//! Git repository and Docker engines. Each member gets a fixed port (chosen free at start, kept
//! across restarts: the others know it by that address) and its own data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use super::berth::{Berth, Repo};
use super::cmd::signal;

/// The shared secret of test clusters.
pub const TOKEN: &str = "test-cluster-token-0123456789abcdef";

pub struct Cluster {
    pub members: Vec<Berth>,
    pub repo: Repo,
    pub token_file: std::path::PathBuf,
    _dir: TempDir,
}

/// A free loopback port now (the kernel may hand it out again later, but not in practice within
/// a test's seconds).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Cluster {
    /// `n` members serving `repo` on the hosts `nodes` (`name=endpoint`), each with `extra`
    /// flags; returns once every member's API answers (not once a leader is elected).
    pub async fn start(n: usize, repo: Repo, nodes: &[String], extra: &[&str]) -> Result<Cluster> {
        Cluster::start_each(n, repo, nodes, extra, |_| Vec::new()).await
    }

    /// [`Cluster::start`], member `i` (from 0) also getting the flags `each(i)`.
    pub async fn start_each(
        n: usize,
        repo: Repo,
        nodes: &[String],
        extra: &[&str],
        each: impl Fn(usize) -> Vec<String>,
    ) -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, TOKEN)?;
        let ports = (0..n).map(|_| free_port()).collect::<Result<Vec<_>>>()?;
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let data = dir.path().join(format!("member-{}", i + 1));
            let listen = format!("127.0.0.1:{port}");
            let id = (i + 1).to_string();
            let mut args: Vec<&str> = vec![
                "--listen",
                &listen,
                "--id",
                &id,
                "--peer",
                &peers,
                "--cluster-token-file",
            ];
            let token = token_file.display().to_string();
            args.push(&token);
            args.extend_from_slice(extra);
            let own = each(i);
            args.extend(own.iter().map(String::as_str));
            members.push(Berth::start_with(repo.path(), &data, nodes, &args).await?);
        }
        Ok(Cluster {
            members,
            repo,
            token_file,
            _dir: dir,
        })
    }

    /// Every running member's status (`None` for a stopped or unanswering one).
    pub async fn statuses(&self) -> Vec<Option<Value>> {
        let mut out = Vec::new();
        for m in &self.members {
            out.push(if m.pid().is_some() {
                m.status().await.ok()
            } else {
                None
            });
        }
        out
    }

    /// Waits until exactly one running member says it leads (acting, with a quorum) and every
    /// running member names it; returns its index in `members`.
    pub async fn wait_leader(&self) -> Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let statuses = self.statuses().await;
            let leaders: Vec<usize> = statuses
                .iter()
                .enumerate()
                .filter(|(_, s)| s.as_ref().is_some_and(|s| s["is_leader"] == true))
                .map(|(i, _)| i)
                .collect();
            if let [one] = leaders[..] {
                let id = one as u64 + 1;
                let agreed = statuses
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.members[*i].pid().is_some())
                    .all(|(_, s)| s.as_ref().is_some_and(|s| s["leader"] == id));
                if agreed {
                    return Ok(one);
                }
            }
            if Instant::now() > deadline {
                bail!("no agreed leader within 60 s: {statuses:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running member reports `sha` desired and converged.
    pub async fn wait_converged_everywhere(&self, sha: &str) -> Result<()> {
        for m in self.members.iter().filter(|m| m.pid().is_some()) {
            m.wait_converged(sha).await?;
        }
        Ok(())
    }

    /// The history (`/api/v1/commits`) as one member serves it: (sha, outcome), newest first.
    pub async fn history(&self, i: usize) -> Result<Vec<(String, String)>> {
        let v = self.members[i].get("/api/v1/commits").await?;
        let list = v.as_array().context("commits is a list")?;
        Ok(list
            .iter()
            .map(|c| {
                (
                    c["sha"].as_str().unwrap_or_default().to_string(),
                    c["outcome"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// SIGSTOP or SIGCONT a member (a frozen process: its peers see a partition).
    pub fn signal(&self, i: usize, sig: &str) {
        if let Some(pid) = self.members[i].pid() {
            signal(pid, sig);
        }
    }

    pub fn token_path(&self) -> &Path {
        &self.token_file
    }
}
