//! A running Raft node: the stores in the data directory, openraft on top, and the few calls the
//! rest of berth needs (propose, read the committed state, who leads).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, Config, ConfigError, ServerState, SnapshotPolicy};

use super::db::{StoreError, Stores, StoresClosed};
use super::log_store::LogStore;
use super::network::NoNetwork;
use super::state::{Command, Response};
use super::state_machine::StateHandle;
use super::types::{NodeId, Raft};

/// Heartbeats on a LAN: a lost one or two do not start an election.
const HEARTBEAT_MS: u64 = 250;
/// A follower waits 1–2 s without heartbeat before standing for election.
const ELECTION_MIN_MS: u64 = 1_000;
const ELECTION_MAX_MS: u64 = 2_000;
/// A snapshot every 1000 entries bounds both the log and the replay at start-up.
const SNAPSHOT_EVERY: u64 = 1_000;
/// Entries kept behind the snapshot, so a follower slightly behind catches up from the log
/// rather than by receiving the whole snapshot.
const KEEP_BEHIND_SNAPSHOT: u64 = 100;
/// How long `shutdown` waits for openraft's tasks to release the database.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a Raft node call failed.
#[derive(Debug, thiserror::Error)]
pub enum RaftNodeError {
    /// The data directory could not be created. Fatal.
    #[error("cannot create raft data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database in the data directory could not be opened or read (in use by another
    /// process, corrupted, unreadable snapshot). Fatal.
    #[error("cannot open raft store in {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// A storage read failed while the node was running.
    #[error("raft store")]
    Store(#[source] StoreError),
    /// The Raft settings are inconsistent (a bug in berth).
    #[error("invalid raft config")]
    Config(#[source] Box<ConfigError>),
    /// openraft stopped: a storage error, a panic, or a shutdown. Fatal for this node.
    #[error("raft stopped")]
    Fatal(#[source] Box<Fatal<NodeId>>),
    /// Initialising the single-voter cluster was refused.
    #[error("cannot initialise the raft cluster")]
    Initialize(#[source] InitializeError<NodeId, BasicNode>),
    /// This node is not the leader: retry on `leader` (unknown while an election runs).
    #[error("not the raft leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// The write was refused for another reason (a membership change in progress).
    #[error("raft write refused")]
    Write(#[source] ClientWriteError<NodeId, BasicNode>),
    /// The leader could not confirm its leadership with a quorum: retry later.
    #[error("raft leadership not confirmed by a quorum")]
    NoQuorum(#[source] CheckIsLeaderError<NodeId, BasicNode>),
    /// No leader became known within the wait: retry later.
    #[error("no raft leader after {0:?}")]
    NoLeader(Duration),
    /// The Raft task panicked or was cancelled while shutting down.
    #[error("raft task failed during shutdown")]
    Shutdown(#[source] tokio::task::JoinError),
    /// openraft's tasks still held the database after the wait (a bug: a leaked store handle).
    #[error("raft database still open {0:?} after shutdown")]
    StillOpen(Duration),
}

impl RaftNodeError {
    /// True for errors that may go away by retrying later (or on the leader).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RaftNodeError::NotLeader { .. }
                | RaftNodeError::NoLeader(_)
                | RaftNodeError::NoQuorum(_)
        )
    }
}

impl<E> From<RaftError<NodeId, E>> for RaftNodeError
where
    E: Into<RaftNodeError> + std::error::Error,
{
    fn from(e: RaftError<NodeId, E>) -> Self {
        match e {
            RaftError::APIError(e) => e.into(),
            RaftError::Fatal(f) => f.into(),
        }
    }
}

impl From<Fatal<NodeId>> for RaftNodeError {
    fn from(f: Fatal<NodeId>) -> Self {
        RaftNodeError::Fatal(Box::new(f))
    }
}

impl From<ClientWriteError<NodeId, BasicNode>> for RaftNodeError {
    fn from(e: ClientWriteError<NodeId, BasicNode>) -> Self {
        match e {
            ClientWriteError::ForwardToLeader(f) => RaftNodeError::NotLeader {
                leader: f.leader_id,
            },
            other => RaftNodeError::Write(other),
        }
    }
}

impl From<CheckIsLeaderError<NodeId, BasicNode>> for RaftNodeError {
    fn from(e: CheckIsLeaderError<NodeId, BasicNode>) -> Self {
        match e {
            CheckIsLeaderError::ForwardToLeader(f) => RaftNodeError::NotLeader {
                leader: f.leader_id,
            },
            other => RaftNodeError::NoQuorum(other),
        }
    }
}

impl From<InitializeError<NodeId, BasicNode>> for RaftNodeError {
    fn from(e: InitializeError<NodeId, BasicNode>) -> Self {
        RaftNodeError::Initialize(e)
    }
}

/// The Raft settings berth runs with.
pub fn raft_config() -> Result<Config, RaftNodeError> {
    Config {
        cluster_name: "berth".to_string(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_MIN_MS,
        election_timeout_max: ELECTION_MAX_MS,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY),
        max_in_snapshot_log_to_keep: KEEP_BEHIND_SNAPSHOT,
        ..Config::default()
    }
    .validate()
    .map_err(|e| RaftNodeError::Config(Box::new(e)))
}

/// One controller's Raft: the replicated log in `<data_dir>/raft.redb` and the committed
/// [`ClusterState`](super::state::ClusterState) in memory.
///
/// Stop it with [`RaftNode::shutdown`]. Dropping it also stops Raft, but in the background: the
/// directory cannot be opened again in this process until openraft's tasks have ended.
pub struct RaftNode {
    id: NodeId,
    raft: Raft,
    state: StateHandle,
    log: LogStore,
    closed: StoresClosed,
}

impl RaftNode {
    /// Opens the stores in `data_dir` (created if missing) and starts Raft. A node whose stores
    /// hold no membership yet initialises a cluster with itself as the only voter, reachable at
    /// `addr`; a node reopened on its directory keeps its log, vote and membership.
    ///
    /// Returns before a leader is known: see [`RaftNode::wait_leader`].
    pub async fn open(
        id: NodeId,
        addr: String,
        data_dir: &Path,
    ) -> Result<RaftNode, RaftNodeError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| RaftNodeError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let stores = Stores::open(data_dir)
            .await
            .map_err(|source| RaftNodeError::Open {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let state = stores.state_machine.state_handle();
        let config = Arc::new(raft_config()?);
        let raft = Raft::new(
            id,
            config,
            NoNetwork,
            stores.log.clone(),
            stores.state_machine,
        )
        .await?;
        let node = RaftNode {
            id,
            raft,
            state,
            log: stores.log,
            closed: stores.closed,
        };
        if !node.raft.is_initialized().await? {
            tracing::info!(id, %addr, "initialising a single-voter raft cluster");
            let members = BTreeMap::from([(id, BasicNode { addr })]);
            if let Err(e) = node.raft.initialize(members).await {
                // Release the database before reporting, so the caller may retry the open.
                let _ = node.shutdown().await;
                return Err(e.into());
            }
        }
        Ok(node)
    }

    /// Appends `cmd` to the log and returns what `apply` answered once it is committed and
    /// applied. Only the leader accepts writes: elsewhere this fails with
    /// [`RaftNodeError::NotLeader`].
    pub async fn propose(&self, cmd: Command) -> Result<Response, RaftNodeError> {
        Ok(self.raft.client_write(cmd).await?.data)
    }

    /// The committed state. Cheap to clone; reads always see the latest applied entries.
    pub fn state(&self) -> StateHandle {
        self.state.clone()
    }

    /// True while this node is the leader, as openraft last reported.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Waits until a leader is known and returns its id. When that is this node, also waits
    /// until its state includes every committed entry (see [`RaftNode::ensure_linearizable`]):
    /// after a restart the last entries of the log are committed and applied again only once
    /// Raft runs, so `state()` may lag the log for a moment after `open`.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<NodeId, RaftNodeError> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| match e {
                WaitError::Timeout(..) => RaftNodeError::NoLeader(timeout),
                WaitError::ShuttingDown => Fatal::Stopped.into(),
            })?;
        let leader = metrics
            .current_leader
            .ok_or(RaftNodeError::NoLeader(timeout))?;
        if leader == self.id {
            tokio::time::timeout(timeout, self.ensure_linearizable())
                .await
                .map_err(|_| RaftNodeError::NoLeader(timeout))??;
        }
        Ok(leader)
    }

    /// On the leader: confirms leadership with a quorum and waits until every entry committed
    /// before the call is applied, so the next `state()` read is up to date. Elsewhere: fails
    /// with [`RaftNodeError::NotLeader`]. Call it before acting on the state as leader.
    pub async fn ensure_linearizable(&self) -> Result<(), RaftNodeError> {
        self.raft.ensure_linearizable().await?;
        Ok(())
    }

    /// (current term, last log index, last applied index), as openraft reports them.
    pub fn progress(&self) -> (u64, Option<u64>, Option<u64>) {
        let m = self.raft.metrics().borrow().clone();
        (
            m.current_term,
            m.last_log_index,
            m.last_applied.map(|l| l.index),
        )
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The openraft handle, for the RPC handlers of the network and for membership changes.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Number of entries kept in the log: bounded by the snapshot policy, not by history.
    pub async fn log_len(&self) -> Result<u64, RaftNodeError> {
        self.log.len().await.map_err(RaftNodeError::Store)
    }

    /// Stops openraft's tasks and waits for them, for a caller that shares the node (the
    /// controller holds it in an `Arc`): without it, the core task outlives the handle at
    /// process exit and logs an error about its closed metrics channel. Idempotent.
    pub async fn stop(&self) -> Result<(), RaftNodeError> {
        self.raft.shutdown().await.map_err(RaftNodeError::Shutdown)
    }

    /// Stops Raft and waits until the database file is closed, so the directory can be opened
    /// again at once (in this process or another).
    pub async fn shutdown(self) -> Result<(), RaftNodeError> {
        let RaftNode {
            raft, log, closed, ..
        } = self;
        let stopped = raft.shutdown().await;
        drop(log);
        drop(raft);
        stopped.map_err(RaftNodeError::Shutdown)?;
        // openraft's state machine worker and snapshot task end shortly after the core does;
        // they hold the database until then.
        tokio::time::timeout(CLOSE_TIMEOUT, closed.wait())
            .await
            .map_err(|_| RaftNodeError::StillOpen(CLOSE_TIMEOUT))
    }
}
