//! One reconcile pass (leader only): observe every host, plan, execute, record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::docker::{DockerError, DockerHost};
use crate::raft::state::Command;
use crate::reconcile::{desired, plan, pod_done, NodeView, Observed, Step};

use super::live::{now_millis, NodeStatus};
use super::sync::error_chain;
use super::{Controller, ControllerError};

/// Docker calls in flight at once across all hosts: enough to overlap slow image pulls and
/// graceful stops, few enough not to swamp a small engine.
const CONCURRENCY: usize = 8;
/// Retry delays after a failed image pull: 1s, 2s, 4s ... capped at 5 minutes.
const BACKOFF_CAP: Duration = Duration::from_secs(300);

impl Controller {
    pub(super) async fn reconcile_once(&self) -> Result<(), ControllerError> {
        let observed = self.observe().await;
        let (pods, sha, converged_before) = self.raft.state().read(|s| {
            let sha = s.desired_commit.clone();
            let converged = sha
                .as_deref()
                .and_then(|c| s.commit(c))
                .is_some_and(|c| c.converged_at.is_some());
            (desired::pods(s), sha, converged)
        });
        self.forget_undesired(&pods);
        let full = plan(&pods, &observed);
        // Pods waiting out an image-pull backoff are left alone until their time comes.
        let now = Instant::now();
        let steps: Vec<Step> = {
            let backoff = self.backoff.lock().expect("backoff lock");
            full.steps
                .into_iter()
                .filter(|s| match s {
                    Step::Create { pod } | Step::Replace { pod, .. } => backoff
                        .get(&pod_key(&pod.namespace, &pod.name))
                        .is_none_or(|(_, until)| *until <= now),
                    _ => true,
                })
                .collect()
        };
        let lines: Vec<String> = steps.iter().map(Step::describe).collect();
        let results = self.execute(steps).await;
        let errors: Vec<String> = results.iter().filter_map(|r| r.clone().err()).collect();
        for l in &lines {
            tracing::info!(commit = sha.as_deref().unwrap_or("-"), "{l}");
        }
        for e in &errors {
            tracing::warn!(commit = sha.as_deref().unwrap_or("-"), "step failed: {e}");
        }

        // "Converged" is defined once, here; status and history both read the result of this
        // decision from committed state (the `Converged` entry), never from this pass directly.
        //
        // A commit has converged when one pass of the leader found, all at once:
        // - every configured host seen (an unknown host might hold anything);
        // - nothing left to do: no step planned, and no pod waiting out a backoff;
        // - every desired pod instance done: each of its containers runs the pod's current
        //   spec, or, for `restartPolicy: Never`/`OnFailure`, exited 0 (a completed pod is done
        //   and is not restarted);
        // - hence no container that no pod wants (pruning and draining are steps).
        // States added later keep to the same rule: a halted rollout never converges, and
        // replicas still draining, `Pending` (unplaced) or `NodeLost` keep a commit from it.
        let all_seen = observed.values().all(|v| matches!(v, NodeView::Seen(_)));
        let all_done = pods.iter().all(|p| match observed.get(&p.node) {
            Some(NodeView::Seen(cs)) => pod_done(p, cs),
            _ => false,
        });
        let converged = lines.is_empty()
            && all_seen
            && all_done
            && self.backoff.lock().expect("backoff lock").is_empty();
        self.live.write().expect("live lock").in_sync_on = sha.clone().filter(|_| converged);

        let Some(sha) = sha else { return Ok(()) };
        if converged_before {
            return Ok(()); // Healing after convergence is not news for the commit's history.
        }
        if !lines.is_empty() {
            self.raft
                .propose(Command::Executed {
                    sha: sha.clone(),
                    plan: lines,
                    errors,
                    at: now_millis(),
                })
                .await?;
            self.wake.notify_one(); // look again at once: the next pass may find it converged
        } else if converged {
            tracing::info!(commit = %sha, "converged");
            self.raft
                .propose(Command::Converged {
                    sha,
                    at: now_millis(),
                })
                .await?;
        }
        Ok(())
    }

