//! The answers of the status API, built from committed state and this controller's live view
//! (host caches, pod statuses).

use serde::Serialize;

use crate::clock::rfc3339;
use crate::controller::{Controller, PodStatus};
use crate::docker::HostState;
use crate::manifest::{PortRef, ServiceType};
use crate::raft::state::{CommitRecord, Outcome, RolloutState, Trigger};
use crate::reconcile::{DesiredPod, ObservedContainer, HOLDER};
use crate::rollout::Strategy;

#[derive(Debug, Serialize)]
pub struct Status {
    /// This controller's member id, and its cluster's name.
    pub member: u64,
    pub cluster: String,
    /// Raft id of the leader, if one is known.
    pub leader: Option<u64>,
    /// This controller leads and a quorum acknowledged it within the election timeout: it is
    /// the one acting on the Docker hosts.
    pub is_leader: bool,
    /// What this controller serves may be out of date: a follower that has not heard from a
    /// leader within the election timeout, or a leader that lost its quorum (it has stopped
    /// acting). The answer is the last state it knew; ask another member.
    pub stale: bool,
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
    /// Raft progress: applied index, the leader's commit as last heard, how far behind.
    pub raft: crate::raft::Freshness,
    /// Whether this member's flags match the cluster's settings, and which differ. A member
    /// that disagrees neither leads nor acts.
    pub settings: crate::controller::settings::SettingsView,
    /// RC replicas placed in the committed state (all RCs, every revision).
    pub replicas: usize,
    /// The last full pass of the engine over every key: keys, milliseconds, when.
    pub last_pass: Option<crate::controller::live::PassTiming>,
}

pub fn status(c: &Controller) -> Status {
    // One read of the committed state: the commit and its convergence come from the same
    // applied entries, never from two moments.
    let (commit, converged, replicas) = c.raft.state().read(|s| {
        let commit = s.desired_commit.clone();
        let converged = commit
            .as_deref()
            .and_then(|sha| s.commit(sha))
            .is_some_and(|r| r.converged_at.is_some());
        (commit, converged, s.replicas.values().map(Vec::len).sum())
    });
    let live = c.live.read().expect("live lock");
    let raft = c.raft.freshness();
    Status {
        member: c.raft.id(),
        cluster: c.raft.cluster_name().to_string(),
        leader: raft.leader,
        is_leader: raft.is_leader,
        stale: raft.stale,
        in_sync: commit.is_some() && live.in_sync_on == commit,
        converged,
        commit,
        nodes_ready: c.hosts.iter().filter(|h| h.read(|v| v.is_seen())).count(),
        nodes_total: c.hosts.len(),
        git: live.git.clone(),
        repo: c.git.remote().to_string(),
        branch: c.config.branch.clone(),
        raft,
        settings: c.settings_view(),
        replicas,
        last_pass: live.last_pass,
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
    /// Another commit this record refers to (rolled back to, superseded by, head replaced by a
    /// force-push), by outcome.
    pub refers_to: Option<String>,
    pub trigger: Trigger,
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
        refers_to: c.refers_to.clone(),
        trigger: c.trigger.clone(),
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
    pub restarts: u32,
}

#[derive(Debug, Serialize)]
pub struct PodView {
    pub namespace: String,
    pub name: String,
    pub owner: Option<String>,
    pub node: String,
    pub phase: String,
    pub ready: bool,
    /// Since when it has been ready without interruption (milliseconds since the epoch, the
    /// leader's clock).
    pub ready_since: Option<crate::raft::state::Millis>,
    pub restarts: u32,
    /// Consecutive failed attempts of its current step (backoff grows with them).
    pub failures: u32,
    /// The commit whose spec its containers run.
    pub commit: Option<String>,
    pub reason: Option<String>,
    /// The last failure of a readiness or liveness probe.
    pub probe_failure: Option<String>,
    pub warnings: Vec<String>,
    pub containers: Vec<ContainerView>,
    /// While pending: why each host refuses it (`b: insufficient memory: requests 512Mi,
    /// free 200Mi`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

pub fn pods(c: &Controller) -> Vec<PodView> {
    let pods = c.raft.state().read(crate::reconcile::desired::pods);
    let mut out: Vec<PodView> = pods.iter().map(|p| pod_view(c, p)).collect();
    out.extend(super::placement::pending_pods(c));
    out
}

fn pod_view(c: &Controller, p: &DesiredPod) -> PodView {
    let seen: Vec<ObservedContainer> = c
        .hosts
        .iter()
        .find(|h| h.host().name() == p.node)
        .map(|h| {
            h.read(|v| {
                v.pod(&p.namespace, &p.name)
                    .into_iter()
                    .filter(|c| c.spec_hash == p.spec_hash && c.container != HOLDER)
                    .cloned()
                    .collect()
            })
        })
        .unwrap_or_default();
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
                restarts: got.map_or(0, |c| c.restart_count),
            }
        })
        .collect();
    let status = c.book.status(&p.key()).unwrap_or_else(|| PodStatus {
        phase: "Pending".into(),
        reason: Some("not looked at yet".into()),
        ..PodStatus::default()
    });
    PodView {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        owner: p.owner.clone(),
        node: p.node.clone(),
        phase: status.phase,
        ready: status.ready,
        ready_since: status.ready_since,
        restarts: status.restarts,
        failures: status.failures,
        commit: seen.first().map(|c| c.commit.clone()),
        reason: status.reason,
        probe_failure: status.probe_failure,
        warnings: status.warnings,
        containers,
        reasons: Vec::new(),
    }
}

