//! Rollouts of ReplicationControllers: which replicas to add and which to retire next, so that
//! a new template replaces the old one without an outage.
//!
//! Pure: given an RC's strategy, its replicas (each of a template revision) and what the leader
//! sees of each replica right now (images pulled, ready, why not), [`step`] returns the next
//! decision. The leader places what it adds and commits the decision through Raft; the engine
//! then creates and stops containers. Nothing here has a clock or does I/O.
//!
//! ```text
//! RollingUpdate (default, maxSurge 1, maxUnavailable 0):
//!   add new ─► new ready for minReadySeconds ─► retire one old ─► add new ─► ... ─► complete
//! Recreate:
//!   add all new (they pull, then wait) ─► images everywhere ─► retire all old ─► new start
//! Halt: a new replica not available within progressDeadlineSeconds of its creation. No further
//!   old replica is retired; the old ones keep serving. Final for the commit.
//! ```

mod step;
mod strategy;

pub use step::{scale_down_order, step, Decision, Health, ReplicaView};
pub use strategy::{Amount, Kind, Strategy};
