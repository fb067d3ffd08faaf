//! A private Docker registry, for tests of pulls that need credentials.
//!
//! Tests cannot reach a public registry, and berth must pull from private ones with
//! credentials, so a test starts its own: Debian's `docker-registry` (distribution 2.8)
//! with basic auth from an htpasswd file (bcrypt), a temporary config and storage, and a
//! random password. It listens on one engine's [`Engine::host_side_ip`], never on all
//! addresses, so every private engine reaches it and nothing outside the machine does.
//! Engines trust it over plain HTTP (`insecure-registries` in their daemon.json).
//!
//! ```text
//! /tmp/berth-registry-XXXXXX/   TempDir, removed on drop
//!   owner                       the test process's pid, for the sweep of leftovers
//!   config.yml htpasswd registry.log
//!   storage/                    the registry's blobs
//! ```
//!
//! The registry stops (by its pid) when the [`Registry`] is dropped. Drop it before the
//! engine whose address it listens on: that address goes away with the engine.

use std::fs::{self, File};
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::TryStreamExt;
use tempfile::TempDir;

use super::cmd::{on_path, run_with_input, signal};
use super::engines::{Engine, TEST_IMAGE};
use super::leftovers::processes;

/// The user every test registry accepts (with its own random password).
pub const USER: &str = "berth";
/// Where [`Registry::push_test_image`] puts [`TEST_IMAGE`] in the registry.
pub const APP_IMAGE: &str = "berth/app:1";

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const DIR_PREFIX: &str = "berth-registry-";
const NOT_INSTALLED: &str = "run `scripts/docker-engine`, which installs docker-registry \
    (the registry) and apache2-utils (htpasswd)";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// A running registry; see the module's documentation.
pub struct Registry {
    /// `10.213.N.1:<port>`: the registry's host as image references name it.
    address: String,
    password: String,
    process: Child,
    dir: TempDir,
}

/// Starts a registry on `beside`'s [`Engine::host_side_ip`], on a port the system picks,
/// and waits until it asks for credentials.
pub async fn start_registry(beside: &Engine) -> Result<Registry> {
    if !Path::new(REGISTRY_BIN).is_file() || !on_path("htpasswd") {
        bail!("no {REGISTRY_BIN} or no htpasswd: {NOT_INSTALLED}");
    }
    sweep_stale_registries();
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir_in("/tmp")
        .context("creating the registry's directory under /tmp")?;
    fs::write(dir.path().join("owner"), std::process::id().to_string())
        .context("writing the registry's owner")?;
    let password = random_hex(12)?;
    let htpasswd = run_with_input(Command::new("htpasswd").args(["-niB", USER]), &password)?;
    fs::write(dir.path().join("htpasswd"), htpasswd).context("writing htpasswd")?;
    let config = config(dir.path(), beside.host_side_ip(), &random_hex(16)?);
    fs::write(dir.path().join("config.yml"), config).context("writing config.yml")?;
    let log = File::create(dir.path().join("registry.log")).context("creating registry.log")?;
    let process = Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("duplicating the log handle")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("spawning {REGISTRY_BIN}"))?;
    let mut registry = Registry {
        address: String::new(),
        password,
        process,
        dir,
    };
    registry.address = registry.wait_listening().await?;
    registry.wait_asking_for_credentials().await?;
    Ok(registry)
}

impl Registry {
    /// `10.213.N.1:<port>`, as image references and [`DockerCredentials`] name it.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn user(&self) -> &str {
        USER
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The right credentials, as a Docker client sends them with a push or a pull.
    pub fn credentials(&self) -> DockerCredentials {
        self.credentials_with(USER, &self.password)
    }

    /// Credentials for this registry with any user and password, e.g. wrong ones.
    pub fn credentials_with(&self, user: &str, password: &str) -> DockerCredentials {
        DockerCredentials {
            username: Some(user.to_string()),
            password: Some(password.to_string()),
            serveraddress: Some(self.address.clone()),
            ..Default::default()
        }
    }

    /// `<address>/berth/app:1`: [`TEST_IMAGE`] once [`Registry::push_test_image`] ran.
    pub fn app_image(&self) -> String {
        format!("{}/{APP_IMAGE}", self.address)
    }

