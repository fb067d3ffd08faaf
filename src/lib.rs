//! berth: a GitOps reconciler for plain Docker hosts.
pub mod api;
pub mod cli;
pub mod controller;
pub mod docker;
pub mod manifest;
pub mod raft;
pub mod reconcile;
pub mod scheduler;
pub mod sync;
