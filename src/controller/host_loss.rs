//! Host loss: RC replicas on a host that is `NotReady` (no answer for `--node-grace`) or no
//! longer configured are placed elsewhere, under new names, by a Raft-committed
//! [`Command::Replicas`] that retires the lost replica and adds its replacement in one entry.
//!
//! - Only the grace period makes a host lost: a blip, or a host that flaps faster than the
//!   grace period, moves nothing.
//! - Moves are rate limited ([`MoveBudget`]): many hosts lost at once move their replicas at a
//!   bounded pace instead of in one storm of creations.
//! - Replacements go only to `Ready` hosts; with none, nothing moves and the key looks again.
//! - Bare Pods never move: their status says `NodeLost` (see `pods.rs`), as in Kubernetes.
//! - When a lost host returns, its containers belong to retired replicas: the pod keys find
//!   them undesired and stop them gracefully. A host berth cannot see is never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use super::Controller;
use crate::clock::now_millis;
use crate::docker::Readiness;
use crate::engine::Next;
use crate::raft::state::{object_key, Command, Millis, ObjectKey, Replica};
use crate::scheduler::{new_replicas, Host, Workload};

/// Replicas moved per second at most, over all hosts, once the burst is spent.
const MOVES_PER_SECOND: u32 = 1000;
/// Replicas that may move at once after a quiet while.
const MOVE_BURST: u32 = 5000;
/// How soon to look again while replicas wait for a budget or a ready host.
const RETRY: Duration = Duration::from_secs(1);

/// The replicas of each RC whose host is `lost`, at most `budget` in all, RCs in key order
/// (so a limited budget moves the same replicas on every leader).
pub fn stranded(
    replicas: &BTreeMap<ObjectKey, Vec<Replica>>,
    lost: impl Fn(&str) -> bool,
    budget: usize,
) -> Vec<(ObjectKey, Vec<Replica>)> {
    let mut left = budget;
    let mut out = Vec::new();
    for (rc, list) in replicas {
        if left == 0 {
            break;
        }
        let here: Vec<Replica> = list
            .iter()
            .filter(|r| lost(&r.node))
            .take(left)
            .cloned()
            .collect();
        if !here.is_empty() {
            left -= here.len();
            out.push((rc.clone(), here));
        }
    }
    out
}

/// A token bucket of replica moves.
#[derive(Debug)]
pub struct MoveBudget {
    tokens: f64,
    at: Option<Millis>,
}

impl Default for MoveBudget {
    fn default() -> Self {
        MoveBudget {
            tokens: f64::from(MOVE_BURST),
            at: None,
        }
    }
}

impl MoveBudget {
    /// Moves allowed at `now`.
    pub fn available(&mut self, now: Millis) -> usize {
        if let Some(at) = self.at {
            let refill = now.saturating_sub(at) as f64 / 1000.0 * f64::from(MOVES_PER_SECOND);
            self.tokens = (self.tokens + refill).min(f64::from(MOVE_BURST));
        }
        self.at = Some(now);
        self.tokens as usize
    }

    /// Spends `n` moves (after [`MoveBudget::available`]).
    pub fn spend(&mut self, n: usize) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }
}

/// How each configured host stands, for one look.
pub struct HostsNow {
    pub readiness: BTreeMap<String, Readiness>,
    /// The soonest a host now `Unknown` becomes `NotReady`, if any is.
    pub next_deadline: Option<Duration>,
    /// Some configured host has not been looked at yet (start-up): placing now would crowd the
    /// first hosts to answer.
    pub unseen: bool,
}

impl HostsNow {
    /// A host is lost when it is `NotReady`, or not configured at all.
    pub fn lost(&self, node: &str) -> bool {
        !matches!(
            self.readiness.get(node),
            Some(Readiness::Ready | Readiness::Unknown)
        )
    }
}

impl Controller {
    /// Every configured host's readiness now.
    pub(super) fn hosts_now(&self) -> HostsNow {
        let now = now_millis();
        let grace = self.config.node_grace;
        let mut out = HostsNow {
            readiness: BTreeMap::new(),
            next_deadline: None,
            unseen: false,
        };
        for cache in &self.hosts {
            let name = cache.host().name().to_string();
            let (readiness, since, unseen) = cache.read(|v| {
                (
                    v.readiness(now, grace),
                    v.out_of_contact_since,
                    v.state == crate::docker::HostState::Unseen,
                )
            });
            out.unseen |= unseen && readiness == Readiness::Unknown;
            if readiness == Readiness::Unknown {
                let left = (grace.as_millis() as Millis).saturating_sub(now - since.unwrap_or(now));
                let left = Duration::from_millis(left + 50);
                out.next_deadline = Some(out.next_deadline.map_or(left, |d| d.min(left)));
            }
            out.readiness.insert(name, readiness);
        }
        out
    }

