//! `berth serve`: the controller process. It owns the Raft node, the Git mirror, one Docker
//! client per host and the status API, and runs two loops while it leads:
//!
//! - sync: every `--poll`, fetch the branch and turn a new head into Raft commands;
//! - reconcile: on every Docker event, every accepted commit and every `--resync`, observe the
//!   hosts, plan against the committed desired state, execute.
//!
//! Triggers carry no payload: a Docker event only says "look again", and the pass reads
//! everything afresh. Effects come only from committed state, and only while this node leads.

pub mod config;
mod events;
pub mod live;
mod reconcile;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, ServeArgs};
pub use live::Live;
pub use sync::error_chain;

use crate::docker::{DockerError, DockerHost};
use crate::raft::{RaftNode, RaftNodeError};
use crate::sync::{SyncError, Syncer};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The data directory cannot be created or written.
    #[error("data directory {path}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `--repo` names a local path that does not exist.
    #[error("repository {path} does not exist (--repo)")]
    NoRepository { path: String },
    /// Git failed; transient failures are retried at the next poll.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Raft refused or failed a proposal (not leader, shutting down, storage).
    #[error(transparent)]
    Raft(#[from] RaftNodeError),
    /// A Docker endpoint is malformed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The status API could not serve.
    #[error("status API")]
    Api(#[source] std::io::Error),
}

/// Shared by the loops and the status API.
pub struct Controller {
    pub config: Config,
    pub raft: RaftNode,
    pub git: Syncer,
    pub hosts: Vec<DockerHost>,
    pub live: RwLock<Live>,
    /// "Reconcile soon": Docker events, accepted commits and the resync timer all ring it.
    pub wake: Notify,
    backoff: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Controller {
    /// Opens the data directory, the Raft node, the Git mirror and the Docker clients. Fails
    /// on what a person must fix (bad flags, unwritable data dir, unreadable repository); a
    /// Git remote or Docker host that is merely down is reported in status and retried.
    pub async fn open(config: Config) -> Result<Arc<Controller>, ControllerError> {
        let data = &config.data_dir;
        let dir_err = |source| ControllerError::DataDir {
            path: data.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data.join("raft")).map_err(dir_err)?;
        let probe = data.join(".berth-write-test");
        std::fs::write(&probe, b"ok").map_err(dir_err)?;
        let _ = std::fs::remove_file(&probe);

        // A remote that is merely down is retried, but a local repository that does not exist
        // is a typo in the settings: say so now rather than poll it forever.
        let local = config.repo.strip_prefix("file://").unwrap_or(&config.repo);
        let is_local = !config.repo.contains("://") || config.repo.starts_with("file://");
        if is_local && !std::path::Path::new(local).exists() {
            return Err(ControllerError::NoRepository {
                path: local.to_string(),
            });
        }
        let git = Syncer::open_or_clone(&config.repo, &config.branch, &data.join("git")).await?;
        match git.fetch().await {
            Ok(head) => {
                tracing::info!(repo = %git.remote(), branch = %git.branch(), %head, "repository reachable")
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    "Git remote unreachable, will retry every poll: {}",
                    error_chain(&e)
                )
            }
            Err(e) => return Err(e.into()),
        }
        let hosts = config
            .nodes
            .iter()
            .map(|n| DockerHost::connect(&n.name, &n.endpoint, config.docker_tls_dir.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let raft = RaftNode::open(1, config.listen.to_string(), &data.join("raft")).await?;
        raft.wait_leader(Duration::from_secs(10)).await?;
        Ok(Arc::new(Controller {
            config,
            raft,
            git,
            hosts,
            live: RwLock::new(Live::default()),
            wake: Notify::new(),
            backoff: Mutex::new(HashMap::new()),
        }))
    }

    /// Serves the status API on `listener` and runs the loops until `shutdown` is cancelled,
    /// then waits for every task to finish.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), ControllerError> {
        let tasks = TaskTracker::new();
        for host in &self.hosts {
            tasks.spawn(events::watch(self.clone(), host.clone(), shutdown.clone()));
        }
        tasks.spawn(self.clone().sync_loop(shutdown.clone()));
        tasks.spawn(self.clone().reconcile_loop(shutdown.clone()));
        let app = crate::api::router(self.clone());
        let api_shutdown = shutdown.clone();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { api_shutdown.cancelled().await })
            .await;
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        // Raft last: the loops may still have been proposing until they ended.
        if let Err(e) = self.raft.stop().await {
            tracing::warn!("raft did not stop cleanly: {}", error_chain(&e));
        }
        served.map_err(ControllerError::Api)
    }

    async fn sync_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.raft.is_leader() {
                continue;
            }
            // Said once per change, not once per poll: a remote down for an hour is one line.
            match self.sync_once().await {
                Ok(()) => {
                    if last_error.take().is_some() {
                        tracing::info!("sync: Git works again");
                    }
                }
                Err(e) => {
                    let msg = error_chain(&e);
                    if last_error.as_ref() != Some(&msg) {
                        tracing::warn!("sync: {msg}");
                        last_error = Some(msg);
                    }
                }
            }
        }
    }

    async fn reconcile_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Backoff retries need a pass when their time comes, events or not.
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
                _ = retry.tick(), if self.backoff_due() => {}
            }
            if !self.raft.is_leader() {
                continue;
            }
            if let Err(e) = self.reconcile_once().await {
                tracing::warn!("reconcile: {}", error_chain(&e));
            }
        }
    }

    fn backoff_due(&self) -> bool {
        !self.backoff.lock().expect("backoff lock").is_empty()
    }
}
