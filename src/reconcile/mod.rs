//! Reconcile: compare the committed desired state with what the Docker engines run, and act.
//!
//! ```text
//! ClusterState (committed) ─► desired::pods ─┐
//! Docker engines ─► observe ─────────────────┴─► plan (pure) ─► execute ─► Docker engines
//! ```
//!
//! `plan` is a pure function with exact tests; `execute` runs its steps with bounded
//! concurrency, each step idempotent, so running a plan twice is harmless.

pub mod types;

pub use types::*;
pub mod desired;
pub mod plan;

pub use plan::{plan, plan_pod, pod_done, Decision, PodInputs, PodMemory, STOP_MARGIN_MS};
