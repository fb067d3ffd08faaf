//! The pure heart of berth: what to do next for one pod instance, from what is wanted, what is
//! seen and what the engine remembers. No I/O and no clock: `now` is an input.
//!
//! Rules, in order, for the containers of one pod name (`namespace/name`):
//! 1. Containers on a host whose engine did not answer are not even passed in: nothing is
//!    created there and, above all, nothing is removed on partial knowledge.
//! 2. The wanted containers are "current": on the desired host, with the desired spec hash,
//!    and joined to the pod's current holder. Everything else of that name is "stale": another
//!    spec, another host, no longer wanted, or left in a dead holder's network namespace.
//! 3. Image first: when a container of the desired spec is missing, its images are pulled on
//!    its host before anything stale is stopped. A failed pull leaves the old pod running.
//! 4. Stale containers stop gracefully, a pod's app containers first (their stop signal, then
//!    SIGKILL once the grace period and a margin are over), its holder last; then they are
//!    removed, with the pod's `emptyDir` volumes when nothing current remains on that host.
//! 5. Then the desired pod: wait while a gate holds it (a rollout, a busy host port); create
//!    what is missing; start a stopped holder; restart apps whose holder restarted after them
//!    (they sit in its old network namespace); start containers the restart policy wants
//!    running that Docker itself will not restart (created, or stopped by hand).
//! 6. Retries wait out the pod's backoff; a pod with nothing to do is done.

use std::collections::{BTreeMap, BTreeSet};

use super::types::*;
use crate::manifest::RestartPolicy;
use crate::raft::state::Millis;

/// Margin after a grace period before SIGKILL: the stop signal and the process's exit take a
/// moment to reach the engine's state.
pub const STOP_MARGIN_MS: Millis = 500;

/// What the engine remembers of one pod instance beyond Docker's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMemory {
    /// The desired spec's images are known to be on the desired host.
    pub images_ready: bool,
    /// Containers told to stop, with the time their grace runs out.
    pub stopping: BTreeMap<String, Millis>,
    /// Why the pod may not be created yet (a rollout gate), when it may not.
    pub gate: Option<String>,
    /// A failed step waits until then, with why it failed.
    pub retry: Option<(Millis, String)>,
    /// Containers to restart (their liveness probe failed), with why.
    pub restart: Vec<(String, String)>,
}

/// Everything `plan_pod` needs about one pod name.
#[derive(Debug, Clone, Copy)]
pub struct PodInputs<'a> {
    pub desired: Option<&'a DesiredPod>,
    /// Whether the desired host's engine answered.
    pub desired_host_known: bool,
    /// The managed containers of this pod name, on every host whose engine answered.
    pub seen: &'a [(&'a str, &'a ObservedContainer)],
    pub memory: &'a PodMemory,
    pub now: Millis,
}

/// What to do next for a pod. Short-lived (one per look at a pod): its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Act(Step),
    /// Nothing to do now; look again at `until` (or on the next event), and why.
    Wait {
        until: Option<Millis>,
        why: String,
    },
    /// The pod is as wanted (or gone, as wanted).
    Done,
}

pub fn plan_pod(i: &PodInputs) -> Decision {
    let (current, stale) = partition(i.desired, i.seen);
    let desired = i.desired.filter(|_| i.desired_host_known);
    if let Some(pod) = desired {
        if !i.memory.images_ready && !missing(pod, &current).is_empty() {
            return retrying(i, Step::Pull { pod: pod.clone() });
        }
    }
    if let Some(decision) = stop_stale(i, &stale, &current) {
        return decision;
    }
    let Some(pod) = desired else {
        return match i.desired {
            Some(p) => Decision::Wait {
                until: None,
                why: format!("host {} is not answering", p.node),
            },
            None => Decision::Done,
        };
    };
    if let Some(why) = &i.memory.gate {
        return Decision::Wait {
            until: None,
            why: why.clone(),
        };
    }
    if !missing(pod, &current).is_empty() {
        return retrying(i, Step::Create { pod: pod.clone() });
    }
    let key = pod.key();
    let holder = current.iter().find(|c| c.holder);
    if let Some(h) = holder.filter(|h| !h.running && h.state != "restarting") {
        return retrying(
            i,
            Step::Start {
                node: pod.node.clone(),
                pod: key,
                ids: vec![h.id.clone()],
            },
        );
    }
    let apps: Vec<&ObservedContainer> = current.iter().filter(|c| !c.holder).copied().collect();
    let mut restart: Vec<String> = Vec::new();
    if let Some(h) = holder {
        restart.extend(
            apps.iter()
                .filter(|a| a.running && a.started_at < h.started_at)
                .map(|a| a.id.clone()),
        );
    }
    restart.extend(
        i.memory
            .restart
            .iter()
            .filter(|(id, _)| apps.iter().any(|a| &a.id == id && a.running))
            .map(|(id, _)| id.clone()),
    );
    if !restart.is_empty() {
        restart.sort();
        restart.dedup();
        return retrying(
            i,
            Step::Restart {
                node: pod.node.clone(),
                pod: key,
                ids: restart,
            },
        );
    }
    let stopped: Vec<String> = pod
        .spec
        .containers
        .iter()
        .filter_map(|spec| apps.iter().find(|a| a.container == spec.name))
        .filter(|a| !a.running && should_run(pod.spec.restart_policy, a))
        .map(|a| a.id.clone())
        .collect();
    if !stopped.is_empty() {
        return retrying(
            i,
            Step::Start {
                node: pod.node.clone(),
                pod: key,
                ids: stopped,
            },
        );
    }
    Decision::Done
}

