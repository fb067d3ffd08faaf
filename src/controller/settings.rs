//! Cluster-wide settings on the controller side: this member's own values (from its flags), the
//! check against the committed ones, and what a member that disagrees does.
//!
//! - No settings committed yet: the leader proposes its own (bootstrap).
//! - A one-member cluster adopts its own flags when they change: the operator restarted it with
//!   new flags, and there is nobody to disagree with.
//! - With several members, a member whose flags disagree reports it (status, log) and does not
//!   lead: it stops standing for election, and a leader stops sending heartbeats so the others
//!   elect one that agrees. It never acts on the hosts meanwhile. If no leader appears for a
//!   while (every member disagrees), it stands again, so that `adopt` has a leader to commit
//!   through; it still does not act.
//! - `berth cluster settings adopt --member M` commits M's flags as the cluster's, recorded with
//!   who and when.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{error_chain, Config, Controller, OnFailure};
use crate::raft::state::{
    differing, Command, SettingValues, SettingsChange, HISTORY_BYTES, HISTORY_SIZE,
};

/// `GET` the cluster's and this member's settings; `POST .../adopt` makes this member's the
/// cluster's. Both behind the cluster token.
pub const SETTINGS_PATH: &str = "/raft/admin/settings";
pub const ADOPT_PATH: &str = "/raft/admin/settings/adopt";
/// A member's settings, sent to the leader to be proposed.
const PROPOSE_PATH: &str = "/raft/settings";
/// How often agreement is checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The settings of this member's flags that decide what runs, by name.
pub fn local_values(config: &Config) -> SettingValues {
    let mut nodes: Vec<String> = config
        .nodes
        .iter()
        .map(|n| format!("{}={}", n.name, n.endpoint))
        .collect();
    nodes.sort();
    // Per-host settings change placement, so every member must place alike. Hosts without any
    // are left out, so a cluster from before they existed keeps agreeing with itself.
    let mut per_host: Vec<String> = config
        .nodes
        .iter()
        .filter(|n| !n.labels.is_empty() || n.advertise.is_some() || n.capacity.is_some())
        .map(|n| {
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{}[labels {}; advertise {}; capacity {}]",
                n.name,
                labels.join(","),
                n.advertise.as_deref().unwrap_or("-"),
                n.capacity.as_deref().unwrap_or("engine")
            )
        })
        .collect();
    per_host.sort();
    let signatures = match &config.signatures {
        None => "off".to_string(),
        Some(p) => format!(
            "{}{}",
            file_digest(&p.allowed_signers),
            p.revoked_keys
                .as_deref()
                .map(|r| format!(" revoked {}", file_digest(r)))
                .unwrap_or_default()
        ),
    };
    [
        ("repo", config.repo.clone()),
        ("branch", config.branch.clone()),
        ("path", config.path.clone()),
        ("nodes", nodes.join(",")),
        ("node-grace", format!("{}ms", config.node_grace.as_millis())),
        (
            "on-failure",
            match config.on_failure {
                OnFailure::Halt => "halt",
                OnFailure::Rollback => "rollback",
            }
            .to_string(),
        ),
        ("max-file-size", config.limits.max_file_bytes.to_string()),
        ("max-tree-files", config.limits.max_tree_files.to_string()),
        ("max-tree-size", config.limits.max_tree_bytes.to_string()),
        ("allow-host-path", config.host_paths.describe()),
        ("verify-signatures", signatures),
        (
            "allow-signed-rewind",
            config.allow_signed_rewind.to_string(),
        ),
        ("pull-fallback", config.pull.fallback.to_string()),
        ("service-cidr", config.services.cidr.to_string()),
    ]
    .into_iter()
    .chain((!per_host.is_empty()).then(|| ("node-settings", per_host.join(" "))))
    .map(|(k, v)| (k.to_string(), v))
    .chain(history_size(config))
    .collect()
}

/// `history-size`, only when it is not the default: clusters formed before the setting existed
/// committed settings without it, and their members (default flags) must still agree.
fn history_size(config: &Config) -> Option<(String, String)> {
    (config.history_bytes != HISTORY_BYTES)
        .then(|| (HISTORY_SIZE.to_string(), config.history_bytes.to_string()))
}

/// A file named by a setting stands for its contents: members may keep it at different paths.
fn file_digest(path: &std::path::Path) -> String {
    use sha2::Digest;
    match std::fs::read(path) {
        Ok(bytes) => format!("sha256:{:x}", sha2::Sha256::digest(bytes)),
        Err(e) => format!("unreadable {}: {e}", path.display()),
    }
}

/// This member's agreement with the cluster, for the status API.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    /// This member's flags match the committed settings (false also before any are committed).
    pub agree: bool,
    /// The settings that differ: name, the cluster's value, this member's.
    pub differs: Vec<Difference>,
    /// The last changes, newest last.
    pub changes: Vec<SettingsChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Difference {
    pub name: String,
    pub cluster: Option<String>,
    pub here: Option<String>,
}

impl Controller {
    /// True while this member may act on the hosts: it leads with a quorum, and its settings
    /// are the cluster's.
    pub fn acting(&self) -> bool {
        self.raft.is_leader() && self.settings_agree.load(Ordering::Relaxed)
    }

    pub fn settings_view(&self) -> SettingsView {
        let (committed, changes) = self.raft.state().read(|s| {
            (
                s.settings.values.clone(),
                s.settings.changes.iter().cloned().collect(),
            )
        });
        SettingsView {
            agree: self.settings_agree.load(Ordering::Relaxed),
            differs: differences(&committed, &self.local_settings),
            changes,
        }
    }

