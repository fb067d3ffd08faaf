//! `berth serve`: the controller process. It owns the Raft node, the Git mirror, a cached view
//! of every Docker host and the status API, and while it leads, runs the keyed engine:
//!
//! ```text
//! sync loop (every --poll)   Git ─► Seen, Accept/Reject ─────────────┐
//!                                                                   ▼
//! Raft applies ─► desired pods re-indexed ─► changed keys ─► engine queue ◄─ Docker events
//!                                                                   │      ◄─ probe changes
//!   Key::Pod(ns/name)   plan one step, do it (pull, create, stop...)│      ◄─ resync, retries
//!   Key::Rc(ns/name)    rollout decision ─► Raft (Replicas, RolloutState)
//!   Key::Converge       convergence ─► Raft (Converged, Failed, Rollback)
//! ```
//!
//! Triggers carry no payload: an event only says "look at this key again", and the work reads
//! everything afresh. Effects come only from committed state, and only while this node leads.
//! No key waits for another: a pull or a graceful stop of one pod never delays healing another.

pub mod config;
mod converge;
mod desired_index;
mod drain;
mod forward;
mod host_loss;
pub mod live;
pub mod node_config;
mod placement;
mod pod_book;
mod pod_status;
mod pods;
mod rollouts;
pub mod service_args;
mod services;
pub mod settings;
mod settled;
mod sync;
mod triggers;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, OnFailure, ServeArgs};
pub use live::Live;
pub use pod_book::PodStatus;
pub use services::ServiceRuntime;
pub use sync::error_chain;

use desired_index::DesiredIndex;
use pod_book::PodBook;

use crate::docker::{DockerError, DockerHost, HostCache, PodIndex};
use crate::engine::{Next, Runner, Worker};
use crate::probe::Probes;
use crate::raft::{RaftNode, RaftNodeError};
use crate::reconcile;
use crate::sync::{SyncError, Syncer};

/// Keys worked on at once. Every step is one short Docker request (no call waits out a grace
/// period), so this bounds load on the engines, not latency: a slow pull holds one key.
const CONCURRENT_KEYS: usize = 32;
/// Convergence is checked this long after the last pod change: a burst of changes, one check.
const CONVERGE_DEBOUNCE: Duration = Duration::from_millis(100);
/// A push into a watched local repository touches its refs several times: one fetch.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(150);
/// The Git mirror is compacted a while after start, then daily.
const COMPACT_FIRST: Duration = Duration::from_secs(600);
const COMPACT_EVERY: Duration = Duration::from_secs(24 * 3600);

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
    /// The state machine refused a command (it was computed against a state that changed
    /// meanwhile); the next pass computes it again.
    #[error("{what}: refused by the replicated state (it changed meanwhile)")]
    Refused { what: String },
    /// A Docker endpoint is malformed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The status API could not serve.
    #[error("status API")]
    Api(#[source] std::io::Error),
}

/// What the engine works on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// One pod instance, `namespace/name`.
    Pod(String),
    /// One ReplicationController's rollout, `namespace/name`.
    Rc(String),
    /// The desired commit's convergence.
    Converge,
    /// Pending pods: placed where room has appeared.
    Pending,
    /// Hosts lost (`NotReady`, or removed from the configuration): move their RC replicas.
    Hosts,
}

