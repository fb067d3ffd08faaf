//! Placement: which host runs each pod instance, and the names of RC replicas.
//!
//! Pure and deterministic: the leader computes a placement and commits it through Raft before
//! any container exists, so a replica is never created twice, even across a failover.

pub mod place;

pub use place::{host_ports, new_replicas, place_pods, Host, HostPort, Load};