    /// Tags `engine`'s [`TEST_IMAGE`] as [`Registry::app_image`] and pushes it with the
    /// right credentials; returns the image reference.
    pub async fn push_test_image(&self, engine: &Engine) -> Result<String> {
        let image = self.app_image();
        let (repo, tag) = image
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("{image} has no tag"))?;
        let options = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
        engine
            .docker()
            .tag_image(TEST_IMAGE, Some(options))
            .await
            .with_context(|| format!("tagging {TEST_IMAGE} as {image} on {}", engine.name))?;
        push(engine.docker(), &image, Some(self.credentials()))
            .await
            .with_context(|| {
                format!(
                    "pushing {image} from {}; registry log:\n{}",
                    engine.name,
                    self.log_tail(20)
                )
            })?;
        Ok(image)
    }

    /// The last `lines` lines of the registry's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Reads the address the registry bound from its log (`"msg":"listening on ..."`):
    /// with port 0 in its config, only the registry knows its port.
    async fn wait_listening(&mut self) -> Result<String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
            let bound = log.lines().find_map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).ok()?;
                let message = entry.get("msg")?.as_str()?;
                message.strip_prefix("listening on ").map(str::to_string)
            });
            if let Some(address) = bound {
                return Ok(address);
            }
            if let Some(status) = self
                .process
                .try_wait()
                .context("checking on the registry")?
            {
                bail!(
                    "the registry exited ({status}); its log:\n{}",
                    self.log_tail(20)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the registry did not listen within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `GET /v2/` answers 401, the registry's "who are you?".
    async fn wait_asking_for_credentials(&self) -> Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building an HTTP client")?;
        let url = format!("http://{}/v2/", self.address);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let last = match client.get(&url).send().await {
                Ok(answer) if answer.status() == reqwest::StatusCode::UNAUTHORIZED => return Ok(()),
                Ok(answer) => format!("status {}", answer.status()),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                bail!(
                    "GET {url} did not answer 401 within {READY_TIMEOUT:?} (last: {last}); \
                     registry log:\n{}",
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // By its pid: the registry is our own child. The TempDir, dropped next, removes
        // its files.
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

/// Pushes `image` (`host/path:tag`) from `docker`'s engine, to the end of the progress
/// stream, where Docker reports a refused push.
pub async fn push(
    docker: &Docker,
    image: &str,
    credentials: Option<DockerCredentials>,
) -> Result<(), bollard::errors::Error> {
    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    docker
        .push_image(repo, Some(options), credentials)
        .try_collect::<Vec<_>>()
        .await
        .map(drop)
}

/// Pulls `image` into `docker`'s engine, to the end of the progress stream.
pub async fn pull(
    docker: &Docker,
    image: &str,
    credentials: Option<DockerCredentials>,
) -> Result<(), bollard::errors::Error> {
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    docker
        .create_image(Some(options), None, credentials)
        .try_collect::<Vec<_>>()
        .await
        .map(drop)
}

/// Whether Docker refused a push or pull because the registry did not accept the
/// credentials (wrong ones, or none).
pub fn is_auth_error(error: &bollard::errors::Error) -> bool {
    let message = error.to_string().to_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
    ]
    .iter()
    .any(|sign| message.contains(sign))
}

/// The registry's configuration: storage and auth in `dir`, listening on `ip`, on a port
/// the system picks; JSON logs, so that the bound address can be read back.
fn config(dir: &Path, ip: Ipv4Addr, secret: &str) -> String {
    let dir = dir.display();
    format!(
        "version: 0.1
log:
  level: info
  formatter: json
storage:
  filesystem:
    rootdirectory: {dir}/storage
http:
  addr: {ip}:0
  secret: {secret}
auth:
  htpasswd:
    realm: berth-test
    path: {dir}/htpasswd
"
    )
}

/// `bytes` random bytes from the kernel, as hex.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buffer))
        .context("reading /dev/urandom")?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Stops registries, and removes the directories, of test processes that died without
/// dropping them (SIGKILL, Ctrl-C): their directory's `owner` names a dead pid.
fn sweep_stale_registries() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_ours = entry.file_name().to_string_lossy().starts_with(DIR_PREFIX);
        let Some(owner) = is_ours
            .then(|| fs::read_to_string(dir.join("owner")).ok())
            .flatten()
        else {
            continue;
        };
        if Path::new("/proc").join(owner.trim()).exists() {
            continue;
        }
        let config = format!("{}/config.yml", dir.display());
        let serving = processes()
            .into_iter()
            .filter(|p| p.cmdline.starts_with(REGISTRY_BIN) && p.cmdline.contains(&config));
        for registry in serving {
            signal(registry.pid, "KILL");
        }
        fs::remove_dir_all(&dir).ok();
    }
}
