//! The next rollout decision for one RC.

use std::collections::BTreeMap;

use super::strategy::{Kind, Strategy};
use crate::raft::state::{Millis, RolloutState};

/// What the leader sees of one replica right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Its images are on its host.
    pub images_ready: bool,
    /// Ready (readiness probe, Docker health, or running when it has neither).
    pub ready: bool,
    /// Since when it has been ready without interruption.
    pub ready_since: Option<Millis>,
    /// Why it is not ready, for the halt reasons (`readiness probe failed: HTTP 500`).
    pub problem: Option<String>,
    /// Another replica whose host port it needs on its host, when one holds it.
    pub blocked_by: Option<String>,
    /// Its host does not answer (`Unknown` or `NotReady`): whatever it runs serves nobody
    /// berth can vouch for, so a scale-down takes it first.
    pub host_lost: bool,
}

/// One replica of the RC, with its revision and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub name: String,
    pub node: String,
    pub revision: String,
    pub created_at: Millis,
    pub health: Health,
}

/// What to do next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// New replicas of the target revision to add (the leader places and names them).
    pub add: usize,
    /// Replicas to retire (stop and remove).
    pub retire: Vec<String>,
    /// The rollout completed, or halted with a reason per late replica.
    pub state: Option<RolloutState>,
}

/// The next decision for an RC wanting `desired` replicas of revision `target`, `draining` of
/// its retired replicas still stopping (they count towards maxSurge until gone). Call it only
/// while the rollout progresses: a halted rollout stays halted until the next commit.
pub fn step(
    strategy: &Strategy,
    desired: u32,
    target: &str,
    replicas: &[ReplicaView],
    draining: usize,
    now: Millis,
) -> Decision {
    let d = desired as usize;
    let (new, old): (Vec<&ReplicaView>, Vec<&ReplicaView>) =
        replicas.iter().partition(|r| r.revision == target);
    let available = |r: &&ReplicaView| {
        r.health.ready
            && r.health.ready_since.is_some_and(|t| {
                now.saturating_sub(t) >= Millis::from(strategy.min_ready_seconds) * 1000
            })
    };
    let deadline = Millis::from(strategy.progress_deadline_seconds) * 1000;
    let late: Vec<String> = new
        .iter()
        .filter(|r| !available(r) && now.saturating_sub(r.created_at) > deadline)
        .map(|r| {
            let why = r.health.problem.clone().unwrap_or_else(|| {
                format!("not ready within {}s", strategy.progress_deadline_seconds)
            });
            format!("{}: {why}", r.name)
        })
        .collect();
    if !late.is_empty() {
        return Decision {
            state: Some(RolloutState::Halted { reasons: late }),
            ..Decision::default()
        };
    }
    if old.is_empty() {
        // Nothing to replace: scale to the desired count.
        if new.len() < d {
            return Decision {
                add: d - new.len(),
                ..Decision::default()
            };
        }
        if new.len() > d {
            let victims = scale_down_order(&new);
            return Decision {
                retire: victims.into_iter().take(new.len() - d).collect(),
                ..Decision::default()
            };
        }
        let complete = new.iter().filter(|r| available(r)).count() == d;
        return Decision {
            state: complete.then_some(RolloutState::Complete),
            ..Decision::default()
        };
    }
    match strategy.kind {
        Kind::Recreate => {
            let add = d.saturating_sub(new.len());
            // Old replicas stop only once every new one has its images: a bad tag changes
            // nothing that runs.
            let retire = if add == 0 && new.iter().all(|r| r.health.images_ready) {
                old.iter().map(|r| r.name.clone()).collect()
            } else {
                Vec::new()
            };
            Decision {
                add,
                retire,
                state: None,
            }
        }
        Kind::RollingUpdate => rolling(strategy, d, &new, &old, draining, available),
    }
}

fn rolling(
    strategy: &Strategy,
    d: usize,
    new: &[&ReplicaView],
    old: &[&ReplicaView],
    draining: usize,
    available: impl Fn(&&ReplicaView) -> bool,
) -> Decision {
    let (surge, unavailable) = strategy.bounds(d as u32);
    let (surge, unavailable) = (surge as usize, unavailable as usize);
    let total = new.len() + old.len() + draining;
    let add = (d + surge)
        .saturating_sub(total)
        .min(d.saturating_sub(new.len()));
    let min_available = d.saturating_sub(unavailable);
    let available_now =
        new.iter().filter(|r| available(r)).count() + old.iter().filter(|r| available(r)).count();
    let mut may_lose = available_now.saturating_sub(min_available);
    let mut retire: Vec<String> = Vec::new();
    // A new replica that needs an old one's host port on its host replaces it stop-first
    // there, once its images are in: there is no other way to start it.
    for r in new {
        if let Some(blocker) = &r.health.blocked_by {
            if r.health.images_ready && old.iter().any(|o| &o.name == blocker) {
                retire.push(blocker.clone());
            }
        }
    }
    // Old replicas that serve nothing go first (each costs no availability), then in the
    // order of a scale-down: the most crowded host, then the newest.
    let candidates: Vec<&ReplicaView> = old
        .iter()
        .filter(|r| !retire.contains(&r.name))
        .copied()
        .collect();
    let mut ordered: Vec<&ReplicaView> = scale_down_order(&candidates)
        .iter()
        .filter_map(|n| candidates.iter().find(|r| &r.name == n).copied())
        .collect();
    ordered.sort_by_key(|r| available(r));
    for r in ordered {
        if available(&r) {
            if may_lose == 0 {
                break;
            }
            may_lose -= 1;
        }
        retire.push(r.name.clone());
    }
    Decision {
        add,
        retire,
        state: None,
    }
}

/// Replicas in the order a scale-down removes them, as Kubernetes does: pending ones (no host
/// fits them: nothing runs) first, then those on a host that does not answer, then not ready,
/// then those on the host crowded with most replicas of the RC, then the newest.
pub fn scale_down_order(replicas: &[&ReplicaView]) -> Vec<String> {
    let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
    for r in replicas {
        *per_host.entry(r.node.as_str()).or_default() += 1;
    }
    let mut order: Vec<&&ReplicaView> = replicas.iter().collect();
    order.sort_by_key(|r| {
        (
            !r.node.is_empty(),
            !r.health.host_lost,
            r.health.ready,
            std::cmp::Reverse(per_host[r.node.as_str()]),
            std::cmp::Reverse(r.created_at),
            r.name.clone(),
        )
    });
    order.into_iter().map(|r| r.name.clone()).collect()
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
