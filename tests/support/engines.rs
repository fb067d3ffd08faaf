//! Real Docker engines for integration tests.
//!
//! berth drives several Docker hosts, so its tests need hosts they own: engines they can
//! fill with containers, stop and bring back, without touching the machine's own engine
//! or the tests running next to them. Each [`Engine`] is a private `dockerd`:
//!
//! ```text
//! /tmp/berth-XXXXXX/                 TempDir, removed on drop; short, as socket paths are
//!                                    limited to ~108 bytes
//!   docker.sock                      endpoint unix:///tmp/berth-XXXXXX/docker.sock
//!   daemon.json dockerd.log dockerd.pid
//!   engine-owner                     the test process's pid, for the sweep of leftovers
//!   data/ exec/                      --data-root, --exec-root: kept across stop()/start()
//! /run/netns/berth-test-<pid>-<n>    network namespace: the engine's eth0, docker0 and
//!                                    iptables rules live in there
//! cgroup /berth-test-<pid>-<n>/<id>  --cgroup-parent, so leftovers are easy to find
//! ```
//!
//! The namespace is joined to the test's own (root) namespace by a veth, like a host on
//! a LAN (see [`super::netns`] for the addressing): the test process reaches containers
//! at their addresses in [`Engine::bridge_subnet`], published ports at
//! [`Engine::advertise_ip`], and the engine and its containers reach the test at
//! [`Engine::host_side_ip`]. Each engine's addresses are its own on the whole machine,
//! so engines of tests running at once never clash, with each other or with the host.
//!
//! The namespace is entered with `nsenter --net`, not `ip netns exec`, which remounts
//! /sys and leaves dockerd without cgroups. `unshare --uts` gives each engine its own
//! host name (the engine's `name`), so `docker info` tells engines apart like real hosts.

use std::fs::{self, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::{Docker, API_DEFAULT_VERSION};
use tempfile::TempDir;

use super::cmd::{on_path, quiet, signal};
use super::leftovers::{
    kill_containers, remove_cgroups, stop_orphaned_engines, Leftovers, OWNER_FILE,
};
use super::netns::{self, create_netns, HostLink, Subnet, LINK_NETWORK};

/// The image every engine holds, built from the host's static busybox by
/// `scripts/docker-engine` (no registry is needed, or reachable, in CI).
pub const TEST_IMAGE: &str = "berth-test/busybox:1";

const SYSTEM_ENDPOINT: &str = "unix:///var/run/docker.sock";
const NO_SYSTEM_ENGINE: &str = "no Docker engine answers on /var/run/docker.sock: run \
    `scripts/docker-engine` (installs docker.io and busybox-static, starts dockerd \
    --storage-driver=vfs, builds the test image)";
const NO_DOCKERD: &str = "`dockerd` is not installed: run `scripts/docker-engine` \
    (installs docker.io and busybox-static, starts dockerd --storage-driver=vfs, builds \
    the test image)";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/docker-engine");
const NETNS_PREFIX: &str = "berth-test-";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bounds each readiness probe, so a half-started engine cannot stall the wait.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);
const REAP_POLL: Duration = Duration::from_millis(20);
/// Seconds dockerd gives containers on shutdown. Test containers (`sleep`, `httpd` as
/// pid 1) ignore SIGTERM, and the default 10 s would hold every stop and drop.
const SHUTDOWN_TIMEOUT_S: u32 = 2;

/// Makes namespace and cgroup names unique among the engines of this test process;
/// the process id in the name separates test processes.
static NEXT_ENGINE: AtomicUsize = AtomicUsize::new(0);

/// Starts `n` private engines at once, named `engine-0`, `engine-1`, ..., each holding
/// [`TEST_IMAGE`]. If one fails, the ones already started are stopped (dropped).
pub async fn start_engines(n: usize) -> Result<Vec<Engine>> {
    futures_util::future::try_join_all((0..n).map(|i| start_engine(format!("engine-{i}")))).await
}

/// Starts one private engine; `name` becomes its host name (a valid RFC 1123 label).
pub async fn start_engine(name: impl Into<String>) -> Result<Engine> {
    Engine::launch(name.into()).await
}