/// Shared by the loops, the engine and the status API.
pub struct Controller {
    pub config: Config,
    pub raft: RaftNode,
    pub git: Syncer,
    /// One cached view per configured host, in configuration order.
    pub hosts: Vec<HostCache>,
    pub live: RwLock<Live>,
    /// Per pod: the engine's memory and the status shown.
    pub book: PodBook,
    pub probes: Probes,
    runner: Arc<Runner<Key>>,
    desired: RwLock<Arc<DesiredIndex>>,
    /// Plan lines not yet recorded, per commit, and those already proposed.
    progress: Mutex<triggers::Progress>,
    /// Rung by webhooks and the local repository watch: fetch now.
    sync_now: Notify,
    /// What asked for the next fetch (a webhook, the watch), recorded with the head it finds.
    pending_trigger: Mutex<Option<crate::raft::state::Trigger>>,
    /// On a follower: a webhook to pass on to the leader (see `forward.rs`).
    pending_forward: Mutex<Option<crate::raft::state::Trigger>>,
    forward_now: Notify,
    /// Talks to the other members (forwarded webhooks), with the cluster token.
    peers: crate::raft::PeerClient,
    /// This member's settings (from its flags), and whether they are the cluster's.
    local_settings: crate::raft::state::SettingValues,
    settings_agree: std::sync::atomic::AtomicBool,
    /// Held while a placement is computed and proposed (see `placement.rs`).
    placer: tokio::sync::Mutex<placement::Placer>,
    /// Placement decisions waiting for the placement lock: the next batch.
    to_place: Mutex<Vec<placement::Request>>,
    /// The Service proxy, the cluster IPs' interface, drains.
    pub services: services::ServiceRuntime,
    /// Replica moves off lost hosts, rate limited.
    moves: Mutex<host_loss::MoveBudget>,
    /// Which hosts hold containers of each pod (kept by the hosts' watchers).
    pod_index: Arc<PodIndex>,
    /// Position of each host in `hosts`, by name.
    by_name: std::collections::HashMap<String, usize>,
    /// Hosts already reported `NotReady`.
    lost_hosts: Mutex<std::collections::BTreeSet<String>>,
    /// What the last resync found all settled on (see `settled.rs`).
    quiet: settled::Quiet,
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
        // The data directory holds the replicated state (manifests, env values) and the Git
        // mirror: readable by this user alone, whatever the umask.
        std::fs::create_dir_all(data.join("raft")).map_err(dir_err)?;
        private(data).map_err(dir_err)?;
        let probe = data.join(".berth-write-test");
        std::fs::write(&probe, b"ok").map_err(dir_err)?;
        let _ = std::fs::remove_file(&probe);