/// `step`, unless the pod is waiting out a backoff.
fn retrying(i: &PodInputs, step: Step) -> Decision {
    match &i.memory.retry {
        Some((at, why)) if *at > i.now => Decision::Wait {
            until: Some(*at),
            why: why.clone(),
        },
        _ => Decision::Act(step),
    }
}

/// Splits the seen containers into the desired pod's current ones and the stale rest.
fn partition<'a>(
    desired: Option<&DesiredPod>,
    seen: &[(&'a str, &'a ObservedContainer)],
) -> (
    Vec<&'a ObservedContainer>,
    Vec<(&'a str, &'a ObservedContainer)>,
) {
    let Some(pod) = desired else {
        return (Vec::new(), seen.iter().map(|(h, c)| (*h, *c)).collect());
    };
    let wanted: BTreeSet<&str> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let here = |h: &str, c: &ObservedContainer| h == pod.node && c.spec_hash == pod.spec_hash;
    let holder = seen
        .iter()
        .find(|(h, c)| here(h, c) && c.holder && pod.has_holder())
        .map(|(_, c)| c.id.as_str());
    let mut current = Vec::new();
    let mut stale = Vec::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for &(h, c) in seen {
        let ok = here(h, c)
            && if c.holder {
                Some(c.id.as_str()) == holder
            } else {
                wanted.contains(c.container.as_str())
                    && c.network_owner.as_deref() == holder
                    && names.insert(c.container.as_str())
            };
        if ok {
            current.push(c);
        } else {
            stale.push((h, c));
        }
    }
    (current, stale)
}

/// The containers (by name, the holder as [`HOLDER`]) the desired pod lacks.
fn missing<'a>(pod: &'a DesiredPod, current: &[&ObservedContainer]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    if pod.has_holder() && !current.iter().any(|c| c.holder) {
        out.push(HOLDER);
    }
    out.extend(
        pod.spec
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .filter(|name| !current.iter().any(|c| !c.holder && c.container == *name)),
    );
    out
}

