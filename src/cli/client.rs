//! `berth status`, `berth get`, `berth describe`: read the status API of a running controller
//! and print kubectl-like tables (or the JSON itself with `-o json`).

use std::process::ExitCode;

use serde_json::Value;

/// `println!` that does not panic when stdout is closed early (`berth get pods | head -1`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Status API of a berth controller.
    #[arg(
        long,
        env = "BERTH_SERVER",
        default_value = "http://127.0.0.1:7878",
        global = true
    )]
    pub server: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Prints the API's answer as JSON or YAML; false for a table (the caller prints it).
pub(crate) fn print_raw(output: Output, v: &Value) -> bool {
    match output {
        Output::Table => false,
        Output::Json => {
            say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
            true
        }
        Output::Yaml => {
            say!(
                "{}",
                serde_yaml::to_string(v).unwrap_or_default().trim_end()
            );
            true
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Resource {
    #[value(alias = "pod", alias = "po")]
    Pods,
    #[value(alias = "replicationcontrollers", alias = "replicationcontroller")]
    Rc,
    #[value(alias = "service", alias = "svc")]
    Services,
    #[value(alias = "node", alias = "no")]
    Nodes,
    #[value(alias = "commit")]
    Commits,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// What to list.
    pub resource: Resource,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// `commit` or `pod`.
    #[arg(value_parser = ["commit", "pod"])]
    pub kind: String,
    /// A commit: full sha or a unique prefix (at least 4 hex digits). A pod: its name.
    #[arg(value_name = "SHA|NAME")]
    pub sha: String,
    /// The pod's namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub(crate) async fn fetch(server: &str, path: &str) -> Result<Value, String> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let resp = reqwest::get(&url).await.map_err(|e| {
        format!("cannot reach berth at {server}: {e} (is `berth serve` running? see --server)")
    })?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("{url}: not a JSON answer: {e}"))?;
    if !status.is_success() {
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("error");
        return Err(format!("{url}: {status}: {msg}"));
    }
    Ok(body)
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// Columns padded to their widest cell, like kubectl.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

pub async fn status(args: &StatusArgs) -> ExitCode {
    finish(
        async {
            let v = fetch(&args.server.server, "/api/v1/status").await?;
            if print_raw(args.output, &v) {
                return Ok(());
            }
            say!("repository:  {} ({})", s(&v, "repo"), s(&v, "branch"));
            say!("commit:      {}", s(&v, "commit"));
            say!("converged:   {}", s(&v, "converged"));
            say!("in sync:     {}", s(&v, "in_sync"));
            say!(
                "nodes ready: {}/{}",
                s(&v, "nodes_ready"),
                s(&v, "nodes_total")
            );
            let raft = &v["raft"];
            let role = if v["is_leader"] == Value::Bool(true) { "leader" } else { "follower" };
            say!(
                "member:      {} of cluster {} ({role}; leader {}; applied {}, behind {})",
                s(&v, "member"),
                s(&v, "cluster"),
                s(&v, "leader"),
                s(raft, "last_applied"),
                s(raft, "behind")
            );
            if let Some(differs) = v["settings"]["differs"].as_array().filter(|d| !d.is_empty()) {
                let names: Vec<String> = differs.iter().map(|d| s(d, "name")).collect();
                say!(
                    "SETTINGS:    this member's flags differ from the cluster's ({}): it does not lead or act; see `berth cluster settings`",
                    names.join(", ")
                );
            }
            if v["stale"] == Value::Bool(true) {
                say!("STALE:       this member has no quorum or has not heard from a leader: what it shows may be out of date");
            }
            let git = &v["git"];
            if git["ok"] == Value::Bool(false) {
                say!("git:         failing: {}", s(git, "error"));
            }
            Ok(())
        }
        .await,
    )
}

pub async fn get(args: &GetArgs) -> ExitCode {
    let path = match args.resource {
        Resource::Pods => "/api/v1/pods",
        Resource::Rc => "/api/v1/replicationcontrollers",
        Resource::Services => "/api/v1/services",
        Resource::Nodes => "/api/v1/nodes",
        Resource::Commits => "/api/v1/commits",
    };
    finish(
        async {
            let v = fetch(&args.server.server, path).await?;
            if print_raw(args.output, &v) {
                return Ok(());
            }
            let items = v.as_array().cloned().unwrap_or_default();
            let out = match args.resource {
                Resource::Pods => table(
                    &[
                        "NAMESPACE",
                        "NAME",
                        "OWNER",
                        "NODE",
                        "RUNNING",
                        "READY",
                        "RESTARTS",
                        "PHASE",
                        "COMMIT",
                        "REASON",
                    ],
                    items
                        .iter()
                        .map(|p| {
                            let cs = p["containers"].as_array().cloned().unwrap_or_default();
                            let running = cs.iter().filter(|c| c["state"] == "running").count();
                            let reason = match (p.get("probe_failure"), p.get("reason")) {
                                _ if p.get("reasons").is_some() => {
                                    super::describe_pod::summary(&p["reasons"])
                                }
                                (_, Some(Value::String(r))) => r.clone(),
                                (Some(Value::String(f)), _) => f.clone(),
                                _ => "-".into(),
                            };
                            vec![
                                s(p, "namespace"),
                                s(p, "name"),
                                s(p, "owner"),
                                s(p, "node"),
                                format!("{running}/{}", cs.len()),
                                s(p, "ready"),
                                s(p, "restarts"),
                                s(p, "phase"),
                                short(&s(p, "commit")),
                                reason,
                            ]
                        })
                        .collect(),
                ),
                Resource::Rc => table(
                    &[
                        "NAMESPACE",
                        "NAME",
                        "DESIRED",
                        "CURRENT",
                        "UPDATED",
                        "READY",
                        "AVAILABLE",
                        "ROLLOUT",
                        "IMAGES",
                    ],
                    items
                        .iter()
                        .map(|r| {
                            let images: Vec<String> = r["image"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|i| i.as_str().map(String::from))
                                .collect();
                            vec![
                                s(r, "namespace"),
                                s(r, "name"),
                                s(r, "desired"),
                                s(r, "current"),
                                s(r, "updated"),
                                s(r, "ready"),
                                s(r, "available"),
                                s(&r["rollout"], "state"),
                                images.join(","),
                            ]
                        })
                        .collect(),
                ),
                Resource::Services => table(
                    &[
                        "NAMESPACE",
                        "NAME",
                        "TYPE",
                        "CLUSTER-IP",
                        "PORTS",
                        "ENDPOINTS",
                        "SELECTOR",
                    ],
                    items
                        .iter()
                        .map(|svc| {
                            let ports: Vec<String> = svc["ports"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|p| p.as_str().map(String::from))
                                .collect();
                            let sel: Vec<String> = svc["selector"]
                                .as_object()
                                .into_iter()
                                .flatten()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                                .collect();
                            let eps = svc["endpoints"].as_array().cloned().unwrap_or_default();
                            let ready = eps.iter().filter(|e| e["ready"] == true).count();
                            vec![
                                s(svc, "namespace"),
                                s(svc, "name"),
                                s(svc, "type"),
                                svc["clusterIP"].as_str().unwrap_or("<pending>").to_string(),
                                ports.join(","),
                                format!("{ready}/{}", eps.len()),
                                sel.join(","),
                            ]
                        })
                        .collect(),
                ),
                Resource::Nodes => table(
                    &[
                        "NAME",
                        "READY",
                        "SCHEDULABLE",
                        "VERSION",
                        "CPU",
                        "MEMORY",
                        "PODS",
                        "CONTAINERS",
                        "LABELS",
                        "ENDPOINT",
                        "ERROR",
                    ],
                    items
                        .iter()
                        .map(|n| {
                            // Allocated of allocatable, as the scheduler counts them.
                            let (used, cap) = (&n["allocated"], &n["allocatable"]);
                            let of = |k: &str| match cap.get(k) {
                                Some(Value::String(c)) => format!("{}/{c}", s(used, k)),
                                _ => format!("{}/-", s(used, k)),
                            };
                            let labels: Vec<String> = n["labels"]
                                .as_object()
                                .into_iter()
                                .flatten()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                                .collect();
                            let schedulable = match n["draining"] {
                                Value::Bool(true) => "draining".to_string(),
                                _ => s(n, "schedulable"),
                            };
                            vec![
                                s(n, "name"),
                                s(n, "ready"),
                                schedulable,
                                s(n, "version"),
                                of("cpu"),
                                of("memory"),
                                s(n, "pods"),
                                s(n, "containers"),
                                if labels.is_empty() {
                                    "-".into()
                                } else {
                                    labels.join(",")
                                },
                                s(n, "endpoint"),
                                s(n, "error"),
                            ]
                        })
                        .collect(),
                ),
                Resource::Commits => table(
                    &["SHA", "OUTCOME", "SEEN", "AUTHOR", "MESSAGE"],
                    items
                        .iter()
                        .map(|c| {
                            let msg = s(c, "message");
                            let first = msg.lines().next().unwrap_or("").to_string();
                            vec![
                                short(&s(c, "sha")),
                                s(c, "outcome"),
                                s(c, "seen_at"),
                                s(c, "author"),
                                first,
                            ]
                        })
                        .collect(),
                ),
            };
            say!("{out}");
            Ok(())
        }
        .await,
    )
}

pub async fn describe(args: &DescribeArgs) -> ExitCode {
    if args.kind == "pod" {
        return finish(super::describe_pod::describe(args).await);
    }
    finish(
        async {
            let v = fetch(
                &args.server.server,
                &format!("/api/v1/commits/{}", args.sha),
            )
            .await?;
            if print_raw(args.output, &v) {
                return Ok(());
            }
            say!("Commit:     {}", s(&v, "sha"));
            say!("Outcome:    {}", s(&v, "outcome"));
            say!("Author:     {}", s(&v, "author"));
            say!("Time:       {}", s(&v, "time"));
            say!("Seen:       {}", s(&v, "seen_at"));
            say!("Applied:    {}", s(&v, "applied_at"));
            say!("Converged:  {}", s(&v, "converged_at"));
            if v["forced"] == Value::Bool(true) {
                say!("Forced:     yes (the branch was force-pushed to this commit)");
            }
            if v["unchanged"] == Value::Bool(true) {
                say!("Unchanged:  yes (no manifest changed; nothing was done)");
            }
            say!("Message:");
            for l in s(&v, "message").lines() {
                say!("  {l}");
            }
            let list = |key: &str| -> Vec<String> {
                v[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            };
            let errors = list("errors");
            if !errors.is_empty() {
                say!("Errors:");
                for e in errors {
                    say!("  {e}");
                }
            }
            let plan = list("plan");
            say!("Plan:{}", if plan.is_empty() { " (no steps)" } else { "" });
            for p in plan {
                say!("  {p}");
            }
            Ok(())
        }
        .await,
    )
}
