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
            let rollout = s.rollouts.get(key)?;
            let replicas = s.replicas.get(key).map(Vec::as_slice).unwrap_or(&[]);
            let drained = super::drain::draining_hosts(s);
            // A complete RC with replicas on a draining host moves them (see `drain.rs`); a
            // rollout in progress goes first. Anything else has nothing to do: said before
            // copying anything, since every RC is looked at on every pass.
            let drain_only = !rollout.is_progressing();
            if drain_only
                && (rollout.state != RolloutState::Complete
                    || !replicas.iter().any(|r| drained.contains(&r.node)))
            {
                return None;
            }
            let rc = s
                .desired
                .replication_controllers
                .iter()
                .find(|r| is_key(key, &r.metadata.namespace, &r.metadata.name))?
                .clone();
            let sha = s.desired_commit.clone()?;
            Some((
                rc,
                rollout.clone(),
                replicas.to_vec(),
                sha,
                s.desired.nodes.clone(),
                drained,
                drain_only,
            ))
        }) else {
            return Next::Idle;
        };
        let (rc, rollout, replicas, sha, nodes, drained, drain_only) = read;
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
            let taken: BTreeSet<String> =
                self.taken_names(&rc.metadata.namespace, &rc.metadata.name, &replicas);
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
    ///
    /// Read through the pod index: a replica is named `<rc>-<suffix>`, so only the pods under
    /// that prefix can be the RC's, and only their hosts are read.
    fn draining(
        &self,
        namespace: &str,
        rc: &str,
        replicas: &[crate::raft::state::Replica],
    ) -> usize {
        let names: BTreeSet<&str> = replicas.iter().map(|r| r.name.as_str()).collect();
        self.pod_index
            .pods_under(&replica_prefix(namespace, rc))
            .into_iter()
            .filter(|key| {
                let (_, pod) = key.split_once('/').unwrap_or_default();
                !names.contains(pod)
                    && self.pod_index.hosts_of(key).iter().any(|host| {
                        self.cache(host).is_some_and(|cache| {
                            cache.read(|v| {
                                v.pod(namespace, pod)
                                    .iter()
                                    .any(|c| c.owner.as_deref() == Some(rc))
                            })
                        })
                    })
            })
            .count()
    }

    /// Names no new replica of the RC `rc` may take: every replica of the state, and every pod
    /// under the RC's name prefix seen on a host (a retired replica may still be stopping under
    /// its name). New names all start with that prefix, so no other pod can collide.
    pub(super) fn taken_names(
        &self,
        namespace: &str,
        rc: &str,
        replicas: &[crate::raft::state::Replica],
    ) -> BTreeSet<String> {
        let mut taken: BTreeSet<String> = replicas.iter().map(|r| r.name.clone()).collect();
        let prefix = replica_prefix(namespace, rc);
        taken.extend(
            self.pod_index
                .pods_under(&prefix)
                .into_iter()
                .filter_map(|key| key.split_once('/').map(|(_, pod)| pod.to_string())),
        );
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

/// Is `key` the `namespace/name` of an object? Compared in place: RC keys are matched against
/// every RC of the desired state.
pub(super) fn is_key(key: &str, namespace: &str, name: &str) -> bool {
    key.len() == namespace.len() + 1 + name.len()
        && key.starts_with(namespace)
        && key.ends_with(name)
        && key.as_bytes()[namespace.len()] == b'/'
}

/// `namespace/<base>-`: the start of the key of every replica the RC `rc` can have (see
/// `scheduler::new_replicas`).
fn replica_prefix(namespace: &str, rc: &str) -> String {
    format!("{namespace}/{}", crate::scheduler::replica_name_base(rc))
}
