//! `berth cluster list|add|remove|settings`: membership and settings, through any member's Raft
//! port with the cluster token. Not part of the read-only status API: changing who decides is
//! an admin act. `berth cluster recover` works offline on a data directory (see
//! `raft/recover.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::controller::error_chain;
use crate::raft::{ClusterAdmin, ClusterTls, ClusterToken, Member, PeerClient};

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    /// Any member's Raft address (its --raft-listen, else its --listen): host:port or URL. A
    /// follower passes the request on to the leader.
    #[arg(
        long,
        global = true,
        env = "BERTH_MEMBER",
        default_value = "127.0.0.1:7878",
        value_name = "ADDR"
    )]
    pub member: String,
    /// The cluster token file the members were started with.
    #[arg(
        long,
        global = true,
        env = "BERTH_CLUSTER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub cluster_token_file: Option<PathBuf>,
    /// The members' TLS directory (ca.pem, cert.pem, key.pem), when they use --cluster-tls-dir.
    #[arg(long, global = true, env = "BERTH_CLUSTER_TLS_DIR", value_name = "DIR")]
    pub cluster_tls_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// The members, their role and (asked of the leader) how far each has replicated.
    List,
    /// Add a member. Start it first with `berth serve --id ID --peer` naming at least one
    /// existing member (so it waits to be added rather than forming a cluster of its own); it
    /// joins as a learner, catches up, then becomes a voter.
    Add {
        /// The new member's id: never one used before by another data directory.
        id: u64,
        /// How the members reach it (its --advertise-url).
        url: String,
        /// How long it may take to catch up before it is made a voter; if it does not, it stays
        /// a learner and `add` can be run again.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        catch_up: Duration,
    },
    /// Remove a member (a machine retired, or a data directory lost: remove it, wipe it, add it
    /// again). The last voter cannot be removed.
    Remove {
        /// The member's id.
        id: u64,
    },
    /// The settings every member must share (hosts, policies, budgets): `show` compares the
    /// cluster's with the contacted member's flags; `adopt` makes that member's flags the
    /// cluster's (recorded with who and when). A member whose flags differ neither leads nor
    /// acts: after changing flags on every member, adopt them from one.
    Settings {
        #[arg(value_enum, default_value = "show")]
        action: SettingsAction,
    },
    /// Disaster recovery, when a majority of the members is lost for good (etcd's
    /// --force-new-cluster): makes one surviving member's data directory a cluster of that
    /// member alone, keeping its log, history and state. Run it with berth stopped on that
    /// directory (it refuses otherwise), start `berth serve --id ID` there without --peer, then
    /// add new members with `berth cluster add` (wipe the data directories of the lost ones
    /// first). Entries the survivor had that the old cluster never committed are committed;
    /// anything only the lost members had is gone. Keep a copy of the directory to undo it.
    /// Needs no token and no network.
    Recover {
        /// The surviving member's data directory (its `berth serve --data-dir`).
        #[arg(
            long,
            env = "BERTH_DATA_DIR",
            default_value = "berth-data",
            value_name = "DIR"
        )]
        data_dir: PathBuf,
        /// The id that member was served with (`berth serve --id`).
        #[arg(long, value_name = "ID")]
        id: u64,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SettingsAction {
    Show,
    Adopt,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::controller::config::parse_duration(s)
}

pub async fn run(args: &ClusterArgs) -> ExitCode {
    if let ClusterCommand::Recover { data_dir, id } = &args.command {
        return recover(data_dir, *id);
    }
    if let ClusterCommand::Settings { action } = &args.command {
        return match settings(args, *action).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("berth cluster settings: {e}");
                ExitCode::from(1)
            }
        };
    }
    match call(args).await {
        Ok(members) => {
            print!("{}", table(&members));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth cluster: {e}");
            ExitCode::from(1)
        }
    }
}

/// The token and TLS material the members were started with.
fn credentials(args: &ClusterArgs) -> Result<(ClusterToken, Option<ClusterTls>), String> {
    let token = match &args.cluster_token_file {
        Some(f) => ClusterToken::from_file(f).map_err(|e| format!("--cluster-token-file: {e}"))?,
        None => {
            return Err(
                "--cluster-token-file is required (the file the members were started with)".into(),
            )
        }
    };
    let tls = match &args.cluster_tls_dir {
        Some(d) => Some(ClusterTls::from_dir(d).map_err(|e| format!("--cluster-tls-dir: {e}"))?),
        None => None,
    };
    Ok((token, tls))
}

