//! What makes the engine look: Docker changes, Raft applies, leadership, the resync timer; and
//! the record of what was done, batched into the commit's history once per line.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::{Controller, Key, CONVERGE_DEBOUNCE};
use crate::docker::Touched;
use crate::raft::state::{Command, Outcome};
use crate::reconcile::DesiredPod;

/// Plan lines are proposed in batches this often: one Raft entry for a burst of steps.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Lines remembered as recorded, so that a retried step is never proposed twice.
const REMEMBERED_LINES: usize = 100_000;

/// Plan lines noted for the commit being applied, not proposed yet, and those already
/// recorded (of that commit only: lines are noted only while it is applying).
#[derive(Default)]
pub struct Progress {
    pending: BTreeMap<String, Vec<String>>,
    /// The commit `recorded` is about.
    recorded_for: Option<String>,
    recorded: HashSet<String>,
}

impl Controller {
    /// Turns "this changed on a host" into keys to look at.
    pub(super) async fn dispatch(
        self: Arc<Self>,
        mut touched: UnboundedReceiver<Touched>,
        shutdown: CancellationToken,
    ) {
        loop {
            let t = tokio::select! {
                _ = shutdown.cancelled() => return,
                t = touched.recv() => match t { Some(t) => t, None => return },
            };
            match t {
                Touched::Pod(key) => self.runner.enqueue(Key::Pod(key), Duration::ZERO),
                Touched::Host(node) => {
                    // Copied out, so that the index is not held while enqueueing (an entry
                    // applied meanwhile would copy all of it: see `follow_state`).
                    let (on_node, rcs): (Vec<String>, Vec<String>) = {
                        let index = self.desired();
                        (
                            index.on_node(&node).cloned().collect(),
                            index.rcs.iter().cloned().collect(),
                        )
                    };
                    for key in on_node {
                        self.runner.enqueue(Key::Pod(key), Duration::ZERO);
                    }
                    if let Some(cache) = self.cache(&node) {
                        let seen: Vec<String> = cache.read(|v| {
                            v.containers
                                .values()
                                .map(|c| format!("{}/{}", c.namespace, c.pod))
                                .collect()
                        });
                        for key in seen {
                            self.runner.enqueue(Key::Pod(key), Duration::ZERO);
                        }
                    }
                    for rc in rcs {
                        self.runner.enqueue(Key::Rc(rc), Duration::ZERO);
                    }
                    self.runner.enqueue(Key::Converge, CONVERGE_DEBOUNCE);
                    self.runner.enqueue(Key::Pending, CONVERGE_DEBOUNCE);
                    // A host that went away is lost once its grace period is over; the key
                    // looks again by itself until then.
                    self.runner.enqueue(Key::Hosts, Duration::ZERO);
                }
            }
        }
    }

