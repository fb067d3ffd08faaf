//! Raft: the replicated log and the state machine every controller agrees on.
//!
//! Why Raft: berth's decisions (which commit is desired, where each replica runs) are proposed
//! by the leader as [`Command`]s and take effect only once committed; Docker calls are driven
//! from the committed [`ClusterState`] alone, so a deposed or partitioned controller cannot act
//! on a decision the others never saw (and [`RaftNode::is_leader`] turns false within about an
//! election timeout once a leader loses its quorum).
//!
//! ```text
//!  RaftNode::propose ─► openraft ─► LogStore (raft.redb: log, vote, committed)
//!                          │  ▲            │ committed
//!        HttpNetwork ◄─────┘  │            ▼
//!   (append, vote, snapshot   │   StateMachine::apply ─► ClusterState ◄─ StateHandle::read
//!    chunks; one pooled       │            │ every 1000 entries
//!    reqwest client)          │            ▼
//!          │            raft_router   snapshot (raft.redb) ─► log purged behind it
//!          ▼            (/raft/..., token-checked, merged into the API listener)
//!    other members ─────────┘
//! ```
//!
//! Files: `types` (openraft type config), `log_command` (log payload, tolerant of newer
//! commands), `db` (the redb file shared by both stores), `log_store`, `state_machine`,
//! `cluster_config` (members and timing), `contact` (a follower's freshness), `token`, `tls` and `tls_server` (securing members' traffic),
//! `wire` (routes and wire types), `http_client` (the network openraft sends through),
//! `http_server` (the routes it receives on), `partition` (a fault switch), `snapshot_trigger` (snapshots by size), `bootstrap`
//! (forming a cluster exactly once), `membership` (add/remove), `admin_client` (`berth cluster`
//! over HTTP), `fencing` (leader facts), `node` (`RaftNode`) and `node_error`, `state` (the
//! domain state).

pub mod admin_client;
mod bootstrap;
pub mod cluster_config;
pub mod contact;
mod db;
pub mod election;
pub mod fencing;
pub mod http_client;
pub mod http_server;
pub mod log_command;
pub mod log_store;
pub mod membership;
pub mod node;
pub mod node_error;
pub mod partition;
mod snapshot_trigger;
pub mod state;
pub mod state_machine;
pub mod tls;
pub mod tls_server;
pub mod token;
pub mod types;
pub mod wire;

pub use admin_client::{AdminError, ClusterAdmin};
pub use cluster_config::{member_url, ClusterConfig, ClusterConfigError};
pub use contact::LeaderContact;
pub use db::{StoreError, Stores, StoresClosed, DB_FILE};
pub use fencing::LeaderFacts;
pub use http_client::{HttpNetwork, PeerClient, PeerClientError};
pub use http_server::{raft_router, raft_router_with, serve_raft};
pub use log_command::LogCommand;
pub use log_store::LogStore;
pub use membership::{Member, MembershipError};
pub use node::{raft_config, Freshness, RaftNode};
pub use node_error::RaftNodeError;
pub use partition::Partition;
pub use state::{ClusterState, Command, Response};
pub use state_machine::{SnapshotBuilder, StateHandle, StateMachine};
pub use tls::{ClusterTls, TlsError};
pub use tls_server::serve_raft_tls;
pub use token::{ClusterToken, TokenError};
pub use types::TypeConfig;
