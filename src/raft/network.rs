//! The Raft network: how a leader reaches the other voters.
//!
//! For now berth runs a single-voter cluster, where openraft never sends an RPC: there is no
//! peer to replicate to or ask for a vote. [`NoNetwork`] makes that explicit: any RPC fails as
//! `Unreachable` with a message saying why, instead of hanging or pretending to succeed.
//!
//! Replacing it: the HTTP network implements `RaftNetworkFactory<TypeConfig>` the same way (one
//! client per target, built from the peer's `BasicNode::addr`) and `RaftNode::open` passes it
//! instead of `NoNetwork`. Nothing else changes: the stores, the state machine and the log
//! format do not depend on the transport.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};

use super::types::{NodeId, TypeConfig};

/// Why an RPC could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("no Raft network yet: single-voter cluster (cannot reach node {target} at {addr:?})")]
pub struct NoNetworkError {
    pub target: NodeId,
    pub addr: String,
}

/// The network of a single-voter cluster: it has no peers.
#[derive(Debug, Clone, Default)]
pub struct NoNetwork;

/// The "client" for one peer, which fails every call.
#[derive(Debug, Clone)]
pub struct NoConnection {
    target: NodeId,
    addr: String,
}

impl NoConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Unreachable(Unreachable::new(&NoNetworkError {
            target: self.target,
            addr: self.addr.clone(),
        }))
    }
}

impl RaftNetworkFactory<TypeConfig> for NoNetwork {
    type Network = NoConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> NoConnection {
        NoConnection {
            target,
            addr: node.addr.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for NoConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