    /// Follows Raft: re-indexes the desired pods after applies that change them, and looks at
    /// everything when this node becomes leader (and forgets its memory when it stops).
    pub(super) async fn follow_state(self: Arc<Self>, shutdown: CancellationToken) {
        let mut metrics = self.raft.raft().metrics();
        let mut applied = None;
        let mut leading = false;
        loop {
            let (now_applied, now_leading) = {
                let m = metrics.borrow_and_update();
                (m.last_applied, m.state == ServerState::Leader)
            };
            if now_applied != applied {
                applied = now_applied;
                let changed = self.update_desired();
                if changed.everything || !changed.pods.is_empty() {
                    self.quiet.desired_changed();
                }
                for key in changed.pods {
                    self.runner.enqueue(Key::Pod(key), Duration::ZERO);
                }
                // An RC's work reads its replicas, its rollout and the desired commit: only
                // the RCs an entry changed are looked at again (pod status changes and
                // progressing rollouts bring the others back).
                for rc in changed.rcs {
                    self.runner.enqueue(Key::Rc(rc), Duration::ZERO);
                }
                if changed.everything {
                    // Gates (Recreate) and readiness of every pod may read the new commit.
                    for key in self.desired().pods.keys() {
                        self.runner.enqueue(Key::Pod(key.clone()), Duration::ZERO);
                    }
                }
                self.runner.enqueue(Key::Converge, CONVERGE_DEBOUNCE);
                self.runner.enqueue(Key::Pending, CONVERGE_DEBOUNCE);
            }
            if now_leading != leading {
                leading = now_leading;
                if leading {
                    // A new leader first applies everything committed and hears from a quorum,
                    // then acts: looks at every pod and host, and at the branch.
                    let ctl = self.clone();
                    tokio::spawn(async move {
                        let wait = ctl.config.cluster.election_timeout * 4;
                        match ctl.raft.wait_leader(wait).await {
                            Ok(id) if id == ctl.raft.id() => {
                                tracing::info!(
                                    term = ctl.raft.current_term(),
                                    "leading: looking at every pod and host"
                                );
                                ctl.enqueue_all();
                                ctl.sync_now.notify_one();
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(
                                "elected, but not confirmed as leader: {}",
                                super::error_chain(&e)
                            ),
                        }
                    });
                } else {
                    self.book.clear();
                    self.probes.clear();
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Brings the desired index up to the applied state. In place when nobody else holds it;
    /// else on a copy made outside the lock and swapped in, so that readers (every pod key)
    /// never wait for a copy of 100,000 pods.
    fn update_desired(&self) -> super::desired_index::Changed {
        {
            let mut index = self.desired.write().expect("desired lock");
            if let Some(index) = Arc::get_mut(&mut index) {
                return self.raft.state().read(|s| index.update(s));
            }
        }
        // follow_state is the only writer: nothing changes the index between copy and swap.
        let mut copy = (*self.desired()).clone();
        let changed = self.raft.state().read(|s| copy.update(s));
        *self.desired.write().expect("desired lock") = Arc::new(copy);
        changed
    }

    /// Says when this member, still leader as far as openraft knows, loses its quorum (and so
    /// stops acting: see `RaftNode::is_leader`) and when the quorum answers again; on regaining
    /// it, looks at everything, since keys were left alone meanwhile.
    pub(super) async fn quorum_watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.cluster.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fenced = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let facts = self.raft.leader_facts();
            let now_fenced = facts.raft_leader
                && !facts.may_act(crate::raft::election::fence(
                    self.config.cluster.election_timeout,
                ));
            if now_fenced && !fenced {
                tracing::warn!(
                    term = facts.term,
                    "no quorum has answered for an election timeout: stopped acting on the hosts until one does"
                );
            } else if fenced && !now_fenced && facts.raft_leader {
                tracing::info!(term = facts.term, "the quorum answers again: acting");
                self.enqueue_all();
            }
            fenced = now_fenced;
        }
    }

    /// Every `--resync`, looks at everything even without news: the last line of defence
    /// against a trigger lost anywhere.
    pub(super) async fn resync_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_trim = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.acting() {
                let started = tokio::time::Instant::now();
                let asked = self.enqueue_unsettled();
                self.time_pass(started, asked).await;
                self.forget_gone_pods();
                if last_trim.elapsed() >= TRIM_EVERY {
                    last_trim = tokio::time::Instant::now();
                    let trimming = std::time::Instant::now();
                    let _ = tokio::task::spawn_blocking(release_freed_memory).await;
                    tracing::debug!("freed memory returned in {:?}", trimming.elapsed());
                }
            }
        }
    }

    /// Waits until every key a resync asked for is done (a resync period at most), and records
    /// how long the pass took from its start: in steady state, the cost of a pass with nothing
    /// to do.
    async fn time_pass(&self, started: tokio::time::Instant, asked: super::settled::Asked) {
        let give_up = started + self.config.resync;
        let enqueued = tokio::time::Instant::now();
        while self.runner.busy_with(enqueued) {
            if tokio::time::Instant::now() > give_up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let millis = started.elapsed().as_millis() as u64;
        let compare_millis = enqueued.duration_since(started).as_millis() as u64;
        tracing::debug!(
            pods = asked.pods,
            unsettled = asked.unsettled,
            others = asked.others,
            millis,
            compare_millis,
            "resync pass"
        );
        self.live.write().expect("live lock").last_pass = Some(super::live::PassTiming {
            keys: asked.pods + asked.others,
            worked: asked.unsettled + asked.others,
            millis,
            compare_millis,
            at: crate::clock::now_millis(),
        });
    }

    /// Notes a step done for the desired commit, while it is still being applied: healing
    /// after convergence is not news for the commit's history.
    pub(super) fn note_progress(&self, desired: Option<&DesiredPod>, line: String) {
        let Some(sha) = desired.map(|d| d.commit.clone()) else {
            return;
        };
        let applying = self.raft.state().read(|s| {
            s.desired_commit.as_deref() == Some(sha.as_str())
                && s.commit(&sha)
                    .is_some_and(|c| c.outcome == Outcome::Applying)
        });
        if !applying {
            return;
        }
        let mut p = self.progress.lock().expect("progress lock");
        if p.recorded.len() > REMEMBERED_LINES || p.recorded_for.as_deref() != Some(sha.as_str()) {
            p.recorded = HashSet::new();
            p.recorded_for = Some(sha.clone());
        }
        if p.recorded.insert(line.clone()) {
            p.pending.entry(sha).or_default().push(line);
        }
    }

    /// Proposes the plan lines noted so far: one entry per commit with news.
    pub(super) async fn flush_progress(&self) {
        let applying = self.raft.state().read(|s| {
            s.desired_commit
                .as_deref()
                .filter(|sha| {
                    s.commit(sha)
                        .is_some_and(|c| c.outcome == Outcome::Applying)
                })
                .map(str::to_string)
        });
        let pending = {
            let mut p = self.progress.lock().expect("progress lock");
            // Once its commit is applied (or replaced), what was recorded of it is not needed:
            // a rollout of 100,000 replicas noted as many lines.
            if p.recorded_for.is_some() && p.recorded_for != applying {
                p.recorded = HashSet::new();
                p.recorded_for = None;
            }
            std::mem::take(&mut p.pending)
        };
        for (sha, lines) in pending {
            self.propose_quietly(Command::Progress { sha, lines }).await;
        }
    }

    pub(super) async fn progress_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PROGRESS_EVERY) => {}
            }
            if self.acting() {
                self.flush_progress().await;
            }
        }
    }
}

/// Freed memory is handed back at most this often (after a resync pass): after every pass at
/// the default resync of 30 s. A trim took 2–12 ms with 100,000 containers on 5,000 hosts.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Hands memory freed since the last pass back to the system. glibc keeps the freed pages of its
/// arenas mapped: after a burst (a first look at thousands of hosts opens thousands of
/// connections at once, a new commit copies the desired index) the process would go on holding
/// its peak. Trimming after a resync pass costs milliseconds and keeps the resident size near
/// what is live.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and madvises glibc's own free lists; it takes the arena
    // locks itself and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
