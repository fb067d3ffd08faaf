//! The openraft type configuration: which types travel in berth's Raft log.
//!
//! `BasicNode` carries the peer's address (`host:port`) so the HTTP network that replaces
//! [`super::network::NoNetwork`] can reach a voter from its membership entry alone.

use std::io::Cursor;

use super::state::{Command, Response};

openraft::declare_raft_types!(
    /// Berth's Raft: node ids are `u64`, entries carry a [`Command`], `apply` answers a
    /// [`Response`], snapshots are a JSON document held in memory.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Node id of a controller in the cluster.
pub type NodeId = u64;
/// A log entry of berth's Raft log.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader, index).
pub type LogId = openraft::LogId<NodeId>;
/// The error every storage method returns; openraft stops the node on it.
pub type StorageError = openraft::StorageError<NodeId>;
/// The running Raft of berth.
pub type Raft = openraft::Raft<TypeConfig>;
