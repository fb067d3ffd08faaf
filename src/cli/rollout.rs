//! `berth rollout status rc/NAME`: follow a ReplicationController's rollout, as `kubectl
//! rollout status` does, and say with the exit status how it ended.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{fetch, ServerArgs};
use crate::controller::config::parse_duration;

/// `berth rollout status` exit statuses.
pub const COMPLETE: u8 = 0;
pub const HALTED: u8 = 1;
pub const UNKNOWN: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Follow the rollout of a ReplicationController until it completes (exit 0) or halts
    /// (exit 1, with the reason per replica). Exit 2 when it cannot tell: berth unreachable,
    /// no such RC, or --timeout passed.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// `rc/NAME` (or `replicationcontroller/NAME`, or just NAME).
    pub target: String,
    /// Namespace of the RC.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Give up after this long (e.g. 30s, 10m) with exit status 2.
    #[arg(long, default_value = "10m")]
    pub timeout: String,
    /// Print the state once and exit at once (0 complete, 1 halted, 2 otherwise).
    #[arg(long)]
    pub no_watch: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(args: &RolloutArgs) -> ExitCode {
    let RolloutCommand::Status(args) = &args.command;
    ExitCode::from(status(args).await)
}

async fn status(args: &StatusArgs) -> u8 {
    let name = match args.target.split_once('/') {
        Some(("rc" | "replicationcontroller" | "replicationcontrollers", n)) => n,
        Some((kind, _)) => {
            eprintln!("berth rollout status: {kind:?} has no rollouts; use rc/NAME");
            return UNKNOWN;
        }
        None => args.target.as_str(),
    };
    let timeout = match parse_duration(&args.timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("berth rollout status: --timeout: {e}");
            return UNKNOWN;
        }
    };
    let started = Instant::now();
    let mut last_line = String::new();
    loop {
        let rcs = match fetch(&args.server.server, "/api/v1/replicationcontrollers").await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("berth: {e}");
                return UNKNOWN;
            }
        };
        let Some(rc) = rcs
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == name && r["namespace"] == args.namespace.as_str())
        else {
            eprintln!(
                "berth rollout status: no ReplicationController {}/{name}",
                args.namespace
            );
            return UNKNOWN;
        };
        let (code, line) = describe(name, rc);
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
        if let Some(code) = code {
            return code;
        }
        if args.no_watch {
            return UNKNOWN;
        }
        if started.elapsed() > timeout {
            eprintln!(
                "berth rollout status: still progressing after {}",
                args.timeout
            );
            return UNKNOWN;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The line to show for the RC's state, and the exit status once the rollout has ended.
fn describe(name: &str, rc: &Value) -> (Option<u8>, String) {
    let n = |k: &str| rc[k].as_u64().unwrap_or(0);
    let (desired, updated, available) = (n("desired"), n("updated"), n("available"));
    match rc["rollout"]["state"].as_str() {
        Some("complete") => (
            Some(COMPLETE),
            format!("replicationcontroller \"{name}\" successfully rolled out"),
        ),
        Some("halted") => {
            let reasons: Vec<String> = rc["rollout"]["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(|r| format!("\n  {r}")))
                .collect();
            (
                Some(HALTED),
                format!(
                    "replicationcontroller \"{name}\" rollout halted: the old replicas keep serving{}",
                    reasons.concat()
                ),
            )
        }
        Some(_) if updated < desired => (
            None,
            format!("Waiting for rollout to finish: {updated} out of {desired} new replicas have been updated..."),
        ),
        Some(_) => (
            None,
            format!("Waiting for rollout to finish: {available} of {desired} updated replicas are available..."),
        ),
        None => (
            Some(UNKNOWN),
            format!("replicationcontroller \"{name}\" has no rollout yet"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_to_exit_statuses_with_reasons() {
        let rc = serde_json::json!({"desired": 3, "updated": 1, "available": 1,
            "rollout": {"state": "progressing", "reasons": []}});
        assert_eq!(describe("web", &rc).0, None);
        assert!(describe("web", &rc).1.contains("1 out of 3 new replicas"));
        let rc = serde_json::json!({"rollout": {"state": "halted",
            "reasons": ["web-x7k2q: readiness probe failed: HTTP 500"]}});
        let (code, line) = describe("web", &rc);
        assert_eq!(code, Some(HALTED));
        assert!(
            line.ends_with("\n  web-x7k2q: readiness probe failed: HTTP 500"),
            "{line}"
        );
        let rc = serde_json::json!({"rollout": {"state": "complete"}});
        assert_eq!(describe("web", &rc).0, Some(COMPLETE));
    }
}
