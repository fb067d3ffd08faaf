//! The scheduler's inputs from this controller (hosts with their labels, capacity and Node
//! manifests) and the engine's work for pending pods: place them where room has appeared,
//! committed through Raft before anything is created.
//!
//! The leader places one batch of decisions at a time (Nomad's plan queue): concurrent RC
//! workers would otherwise all compute against the same state, choose the same least allocated
//! hosts and be refused but one. The decisions that queued up meanwhile form the next batch. Holding the placement lock, the accounting of the last decision is kept and
//! reused while nothing else changed placements (the state's placement generation moved by
//! exactly our own command), so a decision costs O(log H) per pod, not a recount of every pod.

use std::time::Duration;

use tokio::sync::oneshot;

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

/// The accounting of the last placement, at the placement generation it matches.
#[derive(Default)]
pub(super) struct Placer {
    cached: Option<(u64, Vec<Host>, Load)>,
}

/// What a placement decision proposes, and whether the accounting it leaves behind is exact
/// once it is applied (false when it also removes pods, which [`Load`] does not track).
pub(super) type Decision = Option<(Command, bool)>;

/// A decision to compute against the committed state and the accounting of the hosts.
type Decide = Box<dyn FnOnce(&ClusterState, &mut Load, u64) -> Decision + Send>;

/// A decision waiting for the placement lock, and where its outcome goes.
pub(super) struct Request {
    hosts: Vec<Host>,
    decide: Decide,
    answer: oneshot::Sender<Option<bool>>,
}

impl Controller {
    /// Computes a decision with `decide` against the committed state and its accounting over
    /// `hosts`, off the async runtime and under the placement lock, and proposes it. `None`
    /// when there was nothing to propose; else whether it was committed.
    ///
    /// Decisions asked for while another batch holds the lock (its Raft commit in flight)
    /// wait together, and whoever takes the lock next computes them one after another against
    /// one accounting and proposes them in one entry ([`Command::Placements`]): the RCs of a
    /// commit are placed in a few dozen commits, not one each.
    pub(super) async fn place_and_propose<F>(&self, hosts: Vec<Host>, decide: F) -> Option<bool>
    where
        F: FnOnce(&ClusterState, &mut Load, u64) -> Decision + Send + 'static,
    {
        let (answer, mut outcome) = oneshot::channel();
        self.to_place
            .lock()
            .expect("placement queue")
            .push(Request {
                hosts,
                decide: Box::new(decide),
                answer,
            });
        let mut placer = self.placer.lock().await;
        loop {
            match outcome.try_recv() {
                Ok(decided) => return decided,
                Err(oneshot::error::TryRecvError::Closed) => return Some(false),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch = self.next_batch();
            self.decide_and_propose(&mut placer, batch).await;
        }
    }

    /// The oldest waiting request and every other one over the same hosts (one accounting
    /// serves them all), in the order they came.
    fn next_batch(&self) -> Vec<Request> {
        let mut waiting = self.to_place.lock().expect("placement queue");
        let Some(first) = waiting.first() else {
            return Vec::new();
        };
        let hosts = first.hosts.clone();
        let (batch, rest) = std::mem::take(&mut *waiting)
            .into_iter()
            .partition(|r| r.hosts == hosts);
        *waiting = rest;
        batch
    }

    /// Computes `batch` in order against one accounting and proposes what it decided: one
    /// command alone, several in one [`Command::Placements`]. Each request is answered.
    async fn decide_and_propose(&self, placer: &mut Placer, batch: Vec<Request>) {
        let Some(first) = batch.first() else {
            return;
        };
        let hosts = first.hosts.clone();
        let (decides, answers): (Vec<Decide>, Vec<_>) =
            batch.into_iter().map(|r| (r.decide, r.answer)).unzip();
        let cached = placer.cached.take();
        let state = self.raft.state().clone();
        let job = move || {
            state.read(|s| {
                let g = s.placement.generation;
                let mut load = match cached {
                    Some((at, h, load)) if at == g && h == hosts => load,
                    _ => Load::of(s, &hosts),
                };
                let decisions: Vec<Decision> =
                    decides.into_iter().map(|d| d(s, &mut load, g)).collect();
                (decisions, load, g, hosts)
            })
        };
        let (decisions, load, g, hosts) = match tokio::task::spawn_blocking(job).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("placement: {e}");
                for answer in answers {
                    let _ = answer.send(Some(false));
                }
                return;
            }
        };
        let exact = decisions.iter().flatten().all(|(_, exact)| *exact);
        let (slots, commands): (Vec<usize>, Vec<Command>) = decisions
            .into_iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|(cmd, _)| (i, cmd)))
            .unzip();
        let mut outcomes: Vec<Option<bool>> = vec![None; answers.len()];
        if commands.is_empty() {
            placer.cached = Some((g, hosts, load));
        } else {
            let proposed = commands.len();
            let accepted = self.propose_decisions(commands).await;
            let all = accepted.iter().all(|ok| *ok);
            for (slot, ok) in slots.into_iter().zip(accepted) {
                outcomes[slot] = Some(ok);
            }
            // Each accepted decision moves the generation by one: the accounting is still
            // exact if nothing else changed placements meanwhile.
            if all && exact {
                let now = self.raft.state().read(|s| s.placement.generation);
                if now == g + proposed as u64 {
                    placer.cached = Some((now, hosts, load));
                }
            }
        }
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            let _ = answer.send(outcome);
        }
    }

    /// Proposes `decisions` (one alone, several in one entry); whether each was accepted.
    async fn propose_decisions(&self, mut decisions: Vec<Command>) -> Vec<bool> {
        let count = decisions.len();
        if count == 1 {
            let cmd = decisions.pop().expect("one decision");
            return vec![self.propose_quietly(cmd).await];
        }
        match self.raft.propose(Command::Placements { decisions }).await {
            Ok(r) if r.each.len() == count => {
                let refused = r.each.iter().filter(|ok| !**ok).count();
                if refused > 0 {
                    tracing::debug!(
                        refused,
                        of = count,
                        "placements computed against an older state were refused; recomputing"
                    );
                }
                r.each
            }
            Ok(_) => vec![false; count],
            Err(e) => {
                tracing::warn!("raft: {}", super::error_chain(&e));
                vec![false; count]
            }
        }
    }

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
        // Nothing pending (nearly always): said before the placement accounting of every host
        // and replica is built.
        if self
            .raft
            .state()
            .read(|s| crate::scheduler::pending(s).is_empty())
        {
            return Next::Idle;
        }
        for _ in 0..ATTEMPTS {
            let nodes = self.raft.state().read(|s| s.desired.nodes.clone());
            let hosts = self.scheduler_hosts(&nodes);
            let counts = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
            let seen = counts.clone();
            let decided = self
                .place_and_propose(hosts, move |s, load, based_on| {
                    let pending = crate::scheduler::pending(s).len();
                    if pending == 0 {
                        return None;
                    }
                    let binds = bind_pending(s, load);
                    *seen.lock().expect("counts") = (pending, binds.len());
                    if binds.is_empty() {
                        return None;
                    }
                    let cmd = Command::Bind {
                        replicas: binds.replicas,
                        pods: binds.pods,
                        based_on,
                    };
                    Some((cmd, true))
                })
                .await;
            let (pending, placed) = *counts.lock().expect("counts");
            match decided {
                None if pending == 0 => return Next::Idle,
                None => return Next::after(WHILE_PENDING),
                Some(true) => {
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
                Some(false) => {}
            }
        }
        Next::after(Duration::from_millis(200))
    }
}
