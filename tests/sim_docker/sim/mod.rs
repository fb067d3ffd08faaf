//! A simulated Docker engine for berth's scale benchmarks and tests: one process serving
//! the Docker Engine API (as dockerd 20.10, API 1.41, answers it) on a unix socket per host,
//! for thousands of hosts, each with its own containers, images, volumes and events.
//!
//! It is a simulation, not a container runtime: a "container" is a row in a table whose
//! process runs until a signal it does not ignore or a crash ends it. What it keeps of
//! Docker is what berth relies on: the requests and JSON berth's bollard client sends and
//! reads, status codes and messages, events with labels as attributes, restart policies,
//! network-namespace joins, name conflicts. Never part of berth itself: it is built only as
//! a test module and as the `berth-sim-docker` example.
//!
//! ```text
//! run.rs       Sim::start(SimConfig): bind host-NNNN.sock for each host + control.sock
//! listen.rs    one listener task per host; Refuse/Hang/Up; one task per connection
//! api/         the Docker API: routing, version prefix, handlers, JSON shapes (render.rs)
//! host.rs      a host: engine lock, link state, counters; waits (stop grace, backoff)
//! engine/      the state of one host, synchronous: containers, images, volumes, exec, events
//! control.rs   the control socket: down/up, crash, info, registry, counters, stats
//! counters.rs  requests per endpoint per host
//! filters.rs   Docker's `filters` parameter
//! time.rs      RFC 3339 as Go writes it
//! ```

pub mod api;
pub mod control;
pub mod counters;
pub mod engine;
pub mod error;
pub mod filters;
pub mod host;
pub mod listen;
pub mod run;
pub mod time;

pub use run::{Sim, SimConfig};
