//! The openraft type configuration: which types travel in berth's Raft log.
//!
//! `BasicNode` carries the member's address (`host:port` or a URL) so the HTTP network can reach
//! a voter from its membership entry alone.

use std::io::Cursor;

use super::log_command::LogCommand;
use super::state::Response;

openraft::declare_raft_types!(
    /// Berth's Raft: node ids are `u64`, entries carry a [`LogCommand`] (a
    /// [`Command`](super::state::Command), or one from a newer berth kept verbatim), `apply`
    /// answers a [`Response`], snapshots are a JSON document held in memory (sent to followers
    /// in chunks, see `http_client.rs`).
    pub TypeConfig:
        D = LogCommand,
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
