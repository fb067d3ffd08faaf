//! The engine's work for one pod instance (`namespace/name`): read what is wanted and seen,
//! plan one step, do it, and say when to look again.

use std::collections::BTreeSet;
use std::time::Duration;

use super::pod_book::PodStatus;
use super::pod_status::{self, Inputs};
use super::{error_chain, settled, Controller, Key};
use crate::clock::now_millis;
use crate::docker::{DockerError, HostCache};
use crate::engine::Next;
use crate::probe::{probed_ports, Kind};
use crate::raft::state::Millis;
use crate::reconcile::{plan_pod, Decision, DesiredPod, ObservedContainer, PodInputs, Step};
use crate::scheduler::host_ports;

/// Docker calls a liveness restart or a rejoin gives a container to stop before killing it.
const RESTART_GRACE_CAP: u32 = 10;
/// How long to wait before looking again at a pod whose host did not answer a step.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(5);

impl Controller {
    pub(super) async fn work_pod(&self, key: &str) -> Next {
        let desired = self.desired_pod(key);
        let Some((namespace, name)) = key.split_once('/') else {
            return Next::Idle;
        };
        let mut seen_owned: Vec<(String, ObservedContainer)> = Vec::new();
        let mut host_known = false;
        self.quiet.pod_worked();
        // Taken before anything is read: a change from here on brings the key back anyway.
        let observed = self.pod_index.get(key);
        let print = settled::fingerprint(desired.as_deref(), observed.as_ref(), |h| {
            self.readiness_of(h)
        });
        // Only the hosts that hold its containers, and its own: not every host.
        let mut names = observed.map(|o| o.hosts).unwrap_or_default();
        if let Some(d) = &desired {
            if !names.contains(&d.node) {
                names.push(d.node.clone());
            }
        }
        names.sort_by_key(|n| self.by_name.get(n).copied().unwrap_or(usize::MAX));
        for cache in names.iter().filter_map(|n| self.cache(n)) {
            let host = cache.host().name();
            cache.read(|v| {
                if !v.is_seen() {
                    return;
                }
                host_known |= desired.as_deref().is_some_and(|d| d.node == host);
                seen_owned.extend(
                    v.pod(namespace, name)
                        .into_iter()
                        .map(|c| (host.to_string(), c.clone())),
                );
            });
        }
        let seen: Vec<(&str, &ObservedContainer)> =
            seen_owned.iter().map(|(h, c)| (h.as_str(), c)).collect();
        let now = now_millis();
        let current: Vec<&ObservedContainer> = match &desired {
            Some(d) => seen
                .iter()
                .filter(|(h, c)| *h == d.node && c.spec_hash == d.spec_hash)
                .map(|(_, c)| *c)
                .collect(),
            None => Vec::new(),
        };
        let stale = seen
            .iter()
            .any(|(_, c)| !current.iter().any(|k| k.id == c.id));
        // Probes run while the pod's containers do, on the leader.
        let mut liveness_wait = None;
        let mut restarts: Vec<(String, String)> = Vec::new();
        match (
            &desired,
            self.cache(desired.as_deref().map_or("", |d| &d.node)),
        ) {
            (Some(d), Some(cache)) if host_known => {
                self.probes.sync(d, &current, cache.host());
                (restarts, liveness_wait) = self.probes.restarts_due(key, &current, now);
            }
            _ => self.probes.forget(key),
        }
        let (gate, blocked_by) = match &desired {
            Some(d) => self.gate(d, &seen),
            None => (None, None),
        };
        let (memory, entry) = self.book.with(key, |e| {
            let images_for = desired
                .as_ref()
                .map(|d| (d.node.clone(), d.spec_hash.clone()));
            e.memory.images_ready = images_for.is_some() && e.images_for == images_for;
            e.memory.gate = gate;
            e.memory.restart = restarts;
            e.settled = None;
            // Stops of containers that are gone are over.
            e.memory
                .stopping
                .retain(|id, _| seen.iter().any(|(_, c)| &c.id == id));
            (e.memory.clone(), e.clone())
        });
        let decision = plan_pod(&PodInputs {
            desired: desired.as_deref(),
            desired_host_known: host_known,
            seen: &seen,
            memory: &memory,
            now,
        });
        let readiness: Vec<(String, Option<crate::probe::Outcome>)> = desired
            .iter()
            .flat_map(|d| &d.spec.containers)
            .filter(|c| c.readiness_probe.is_some())
            .map(|c| {
                (
                    c.name.clone(),
                    self.probes.outcome(key, &c.name, Kind::Readiness),
                )
            })
            .collect();
        let liveness_failure = desired
            .iter()
            .flat_map(|d| &d.spec.containers)
            .filter_map(|c| self.probes.outcome(key, &c.name, Kind::Liveness))
            .find(|o| !o.ok)
            .and_then(|o| o.last_failure);
        let host_lost = !host_known
            && desired.as_deref().is_some_and(|d| {
                self.cache(&d.node).is_none_or(|c| {
                    c.read(|v| v.readiness(now, self.config.node_grace))
                        == crate::docker::Readiness::NotReady
                })
            });
        let status = pod_status::derive(&Inputs {
            desired: desired.as_deref(),
            host_known,
            host_lost,
            current: &current,
            stale,
            entry: &entry,
            decision: &decision,
            readiness: &readiness,
            liveness_failure,
            blocked_by,
            now,
            previous: &entry.status,
        });
        self.set_status(key, desired.as_deref(), status);
        let wait = |until: Option<Millis>| match until.into_iter().chain(liveness_wait).min() {
            Some(t) => Next::after(Duration::from_millis(t.saturating_sub(now))),
            None => Next::Idle,
        };
        match decision {
            Decision::Done => {
                let next = wait(None);
                if next == Next::Idle {
                    self.book.with(key, |e| e.settled = Some(print));
                }
                next
            }
            Decision::Wait { until, .. } => wait(until),
            // A retired replica leaves its Services' endpoints, then drains, then stops.
            Decision::Act(Step::Stop { .. })
                if desired.is_none() && self.drain_wait(key).is_some() =>
            {
                Next::after(self.drain_wait(key).unwrap_or_default())
            }
            // Services of the same commit get their cluster IPs first, so that the pod's
            // variables and hosts entries include them.
            Decision::Act(Step::Create { pod })
                if self.discovery_wait(&pod.namespace).is_some() =>
            {
                Next::after(self.discovery_wait(&pod.namespace).unwrap_or_default())
            }
            Decision::Act(step) => self.execute(key, desired.as_deref(), step, now).await,
        }
    }

