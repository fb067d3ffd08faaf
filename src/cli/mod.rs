//! The `berth` command line: one subcommand per file.

pub mod client;
pub mod cluster;
mod describe_pod;
pub mod fd_limit;
pub mod rollout;
pub mod serve;
pub mod validate;

use clap::{Parser, Subcommand};

const ABOUT: &str = "GitOps for plain Docker hosts: Kubernetes v1 manifests (Pod, ReplicationController, \
Service) in a Git repository are the only source of truth, and berth keeps the Docker engines in line with them.";

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = ABOUT, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a controller: follow a Git branch and keep the Docker hosts in line with it. Every
    /// commit seen is recorded (applied, rejected, superseded, ...) in the Raft log under
    /// --data-dir; the read-only status API listens on --listen. Settings come from flags,
    /// then BERTH_* environment variables, then the --config TOML file.
    Serve(Box<crate::controller::ServeArgs>),
    /// Check manifests as berth will read them: every problem at once, with file:line:column and
    /// field path. Exit status: 0 valid, 1 invalid, 2 a path could not be read. Meant for the CI of
    /// a manifests repository.
    Validate(validate::ValidateArgs),
    /// Summary of a running controller: applied commit, convergence, ready hosts.
    Status(client::StatusArgs),
    /// List pods, rc, services, nodes or commits, as a table, JSON (-o json) or YAML (-o yaml).
    Get(client::GetArgs),
    /// Show one commit in full (outcome, errors and the plan that was executed), or one pod:
    /// its host, or while pending, why each host refuses it.
    Describe(client::DescribeArgs),
    /// Follow a ReplicationController's rollout: `berth rollout status rc/web`.
    Rollout(rollout::RolloutArgs),
    /// Controller membership: list, add or remove members (needs the cluster token).
    Cluster(cluster::ClusterArgs),
}
