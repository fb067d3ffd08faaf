//! Starting and stopping the simulator: its hosts, their sockets and the control socket.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::control;
use super::engine::images::{normalise, TEST_IMAGE};
use super::engine::{Engine, HostInfo, Image};
use super::host::{Host, Shared};
use super::listen::{bind, serve_host};

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where the sockets go: `host-0000.sock`, ..., and `control.sock`.
    pub dir: PathBuf,
    pub hosts: usize,
    /// What every host reports at first (each can be changed later).
    pub info: HostInfo,
    /// How long a pull takes.
    pub pull_delay: Duration,
    /// The first delay of a restart policy's backoff (Docker: 100 ms).
    pub restart_base: Duration,
    /// Images the simulated registry has, besides [`TEST_IMAGE`].
    pub registry: Vec<String>,
}

impl SimConfig {
    pub fn new(dir: impl Into<PathBuf>, hosts: usize) -> SimConfig {
        SimConfig {
            dir: dir.into(),
            hosts,
            info: HostInfo::default(),
            pull_delay: Duration::ZERO,
            restart_base: Duration::from_millis(100),
            registry: Vec::new(),
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The socket directory could not be made.
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be bound (path too long, no file descriptors left, ...).
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running simulator.
pub struct Sim {
    hosts: Arc<[Arc<Host>]>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

/// `host-0042`: at least four digits, more when there are more hosts.
pub fn host_name(index: usize, hosts: usize) -> String {
    let width = hosts.saturating_sub(1).to_string().len().max(4);
    format!("host-{index:0width$}")
}

impl Sim {
    /// Binds every socket, then serves them: once this returns, every host answers.
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| SimError::Dir {
            path: config.dir.clone(),
            source,
        })?;
        let test_image = Arc::new(Image::registry(TEST_IMAGE));
        let mut registry = HashMap::from([(normalise(TEST_IMAGE), test_image.clone())]);
        for reference in &config.registry {
            registry.insert(normalise(reference), Arc::new(Image::registry(reference)));
        }
        let shared = Arc::new(Shared {
            registry: RwLock::new(registry),
            pull_delay: RwLock::new(config.pull_delay),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        let info = Arc::new(config.info.clone());
        let restart_ms = config.restart_base.as_millis() as u64;
        let mut hosts = Vec::with_capacity(config.hosts);
        let mut listeners = Vec::with_capacity(config.hosts);
        for index in 0..config.hosts {
            let name = host_name(index, config.hosts);
            let socket = config.dir.join(format!("{name}.sock"));
            let listener = bind(&socket).map_err(|source| SimError::Bind {
                path: socket.clone(),
                source,
            })?;
            let engine = Engine::new(
                index as u32,
                info.clone(),
                vec![test_image.clone()],
                restart_ms,
            );
            hosts.push(Arc::new(Host::new(name, socket, engine, shared.clone())));
            listeners.push(listener);
        }
        let hosts: Arc<[Arc<Host>]> = hosts.into();
        for (host, listener) in hosts.iter().zip(listeners) {
            shared
                .tracker
                .spawn(serve_host(host.clone(), Some(listener)));
        }
        let control_path = config.dir.join("control.sock");
        let control = bind(&control_path).map_err(|source| SimError::Bind {
            path: control_path,
            source,
        })?;
        shared
            .tracker
            .spawn(control::serve(control, hosts.clone(), shared.clone()));
        Ok(Sim {
            hosts,
            shared,
            dir: config.dir,
        })
    }

    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    pub fn host(&self, index: usize) -> &Arc<Host> {
        &self.hosts[index]
    }

    /// `unix:///.../host-0042.sock`, as berth's `--node NAME=ENDPOINT` takes it.
    pub fn endpoint(&self, index: usize) -> String {
        format!("unix://{}", self.hosts[index].socket.display())
    }

    /// The control interface's socket (`curl --unix-socket <it> http://sim/stats`).
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// Stops serving: cuts every connection, waits for every task, removes the sockets.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
        let _ = std::fs::remove_file(self.control_socket());
    }
}