#[derive(Debug, Serialize)]
pub struct RolloutView {
    /// `progressing`, `complete` or `halted`.
    pub state: String,
    /// The commit that started it.
    pub commit: String,
    /// The template revision it moves to.
    pub revision: String,
    /// Why it halted, one line per late replica.
    pub reasons: Vec<String>,
    pub strategy: String,
}

#[derive(Debug, Serialize)]
pub struct RcView {
    pub namespace: String,
    pub name: String,
    pub desired: u32,
    /// Replicas with all their containers, any revision.
    pub current: usize,
    /// Replicas of the current template revision.
    pub updated: usize,
    pub ready: usize,
    /// Ready for at least minReadySeconds.
    pub available: usize,
    pub selector: crate::manifest::StringMap,
    pub image: Vec<String>,
    pub rollout: Option<RolloutView>,
}

pub fn replication_controllers(c: &Controller) -> Vec<RcView> {
    let (rcs, rollouts, replicas) = c.raft.state().read(|s| {
        (
            s.desired.replication_controllers.clone(),
            s.rollouts.clone(),
            s.replicas.clone(),
        )
    });
    let now = crate::clock::now_millis();
    rcs.iter()
        .map(|rc| {
            let key = format!("{}/{}", rc.metadata.namespace, rc.metadata.name);
            let revision = rc.template.revision();
            let strategy = Strategy::of(rc);
            let mine = replicas.get(&key).cloned().unwrap_or_default();
            let statuses: Vec<(bool, PodStatus)> = mine
                .iter()
                .map(|r| {
                    let status = c
                        .book
                        .status(&format!("{}/{}", rc.metadata.namespace, r.name))
                        .unwrap_or_default();
                    (r.revision == revision, status)
                })
                .collect();
            let min_ready = u64::from(strategy.min_ready_seconds) * 1000;
            RcView {
                namespace: rc.metadata.namespace.clone(),
                name: rc.metadata.name.clone(),
                desired: rc.replicas,
                current: statuses
                    .iter()
                    .filter(|(_, s)| {
                        s.images_ready && s.phase != "ContainerCreating" && s.phase != "Pending"
                    })
                    .count(),
                updated: statuses.iter().filter(|(updated, _)| *updated).count(),
                ready: statuses.iter().filter(|(_, s)| s.ready).count(),
                available: statuses
                    .iter()
                    .filter(|(_, s)| {
                        s.ready_since
                            .is_some_and(|t| now.saturating_sub(t) >= min_ready)
                    })
                    .count(),
                selector: rc.selector.clone(),
                image: rc
                    .template
                    .spec
                    .containers
                    .iter()
                    .map(|c| c.image.clone())
                    .collect(),
                rollout: rollouts.get(&key).map(|r| RolloutView {
                    state: match r.state {
                        RolloutState::Progressing => "progressing",
                        RolloutState::Complete => "complete",
                        RolloutState::Halted { .. } => "halted",
                    }
                    .into(),
                    commit: r.sha.clone(),
                    revision: r.revision.clone(),
                    reasons: match &r.state {
                        RolloutState::Halted { reasons } => reasons.clone(),
                        _ => Vec::new(),
                    },
                    strategy: match strategy.kind {
                        crate::rollout::Kind::RollingUpdate => "RollingUpdate",
                        crate::rollout::Kind::Recreate => "Recreate",
                    }
                    .into(),
                }),
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
    /// The committed cluster IP; `None` until the leader has allocated one (or when it
    /// cannot: `error` says why).
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<std::net::Ipv4Addr>,
    /// `port->target/proto`, with `:nodePort` for a node port.
    pub ports: Vec<String>,
    pub selector: crate::manifest::StringMap,
    /// The pods behind it, as committed: ready ones receive traffic.
    pub endpoints: Vec<EndpointView>,
    /// Why it has no cluster IP, or which of this controller's listeners failed.
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub pod: String,
    pub node: String,
    pub ready: bool,
    /// Reachable address per Service port name.
    pub addresses: std::collections::BTreeMap<String, std::net::SocketAddr>,
}

pub fn services(c: &Controller) -> Vec<ServiceView> {
    let listener_errors = c.services.listener_errors();
    let interface_error = c.services.interface_error();
    c.raft.state().read(|s| {
        s.desired
            .services
            .iter()
            .map(|svc| {
                let key =
                    crate::raft::state::object_key(&svc.metadata.namespace, &svc.metadata.name);
                let mut errors: Vec<String> =
                    s.services.errors.get(&key).cloned().into_iter().collect();
                errors.extend(
                    listener_errors
                        .iter()
                        .filter(|(k, ..)| *k == key)
                        .map(|(_, port, addr, e)| format!("port {port} on {addr}: {e}")),
                );
                errors.extend(interface_error.clone());
                ServiceView {
                    namespace: svc.metadata.namespace.clone(),
                    name: svc.metadata.name.clone(),
                    type_: svc.type_,
                    cluster_ip: s.services.cluster_ips.get(&key).copied(),
                    ports: svc
                        .ports
                        .iter()
                        .map(|p| {
                            let target = match &p.target_port {
                                PortRef::Number(n) => n.to_string(),
                                PortRef::Name(n) => n.clone(),
                            };
                            let name = crate::service::endpoints::port_name(p);
                            let node = p
                                .node_port
                                .or_else(|| s.services.node_ports.get(&key)?.get(&name).copied())
                                .map(|n| format!(":{n}"))
                                .unwrap_or_default();
                            format!("{}{node}->{}/{}", p.port, target, p.protocol.docker())
                        })
                        .collect(),
                    selector: svc.selector.clone(),
                    endpoints: s
                        .services
                        .endpoints
                        .get(&key)
                        .into_iter()
                        .flatten()
                        .map(|e| EndpointView {
                            pod: e.pod.clone(),
                            node: e.node.clone(),
                            ready: e.ready,
                            addresses: e.ports.clone(),
                        })
                        .collect(),
                    errors,
                }
            })
            .collect()
    })
}

/// One Service port and where its ready pods are: what an external HAProxy or nginx needs to
/// build a backend (`/api/v1/endpoints`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortEndpoints {
    pub namespace: String,
    pub service: String,
    /// The Service port's name, or its number when it has none.
    pub port_name: String,
    pub port: u16,
    pub protocol: crate::manifest::Protocol,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<std::net::Ipv4Addr>,
    pub node_port: Option<u16>,
    /// Ready addresses, sorted.
    pub addresses: Vec<std::net::SocketAddr>,
}

pub fn endpoints(c: &Controller) -> Vec<PortEndpoints> {
    c.raft.state().read(|s| {
        let mut out = Vec::new();
        for svc in &s.desired.services {
            let key = crate::raft::state::object_key(&svc.metadata.namespace, &svc.metadata.name);
            for p in &svc.ports {
                let name = crate::service::endpoints::port_name(p);
                let mut addresses = s.services.ready(&key, &name);
                addresses.sort();
                let node_port = p
                    .node_port
                    .or_else(|| s.services.node_ports.get(&key)?.get(&name).copied());
                out.push(PortEndpoints {
                    namespace: svc.metadata.namespace.clone(),
                    service: svc.metadata.name.clone(),
                    port_name: name,
                    port: p.port,
                    protocol: p.protocol,
                    cluster_ip: s.services.cluster_ips.get(&key).copied(),
                    node_port,
                    addresses,
                });
            }
        }
        out
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
    /// Labels, schedulability, allocatable and allocated resources, pod count.
    #[serde(flatten)]
    pub placement: Option<super::placement::HostPlacement>,
    /// `Ready`, `Unknown` (not answering, within `--node-grace`) or `NotReady` (its RC
    /// replicas are placed elsewhere).
    pub condition: crate::docker::Readiness,
    /// The last time the engine answered anything (a full look, an inspect after an event).
    pub last_contact: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Capacity {
    pub cpus: u32,
    pub memory_bytes: u64,
}

pub fn nodes(c: &Controller) -> Vec<NodeView> {
    let mut placement = super::placement::hosts(c).into_iter();
    let now = crate::clock::now_millis();
    c.hosts
        .iter()
        .map(|cache| {
            let placement = placement.next();
            cache.read(|v| NodeView {
                name: cache.host().name().to_string(),
                endpoint: cache.host().endpoint().to_string(),
                ready: v.is_seen(),
                version: v.info.as_ref().map(|i| i.version.clone()),
                capacity: v.info.as_ref().map(|i| Capacity {
                    cpus: i.cpus,
                    memory_bytes: i.memory_bytes,
                }),
                containers: v.containers.len(),
                error: match &v.state {
                    HostState::Unknown { reason } => Some(reason.clone()),
                    HostState::Unseen => Some("not yet observed".into()),
                    HostState::Seen => None,
                },
                last_seen: v.last_seen.map(rfc3339),
                placement,
                condition: v.readiness(now, c.config.node_grace),
                last_contact: v.last_contact.map(rfc3339),
            })
        })
        .collect()
}
