//! The scheduler's inputs from this controller (hosts with their labels, capacity and Node
//! manifests) and the engine's work for pending pods: place them where room has appeared,
//! committed through Raft before anything is created.

use std::time::Duration;

use super::node_config::capacity_over;
use super::Controller;
use crate::docker::HostState;
use crate::engine::Next;
use crate::manifest::Node;
use crate::raft::state::{ClusterState, Command};
use crate::scheduler::{bind_pending, Host, Load, Resources};

/// A refused placement (a host it chose took pods meanwhile) is computed again this many times
/// at once before the key waits.
const ATTEMPTS: usize = 5;
/// Pending pods are looked at again this often even without news (a host's reported capacity
/// can change without an event).
const WHILE_PENDING: Duration = Duration::from_secs(10);
/// How often placement looks again while waiting for the first look at every host.
pub(super) const FIRST_LOOK: Duration = Duration::from_millis(200);

impl Controller {
    /// The configured hosts as the scheduler sees them: readiness from the engine, labels from
    /// the flags and the Node manifests of `desired` (the manifest wins a key both set),
    /// capacity from `--node-capacity` or the engine.
    pub fn scheduler_hosts(&self, nodes: &[Node]) -> Vec<Host> {
        self.config
            .nodes
            .iter()
            .zip(&self.hosts)
            .map(|(n, cache)| {
                let (ready, reported) = cache.read(|v| {
                    (
                        v.is_seen(),
                        v.info
                            .as_ref()
                            .map(|i| Resources::new(i.cpus as u64 * 1000, i.memory_bytes)),
                    )
                });
                let mut host = Host::new(n.name.clone(), ready);
                host.labels = n.labels.clone();
                host.capacity = capacity_over(n.capacity.as_deref(), reported);
                if let Some(node) = nodes.iter().find(|m| m.metadata.name == n.name) {
                    host.labels.extend(node.metadata.labels.clone());
                    host.schedulable = !node.is_unschedulable();
                }
                host
            })
            .collect()
    }

    /// Has every host been looked at once (answered, or failed to)? Until then, a leader that
    /// just started would see only the first hosts to answer as ready and pile pods onto them.
    pub(super) fn hosts_looked_at(&self) -> bool {
        self.hosts
            .iter()
            .all(|c| c.read(|v| !matches!(v.state, HostState::Unseen)))
    }

    /// Places pending pods where they now fit, in one Raft command; recomputed at once when
    /// refused as stale.
    pub(super) async fn work_pending(&self) -> Next {
        if !self.hosts_looked_at() {
            return Next::after(FIRST_LOOK);
        }
        for _ in 0..ATTEMPTS {
            let state = self.raft.state().clone();
            let nodes = state.read(|s| s.desired.nodes.clone());
            let hosts = self.scheduler_hosts(&nodes);
            let compute = move || {
                state.read(|s: &ClusterState| {
                    let pending = crate::scheduler::pending(s).len();
                    if pending == 0 {
                        return (None, 0);
                    }
                    let mut load = Load::of(s, &hosts);
                    let binds = bind_pending(s, &mut load);
                    (Some((binds, s.placement.generation)), pending)
                })
            };
            let (found, pending) = match tokio::task::spawn_blocking(compute).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("placing pending pods: {e}");
                    return Next::after(WHILE_PENDING);
                }
            };
            let Some((binds, based_on)) = found else {
                return Next::Idle;
            };
            if binds.is_empty() {
                return Next::after(WHILE_PENDING);
            }
            let placed = binds.len();
            let cmd = Command::Bind {
                replicas: binds.replicas,
                pods: binds.pods,
                based_on,
            };
            if self.propose_quietly(cmd).await {
                tracing::info!(
                    placed,
                    still_pending = pending - placed,
                    "pending pods placed"
                );
                return if placed == pending {
                    Next::Idle
                } else {
                    Next::after(WHILE_PENDING)
                };
            }
        }
        Next::after(Duration::from_millis(200))
    }
}
