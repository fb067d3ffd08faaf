//! Convergence, defined once, and what follows a commit that cannot get there.
//!
//! A commit has converged when one look of the leader finds, all at once:
//! - every configured host answering (an unknown host might hold anything);
//! - every desired pod instance done: its containers run its current spec and it is ready, or,
//!   for `restartPolicy: Never`/`OnFailure`, completed with exit 0; nothing left to do for it
//!   (no step planned, no retry pending);
//! - no other managed container on any host: nothing still draining or being pruned;
//! - every RC's rollout complete (a halted one never is): its replicas all of the template's
//!   revision, as many as desired (none `Pending`), each available.
//!
//! The leader then commits `Converged`, which sets the commit's `converged_at` and outcome
//! `applied`; `converged` in the status API is read from that committed record, so status and
//! history agree everywhere. `in_sync` is the same check, live, on this controller.
//!
//! A commit that does not get there in time fails: an RC's rollout halts on its own deadline
//! (see `rollouts.rs`); a bare Pod not done within its `berth.io/progress-deadline-seconds`
//! (default 120) of the commit being applied fails the commit here. With `--on-failure
//! rollback`, a failed commit is followed by the last converged one, applied again.

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::OnFailure;
use super::{error_chain, Controller};
use crate::clock::now_millis;
use crate::engine::Next;
use crate::manifest::annotations::PROGRESS_DEADLINE_SECONDS;
use crate::manifest::{load_and_check, SourceFile};
use crate::raft::state::{object_key, Command, DesiredChanges, Millis, Outcome, RolloutState};
use crate::reconcile::pod_done;
use crate::rollout::Strategy;
use crate::scheduler::{place_pods, Load};
use crate::sync::CommitId;

/// How often a commit that is still applying is looked at without news (deadlines pass
/// without events).
const WHILE_APPLYING: Duration = Duration::from_secs(2);

impl Controller {
    pub(super) async fn work_converge(&self) -> Next {
        let now = now_millis();
        let index = self.desired();
        let Some((sha, outcome, applied_at, rollouts_done, last_converged, bare, pending)) =
            self.raft.state().read(|s| {
                let sha = s.desired_commit.clone()?;
                let record = s.commit(&sha)?;
                let rollouts_done = s
                    .rollouts
                    .values()
                    .all(|r| r.state == RolloutState::Complete);
                let bare: Vec<(String, Millis)> = s
                    .desired
                    .pods
                    .iter()
                    .map(|p| {
                        let deadline = p
                            .metadata
                            .annotations
                            .get(PROGRESS_DEADLINE_SECONDS)
                            .and_then(|v| v.parse::<Millis>().ok())
                            .unwrap_or(Strategy::default().progress_deadline_seconds.into());
                        (
                            object_key(&p.metadata.namespace, &p.metadata.name),
                            deadline * 1000,
                        )
                    })
                    .collect();
                Some((
                    sha,
                    record.outcome,
                    record.applied_at.unwrap_or(now),
                    rollouts_done,
                    s.last_converged.clone(),
                    bare,
                    // Pods and replicas no host fits yet: not done, whatever the hosts run.
                    // And pods placed since the index was last brought up to date: the index
                    // follows the applied state a moment behind (see `follow_state`), and a
                    // pod missing from it would be "done" by default.
                    crate::scheduler::pending(s).len()
                        + usize::from(s.placement.generation != index.placed_at),
                ))
            })
        else {
            self.set_in_sync(None);
            return Next::Idle;
        };
        let all_seen = self.hosts.iter().all(|c| c.read(|v| v.is_seen()));
        let mut pods_done = true;
        let mut no_strays = true;
        // This runs over every pod at each resync (100,000 at scale): one key buffer for every
        // container, and a yield now and then so the runtime's other tasks (Raft's heartbeats
        // among them) are not held up.
        let mut key = String::new();
        for (i, cache) in self.hosts.iter().enumerate() {
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
            let host = cache.host().name();
            cache.read(|v| {
                for c in v.containers.values() {
                    key.clear();
                    key.push_str(&c.namespace);
                    key.push('/');
                    key.push_str(&c.pod);
                    let wanted = index
                        .pods
                        .get(&key)
                        .is_some_and(|d| d.node == host && d.spec_hash == c.spec_hash);
                    no_strays &= wanted;
                }
            });
        }
        for (i, (key, pod)) in index.pods.iter().enumerate() {
            if i % 4096 == 4095 {
                tokio::task::yield_now().await;
            }
            let seen_done = self.cache(&pod.node).is_some_and(|cache| {
                cache.read(|v| pod_done(pod, &v.pod(&pod.namespace, &pod.name)))
            });
            pods_done &= seen_done && self.book.is_done(key);
        }
        // Not held across the proposals below: see `follow_state`.
        drop(index);
        let in_sync = all_seen && rollouts_done && pods_done && no_strays && pending == 0;
        self.set_in_sync(in_sync.then(|| sha.clone()));
        if in_sync && outcome == Outcome::Applying {
            tracing::info!(commit = %sha, "converged");
            self.flush_progress().await;
            self.propose_quietly(Command::Converged { sha, at: now })
                .await;
            return Next::Idle;
        }
        if outcome == Outcome::Applying && !in_sync {
            let late: Vec<String> = bare
                .iter()
                .filter(|(key, deadline)| {
                    now.saturating_sub(applied_at) > *deadline
                        && !self.book.status(key).is_some_and(|s| s.done)
                })
                .map(|(key, _)| {
                    let status = self.book.status(key).unwrap_or_default();
                    let why = status
                        .reason
                        .or(status.probe_failure)
                        .unwrap_or_else(|| format!("{} within its deadline", status.phase));
                    let name = key.split_once('/').map_or(key.as_str(), |(_, n)| n);
                    format!("{name}: {why}")
                })
                .collect();
            if !late.is_empty() {
                tracing::warn!(commit = %sha, "commit failed: {}", late.join("; "));
                self.propose_quietly(Command::Failed {
                    sha: sha.clone(),
                    reasons: late,
                    at: now,
                })
                .await;
                self.runner.enqueue(super::Key::Converge, Duration::ZERO);
                return Next::Idle;
            }
        }
        if outcome == Outcome::Failed && self.config.on_failure == OnFailure::Rollback {
            if let Some(to) = last_converged.filter(|l| *l != sha) {
                self.rollback(&sha, &to, now).await;
            }
        }
        if in_sync {
            Next::Idle
        } else {
            Next::after(WHILE_APPLYING)
        }
    }