/// The next step of stopping the stale containers of one host (the first host with any), or
/// `None` when there are none.
fn stop_stale(
    i: &PodInputs,
    stale: &[(&str, &ObservedContainer)],
    current: &[&ObservedContainer],
) -> Option<Decision> {
    let host = stale.iter().map(|(h, _)| *h).min()?;
    let on_host: Vec<&ObservedContainer> = stale
        .iter()
        .filter(|(h, _)| *h == host)
        .map(|(_, c)| *c)
        .collect();
    let pod = format!("{}/{}", on_host[0].namespace, on_host[0].pod);
    let alive = |c: &ObservedContainer| c.running || c.state == "restarting";
    let apps: Vec<&ObservedContainer> = on_host
        .iter()
        .filter(|c| !c.holder && alive(c))
        .copied()
        .collect();
    let unsignalled: Vec<&ObservedContainer> = apps
        .iter()
        .filter(|c| !i.memory.stopping.contains_key(&c.id))
        .copied()
        .collect();
    if !unsignalled.is_empty() {
        let grace = unsignalled
            .iter()
            .map(|c| c.grace_seconds)
            .max()
            .unwrap_or(0);
        return Some(Decision::Act(Step::Stop {
            node: host.to_string(),
            pod,
            ids: unsignalled
                .iter()
                .map(|c| (c.id.clone(), c.stop_signal.clone()))
                .collect(),
            deadline: i.now + Millis::from(grace) * 1000 + STOP_MARGIN_MS,
        }));
    }
    if !apps.is_empty() {
        let overdue: Vec<String> = apps
            .iter()
            .filter(|c| i.memory.stopping.get(&c.id).is_some_and(|d| *d <= i.now))
            .map(|c| c.id.clone())
            .collect();
        if !overdue.is_empty() {
            return Some(Decision::Act(Step::Kill {
                node: host.to_string(),
                pod,
                ids: overdue,
            }));
        }
        let until = apps
            .iter()
            .filter_map(|c| i.memory.stopping.get(&c.id))
            .min()
            .copied();
        return Some(Decision::Wait {
            until,
            why: format!("{pod} is stopping on {host}"),
        });
    }
    let holders: Vec<String> = on_host
        .iter()
        .filter(|c| c.holder && alive(c))
        .map(|c| c.id.clone())
        .collect();
    if !holders.is_empty() {
        return Some(Decision::Act(Step::Kill {
            node: host.to_string(),
            pod,
            ids: holders,
        }));
    }
    let desired_here = i.desired.is_some_and(|d| d.node == host);
    Some(Decision::Act(Step::Remove {
        node: host.to_string(),
        pod,
        ids: on_host.iter().map(|c| c.id.clone()).collect(),
        volumes: !desired_here || current.is_empty(),
    }))
}

/// Does the restart policy want this stopped container running again, where Docker will not
/// restart it itself? A container that was created but never started always should; one that
/// exited was either stopped by hand or is done (Docker shows crashes it will restart as
/// `restarting`).
fn should_run(policy: RestartPolicy, c: &ObservedContainer) -> bool {
    match c.state.as_str() {
        "created" => true,
        "restarting" | "running" | "removing" | "paused" => false,
        _ => match policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => c.exit_code.unwrap_or(1) != 0,
            RestartPolicy::Never => false,
        },
    }
}

/// Is this pod instance where its spec wants it? Every container exists with the pod's spec
/// hash and runs, or has completed (exit 0) under `restartPolicy: Never` or `OnFailure`, which
/// will not start it again. One half of the definition of "converged" (see the controller).
pub fn pod_done(pod: &DesiredPod, seen: &[&ObservedContainer]) -> bool {
    pod.spec.containers.iter().all(|want| {
        seen.iter().any(|c| {
            c.namespace == pod.namespace
                && c.pod == pod.name
                && c.container == want.name
                && c.spec_hash == pod.spec_hash
                && (c.running || completed(pod.spec.restart_policy, c))
        })
    })
}

fn completed(policy: RestartPolicy, c: &ObservedContainer) -> bool {
    policy != RestartPolicy::Always && c.state == "exited" && c.exit_code == Some(0)
}

/// The whole plan at once, for every pod name desired or seen: the first step of each, with the
/// engine remembering nothing (images assumed present, no stop under way). The engine plans
/// one pod at a time with its memory; this view serves tests, benchmarks and `describe`.
pub fn plan(desired: &[DesiredPod], observed: &Observed, now: Millis) -> Plan {
    let mut seen: BTreeMap<(&str, &str), Vec<(&str, &ObservedContainer)>> = BTreeMap::new();
    for (node, view) in observed {
        if let NodeView::Seen(containers) = view {
            for c in containers {
                seen.entry((c.namespace.as_str(), c.pod.as_str()))
                    .or_default()
                    .push((node.as_str(), c));
            }
        }
    }
    let by_key: BTreeMap<(&str, &str), &DesiredPod> = desired
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let keys: BTreeSet<(&str, &str)> = by_key.keys().chain(seen.keys()).copied().collect();
    let memory = PodMemory {
        images_ready: true,
        ..PodMemory::default()
    };
    let mut steps = Vec::new();
    for key in keys {
        let d = by_key.get(&key).copied();
        let inputs = PodInputs {
            desired: d,
            desired_host_known: d
                .is_some_and(|p| matches!(observed.get(&p.node), Some(NodeView::Seen(_)))),
            seen: seen.get(&key).map(Vec::as_slice).unwrap_or(&[]),
            memory: &memory,
            now,
        };
        if let Decision::Act(step) = plan_pod(&inputs) {
            steps.push(step);
        }
    }
    Plan { steps }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
