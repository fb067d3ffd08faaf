//! The `berth` command line: one subcommand per file.

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
    /// Check manifests as berth will read them: every problem at once, with file:line:column and
    /// field path. Exit status: 0 valid, 1 invalid, 2 a path could not be read. Meant for the CI of
    /// a manifests repository.
    Validate(validate::ValidateArgs),
}
