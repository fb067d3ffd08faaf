//! berth: a GitOps reconciler for plain Docker hosts.
//!
//! A Git branch of Kubernetes v1 manifests (Pod, ReplicationController, Service) is the only
//! source of truth. A controller follows it, records every commit it sees in a Raft log, and
//! keeps the Docker engines of its hosts running exactly what the last valid commit asks for.
//!
//! ```text
//! poll timer / Docker event ─► controller (leader only)
//!
//!   sync:      Git branch ─► manifest::load_files ─► valid?   ─► Command::Accept (desired state
//!              (gix)          (strict, whole tree)      │          + scheduler::place: replica
//!                                                       │          names and hosts)
//!                                                       └ no ─► Command::Reject (every problem)
//!                                                                  │
//!   Raft log (openraft + redb) ─► raft::state::ClusterState ◄─────┘   (apply: pure, no I/O)
//!
//!   scheduler: committed state + hosts (labels, capacity, Node manifests) ─► filters ─► scorers
//!              ─► Command::Replicas / Command::Bind (pending pods, once room appears)
//!   reconcile: committed state ─► reconcile::desired ─┐
//!              docker::DockerHost::list_managed ──────┴─► reconcile::plan (pure) ─► execute
//!                                                                                  (bollard)
//!   api (axum, read-only) and cli (status/get/describe) read committed state + live view
//!   services:  leader: Services + ready pods ─► service::{cluster_ip, node_port, endpoints}
//!              ─► Command::Services; every member: committed table ─► service::interface
//!              (cluster IPs on berth0) + service::proxy (cluster IPs, service address, node
//!              ports ─► ready pods); service::discovery: env vars and hosts at container start
//! ```
//!
//! One concept per module: [`manifest`] (model, parsing, validation), [`sync`] (Git),
//! [`raft`] (replicated log and state), [`scheduler`] (placement), [`reconcile`] (the plan),
//! [`docker`] (one client per host), [`controller`] (the loops of `berth serve`), [`api`] and
//! [`cli`]; [`service`] gives Services their addresses and forwards them; [`webhook`] turns verified push webhooks from Git hosts into a payload-free "look
//! now". Effects happen only from Raft-committed state and only on the leader.

pub mod api;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod docker;
pub mod engine;
pub mod manifest;
pub mod probe;
pub mod raft;
pub mod reconcile;
pub mod rollout;
pub mod scheduler;
pub mod service;
pub mod sync;
pub mod webhook;
