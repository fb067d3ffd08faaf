//! A real `berth serve` process and a real Git repository of manifests, for end-to-end tests.
//!
//! The controller runs as the built binary (so tests can SIGTERM and `kill -9` it), binds its
//! status API on port 0 and prints the address, which `Berth::start` reads from its log.
//! Readiness is always awaited by polling the API with a deadline, never by sleeping.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::engines::{start_engine, Engine, TEST_IMAGE};
use serde_json::Value;
use tempfile::TempDir;

/// How long the waits on a controller's status give it by default.
const WAIT: Duration = Duration::from_secs(60);

/// A ReplicationController of `sleep` containers that stop at once (grace 1 s). `version` goes
/// into the environment, so changing it changes the pod spec. Its CPU request is what the
/// scheduler counts per replica: 10m lets 50 replicas and a surge fit on a 2-CPU engine. A
/// request, not a limit: a 10m CFS quota also throttles the container's start (runc init),
/// which then takes 1.5 s instead of 0.2 s.
pub fn rc_yaml(name: &str, replicas: u32, image: &str, version: &str) -> String {
    format!(
        "apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {image}
        command: [sleep, \"3600\"]
        env:
        - {{name: VERSION, value: \"{version}\"}}
        resources:
          requests: {{cpu: 10m, memory: 32Mi}}
"
    )
}

/// An RC of the test image, version 1.
pub fn rc(name: &str, replicas: u32) -> String {
    rc_yaml(name, replicas, TEST_IMAGE, "1")
}

/// A bare Pod of `sleep` (grace 1 s).
pub fn bare_pod(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {TEST_IMAGE}
    command: [sleep, \"3600\"]
"
    )
}

/// What most end-to-end tests start from: a private engine, a repository with `files`
/// committed, and berth serving it (not yet awaited: see `Berth::wait_converged`).
pub struct Setup {
    pub engine: Engine,
    pub repo: Repo,
    pub berth: Berth,
    /// The first commit.
    pub first: String,
    _data: TempDir,
}

impl Setup {
    pub async fn start(engine_name: &str, files: &[(&str, String)]) -> Result<Setup> {
        Setup::start_with(engine_name, files, &[]).await
    }

    /// [`Setup::start`] with more `berth serve` flags.
    pub async fn start_with(
        engine_name: &str,
        files: &[(&str, String)],
        extra: &[&str],
    ) -> Result<Setup> {
        let engine = start_engine(engine_name).await?;
        let repo = Repo::new()?;
        for (path, text) in files {
            repo.write(path, text);
        }
        let first = repo.commit("first deploy")?;
        let data = tempfile::tempdir()?;
        let berth = Berth::start_with(
            repo.path(),
            data.path(),
            &[format!("a={}", engine.endpoint)],
            extra,
        )
        .await?;
        Ok(Setup {
            engine,
            repo,
            berth,
            first,
            _data: data,
        })
    }
}

/// A Git repository in a temp dir, driven with the git CLI.
pub struct Repo {
    pub dir: TempDir,
}

impl Repo {
    pub fn new() -> Result<Repo> {
        let dir = tempfile::tempdir()?;
        git(dir.path(), &["init", "-q", "-b", "main"])?;
        Ok(Repo { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, file: &str, text: &str) -> &Repo {
        let path = self.dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("file in repo")).expect("mkdir");
        std::fs::write(path, text).expect("write manifest");
        self
    }

    pub fn remove(&self, file: &str) -> &Repo {
        std::fs::remove_file(self.dir.path().join(file)).expect("remove manifest");
        self
    }

    /// Commits everything and returns the full sha.
    pub fn commit(&self, message: &str) -> Result<String> {
        git(self.path(), &["add", "-A"])?;
        git(
            self.path(),
            &["commit", "-q", "--allow-empty", "-m", message],
        )?;
        self.head()
    }

    pub fn revert(&self, sha: &str) -> Result<String> {
        git(self.path(), &["revert", "--no-edit", sha])?;
        self.head()
    }

    pub fn head(&self) -> Result<String> {
        Ok(git(self.path(), &["rev-parse", "HEAD"])?.trim().to_string())
    }
}

pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test Operator")
        .env("GIT_AUTHOR_EMAIL", "operator@example.org")
        .env("GIT_COMMITTER_NAME", "Test Operator")
        .env("GIT_COMMITTER_EMAIL", "operator@example.org")
        .output()
        .context("run git")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running `berth serve`.
pub struct Berth {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Berth {
    /// Starts `berth serve` on `repo` with the given hosts (`name=endpoint`), a fast poll and
    /// resync, and waits until its status API answers.
    pub async fn start(repo: &Path, data_dir: &Path, nodes: &[String]) -> Result<Berth> {
        Berth::start_with(repo, data_dir, nodes, &[]).await
    }

    /// [`Berth::start`] with more flags (`--on-failure rollback`, ...).
    pub async fn start_with(
        repo: &Path,
        data_dir: &Path,
        nodes: &[String],
        extra: &[&str],
    ) -> Result<Berth> {
        let mut args = vec![
            "serve".to_string(),
            "--repo".into(),
            repo.display().to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--poll".into(),
            "300ms".into(),
            "--resync".into(),
            "2s".into(),
        ];
        for n in nodes {
            args.push("--node".into());
            args.push(n.clone());
        }
        // A flag given in `extra` replaces the default above.
        for flag in ["--poll", "--resync", "--listen"] {
            if extra.contains(&flag) {
                if let Some(i) = args.iter().position(|a| a == flag) {
                    args.drain(i..i + 2);
                }
            }
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut b = Berth {
            child: None,
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            args,
            log: Arc::new(Mutex::new(Vec::new())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        b.spawn().await?;
        Ok(b)
    }

    async fn spawn(&mut self) -> Result<()> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(&self.args)
            .env(
                "BERTH_LOG",
                std::env::var("TEST_BERTH_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start berth serve")?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("status API on http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
                eprintln!("berth| {line}");
                log.lock().expect("log lock").push(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = rx.try_recv() {
                self.addr = addr;
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("berth serve exited with {status}: {}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!(
                    "berth serve did not announce its status API in 60 s: {}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id of the running `berth serve`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak resident memory of the running `berth serve` so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("berth is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn status(&self) -> Result<Value> {
        self.get("/api/v1/status").await
    }

    /// Waits until the controller reports `sha` converged. `converged` comes from committed
    /// state, the same as the history: once it holds, `/api/v1/commits/{sha}` has
    /// `converged_at`, and it stays true (also across restarts) until another commit is desired.
    pub async fn wait_converged(&self, sha: &str) -> Result<Value> {
        self.wait_converged_within(sha, WAIT).await
    }

    /// [`wait_converged`](Self::wait_converged) with its own deadline, for work known to be
    /// long (a rollout of many replicas, one at a time).
    pub async fn wait_converged_within(&self, sha: &str, within: Duration) -> Result<Value> {
        self.wait_for_within(
            &format!("convergence on {sha}"),
            |s| s["commit"] == sha && s["converged"] == true,
            within,
        )
        .await
    }

    /// Waits until this controller itself has seen every host in line with `sha` (live
    /// `in_sync`): after a restart, the first pass of the new process has run.
    pub async fn wait_in_sync(&self, sha: &str) -> Result<Value> {
        self.wait_for(&format!("in sync on {sha}"), |s| {
            s["commit"] == sha && s["in_sync"] == true
        })
        .await
    }

    /// Polls `/api/v1/status` until `check` holds (60 s at most).
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Result<Value> {
        self.wait_for_within(what, check, WAIT).await
    }

    /// [`wait_for`](Self::wait_for) with its own deadline.
    pub async fn wait_for_within(
        &self,
        what: &str,
        check: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(s) = self.status().await {
                if check(&s) {
                    return Ok(s);
                }
                if Instant::now() > deadline {
                    bail!("timed out waiting for {what}; last status {s}");
                }
            } else if Instant::now() > deadline {
                bail!("timed out waiting for {what}; status API not answering");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The commit record for `sha` once its outcome is one of `outcomes`.
    pub async fn wait_commit(&self, sha: &str, outcomes: &[&str]) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(c) = self.get(&format!("/api/v1/commits/{sha}")).await {
                if outcomes.iter().any(|o| c["outcome"] == *o) {
                    return Ok(c);
                }
                if Instant::now() > deadline {
                    bail!("commit {sha} did not reach {outcomes:?}: {c}");
                }
            } else if Instant::now() > deadline {
                bail!("commit {sha} never appeared");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("berth serve exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("berth serve did not stop within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again (same data dir), on a new port.
    pub async fn restart(&mut self) -> Result<()> {
        self.spawn().await
    }

    /// Starts it again with `extra` flags added for good (as an operator editing its flags).
    pub async fn restart_with(&mut self, extra: &[&str]) -> Result<()> {
        self.args.extend(extra.iter().map(|a| a.to_string()));
        self.spawn().await
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill9();
    }
}