        // A remote that is merely down is retried, but a local repository that does not exist
        // is a typo in the settings: say so now rather than poll it forever.
        if let Some(local) = crate::sync::local_repository(&config.repo) {
            if !local.exists() {
                return Err(ControllerError::NoRepository {
                    path: local.display().to_string(),
                });
            }
        }
        let git = Syncer::open_with(
            &config.repo,
            &config.branch,
            &data.join("git"),
            config.fetch.clone(),
        )
        .await?;
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
        let pod_index: Arc<PodIndex> = Arc::default();
        let inspecting = crate::docker::watch::inspect_permits();
        let hosts = config
            .nodes
            .iter()
            .map(|n| {
                DockerHost::connect(&n.name, &n.endpoint, config.docker_tls_dir.as_deref()).map(
                    |h| {
                        HostCache::indexed(
                            h.for_cluster(&config.cluster.cluster_name)
                                .advertised_at(n.advertise.clone()),
                            pod_index.clone(),
                            inspecting.clone(),
                        )
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let by_name = hosts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.host().name().to_string(), i))
            .collect();
        let raft = RaftNode::open_cluster(config.cluster.clone(), &data.join("raft")).await?;
        if !config.cluster.has_peers() {
            // Alone, this member elects itself at once; with peers, the others may not be up
            // yet, and the status API serves meanwhile (saying there is no leader).
            raft.wait_leader(Duration::from_secs(10)).await?;
        }
        let peers = crate::raft::PeerClient::new(
            config.cluster.token.clone(),
            config.cluster.tls.as_ref(),
            config.cluster.election_timeout,
        )
        .map_err(|e| ControllerError::Raft(e.into()))?;
        let runner: Arc<Runner<Key>> = Arc::default();
        let probe_runner = runner.clone();
        let probes = Probes::new(move |pod| probe_runner.enqueue(Key::Pod(pod), Duration::ZERO));
        let index = raft.state().read(DesiredIndex::of);
        let local_settings = settings::local_values(&config);
        let services = services::ServiceRuntime::new(&config.services);
        Ok(Arc::new(Controller {
            config,
            raft,
            git,
            hosts,
            live: RwLock::new(Live::default()),
            book: PodBook::default(),
            probes,
            runner,
            desired: RwLock::new(Arc::new(index)),
            progress: Mutex::new(triggers::Progress::default()),
            sync_now: Notify::new(),
            pending_trigger: Mutex::new(None),
            pending_forward: Mutex::new(None),
            forward_now: Notify::new(),
            peers,
            local_settings,
            settings_agree: std::sync::atomic::AtomicBool::new(false),
            placer: tokio::sync::Mutex::new(placement::Placer::default()),
            to_place: Mutex::default(),
            services,
            moves: Mutex::default(),
            pod_index,
            by_name,
            lost_hosts: Mutex::default(),
            quiet: settled::Quiet::default(),
        }))
    }

    /// Serves the status API on `listener` (and Raft with it, or on `raft_listener` for
    /// `--raft-listen`) and runs the loops until `shutdown` is cancelled, then waits for every
    /// task to finish.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        raft_listener: Option<TcpListener>,
        shutdown: CancellationToken,
    ) -> Result<(), ControllerError> {
        let tasks = TaskTracker::new();
        let (touched_tx, touched_rx) = tokio::sync::mpsc::unbounded_channel();
        let count = self.hosts.len().max(1) as u32;
        for (i, cache) in self.hosts.iter().enumerate() {
            // Full looks of the hosts are spread over the resync period.
            let offset = self.config.resync / count * i as u32;
            tasks.spawn(cache.clone().watch(
                self.config.resync,
                offset,
                crate::docker::watch::retry_cap(self.config.node_grace),
                touched_tx.clone(),
                shutdown.clone(),
            ));
        }
        drop(touched_tx);
        tasks.spawn(self.clone().dispatch(touched_rx, shutdown.clone()));
        tasks.spawn(self.clone().follow_state(shutdown.clone()));
        tasks.spawn(self.clone().resync_loop(shutdown.clone()));
        tasks.spawn(self.clone().sync_loop(shutdown.clone()));
        tasks.spawn(self.clone().progress_loop(shutdown.clone()));
        tasks.spawn(self.clone().forward_loop(shutdown.clone()));
        tasks.spawn(self.clone().quorum_watch(shutdown.clone()));
        tasks.spawn(self.clone().settings_loop(shutdown.clone()));
        tasks.spawn(self.clone().services_loop(shutdown.clone()));
        tasks.spawn(self.clone().run_proxy(shutdown.clone()));
        tasks.spawn(
            self.runner
                .clone()
                .run(self.clone(), CONCURRENT_KEYS, shutdown.clone()),
        );
        let mut app = crate::api::router(self.clone());
        if let Some(secrets) = &self.config.webhooks {
            let hooks = crate::webhook::WebhookConfig::new(secrets.clone(), &self.config.branch)
                .with_repo_urls([self.config.repo.clone()]);
            app = app.merge(crate::webhook::router(Arc::new(hooks), self.clone()));
        }
        let raft_routes = crate::raft::raft_router_with(
            &self.raft,
            self.config.cluster.token.clone(),
            forward::routes(self.clone()).merge(settings::routes(self.clone())),
        );
        match raft_listener {
            None => app = app.merge(raft_routes),
            Some(raft_listener) => {
                let stop = shutdown.clone();
                let tls = self.config.cluster.tls.clone();
                tasks.spawn(async move {
                    let done = async move { stop.cancelled().await };
                    let served = match tls {
                        Some(tls) => {
                            crate::raft::serve_raft_tls(raft_listener, raft_routes, &tls, done)
                                .await
                                .map_err(|e| error_chain(&e))
                        }
                        None => crate::raft::serve_raft(raft_listener, raft_routes, done)
                            .await
                            .map_err(|e| e.to_string()),
                    };
                    if let Err(e) = served {
                        tracing::error!("raft listener: {e}");
                    }
                });
            }
        }
        let api_shutdown = shutdown.clone();
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { api_shutdown.cancelled().await })
        .await;
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        self.probes.clear();
        // Raft last: the loops may still have been proposing until they ended.
        if let Err(e) = self.raft.stop().await {
            tracing::warn!("raft did not stop cleanly: {}", error_chain(&e));
        }
        served.map_err(ControllerError::Api)
    }

    /// The desired pods of the committed state, as last indexed.
    fn desired(&self) -> Arc<DesiredIndex> {
        self.desired.read().expect("desired lock").clone()
    }

    /// The desired instance of the pod `key`, if any. Its own handle: holding the index across
    /// a step would make the next applied entry copy all of it (see `follow_state`).
    fn desired_pod(&self, key: &str) -> Option<Arc<reconcile::DesiredPod>> {
        self.desired
            .read()
            .expect("desired lock")
            .pods
            .get(key)
            .cloned()
    }

    /// Every pod key desired or seen on a host.
    fn all_pod_keys(&self) -> Vec<String> {
        let index = self.desired();
        let mut keys: Vec<String> = index.pods.keys().cloned().collect();
        self.pod_index.read(|observed| {
            keys.extend(
                observed
                    .keys()
                    .filter(|k| !index.pods.contains_key(*k))
                    .cloned(),
            )
        });
        keys.sort_unstable();
        keys
    }

    /// Asks the engine to look at everything, settled or not; returns how many keys that is.
    fn enqueue_all(&self) -> usize {
        let pods = self.all_pod_keys();
        let index = self.desired();
        let keys = pods.len() + index.rcs.len() + 3;
        for key in pods {
            self.runner.enqueue(Key::Pod(key), Duration::ZERO);
        }
        self.enqueue_others(&index, true);
        keys
    }

    /// The status of every pod instance known, by key.
    pub fn pod_statuses(&self) -> BTreeMap<String, PodStatus> {
        self.all_pod_keys()
            .into_iter()
            .filter_map(|k| self.book.status(&k).map(|s| (k, s)))
            .collect()
    }

    /// Fetches on every `--poll`, and at once when a webhook or the watch of a local
    /// repository says the branch moved; compacts the mirror now and then.
    async fn sync_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut compact =
            tokio::time::interval_at(tokio::time::Instant::now() + COMPACT_FIRST, COMPACT_EVERY);
        compact.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = crate::sync::local_repository(&self.config.repo).and_then(|path| {
            match crate::sync::RefWatcher::new(&path, &self.config.branch, WATCH_DEBOUNCE) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(
                        "cannot watch {}, polling only: {}",
                        path.display(),
                        error_chain(&e)
                    );
                    None
                }
            }
        });
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.sync_now.notified() => {}
                _ = compact.tick() => {
                    self.compact_mirror().await;
                    continue;
                }
                moved = next_change(&mut watch) => {
                    if moved {
                        self.set_trigger(crate::raft::state::Trigger::Watch);
                    } else {
                        tracing::warn!("the repository watch ended; polling only");
                        watch = None;
                    }
                }
            }
            if !self.acting() {
                continue;
            }
            // Said once per change, not once per poll: a remote down for an hour is one line.
            match self.sync_once(&shutdown).await {
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
}