async fn settings(args: &ClusterArgs, action: SettingsAction) -> Result<String, String> {
    use crate::controller::settings::{SettingsAnswer, ADOPT_PATH, SETTINGS_PATH};
    let (token, tls) = credentials(args)?;
    let client = PeerClient::new(token, tls.as_ref(), Duration::from_secs(5))
        .map_err(|e| error_chain(&e))?;
    let (method, path) = match action {
        SettingsAction::Show => (reqwest::Method::GET, SETTINGS_PATH),
        SettingsAction::Adopt => (reqwest::Method::POST, ADOPT_PATH),
    };
    let url = client.url(&args.member);
    let answer = client
        .request(method, &args.member, path)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| format!("cannot reach member at {url}: {}", error_chain(&e)))?;
    let status = answer.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(format!("member at {url} refused the cluster token (401)"));
    }
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        return Err(format!("member at {url} answered {status}: {text}"));
    }
    let a: SettingsAnswer = answer
        .json()
        .await
        .map_err(|e| format!("member at {url}: unreadable answer: {e}"))?;
    let mut out = String::new();
    if matches!(action, SettingsAction::Adopt) {
        out.push_str(&format!("adopted the settings of member {}\n", a.member));
    }
    let width = a
        .cluster
        .keys()
        .chain(a.here.keys())
        .map(String::len)
        .max()
        .unwrap_or(0);
    for (name, value) in &a.cluster {
        out.push_str(&format!("{name:<width$}  {value}\n"));
    }
    if a.cluster.is_empty() {
        out.push_str("no settings committed yet (the first leader proposes its own)\n");
    }
    for d in &a.differs {
        out.push_str(&format!(
            "DIFFERS on member {}: {}: cluster {:?}, member {:?}\n",
            a.member,
            d.name,
            d.cluster.as_deref().unwrap_or("-"),
            d.here.as_deref().unwrap_or("-")
        ));
    }
    Ok(out)
}

async fn call(args: &ClusterArgs) -> Result<Vec<Member>, String> {
    let (token, tls) = credentials(args)?;
    let admin =
        ClusterAdmin::new(args.member.clone(), token, tls.as_ref()).map_err(|e| error_chain(&e))?;
    let result = match &args.command {
        ClusterCommand::List => admin.list().await,
        ClusterCommand::Add { id, url, catch_up } => admin.add(*id, url.clone(), *catch_up).await,
        ClusterCommand::Remove { id } => admin.remove(*id).await,
        ClusterCommand::Settings { .. } | ClusterCommand::Recover { .. } => {
            unreachable!("handled in run")
        }
    };
    result.map_err(|e| error_chain(&e))
}

/// `berth cluster recover`: offline, on the data directory itself.
fn recover(data_dir: &std::path::Path, id: u64) -> ExitCode {
    let raft_dir = data_dir.join("raft");
    match crate::raft::recover(&raft_dir, id, crate::clock::now_millis()) {
        Ok(plan) => {
            println!(
                "recovered {}: member {id} ({}) is now the only member of the cluster, \
                 with its log up to index {} and its state kept (old members: {:?}).",
                data_dir.display(),
                plan.addr,
                plan.last_index,
                plan.from_members,
            );
            println!(
                "next: start `berth serve --id {id} --data-dir {}` without --peer, then add \
                 members with `berth cluster add` (wipe the old members' data directories first).",
                data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth cluster recover: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

fn table(members: &[Member]) -> String {
    let mut out = format!(
        "{:<6} {:<8} {:<8} {:<10} {}\n",
        "ID", "ROLE", "LEADER", "MATCHED", "URL"
    );
    for m in members {
        out.push_str(&format!(
            "{:<6} {:<8} {:<8} {:<10} {}\n",
            m.id,
            if m.voter { "voter" } else { "learner" },
            if m.leader { "*" } else { "" },
            m.matched_index.map_or("-".to_string(), |i| i.to_string()),
            m.url
        ));
    }
    out
}