    /// The engine's work for [`super::Key::Hosts`]: move the replicas of lost hosts.
    pub(super) async fn work_hosts(&self) -> Next {
        let hosts = self.hosts_now();
        let now = now_millis();
        self.note_lost_hosts(&hosts);
        let budget = self.moves.lock().expect("moves lock").available(now);
        let read = self.raft.state().read(|s| {
            let sha = s.desired_commit.clone()?;
            let stranded = stranded(&s.replicas, |n| hosts.lost(n), budget);
            let total: usize = s
                .replicas
                .values()
                .flatten()
                .filter(|r| hosts.lost(&r.node))
                .count();
            // What each stranded replica runs, with its RC's placement rules.
            let specs: BTreeMap<(ObjectKey, String), Workload> = stranded
                .iter()
                .flat_map(|(rc, lost)| lost.iter().map(move |r| (rc, r)))
                .filter_map(|(rc, r)| {
                    let t = s.template(rc, &r.revision)?;
                    let owner = s
                        .desired
                        .replication_controllers
                        .iter()
                        .find(|o| object_key(&o.metadata.namespace, &o.metadata.name) == *rc)?;
                    let w = Workload::of_rc(owner, &t.labels, &t.spec);
                    Some(((rc.clone(), r.revision.clone()), w))
                })
                .collect();
            Some((sha, stranded, total, specs, s.desired.nodes.clone()))
        });
        let Some((sha, stranded, total, specs, nodes)) = read else {
            return Next::Idle;
        };
        let again = hosts.next_deadline;
        // Nothing stranded (nearly always): said before the scheduler's view of every host is
        // built.
        if total == 0 {
            return again.map_or(Next::Idle, Next::after);
        }
        // Only hosts that answer now take replacements; a draining (unschedulable) one is
        // refused by the scheduler's own filter.
        let targets: Vec<Host> = self
            .scheduler_hosts(&nodes)
            .into_iter()
            .map(|mut h| {
                h.ready &= hosts.readiness.get(&h.name) == Some(&Readiness::Ready);
                h
            })
            .collect();
        if !targets.iter().any(|h| h.ready && h.schedulable) || hosts.unseen {
            return Next::after(again.map_or(RETRY, |d| d.min(RETRY)));
        }
        let mut moved = 0;
        for (rc, lost) in stranded {
            let (namespace, rc_name) = rc.split_once('/').unwrap_or(("default", &rc));
            let all: Vec<Replica> = self
                .raft
                .state()
                .read(|s| s.replicas.get(&rc).cloned().unwrap_or_default());
            let taken: BTreeSet<String> = self.taken_names(namespace, rc_name, &all);
            let report = std::sync::Arc::new(Mutex::new((0usize, Vec::<String>::new())));
            let said = report.clone();
            let mut by_revision: BTreeMap<String, Vec<&Replica>> = BTreeMap::new();
            for r in &lost {
                by_revision.entry(r.revision.clone()).or_default().push(r);
            }
            let groups: Vec<(String, Workload, Vec<String>)> = by_revision
                .into_iter()
                .filter_map(|(revision, group)| {
                    let w = specs.get(&(rc.clone(), revision.clone()))?.clone();
                    Some((revision, w, group.iter().map(|r| r.name.clone()).collect()))
                })
                .collect();
            // Placed against the committed placements (one at a time with every other
            // placement), refused and left for the next look if a chosen host took pods since.
            let (rc_, sha_) = (rc.clone(), sha.clone());
            let decided = self
                .place_and_propose(targets.clone(), move |_, load, based_on| {
                    let mut add: Vec<Replica> = Vec::new();
                    let mut retire: Vec<String> = Vec::new();
                    for (revision, w, group) in groups {
                        let mut taken = taken.clone();
                        taken.extend(add.iter().map(|r| r.name.clone()));
                        let placed: Vec<Replica> = new_replicas(
                            &rc_,
                            &w,
                            &revision,
                            group.len(),
                            load,
                            &taken,
                            &format!("{sha_}/moved-at-{now}"),
                            now,
                        )
                        .into_iter()
                        .filter(|r| !r.node.is_empty()) // no host fits: stays where it was
                        .collect();
                        retire.extend(group.iter().take(placed.len()).cloned());
                        add.extend(placed);
                    }
                    if add.is_empty() {
                        return None;
                    }
                    let lines: Vec<String> = retire
                        .iter()
                        .zip(&add)
                        .map(|(old, new)| format!("{old} -> {} on {}", new.name, new.node))
                        .collect();
                    *said.lock().expect("report lock") = (add.len(), lines);
                    let cmd = Command::Replicas {
                        sha: sha_,
                        rc: rc_,
                        add,
                        retire,
                        at: now,
                        based_on: Some(based_on),
                    };
                    Some((cmd, false))
                })
                .await;
            if decided != Some(true) {
                continue;
            }
            let (n, lines) = std::mem::take(&mut *report.lock().expect("report lock"));
            moved += n;
            tracing::warn!(
                rc = %rc,
                "host lost: {n} replica(s) placed elsewhere: {}",
                lines.join(", ")
            );
        }
        self.moves.lock().expect("moves lock").spend(moved);
        if moved < total {
            Next::after(again.map_or(RETRY, |d| d.min(RETRY)))
        } else {
            again.map_or(Next::Idle, Next::after)
        }
    }
}

