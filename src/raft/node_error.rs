//! Why a call on a [`RaftNode`](super::RaftNode) failed, and which failures are worth retrying.

use std::path::PathBuf;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::BasicNode;

use super::cluster_config::ClusterConfigError;
use super::db::StoreError;
use super::http_client::PeerClientError;
use super::membership::MembershipError;
use super::types::NodeId;

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
    /// process, corrupted, unreadable or too new a snapshot). Fatal.
    #[error("cannot open raft store in {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// A storage read failed while the node was running.
    #[error("raft store")]
    Store(#[source] StoreError),
    /// The cluster settings are inconsistent. Fatal.
    #[error("invalid cluster config")]
    Config(#[from] ClusterConfigError),
    /// The HTTP client for the other members could not be built (bad TLS material). Fatal.
    #[error("raft network")]
    Network(#[from] PeerClientError),
    /// openraft stopped: a storage error, a log entry it cannot apply, a panic, or a shutdown.
    /// Fatal for this node.
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
    /// The call did not finish within its deadline (a leader cut off from its quorum cannot
    /// commit). For a proposal the outcome is unknown: the entry may still commit later.
    #[error("raft call timed out after {0:?}")]
    Timeout(Duration),
    /// A membership change failed.
    #[error("raft membership")]
    Membership(#[from] MembershipError),
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
        match self {
            RaftNodeError::NotLeader { .. }
            | RaftNodeError::NoLeader(_)
            | RaftNodeError::NoQuorum(_)
            | RaftNodeError::Timeout(_) => true,
            RaftNodeError::Membership(e) => e.is_retryable(),
            _ => false,
        }
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