    /// Lists every host's managed containers. A host that does not answer is `Unknown`.
    async fn observe(&self) -> Observed {
        // Futures are collected before they are polled: a closure returning an `async` block
        // here trips the compiler's higher-ranked `Send` check when the loop is spawned.
        let looks: Vec<_> = self.hosts.iter().map(look).collect();
        let views = stream::iter(looks)
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut observed = Observed::new();
        let mut live = self.live.write().expect("live lock");
        for (host, list, info) in views {
            let status = live
                .nodes
                .entry(host.name().to_string())
                .or_insert_with(|| NodeStatus {
                    name: host.name().to_string(),
                    endpoint: host.endpoint().to_string(),
                    ready: false,
                    error: None,
                    info: None,
                    containers: Vec::new(),
                    last_seen: None,
                });
            match (list, info) {
                (Ok(containers), Ok(info)) => {
                    if !status.ready {
                        tracing::info!(node = host.name(), "Docker host ready");
                    }
                    status.ready = true;
                    status.error = None;
                    status.info = Some(info);
                    status.last_seen = Some(now_millis());
                    status.containers = containers.clone();
                    observed.insert(host.name().to_string(), NodeView::Seen(containers));
                }
                (Err(e), _) | (_, Err(e)) => {
                    if status.ready {
                        tracing::warn!(
                            node = host.name(),
                            "Docker host not ready: {}",
                            error_chain(&e)
                        );
                    }
                    status.ready = false;
                    status.error = Some(error_chain(&e));
                    observed.insert(host.name().to_string(), NodeView::Unknown);
                }
            }
        }
        observed
    }

    /// Runs the steps, at most `CONCURRENCY` at once; one failing step does not stop the others.
    async fn execute(&self, steps: Vec<Step>) -> Vec<Result<(), String>> {
        let hosts: BTreeMap<&str, &DockerHost> = self.hosts.iter().map(|h| (h.name(), h)).collect();
        let runs: Vec<_> = steps
            .into_iter()
            .map(|step| self.run_one(hosts.get(step.node()).copied(), step))
            .collect();
        stream::iter(runs)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    async fn run_one(&self, host: Option<&DockerHost>, step: Step) -> Result<(), String> {
        let Some(host) = host else {
            return Err(format!("{}: no such host", step.describe()));
        };
        let result = run_step(host, &step).await;
        self.note_result(&step, &result);
        result.map_err(|e| format!("{}: {}", step.describe(), error_chain(&e)))
    }

    /// Drops backoff and errors of pods no commit wants any more (an image fixed by removing the
    /// pod, say), so they neither block convergence nor show in status.
    fn forget_undesired(&self, pods: &[crate::reconcile::DesiredPod]) {
        let wanted: std::collections::BTreeSet<String> = pods
            .iter()
            .map(|p| pod_key(&p.namespace, &p.name))
            .collect();
        self.backoff
            .lock()
            .expect("backoff lock")
            .retain(|k, _| wanted.contains(k));
        self.live
            .write()
            .expect("live lock")
            .pod_errors
            .retain(|k, _| wanted.contains(k));
    }

    /// Tracks image-pull failures per pod for backoff and for the pod's phase in the API.
    fn note_result(&self, step: &Step, result: &Result<(), DockerError>) {
        let (Step::Create { pod } | Step::Replace { pod, .. }) = step else {
            return;
        };
        let key = pod_key(&pod.namespace, &pod.name);
        let mut backoff = self.backoff.lock().expect("backoff lock");
        let mut live = self.live.write().expect("live lock");
        match result {
            Ok(()) => {
                backoff.remove(&key);
                live.pod_errors.remove(&key);
            }
            Err(e) => {
                let attempts = backoff.get(&key).map_or(0, |(n, _)| *n) + 1;
                let delay = Duration::from_secs(1u64 << attempts.min(9)).min(BACKOFF_CAP);
                backoff.insert(key.clone(), (attempts, Instant::now() + delay));
                let reason = if matches!(e, DockerError::ImagePull { .. }) {
                    "ErrImagePull"
                } else {
                    "CreateError"
                };
                tracing::warn!(pod = %key, attempts, retry_in = ?delay, "{reason}: {}", error_chain(e));
                live.pod_errors
                    .insert(key, format!("{reason}: {}", error_chain(e)));
            }
        }
    }
}

async fn run_step(host: &DockerHost, step: &Step) -> Result<(), DockerError> {
    match step {
        Step::Create { pod } => host.create_pod(pod).await.map(drop),
        Step::Start { ids, .. } => host.start(ids).await,
        Step::Replace {
            pod,
            remove,
            grace_seconds,
        } => {
            host.remove(remove, *grace_seconds).await?;
            host.create_pod(pod).await.map(drop)
        }
        Step::Remove {
            pod,
            ids,
            grace_seconds,
            ..
        } => {
            host.remove(ids, *grace_seconds).await?;
            let (namespace, name) = pod.split_once('/').unwrap_or(("default", pod));
            host.remove_pod_volumes(namespace, name).await
        }
    }
}

type Look<'h> = (
    &'h DockerHost,
    Result<Vec<crate::reconcile::ObservedContainer>, DockerError>,
    Result<crate::docker::NodeInfo, DockerError>,
);

/// Both calls at once: this sits on the self-heal path (event → observe → plan → create).
async fn look(h: &DockerHost) -> Look<'_> {
    let (list, info) = tokio::join!(h.list_managed(), h.info());
    (h, list, info)
}

pub fn pod_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}
