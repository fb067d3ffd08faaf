//! The answers of the status API, built from committed state and live observation.

use serde::Serialize;

use crate::controller::Controller;
use crate::manifest::{PortRef, ServiceType};
use crate::raft::state::{CommitRecord, Millis, Outcome};
use crate::reconcile::{desired, DesiredPod, ObservedContainer};

#[derive(Debug, Serialize)]
pub struct Status {
    /// Raft id of the leader, if one is known.
    pub leader: Option<u64>,
    pub is_leader: bool,
    /// Full sha of the commit whose desired state is applied, or null.
    pub commit: Option<String>,
    /// The desired commit has converged: its history record has `converged_at`. Read from
    /// committed state only, so it agrees with `/api/v1/commits/{sha}` at every moment and on
    /// every controller. See `controller::converge` for the definition.
    pub converged: bool,
    /// This controller's own observation right now: every host is seen and matches the desired
    /// state. Live, not replicated: it goes false while a host is down or a container is being
    /// healed, and a commit that converged stays converged.
    pub in_sync: bool,
    pub nodes_ready: usize,
    pub nodes_total: usize,
    pub git: crate::controller::live::GitStatus,
    pub repo: String,
    pub branch: String,
}

pub fn status(c: &Controller) -> Status {
    // One read of the committed state: the commit and its convergence come from the same
    // applied entries, never from two moments.
    let (commit, converged) = c.raft.state().read(|s| {
        let commit = s.desired_commit.clone();
        let converged = commit
            .as_deref()
            .and_then(|sha| s.commit(sha))
            .is_some_and(|r| r.converged_at.is_some());
        (commit, converged)
    });
    let live = c.live.read().expect("live lock");
    Status {
        leader: c.raft.leader(),
        is_leader: c.raft.is_leader(),
        in_sync: commit.is_some() && live.in_sync_on == commit,
        converged,
        commit,
        nodes_ready: live.nodes.values().filter(|n| n.ready).count(),
        nodes_total: c.config.nodes.len(),
        git: live.git.clone(),
        repo: c.git.remote().to_string(),
        branch: c.config.branch.clone(),
    }
}

#[derive(Debug, Serialize)]
pub struct CommitView {
    pub sha: String,
    pub outcome: Outcome,
    pub message: String,
    pub author: String,
    pub parents: Vec<String>,
    /// Commit time from Git, RFC 3339.
    pub time: String,
    pub errors: Vec<String>,
    pub forced: bool,
    pub unchanged: bool,
    pub seen_at: String,
    pub applied_at: Option<String>,
    pub converged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<String>>,
}

fn view(c: &CommitRecord, with_plan: bool) -> CommitView {
    CommitView {
        sha: c.sha.clone(),
        outcome: c.outcome,
        message: c.message.clone(),
        author: c.author.clone(),
        parents: c.parents.clone(),
        time: rfc3339(c.time.max(0) as u64 * 1000),
        errors: c.errors.clone(),
        forced: c.forced,
        unchanged: c.unchanged,
        seen_at: rfc3339(c.seen_at),
        applied_at: c.applied_at.map(rfc3339),
        converged_at: c.converged_at.map(rfc3339),
        plan: with_plan.then(|| c.plan.clone()),
    }
}

/// Newest first.
pub fn commits(c: &Controller) -> Vec<CommitView> {
    c.raft
        .state()
        .read(|s| s.history.iter().rev().map(|r| view(r, false)).collect())
}

/// One commit by full sha or unique prefix (at least 4 hex digits), with its executed plan.
pub fn commit(c: &Controller, sha: &str) -> Result<Option<CommitView>, String> {
    if sha.len() < 4 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{sha:?} is not a commit sha (at least 4 hex digits)"
        ));
    }
    c.raft.state().read(|s| {
        let mut found = s.history.iter().rev().filter(|r| r.sha.starts_with(sha));
        let first = found.next();
        if found.any(|r| Some(&r.sha) != first.map(|f| &f.sha)) {
            return Err(format!("{sha:?} is ambiguous: give more digits"));
        }
        Ok(first.map(|r| view(r, true)))
    })
}

