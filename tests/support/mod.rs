//! Shared helpers for berth's integration tests (`mod support;` in a test file).
//!
//! - [`engines`]: real Docker engines. [`start_engines`] gives a test its own private
//!   `dockerd` instances (own data root, socket and network namespace, stopped on drop,
//!   can be stopped and restarted); [`system_engine`] connects to the machine's engine.
//!   Both expect `scripts/docker-engine` to have been run once on the machine.
//! - [`netns`]: each private engine's network, reachable from the test process like a
//!   host on a LAN: addresses, veth, routes, and the machine-wide slots they come from.
//! - [`registry`]: a private Docker registry with basic auth, that every private engine
//!   reaches; helpers to push the test image into it and pull it back with credentials.
//! - [`cluster`]: several `berth serve` processes forming one controller cluster.
//! - [`leftovers`]: what a stopped or killed private dockerd leaves, and clearing it.
//! - [`cmd`]: running the machine's tools (`ip`, `kill`, ...) from these helpers.
//!
//! Each integration test binary compiles this module on its own and uses only part of
//! it, hence the `dead_code` and `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

pub mod apps;
pub mod berth;
pub mod cluster;
pub mod cmd;
pub mod engines;
pub mod leftovers;
pub mod netns;
pub mod registry;

pub use engines::{start_engine, start_engines, system_engine, Engine, TEST_IMAGE};
pub use registry::{start_registry, Registry};