    fn set_in_sync(&self, sha: Option<String>) {
        self.live.write().expect("live lock").in_sync_on = sha;
    }

    /// Applies `to` (the last converged commit) again after `failed` halted: its tree is read
    /// from the mirror and checked as any commit is, then committed as a rollback.
    async fn rollback(&self, failed: &str, to: &str, now: Millis) {
        let Ok(id) = CommitId::parse(to) else {
            return;
        };
        let files = match self
            .git
            .read_tree(&id, &self.config.path, &self.config.limits)
            .await
        {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(
                    commit = failed,
                    to,
                    "rollback: cannot read the commit: {}",
                    error_chain(&e)
                );
                return;
            }
        };
        let files: Vec<SourceFile> = files
            .into_iter()
            .map(|f| SourceFile {
                path: f.path,
                bytes: f.bytes,
            })
            .collect();
        let desired = match load_and_check(&files, &self.config.limits, &self.config.host_paths) {
            Ok(d) => d,
            Err(problems) => {
                tracing::warn!(
                    commit = failed,
                    to,
                    "rollback: {to} no longer validates ({} problems); not rolling back",
                    problems.len()
                );
                return;
            }
        };
        let hosts = self.scheduler_hosts(&desired.nodes);
        let read = self.raft.state().read(|s| {
            let record = s.commit(to)?.clone();
            let pod_nodes: BTreeMap<_, _> =
                place_pods(&desired, &s.pod_nodes, &mut Load::of(s, &hosts));
            // Only what changed travels through Raft, against the failed commit's state.
            let changes = DesiredChanges::between(s, &desired, &s.replicas, &pod_nodes);
            Some((record, changes))
        });
        let Some((record, changes)) = read else {
            return;
        };
        tracing::warn!(
            commit = failed,
            to,
            "rolling back to the last commit that converged"
        );
        self.propose_quietly(Command::RollbackChanges {
            failed: failed.to_string(),
            to: Box::new(record),
            changes,
            at: now,
        })
        .await;
    }
}