#[derive(Debug, Serialize)]
pub struct ContainerView {
    pub name: String,
    pub id: Option<String>,
    pub image: String,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct PodView {
    pub namespace: String,
    pub name: String,
    pub owner: Option<String>,
    pub node: String,
    pub phase: String,
    pub ready: bool,
    pub commit: Option<String>,
    pub reason: Option<String>,
    pub containers: Vec<ContainerView>,
}

pub fn pods(c: &Controller) -> Vec<PodView> {
    let pods = c.raft.state().read(desired::pods);
    let live = c.live.read().expect("live lock");
    pods.iter()
        .map(|p| {
            let node = live.nodes.get(&p.node);
            let seen: Vec<&ObservedContainer> = node
                .map(|n| {
                    n.containers
                        .iter()
                        .filter(|c| c.namespace == p.namespace && c.pod == p.name)
                        .collect()
                })
                .unwrap_or_default();
            let reason = live
                .pod_errors
                .get(&format!("{}/{}", p.namespace, p.name))
                .cloned();
            let node_ready = node.is_some_and(|n| n.ready);
            pod_view(p, &seen, node_ready, reason)
        })
        .collect()
}

fn pod_view(
    p: &DesiredPod,
    seen: &[&ObservedContainer],
    node_ready: bool,
    reason: Option<String>,
) -> PodView {
    let containers: Vec<ContainerView> = p
        .spec
        .containers
        .iter()
        .map(|want| {
            let got = seen.iter().find(|c| c.container == want.name);
            ContainerView {
                name: want.name.clone(),
                id: got.map(|c| c.id.clone()),
                image: want.image.clone(),
                state: got.map_or_else(|| "missing".into(), |c| c.state.clone()),
            }
        })
        .collect();
    let current =
        seen.iter().all(|c| c.spec_hash == p.spec_hash) && seen.len() == p.spec.containers.len();
    let running = current && seen.iter().all(|c| c.running);
    let phase = if !node_ready {
        "Unknown"
    } else if let Some(r) = &reason {
        r.split(':').next().unwrap_or("Pending")
    } else if running {
        "Running"
    } else if seen.is_empty() || !current {
        "Pending"
    } else if seen.iter().all(|c| c.exit_code == Some(0)) {
        "Succeeded"
    } else {
        "Failed"
    };
    PodView {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        owner: p.owner.clone(),
        node: p.node.clone(),
        phase: phase.to_string(),
        // Readiness probes are run by the controller in a later version; until then a pod is
        // ready when all its containers run the current spec.
        ready: node_ready && running,
        commit: seen.first().map(|c| c.commit.clone()),
        reason,
        containers,
    }
}

#[derive(Debug, Serialize)]
pub struct RcView {
    pub namespace: String,
    pub name: String,
    pub desired: u32,
    pub current: usize,
    pub ready: usize,
    pub selector: crate::manifest::StringMap,
    pub image: Vec<String>,
}

pub fn replication_controllers(c: &Controller) -> Vec<RcView> {
    let rcs = c
        .raft
        .state()
        .read(|s| s.desired.replication_controllers.clone());
    let pods = pods(c);
    rcs.iter()
        .map(|rc| {
            let mine = pods.iter().filter(|p| {
                p.namespace == rc.metadata.namespace
                    && p.owner.as_deref() == Some(&rc.metadata.name)
            });
            RcView {
                namespace: rc.metadata.namespace.clone(),
                name: rc.metadata.name.clone(),
                desired: rc.replicas,
                current: mine
                    .clone()
                    .filter(|p| p.containers.iter().all(|c| c.id.is_some()))
                    .count(),
                ready: mine.filter(|p| p.ready).count(),
                selector: rc.selector.clone(),
                image: rc
                    .template
                    .spec
                    .containers
                    .iter()
                    .map(|c| c.image.clone())
                    .collect(),
            }
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub type_: ServiceType,
    pub ports: Vec<String>,
    pub selector: crate::manifest::StringMap,
}

pub fn services(c: &Controller) -> Vec<ServiceView> {
    c.raft.state().read(|s| {
        s.desired
            .services
            .iter()
            .map(|svc| ServiceView {
                namespace: svc.metadata.namespace.clone(),
                name: svc.metadata.name.clone(),
                type_: svc.type_,
                ports: svc
                    .ports
                    .iter()
                    .map(|p| {
                        let target = match &p.target_port {
                            PortRef::Number(n) => n.to_string(),
                            PortRef::Name(n) => n.clone(),
                        };
                        format!("{}->{}/{}", p.port, target, p.protocol.docker())
                    })
                    .collect(),
                selector: svc.selector.clone(),
            })
            .collect()
    })
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub name: String,
    pub endpoint: String,
    pub ready: bool,
    pub version: Option<String>,
    pub capacity: Option<Capacity>,
    pub containers: usize,
    pub error: Option<String>,
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Capacity {
    pub cpus: u32,
    pub memory_bytes: u64,
}

pub fn nodes(c: &Controller) -> Vec<NodeView> {
    let live = c.live.read().expect("live lock");
    c.config
        .nodes
        .iter()
        .map(|n| {
            let s = live.nodes.get(&n.name);
            NodeView {
                name: n.name.clone(),
                endpoint: n.endpoint.clone(),
                ready: s.is_some_and(|s| s.ready),
                version: s.and_then(|s| s.info.as_ref()).map(|i| i.version.clone()),
                capacity: s.and_then(|s| s.info.as_ref()).map(|i| Capacity {
                    cpus: i.cpus,
                    memory_bytes: i.memory_bytes,
                }),
                containers: s.map_or(0, |s| s.containers.len()),
                error: s
                    .and_then(|s| s.error.clone())
                    .or_else(|| s.is_none().then(|| "not yet observed".into())),
                last_seen: s.and_then(|s| s.last_seen).map(rfc3339),
            }
        })
        .collect()
}

/// Milliseconds since the epoch as `2026-11-23T19:40:01.123Z`.
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_462_801_123), "2026-11-23T19:40:01.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