/// Makes `dir` and everything under it readable by the owner alone (0700 directories, 0600
/// files), so a data directory made by an older berth or by hand is tightened too.
fn private(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o777;
    let want = if meta.is_dir() {
        mode & 0o700
    } else {
        mode & 0o600
    };
    if mode != want {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(want))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            private(&entry?.path())?;
        }
    }
    Ok(())
}

/// The next change the watch of a local repository reports (never, without one).
async fn next_change(watch: &mut Option<crate::sync::RefWatcher>) -> bool {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// A push webhook, verified: look at the branch now, and remember who asked.
impl crate::webhook::SyncTrigger for Controller {
    fn look_now(&self, trigger: crate::webhook::Trigger) {
        self.trigger_sync(crate::raft::state::Trigger::Webhook {
            provider: trigger.provider.name().to_string(),
            delivery: trigger.delivery,
        });
    }
}

impl Controller {
    fn set_trigger(&self, trigger: crate::raft::state::Trigger) {
        *self.pending_trigger.lock().expect("trigger lock") = Some(trigger);
    }

    /// Compacts the Git mirror, keeping the commits the state still names.
    async fn compact_mirror(&self) {
        let keep: Vec<crate::sync::CommitId> = self.raft.state().read(|s| {
            [
                s.desired_commit.clone(),
                s.last_converged.clone(),
                s.last_head.clone(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|sha| crate::sync::CommitId::parse(&sha).ok())
            .collect()
        });
        let options = crate::sync::CompactOptions {
            keep,
            ..Default::default()
        };
        match self.git.compact(options).await {
            Ok(c) => tracing::info!(
                before = c.bytes_before,
                after = c.bytes_after,
                "Git mirror compacted"
            ),
            Err(e) => tracing::warn!("compacting the Git mirror: {}", error_chain(&e)),
        }
    }
}

impl Worker for Controller {
    type Key = Key;

    async fn work(self: Arc<Self>, key: Key) -> Next {
        // Only the leader acts; a new leader looks at everything when it takes over. A leader
        // waiting for its quorum to answer (or for its settings to be the cluster's) keeps the
        // key: it may yet act on it.
        if !self.acting() {
            return if self.raft.leader_facts().raft_leader {
                Next::after(self.config.cluster.heartbeat * 5)
            } else {
                Next::Idle
            };
        }
        match key {
            Key::Pod(k) => self.work_pod(&k).await,
            Key::Rc(k) => self.work_rc(&k).await,
            Key::Converge => self.work_converge().await,
            Key::Pending => self.work_pending().await,
            Key::Hosts => self.work_hosts().await,
        }
    }
}
