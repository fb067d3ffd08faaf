//! The keyed reconcile engine (after kube-runtime's controller): work is done per key, a key is
//! never worked on twice at once, and nothing ever waits for a slow step of another key.
//!
//! ```text
//! triggers (Docker events, Raft applies, probe changes, resync) ─► enqueue(key, delay)
//!   queue: one entry per key, the earliest requested time wins (bursts coalesce: debounce)
//!   runner: pops due keys that are not in flight, runs each as its own task (bounded count)
//!     worker.work(key) ─► Next::Idle | Next::At(when)  (a retry or a grace period ending)
//! ```
//!
//! Triggers carry no payload: the worker reads current state and decides. A key requested
//! while it is in flight runs again once it ends, so no change is ever missed, and a key that
//! asks to be looked at later is looked at when that time comes, not on a fixed tick.

mod queue;
mod runner;

pub use queue::Queue;
pub use runner::{Next, Runner, Worker};
