//! What travels between members over HTTP, besides openraft's own request and response types:
//! the routes, the snapshot chunk header and the bootstrap greeting.
//!
//! Encoding: JSON bodies (openraft's types are serde), each RPC answered with `200` and a JSON
//! `Result` (openraft's errors are answers, not transport failures). Snapshot chunks are the
//! exception: the bytes go as the raw body and only the chunk's metadata as a header, so a chunk
//! is not inflated fourfold by JSON arrays of numbers.

use base64::Engine;
use openraft::{BasicNode, SnapshotMeta, Vote};
use serde::{Deserialize, Serialize};

use super::types::NodeId;

/// AppendEntries (replication and heartbeats).
pub const APPEND_PATH: &str = "/raft/append";
/// RequestVote.
pub const VOTE_PATH: &str = "/raft/vote";
/// One chunk of InstallSnapshot.
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";
/// Who answers here: used by bootstrap to count the initial members that are up.
pub const HELLO_PATH: &str = "/raft/hello";
/// The membership: `GET` lists, `POST` adds ([`AddMember`]), `DELETE .../{id}` removes.
pub const MEMBERS_PATH: &str = "/raft/admin/members";

/// A verified push webhook, passed on by a follower to the leader (the only member that syncs).
pub const TRIGGER_PATH: &str = "/raft/trigger";

/// Header carrying a snapshot chunk's [`ChunkHeader`], as base64url JSON.
pub const CHUNK_HEADER: &str = "x-berth-snapshot-chunk";

/// Version of this wire protocol, announced in [`Hello`]: bumped when a member of one version
/// can no longer talk to another.
pub const PROTOCOL_VERSION: u32 = 1;

/// A snapshot chunk without its bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChunkHeader {
    pub vote: Vote<NodeId>,
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub offset: u64,
    pub done: bool,
}

/// Why a chunk header could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ChunkHeaderError {
    #[error("snapshot chunk header is not base64url")]
    Base64(#[from] base64::DecodeError),
    #[error("snapshot chunk header is not the expected JSON")]
    Json(#[from] serde_json::Error),
}

impl ChunkHeader {
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        let json = serde_json::to_vec(self)?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    pub fn decode(value: &[u8]) -> Result<ChunkHeader, ChunkHeaderError> {
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value)?;
        Ok(serde_json::from_slice(&json)?)
    }
}

/// A member's greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub id: NodeId,
    pub cluster_name: String,
    /// True once the member has a log or a vote: a cluster already exists around it.
    pub initialized: bool,
    pub protocol: u32,
    pub berth_version: String,
}

/// Body of `POST /raft/admin/members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddMember {
    pub id: NodeId,
    /// How the other members reach the new one (`host:port` or URL).
    pub url: String,
    /// How long the new member may take to catch up before it is promoted to voter.
    pub catch_up_ms: u64,
}