impl Controller {
    /// Says when a host becomes `NotReady` (and when it is back), and has the pods placed on
    /// it looked at again: their status turns to `NodeLost`.
    fn note_lost_hosts(&self, hosts: &HostsNow) {
        let mut noted = self.lost_hosts.lock().expect("lost hosts lock");
        for (name, readiness) in &hosts.readiness {
            let lost = *readiness == Readiness::NotReady;
            if lost == noted.contains(name) {
                continue;
            }
            if lost {
                tracing::warn!(
                    node = %name,
                    grace = ?self.config.node_grace,
                    "Docker host NotReady: no answer for the grace period; its RC replicas move elsewhere"
                );
                noted.insert(name.clone());
                let on_node: Vec<String> = self.desired().on_node(name).cloned().collect();
                for key in on_node {
                    self.runner.enqueue(super::Key::Pod(key), Duration::ZERO);
                }
            } else {
                noted.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, node: &str) -> Replica {
        Replica {
            name: name.into(),
            node: node.into(),
            revision: "r1".into(),
            created_at: 1,
        }
    }

    #[test]
    fn only_replicas_on_lost_hosts_are_stranded_within_the_budget() {
        let replicas: BTreeMap<ObjectKey, Vec<Replica>> = [
            (
                "default/a".to_string(),
                vec![
                    replica("a-1", "x"),
                    replica("a-2", "y"),
                    replica("a-3", "x"),
                ],
            ),
            ("default/b".to_string(), vec![replica("b-1", "x")]),
        ]
        .into();
        let lost = |n: &str| n == "x";
        let all = stranded(&replicas, lost, 100);
        let names: Vec<Vec<&str>> = all
            .iter()
            .map(|(_, l)| l.iter().map(|r| r.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a-1", "a-3"], vec!["b-1"]]);
        let two = stranded(&replicas, lost, 2);
        assert_eq!(two.len(), 1, "the budget stops after two moves");
        assert!(stranded(&replicas, lost, 0).is_empty());
        assert!(stranded(&replicas, |_| false, 100).is_empty());
    }

    #[test]
    fn the_budget_refills_at_its_rate_up_to_the_burst() {
        let mut b = MoveBudget::default();
        assert_eq!(b.available(0), MOVE_BURST as usize);
        b.spend(MOVE_BURST as usize);
        assert_eq!(b.available(0), 0);
        assert_eq!(b.available(500), MOVES_PER_SECOND as usize / 2);
        assert_eq!(b.available(3_600_000), MOVE_BURST as usize);
    }

    #[test]
    fn a_host_neither_ready_nor_unknown_is_lost() {
        let hosts = HostsNow {
            readiness: [
                ("a".to_string(), Readiness::Ready),
                ("b".to_string(), Readiness::Unknown),
                ("c".to_string(), Readiness::NotReady),
            ]
            .into(),
            next_deadline: None,
            unseen: false,
        };
        assert!(!hosts.lost("a"));
        assert!(!hosts.lost("b"), "within its grace period");
        assert!(hosts.lost("c"));
        assert!(hosts.lost("removed"), "no longer configured");
    }
}