    /// Records the pod's status; a change is news for its RC's rollout and for convergence.
    fn set_status(&self, key: &str, desired: Option<&DesiredPod>, status: PodStatus) {
        let changed = self.book.with(key, |e| {
            let changed = e.status != status;
            e.status = status;
            changed
        });
        if changed {
            if let Some(rc) =
                desired.and_then(|d| d.owner.as_ref().map(|o| format!("{}/{o}", d.namespace)))
            {
                self.runner.enqueue(Key::Rc(rc), Duration::ZERO);
            }
            self.runner.enqueue(Key::Converge, super::CONVERGE_DEBOUNCE);
        }
    }

    /// Why the pod may not be created yet, if it may not, and which other pod holds what it
    /// needs. Two gates: a `Recreate` rollout (no new replica starts while an old one
    /// remains), and a host port another pod publishes on the same host.
    fn gate(
        &self,
        pod: &DesiredPod,
        seen: &[(&str, &ObservedContainer)],
    ) -> (Option<String>, Option<String>) {
        if let Some(owner) = &pod.owner {
            let rc_key = format!("{}/{owner}", pod.namespace);
            // Looked up in the index, not among the RCs of the state: every pod asks.
            let recreate = self
                .desired
                .read()
                .expect("desired lock")
                .recreate
                .contains(&rc_key);
            if recreate {
                let recreate_waits = self.raft.state().read(|s| {
                    s.replicas
                        .get(&rc_key)
                        .into_iter()
                        .flatten()
                        .any(|r| r.revision != pod.spec_hash)
                });
                let old_running = || {
                    self.hosts.iter().any(|cache| {
                        cache.read(|v| {
                            v.containers.values().any(|c| {
                                c.namespace == pod.namespace
                                    && c.owner.as_ref() == Some(owner)
                                    && c.spec_hash != pod.spec_hash
                            })
                        })
                    })
                };
                if recreate_waits || old_running() {
                    return (
                        Some("waiting for the old replicas to stop (Recreate)".into()),
                        None,
                    );
                }
            }
        }
        let wanted = host_ports(&pod.spec);
        if wanted.is_empty() {
            return (None, None);
        }
        let Some(cache) = self.cache(&pod.node) else {
            return (None, None);
        };
        let mine: BTreeSet<&str> = seen.iter().map(|(_, c)| c.id.as_str()).collect();
        cache.read(|v| {
            for c in v.containers.values() {
                if mine.contains(c.id.as_str()) || !(c.running || c.state == "restarting") {
                    continue;
                }
                for (_, proto, host_port) in &c.published {
                    if wanted.contains(&(*host_port, *proto)) {
                        return (
                            Some(format!(
                                "hostPort {host_port} is in use on {} by {}/{}",
                                pod.node, c.namespace, c.pod
                            )),
                            Some(c.pod.clone()),
                        );
                    }
                }
            }
            (None, None)
        })
    }

