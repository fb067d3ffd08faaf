//! Raft: the replicated log and the state machine every controller agrees on.
//!
//! Why Raft: berth's decisions (which commit is desired, where each replica runs) are proposed
//! by the leader as [`Command`]s and take effect only once committed; Docker calls are driven
//! from the committed [`ClusterState`] alone, so a deposed or partitioned controller cannot act
//! on a decision the others never saw.
//!
//! Today the cluster has a single voter and no network ([`NoNetwork`]). Adding voters later is
//! a membership change on the same stores plus an HTTP `RaftNetworkFactory`: the log format,
//! the stores and the state machine stay as they are.
//!
//! ```text
//! RaftNode::propose ─► openraft ─► LogStore (raft.redb: log, vote, committed)
//!                                     │ committed
//!                                     ▼
//!                      StateMachine::apply ─► ClusterState ◄─ StateHandle::read (berth)
//!                                     │ every 1000 entries
//!                                     ▼
//!                      snapshot (raft.redb) ─► log purged behind it
//! ```
//!
//! Files: `types` (openraft type config), `db` (the redb file shared by both stores),
//! `log_store`, `state_machine`, `network`, `node` (`RaftNode`), `state` (the domain state).

mod db;
pub mod log_store;
pub mod network;
pub mod node;
pub mod state;
pub mod state_machine;
pub mod types;

pub use db::{StoreError, Stores, StoresClosed, DB_FILE};
pub use log_store::LogStore;
pub use network::{NoNetwork, NoNetworkError};
pub use node::{raft_config, RaftNode, RaftNodeError};
pub use state::{ClusterState, Command, Response};
pub use state_machine::{SnapshotBuilder, StateHandle, StateMachine};
pub use types::TypeConfig;