    /// Keeps `settings_agree` current and applies the rules in the module doc.
    pub(super) async fn settings_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let standoff = self.config.cluster.election_timeout * 10;
        let mut said: Option<Vec<String>> = None;
        let mut last_leader_seen = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mut committed = self.raft.state().read(|s| s.settings.values.clone());
            let alone = self.raft.members().len() <= 1;
            let leading = self.raft.is_leader();
            if leading && committed != self.local_settings && (committed.is_empty() || alone) {
                if let Err(e) = self.adopt_here().await {
                    tracing::warn!("proposing this member's settings: {e}");
                    continue;
                }
                // Agreed at once, not at the next check: the first sync waits for it.
                committed = self.raft.state().read(|s| s.settings.values.clone());
            }
            let differs = differing(&committed, &self.local_settings);
            let agree = !committed.is_empty() && differs.is_empty();
            let was = self.settings_agree.swap(agree, Ordering::Relaxed);
            if agree && !was && leading {
                // Work skipped while the settings were not yet the cluster's (the first sync, a
                // leader's first look) is done now, not at the next poll.
                self.enqueue_all();
                self.sync_now.notify_one();
            }
            if committed.is_empty() {
                continue;
            }
            let facts = self.raft.leader_facts();
            if facts.leader.is_some() {
                last_leader_seen = Instant::now();
            }
            let runtime = self.raft.raft().runtime_config();
            if agree {
                self.raft.set_standing(true);
                runtime.heartbeat(true);
            } else {
                // Step aside, unless nobody has led for a while (then every member may
                // disagree, and adopt needs a leader).
                let nobody_leads = last_leader_seen.elapsed() > standoff;
                self.raft.set_standing(nobody_leads);
                runtime.heartbeat(!facts.raft_leader || nobody_leads);
            }
            if said.as_ref() != Some(&differs) {
                if agree {
                    if said.is_some() {
                        tracing::info!("this member's settings are the cluster's again");
                    }
                } else {
                    tracing::warn!(
                        differ = %differs.join(", "),
                        "this member's flags differ from the cluster's settings: it does not lead or act. \
                         Fix its flags, or make them the cluster's with `berth cluster settings adopt --member <this member>`"
                    );
                }
                said = Some(differs);
            }
        }
    }

    /// Proposes this member's settings through the leader (or directly when leading).
    async fn adopt_here(&self) -> Result<bool, String> {
        let cmd = Command::Settings {
            values: self.local_settings.clone(),
            by: self.raft.id(),
            at: crate::clock::now_millis(),
        };
        if self.raft.is_leader() {
            self.raft
                .propose(cmd)
                .await
                .map(|r| r.ok)
                .map_err(|e| error_chain(&e))?;
            tracing::info!("the cluster's settings are now this member's");
            return Ok(true);
        }
        let leader = self
            .raft
            .members()
            .into_iter()
            .find(|m| m.leader)
            .ok_or("no leader is known: try again once the cluster has one")?;
        let answer = self
            .peers
            .request(reqwest::Method::POST, &leader.url, PROPOSE_PATH)
            .timeout(self.config.cluster.propose_timeout + Duration::from_secs(1))
            .json(&cmd)
            .send()
            .await
            .map_err(|e| format!("cannot reach the leader: {}", error_chain(&e)))?;
        if answer.status() != reqwest::StatusCode::OK {
            return Err(format!(
                "the leader (member {}) refused: {}",
                leader.id,
                answer.text().await.unwrap_or_default()
            ));
        }
        Ok(true)
    }
}

fn differences(committed: &SettingValues, local: &SettingValues) -> Vec<Difference> {
    differing(committed, local)
        .into_iter()
        .map(|name| Difference {
            cluster: committed.get(&name).cloned(),
            here: local.get(&name).cloned(),
            name,
        })
        .collect()
}

/// The settings routes (mounted behind the cluster token).
pub(super) fn routes(ctl: Arc<Controller>) -> Router {
    Router::new()
        .route(SETTINGS_PATH, get(show))
        .route(ADOPT_PATH, post(adopt))
        .route(PROPOSE_PATH, post(propose))
        .with_state(ctl)
}

/// What `berth cluster settings show` prints.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettingsAnswer {
    pub member: u64,
    pub cluster: SettingValues,
    pub here: SettingValues,
    pub differs: Vec<Difference>,
}

async fn show(State(ctl): State<Arc<Controller>>) -> Json<SettingsAnswer> {
    let cluster = ctl.raft.state().read(|s| s.settings.values.clone());
    Json(SettingsAnswer {
        member: ctl.raft.id(),
        differs: differences(&cluster, &ctl.local_settings),
        here: ctl.local_settings.clone(),
        cluster,
    })
}

async fn adopt(State(ctl): State<Arc<Controller>>) -> Response {
    match ctl.adopt_here().await {
        Ok(_) => show(State(ctl)).await.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    }
}

async fn propose(State(ctl): State<Arc<Controller>>, Json(cmd): Json<Command>) -> Response {
    if !matches!(cmd, Command::Settings { .. }) {
        return (StatusCode::BAD_REQUEST, "only settings are proposed here").into_response();
    }
    if !ctl.raft.is_leader() {
        return (StatusCode::MISDIRECTED_REQUEST, "not the leader").into_response();
    }
    match ctl.raft.propose(cmd).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, error_chain(&e)).into_response(),
    }
}