    pub(super) fn cache(&self, node: &str) -> Option<&HostCache> {
        self.by_name.get(node).map(|i| &self.hosts[*i])
    }

    /// Does one step, then says when to look again: at once after a success (the next step
    /// may follow), after the backoff after a failure.
    async fn execute(
        &self,
        key: &str,
        desired: Option<&DesiredPod>,
        step: Step,
        now: Millis,
    ) -> Next {
        let Some(cache) = self.cache(step.node()) else {
            return Next::Idle;
        };
        // Fencing: a leader that no quorum acknowledged lately, or that lost the lead while
        // this pod was planned, makes no Docker call. And no leader ever removes what a leader
        // of a newer term created: it is the stale one.
        if !self.acting() {
            return Next::Idle;
        }
        let term = self.raft.current_term();
        let newer = |id: &str| cache.read(|v| v.containers.get(id).is_some_and(|c| c.term > term));
        let removes: Vec<&String> = match &step {
            Step::Stop { ids, .. } => ids.iter().map(|(id, _)| id).collect(),
            Step::Kill { ids, .. } | Step::Remove { ids, .. } => ids.iter().collect(),
            _ => Vec::new(),
        };
        if removes.iter().any(|id| newer(id)) {
            tracing::warn!(
                pod = key,
                term,
                "a container of a newer term is in the way: this leader is stale, not acting"
            );
            return Next::Idle;
        }
        let host = cache.host();
        let line = step.describe();
        let hash = desired.map_or("", |d| d.spec_hash.as_str());
        let started = std::time::Instant::now();
        let result: Result<Vec<String>, (String, DockerError)> = match &step {
            Step::Pull { pod } => self.pull(key, pod, cache).await.map(|()| Vec::new()),
            Step::Create { pod } => {
                // A remote engine's pods are reached through ports published on the host:
                // probes and Services need every declared container port there.
                let ephemeral = if host.is_local() {
                    Vec::new()
                } else {
                    let mut ports = probed_ports(&pod.spec);
                    ports.extend(
                        pod.spec
                            .containers
                            .iter()
                            .flat_map(|c| &c.ports)
                            .filter(|p| p.host_port.is_none())
                            .map(|p| p.container_port),
                    );
                    ports.sort_unstable();
                    ports.dedup();
                    ports
                };
                let discovery = self.discovery(&pod.namespace);
                let holder = crate::docker::create::container_name(
                    host.cluster(),
                    &pod.namespace,
                    &pod.name,
                    crate::reconcile::HOLDER,
                );
                host.create_pod_with(pod, &ephemeral, &discovery, self.raft.current_term())
                    .await
                    .map(|mut ids| {
                        // Inspect takes a name as well as an id: the holder is read back too.
                        if pod.has_holder() {
                            ids.push(holder);
                        }
                        ids
                    })
                    .map_err(|e| ("CreateError".to_string(), e))
            }
            Step::Start { ids, .. } => host
                .start(ids)
                .await
                .map(|()| ids.clone())
                .map_err(|e| ("StartError".to_string(), e)),
            Step::Restart { ids, .. } => {
                let grace = desired.map_or(0, |d| d.spec.termination_grace_period_seconds);
                let done = host
                    .restart(ids, grace.min(RESTART_GRACE_CAP))
                    .await
                    .map(|()| ids.clone())
                    .map_err(|e| ("RestartError".to_string(), e));
                if done.is_ok() {
                    for id in ids {
                        let Some(c) =
                            cache.read(|v| v.containers.get(id).map(|c| c.container.clone()))
                        else {
                            continue;
                        };
                        let for_liveness = self
                            .probes
                            .outcome(key, &c, Kind::Liveness)
                            .is_some_and(|o| !o.ok);
                        if for_liveness {
                            self.probes.restarted(key, &c, now);
                            self.book.with(key, |e| e.liveness_restarts += 1);
                        }
                    }
                }
                done
            }
            Step::Stop { ids, deadline, .. } => {
                let done = host.signal(ids).await;
                if done.is_ok() {
                    self.book.with(key, |e| {
                        for (id, _) in ids {
                            e.memory.stopping.insert(id.clone(), *deadline);
                        }
                    });
                }
                done.map(|()| ids.iter().map(|(id, _)| id.clone()).collect())
                    .map_err(|e| ("StopError".to_string(), e))
            }
            Step::Kill { ids, .. } => host
                .kill(ids)
                .await
                .map(|()| ids.clone())
                .map_err(|e| ("StopError".to_string(), e)),
            Step::Remove {
                ids, volumes, pod, ..
            } => {
                let mut done = host.remove_containers(ids).await;
                if done.is_ok() && *volumes {
                    let (ns, name) = pod.split_once('/').unwrap_or(("default", pod));
                    done = host.remove_pod_volumes(ns, name).await;
                }
                done.map(|()| ids.clone())
                    .map_err(|e| ("RemoveError".to_string(), e))
            }
        };
        match result {
            Ok(ids) => {
                if !matches!(
                    step,
                    Step::Stop { .. } | Step::Kill { .. } | Step::Remove { .. }
                ) {
                    self.book.with(key, |e| e.succeeded());
                }
                // A pull of an image already present is only a look: not news for history.
                if !matches!(step, Step::Pull { .. }) {
                    tracing::info!(
                        commit = desired.map_or("-", |d| d.commit.as_str()),
                        took_ms = started.elapsed().as_millis() as u64,
                        "{line}"
                    );
                    self.note_progress(desired, line.clone());
                }
                // Read back what the step changed, so the next look does not wait for events.
                let mut touched: Vec<String> = ids;
                touched.extend(cache.read(|v| {
                    let (ns, name) = key.split_once('/').unwrap_or(("", key));
                    v.pod(ns, name)
                        .into_iter()
                        .map(|c| c.id.clone())
                        .collect::<Vec<_>>()
                }));
                touched.sort();
                touched.dedup();
                if let Err(e) = cache.refresh(&touched).await {
                    tracing::debug!(node = host.name(), "refresh after {line}: {e}");
                }
                Next::after(Duration::ZERO)
            }
            Err((_, e)) if e.is_unreachable() => {
                tracing::debug!(node = host.name(), "{line}: {}", error_chain(&e));
                Next::after(UNREACHABLE_RETRY)
            }
            Err((reason, e)) => {
                let why = match &e {
                    DockerError::ImagePull { message, .. } => format!("ErrImagePull: {message}"),
                    _ => format!("{reason}: {}", error_chain(&e)),
                };
                let (wait, repeated) = self.book.with(key, |entry| {
                    let repeated = entry.memory.retry.as_ref().is_some_and(|(_, w)| *w == why);
                    (entry.failed(hash, why.clone(), now), repeated)
                });
                // Said once per change, not once per retry: a pod failing for an hour is a line.
                if !repeated {
                    tracing::warn!(pod = key, retry_in = ?wait, "{line} failed: {why}");
                }
                self.runner
                    .enqueue(Key::Pod(key.to_string()), Duration::ZERO);
                Next::after(wait)
            }
        }
    }

