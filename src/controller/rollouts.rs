//! The engine's work for one ReplicationController: drive its rollout (or scale) one decision
//! at a time, each committed through Raft before any container is created or stopped.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{error_chain, Controller};
use crate::clock::now_millis;
use crate::docker::Readiness;
use crate::engine::Next;
use crate::raft::state::{Command, RolloutState};
use crate::rollout::{self, Health, ReplicaView, Strategy};
use crate::scheduler::{new_replicas, Workload};

/// A progressing rollout is looked at this often even without news (minReadySeconds and
/// deadlines pass without events).
const WHILE_PROGRESSING: Duration = Duration::from_secs(1);
/// Times a refused placement is computed again at once.
const PLACEMENT_ATTEMPTS: usize = 5;

impl Controller {
    pub(super) async fn work_rc(&self, key: &str) -> Next {
        let now = now_millis();
        let Some(read) = self.raft.state().read(|s| {
            let rc = s
                .desired
                .replication_controllers
                .iter()
                .find(|r| format!("{}/{}", r.metadata.namespace, r.metadata.name) == key)?
                .clone();
            let rollout = s.rollouts.get(key)?.clone();
            let replicas = s.replicas.get(key).cloned().unwrap_or_default();
            let sha = s.desired_commit.clone()?;
            let drained = super::drain::draining_hosts(s);
            Some((rc, rollout, replicas, sha, s.desired.nodes.clone(), drained))
        }) else {
            return Next::Idle;
        };
        let (rc, rollout, replicas, sha, nodes, drained) = read;
        // A complete RC with replicas on a draining host moves them (see `drain.rs`); a
        // rollout in progress goes first.
        let drain_only = !rollout.is_progressing();
        if drain_only
            && (rollout.state != RolloutState::Complete
                || !replicas.iter().any(|r| drained.contains(&r.node)))
        {
            return Next::Idle;
        }
        let strategy = Strategy::of(&rc);
        let hosts = self.hosts_now();
        let views: Vec<ReplicaView> = replicas
            .iter()
            .map(|r| {
                let status = self
                    .book
                    .status(&format!("{}/{}", rc.metadata.namespace, r.name))
                    .unwrap_or_default();
                ReplicaView {
                    name: r.name.clone(),
                    node: r.node.clone(),
                    revision: r.revision.clone(),
                    created_at: r.created_at,
                    health: Health {
                        images_ready: status.images_ready,
                        ready: status.ready,
                        ready_since: status.ready_since,
                        problem: status
                            .probe_failure
                            .clone()
                            .filter(|_| !status.ready)
                            .or(status.reason.clone())
                            .or_else(|| (!status.phase.is_empty()).then(|| status.phase.clone())),
                        blocked_by: status.blocked_by.clone(),
                        host_lost: hosts.readiness.get(&r.node) != Some(&Readiness::Ready),
                    },
                }
            })
            .collect();
        let draining = self.draining(&rc.metadata.namespace, &rc.metadata.name, &replicas);
        let decision = if drain_only {
            match super::drain::step(
                &strategy,
                rc.replicas,
                &rollout.revision,
                &views,
                &drained,
                draining,
                now,
            ) {
                Some(d) => d,
                None => return Next::Idle,
            }
        } else {
            rollout::step(
                &strategy,
                rc.replicas,
                &rollout.revision,
                &views,
                draining,
                now,
            )
        };
        if decision.add > 0 && !self.hosts_looked_at() {
            return Next::after(super::placement::FIRST_LOOK);
        }
        if decision.add > 0 || !decision.retire.is_empty() {
            let taken: BTreeSet<String> = self.taken_names(&rc.metadata.namespace, &replicas);
            let hosts = self.scheduler_hosts(&nodes);
            let workload = Workload::of_rc(&rc, &rc.template.labels, &rc.template.spec);
            let mut done = false;
            // A placement refused as stale (a host it chose took pods meanwhile, or another
            // commit became desired) is computed again against the newer state.
            for _ in 0..PLACEMENT_ATTEMPTS {
                let (key_, revision, sha_) =
                    (key.to_string(), rollout.revision.clone(), sha.clone());
                let (workload, taken, retire) =
                    (workload.clone(), taken.clone(), decision.retire.clone());
                let count = decision.add;
                let decided = self
                    .place_and_propose(hosts.clone(), move |_, load, based_on| {
                        let add = new_replicas(
                            &key_, &workload, &revision, count, load, &taken, &sha_, now,
                        );
                        let exact = retire.is_empty();
                        let cmd = Command::Replicas {
                            sha: sha_,
                            rc: key_,
                            add,
                            retire,
                            at: now,
                            based_on: Some(based_on),
                        };
                        Some((cmd, exact))
                    })
                    .await;
                if decided == Some(true) {
                    done = true;
                    break;
                }
            }
            if !done {
                return Next::after(WHILE_PROGRESSING);
            }
        }
        if let Some(state) = decision.state {
            match &state {
                RolloutState::Halted { reasons } => {
                    tracing::warn!(rc = key, commit = %sha, "rollout halted, the old replicas keep serving: {}", reasons.join("; "))
                }
                RolloutState::Complete => {
                    tracing::info!(rc = key, commit = %sha, "rollout complete")
                }
                RolloutState::Progressing => {}
            }
            let cmd = Command::RolloutState {
                sha,
                rc: key.to_string(),
                state,
                at: now,
            };
            self.propose_quietly(cmd).await;
            self.runner.enqueue(super::Key::Converge, Duration::ZERO);
            return Next::Idle;
        }
        Next::after(WHILE_PROGRESSING)
    }

    /// Retired replicas of the RC whose containers are still on a host (stopping).
    fn draining(
        &self,
        namespace: &str,
        rc: &str,
        replicas: &[crate::raft::state::Replica],
    ) -> usize {
        let mut pods: BTreeSet<String> = BTreeSet::new();
        for cache in &self.hosts {
            cache.read(|v| {
                pods.extend(
                    v.containers
                        .values()
                        .filter(|c| c.namespace == namespace && c.owner.as_deref() == Some(rc))
                        .filter(|c| !replicas.iter().any(|r| r.name == c.pod))
                        .map(|c| c.pod.clone()),
                );
            });
        }
        pods.len()
    }

    /// Names no new replica may take: every replica of the state, and every pod seen on a host
    /// (a retired replica may still be stopping under its name).
    pub(super) fn taken_names(
        &self,
        namespace: &str,
        replicas: &[crate::raft::state::Replica],
    ) -> BTreeSet<String> {
        let mut taken: BTreeSet<String> = replicas.iter().map(|r| r.name.clone()).collect();
        for cache in &self.hosts {
            cache.read(|v| {
                taken.extend(
                    v.containers
                        .values()
                        .filter(|c| c.namespace == namespace)
                        .map(|c| c.pod.clone()),
                );
            });
        }
        taken
    }

    /// Proposes `cmd`; false when it was refused or failed (said in the log, retried later).
    pub(super) async fn propose_quietly(&self, cmd: Command) -> bool {
        match self.raft.propose(cmd).await {
            Ok(r) if r.ok => true,
            Ok(_) => {
                tracing::debug!(
                    "a decision computed against an older state was refused; recomputing"
                );
                false
            }
            Err(e) => {
                tracing::warn!("raft: {}", error_chain(&e));
                false
            }
        }
    }
}
