//! What a pod instance looks like to an operator (phase, readiness, why), derived from what the
//! engine sees and decided. Pure: the same inputs always give the same status.

use super::pod_book::{PodEntry, PodStatus};
use crate::manifest::RestartPolicy;
use crate::probe::Outcome;
use crate::raft::state::Millis;
use crate::reconcile::{Decision, DesiredPod, ObservedContainer};

/// A container that started this recently after a crash counts as crash-looping.
const CRASH_WINDOW_MS: Millis = 10_000;

/// Everything the status of one pod instance is made from.
pub struct Inputs<'a> {
    pub desired: Option<&'a DesiredPod>,
    pub host_known: bool,
    /// Its host has not answered for the grace period (`NotReady`) or is no longer configured.
    pub host_lost: bool,
    /// Its current containers (desired host, desired spec), holder included.
    pub current: &'a [&'a ObservedContainer],
    /// Whether containers of another spec or host remain (a replacement under way).
    pub stale: bool,
    pub entry: &'a PodEntry,
    pub decision: &'a Decision,
    /// Readiness outcome of each app container that has a readiness probe.
    pub readiness: &'a [(String, Option<Outcome>)],
    /// The last liveness failure, if a container's liveness probe is failing.
    pub liveness_failure: Option<String>,
    pub blocked_by: Option<String>,
    pub now: Millis,
    pub previous: &'a PodStatus,
}

pub fn derive(i: &Inputs) -> PodStatus {
    let mut s = PodStatus {
        warnings: i.entry.warnings.clone(),
        blocked_by: i.blocked_by.clone(),
        restarts: i
            .current
            .iter()
            .filter(|c| !c.holder)
            .map(|c| c.restart_count)
            .sum::<u32>()
            + i.entry.liveness_restarts,
        failures: i.entry.failures,
        ..PodStatus::default()
    };
    let Some(pod) = i.desired else {
        s.phase = "Terminating".into();
        s.done = matches!(i.decision, Decision::Done);
        return s;
    };
    if !i.host_known {
        s.phase = "Unknown".into();
        s.reason = Some(if i.host_lost {
            // Kubernetes' reason for a pod whose node stopped answering: a bare Pod stays
            // there (nothing re-creates it elsewhere); an RC replica is about to move.
            format!("NodeLost: host {} is not ready", pod.node)
        } else {
            format!("host {} is not answering", pod.node)
        });
        return s;
    }
    let apps: Vec<&ObservedContainer> = pod
        .spec
        .containers
        .iter()
        .filter_map(|spec| {
            i.current
                .iter()
                .find(|c| !c.holder && c.container == spec.name)
                .copied()
        })
        .collect();
    let complete = apps.len() == pod.spec.containers.len()
        && (!pod.has_holder() || i.current.iter().any(|c| c.holder));
    s.images_ready = i.entry.memory.images_ready || complete;
    let retry_why = i.entry.memory.retry.as_ref().map(|(_, why)| why.clone());
    if let Some(pull) = &i.entry.pull_error {
        let waiting = matches!(i.decision, Decision::Wait { until: Some(_), .. });
        s.phase = if waiting {
            "ImagePullBackOff"
        } else {
            "ErrImagePull"
        }
        .into();
        s.reason = Some(format!("ErrImagePull: {pull}"));
        return s;
    }
    if !complete {
        if let Decision::Wait { why, until: None } = i.decision {
            s.phase = "Pending".into();
            s.reason = Some(why.clone());
        } else if let Some(why) = retry_why {
            s.phase = why.split(':').next().unwrap_or("Pending").to_string();
            s.reason = Some(why);
        } else if s.images_ready {
            s.phase = "ContainerCreating".into();
        } else {
            s.phase = "Pending".into();
            s.reason = Some("pulling images".into());
        }
        return s;
    }
    let policy = pod.spec.restart_policy;
    let crashing = apps.iter().find(|c| {
        c.state == "restarting"
            || (c.restart_count > 0
                && c.running
                && c.started_at
                    .is_some_and(|t| i.now.saturating_sub(t) < CRASH_WINDOW_MS))
            || (!c.running
                && c.restart_count > 0
                && c.exit_code != Some(0)
                && policy != RestartPolicy::Never)
    });
    if let Some(c) = crashing {
        s.phase = "CrashLoopBackOff".into();
        let code = c
            .exit_code
            .filter(|code| *code != 0)
            .or(c.last_exit_code)
            .map_or_else(|| "a failure".to_string(), |code| code.to_string());
        s.reason = Some(format!(
            "{}: exited with {code}, {} restart(s)",
            c.container, c.restart_count
        ));
    } else if apps.iter().all(|c| c.running) {
        s.phase = "Running".into();
    } else if apps
        .iter()
        .all(|c| c.running || (c.state == "exited" && c.exit_code == Some(0)))
        && policy != RestartPolicy::Always
    {
        s.phase = "Succeeded".into();
    } else if policy == RestartPolicy::Never && apps.iter().any(|c| c.state == "exited") {
        s.phase = "Failed".into();
        s.reason = apps
            .iter()
            .find(|c| c.state == "exited" && c.exit_code != Some(0))
            .map(|c| format!("{}: exited with {}", c.container, c.exit_code.unwrap_or(-1)));
    } else {
        s.phase = "Pending".into();
        s.reason = retry_why;
    }
    let mut not_ready: Option<String> = None;
    if s.phase == "Running" {
        for (container, outcome) in i.readiness {
            match outcome {
                Some(o) if o.ok => {}
                Some(o) => {
                    not_ready.get_or_insert_with(|| {
                        o.last_failure.clone().unwrap_or_else(|| {
                            format!("{container}: readiness probe not passed yet")
                        })
                    });
                }
                None => {
                    not_ready
                        .get_or_insert_with(|| format!("{container}: readiness probe not run yet"));
                }
            }
        }
        for c in &apps {
            if let Some(h) = c.health.as_deref().filter(|h| *h != "healthy") {
                not_ready
                    .get_or_insert_with(|| format!("{}: container health is {h}", c.container));
            }
        }
        s.ready = not_ready.is_none();
    } else {
        not_ready = s.reason.clone();
    }
    s.probe_failure = i
        .readiness
        .iter()
        .filter_map(|(_, o)| o.as_ref())
        .find(|o| !o.ok)
        .and_then(|o| o.last_failure.clone())
        .or(i.liveness_failure.clone());
    if !s.ready && s.reason.is_none() {
        s.reason = not_ready;
    }
    s.ready_since = s.ready.then(|| {
        if i.previous.ready {
            i.previous.ready_since.unwrap_or(i.now)
        } else {
            i.now
        }
    });
    s.done =
        matches!(i.decision, Decision::Done) && !i.stale && (s.ready || s.phase == "Succeeded");
    s
}

#[cfg(test)]
#[path = "pod_status_tests.rs"]
mod tests;
