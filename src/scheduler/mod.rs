//! Placement: which host runs each pod instance, and the names of RC replicas.
//!
//! Pure and deterministic, in Nomad's shape: for each pod, filters reject hosts (ready and
//! schedulable, `nodeSelector`, CPU and memory, host ports, `berth.io/max-per-node`,
//! `berth.io/conflicts`), each with a named [`Reason`]; scorers rank the rest (spread an RC's
//! replicas, then least allocated; or `berth.io/placement: binpack`), ties broken by name. A pod
//! that fits nowhere is pending and keeps its reasons ([`Load::explain`]).
//!
//! The leader computes a placement against committed state and commits it through Raft before
//! any container exists, so a replica is never created twice, even across a failover; a
//! placement computed against a state that changed on its hosts meanwhile is refused there and
//! computed again.
//!
//! Files: `resources` (demand and capacity), `selector` (label selectors), `reason`, `host`,
//! `workload` (what a pod asks), `load` (accounting, filters, scorers), `place` (names, pods,
//! replicas, pending).

mod host;
mod load;
pub mod place;
mod reason;
mod resources;
mod selector;
mod workload;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use host::Host;
pub use load::Load;
pub use place::{
    bind_pending, host_ports, kept_pods, new_replicas, pending, place_pods, replica_name_base,
    Bindings, HostPort, PendingPod,
};
pub use reason::Reason;
pub use resources::{demand, Resources, DEFAULT_CPU_MILLIS, DEFAULT_MEMORY_BYTES};
pub use selector::Selector;
pub use workload::{Strategy, Workload};