    /// Pulls the pod's images on its host (each once), noting success, warnings and failures.
    async fn pull(
        &self,
        key: &str,
        pod: &DesiredPod,
        cache: &HostCache,
    ) -> Result<(), (String, DockerError)> {
        let mut images: Vec<(String, crate::manifest::PullPolicy)> = Vec::new();
        for c in &pod.spec.containers {
            if !images.iter().any(|(i, _)| i == &c.image) {
                images.push((c.image.clone(), c.image_pull_policy));
            }
        }
        let mut warnings = Vec::new();
        for (image, policy) in images {
            match cache
                .host()
                .ensure_image(&image, policy, &self.config.pull)
                .await
            {
                Ok(warning) => warnings.extend(warning),
                Err(e) => {
                    if let DockerError::ImagePull { message, .. }
                    | DockerError::ImageNotPresent { image: message, .. } = &e
                    {
                        let shown = if matches!(e, DockerError::ImageNotPresent { .. }) {
                            format!("{message} is not present and imagePullPolicy is Never")
                        } else {
                            format!("{image}: {message}")
                        };
                        self.book.with(key, |entry| entry.pull_error = Some(shown));
                    }
                    return Err(("ErrImagePull".to_string(), e));
                }
            }
        }
        self.book.with(key, |e| {
            e.images_for = Some((pod.node.clone(), pod.spec_hash.clone()));
            e.pull_error = None;
            e.warnings = warnings;
        });
        Ok(())
    }
}