/// Connects to the machine's engine on /var/run/docker.sock, negotiating the API version.
///
/// With `CI=true` a missing engine is a broken CI job, so this panics; elsewhere it
/// returns an error saying how to start one.
pub async fn system_engine() -> Result<Docker> {
    match connect(SYSTEM_ENDPOINT).await {
        Ok(docker) => Ok(docker),
        Err(cause) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true, yet {NO_SYSTEM_ENGINE}; CI must run it before the tests ({cause:#})")
        }
        Err(cause) => Err(cause.context(NO_SYSTEM_ENGINE)),
    }
}

/// A private `dockerd` owned by one test. Dropping it kills its containers, stops
/// dockerd (SIGTERM, SIGKILL after 20 s), kills whatever is left, and removes the
/// engine's namespace, veth, route, cgroups and files, also when the test panics.
///
/// To simulate a host whose engine goes away and comes back: [`Engine::stop`] (graceful)
/// or [`Engine::kill`] (crash), then [`Engine::start`] on the same data root.
pub struct Engine {
    /// Also the engine's host name, as `docker info` reports it.
    pub name: String,
    pub socket: PathBuf,
    /// `unix:///tmp/berth-XXXXXX/docker.sock`, for berth's host configuration.
    pub endpoint: String,
    /// Network namespace and cgroup parent name: `berth-test-<pid>-<n>`.
    id: String,
    root: TempDir,
    /// `None` while stopped.
    process: Option<Child>,
    /// Set by the first successful start; kept while stopped so calls fail like they
    /// would against a host whose engine went away.
    docker: Option<Docker>,
    /// The engine's addresses, veth and route; kept across stop()/start(). Declared
    /// last: it is released once everything else is gone.
    network: HostLink,
}

impl Engine {
    async fn launch(name: String) -> Result<Engine> {
        preflight()?;
        sweep_stale_namespaces();
        let id = format!(
            "{NETNS_PREFIX}{}-{}",
            std::process::id(),
            NEXT_ENGINE.fetch_add(1, Ordering::Relaxed)
        );
        // Under /tmp, never $TMPDIR: the socket paths below must stay short.
        let root = tempfile::Builder::new()
            .prefix("berth-")
            .tempdir_in("/tmp")
            .context("creating the engine's directory under /tmp")?;
        fs::write(root.path().join(OWNER_FILE), std::process::id().to_string())
            .context("writing the engine's owner")?;
        let socket = root.path().join("docker.sock");
        let network = HostLink::lease(&id)?;
        let mut engine = Engine {
            endpoint: format!("unix://{}", socket.display()),
            name,
            socket,
            id,
            root,
            process: None,
            docker: None,
            network,
        };
        create_netns(&engine.id)?;
        engine.network.wire(&engine.id)?;
        write_daemon_config(engine.root.path())?;
        engine.start().await?;
        engine.load_test_image().await?;
        Ok(engine)
    }

    /// A client for this engine. After [`Engine::stop`] it still exists and its calls
    /// fail; [`Engine::start`] replaces it with a fresh one.
    pub fn docker(&self) -> &Docker {
        self.docker
            .as_ref()
            .expect("an Engine is only handed out after it started once")
    }

    /// The process id of the running `dockerd`, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// `/run/netns/<id>`: `nsenter --net=<this>` runs a command where the engine's
    /// dockerd runs, e.g. to see its iptables rules.
    pub fn netns_path(&self) -> PathBuf {
        netns::netns_path(&self.id)
    }

    /// The engine's own address, like a host's IP on its LAN (`10.213.N.2`): its
    /// published ports answer there, to the test process and to `berth serve`.
    pub fn advertise_ip(&self) -> Ipv4Addr {
        self.network.advertise_ip()
    }

    /// The test process's address as the engine sees it (`10.213.N.1`, in the root
    /// namespace): the engine and its containers reach listeners the test opens there,
    /// such as a registry. Other engines reach it too. It exists while the engine does.
    pub fn host_side_ip(&self) -> Ipv4Addr {
        self.network.host_side_ip()
    }

    /// The engine's Docker bridge (`10.214.N.0/24`), where its containers get their
    /// addresses; the test process reaches them there directly, on any port.
    pub fn bridge_subnet(&self) -> Subnet {
        self.network.bridge_subnet()
    }

    /// The last `lines` lines of dockerd's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.root.path().join("dockerd.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts dockerd on this engine's data root and waits until it answers. After a
    /// [`Engine::stop`], containers and images are still there; containers with a
    /// restart policy of `always` or `unless-stopped` run again.
    pub async fn start(&mut self) -> Result<()> {
        if self.process.is_some() {
            bail!("engine {} is already running", self.name);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("dockerd.log"))
            .context("opening dockerd.log")?;
        // nsenter, unshare and sh all exec: the child's pid is dockerd's.
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns_path().display()))
            .args([
                "unshare",
                "--uts",
                "sh",
                "-c",
                r#"hostname "$0" && exec dockerd "$@""#,
                &self.name,
            ])
            .args(self.dockerd_args())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log handle")?)
            .stderr(log)
            .spawn()
            .context("spawning dockerd through nsenter")?;
        self.process = Some(child);
        self.docker = Some(self.wait_ready().await?);
        Ok(())
    }

    /// Stops dockerd the way an operator restarting a host's engine would: SIGTERM, and
    /// dockerd stops every container within its stop timeout (10 s unless the container
    /// sets `stop_timeout`); SIGKILL if dockerd is still there after 20 s. Does nothing
    /// when already stopped. For a quick, brutal stop, see [`Engine::kill`].
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.process.take() else {
            return Ok(());
        };
        signal(child.id(), "TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        // Polling with an async sleep keeps the test's other tasks (say, a reconciler
        // watching this engine) running while the engine shuts down.
        while child.try_wait().context("waiting for dockerd")?.is_none() {
            if Instant::now() >= deadline {
                eprintln!(
                    "engine {}: dockerd ignored SIGTERM for {STOP_TIMEOUT:?}, killing it",
                    self.name
                );
                child.kill().ok();
                child.wait().context("waiting for the killed dockerd")?;
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let leftovers = Leftovers::kill(self.root.path());
        while !leftovers.gone() {
            tokio::time::sleep(REAP_POLL).await;
        }
        leftovers.clear();
        Ok(())
    }

    /// Kills dockerd and everything it runs at once, as a crash or a power cut would;
    /// [`Engine::start`] then finds the containers exited and restarts those whose
    /// policy says so. Does nothing when already stopped.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().ok();
            child.wait().ok();
        }
        let leftovers = Leftovers::kill(self.root.path());
        while !leftovers.gone() {
            tokio::time::sleep(REAP_POLL).await;
        }
        leftovers.clear();
    }

    fn dockerd_args(&self) -> Vec<String> {
        let root = self.root.path().display();
        vec![
            format!("--config-file={root}/daemon.json"),
            format!("--data-root={root}/data"),
            format!("--exec-root={root}/exec"),
            format!("--pidfile={root}/dockerd.pid"),
            format!("--host={}", self.endpoint),
            "--storage-driver=vfs".into(),
            format!("--cgroup-parent=/{}", self.id),
            format!("--shutdown-timeout={SHUTDOWN_TIMEOUT_S}"),
            format!("--bip={}", self.network.bip()),
        ]
    }

    async fn wait_ready(&mut self) -> Result<Docker> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = match self.process.as_mut() {
                Some(child) => child.try_wait().context("checking on dockerd")?,
                None => bail!("engine {} is not running", self.name),
            };
            if let Some(status) = exited {
                self.process = None;
                bail!(
                    "dockerd for {} exited ({status}) before answering; its log ends with:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            let last_error = match connect(&self.endpoint).await {
                Ok(docker) => return Ok(docker),
                Err(error) => error,
            };
            if Instant::now() >= deadline {
                // Leave the engine stopped, so that a later start() may try again.
                self.kill().await;
                let (name, endpoint, log) = (&self.name, &self.endpoint, self.log_tail(30));
                bail!(
                    "dockerd for {name} did not answer on {endpoint} within {READY_TIMEOUT:?} \
                     (last: {last_error:#}); its log ends with:\n{log}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Loads [`TEST_IMAGE`] with the same script that prepares the system engine: one
    /// recipe for the image everywhere, and no system engine needed.
    async fn load_test_image(&self) -> Result<()> {
        let out = tokio::process::Command::new(SCRIPT)
            .args(["--image-only", "--host", &self.endpoint])
            .output()
            .await
            .with_context(|| format!("running {SCRIPT}"))?;
        if !out.status.success() {
            bail!(
                "{SCRIPT} --image-only failed for {} ({}):\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) {
                // Everything is thrown away, so containers get no grace: their stop
                // timeouts would hold up every test. Killing them while dockerd shuts down
                // (again at each poll, in case one was restarted before dockerd saw the
                // SIGTERM) lets dockerd, containerd and the shims still exit cleanly.
                kill_containers(self.root.path());
                if Instant::now() >= deadline {
                    child.kill().ok();
                    child.wait().ok();
                    break;
                }
                std::thread::sleep(POLL);
            }
        }
        let leftovers = Leftovers::kill(self.root.path());
        while !leftovers.gone() {
            std::thread::sleep(REAP_POLL);
        }
        leftovers.clear();
        remove_cgroups(&self.id);
        quiet(Command::new("ip").args(["netns", "delete", &self.id]));
        // The TempDir field, dropped next, removes the files; the network field, dropped
        // last, removes the veth and route and releases the engine's addresses.
    }
}

/// Connects to `endpoint` and checks that an engine answers, within [`PROBE_TIMEOUT`].
async fn connect(endpoint: &str) -> Result<Docker> {
    // 120 s per request, bollard's default: probes carry their own, shorter, timeouts.
    let docker = Docker::connect_with_unix(endpoint, 120, API_DEFAULT_VERSION)
        .with_context(|| format!("connecting to {endpoint}"))?;
    tokio::time::timeout(PROBE_TIMEOUT, docker.ping())
        .await
        .map_err(|_| anyhow!("no answer to ping within {PROBE_TIMEOUT:?}"))?
        .with_context(|| format!("pinging {endpoint}"))?;
    // bollard speaks API 1.53 by default; Debian 12's dockerd 20.10 stops at 1.41.
    tokio::time::timeout(PROBE_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| anyhow!("no answer to /version within {PROBE_TIMEOUT:?}"))?
        .with_context(|| format!("negotiating the API version with {endpoint}"))
}

fn preflight() -> Result<()> {
    if !on_path("dockerd") {
        bail!(NO_DOCKERD);
    }
    for (tool, package) in [
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("docker", "docker.io"),
    ] {
        if !on_path(tool) {
            bail!("`{tool}` is not installed (Debian package {package}); private engines need it");
        }
    }
    Ok(())
}

/// Removes engines left by test processes that died without dropping them (SIGKILL,
/// Ctrl-C): their dockerds and containers, files, namespaces, cgroups, veths and routes.
/// Those of live processes are left alone.
fn sweep_stale_namespaces() {
    stop_orphaned_engines();
    netns::sweep_stale_slots();
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix(NETNS_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if owner.parse::<u32>().is_ok() && !Path::new("/proc").join(owner).exists() {
            quiet(Command::new("ip").args(["netns", "delete", &name]));
            remove_cgroups(&name);
        }
    }
}

/// Writes the engine's daemon.json:
/// - `insecure-registries`: every engine's host side ([`LINK_NETWORK`]), so engines pull
///   from and push to a test registry there over plain HTTP (see [`super::registry`]);
/// - `deprecated-key-path`: dockerd before 23 derives its engine ID from
///   /etc/docker/key.json, shared by every engine on the machine; a key of its own gives
///   each engine its own ID, as real hosts have. Later versions keep the ID in the data
///   root and reject the key.
fn write_daemon_config(root: &Path) -> Result<()> {
    let out = Command::new("dockerd")
        .arg("--version")
        .output()
        .context("running `dockerd --version`")?;
    let version = String::from_utf8_lossy(&out.stdout);
    let major: u32 = version
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut config = serde_json::json!({ "insecure-registries": [LINK_NETWORK.to_string()] });
    if major < 23 {
        config["deprecated-key-path"] = root.join("key.json").display().to_string().into();
    }
    fs::write(root.join("daemon.json"), config.to_string()).context("writing daemon.json")
}
