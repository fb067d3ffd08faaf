//! Settled pods: what lets a resync skip the pods with nothing to do.
//!
//! The resync is the last line of defence against a trigger lost somewhere. Working every pod
//! key in full on each one costs about 100 µs per key (its desired instance and containers
//! copied, a plan, a status): 11 s for 100,000 pods on two cores, every `--resync`. Most of
//! them have not changed at all.
//!
//! So a pod key whose work ends with nothing to do and nothing to wait for records a
//! fingerprint of what that work read and what can change behind its back:
//! - its desired instance: host, spec hash, owner (from the desired index);
//! - the generation of its containers in the pod index (raised by every change the hosts'
//!   watchers see: an event, an inspect, a full look of the host);
//! - the readiness of every host involved (its own, and any holding its containers), which
//!   changes with time alone.
//!
//! A resync computes the fingerprint of every key again, a few hash lookups each, and works in
//! full only the keys that never settled or whose fingerprint differs. That comparison is
//! itself skipped when the last one found every pod settled and none of its inputs has moved
//! anywhere since: no desired pod changed, no container changed on any host, no host's
//! readiness changed, and no pod key was worked (see [`Quiet`]). Everything else the
//! work reads changes only by the engine's own steps (the pod book) or comes with its own
//! trigger (probe results), and every trigger still works its key in full. A new leader, and a
//! leader whose quorum answers again, look at every key (`Controller::enqueue_all`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Controller, Key, CONVERGE_DEBOUNCE};
use crate::docker::{PodHosts, Readiness};
use crate::reconcile::DesiredPod;

/// The fingerprint of one pod key's inputs. `readiness` says how a host is seen now (`None`
/// for a host not configured).
pub(super) fn fingerprint(
    desired: Option<&DesiredPod>,
    observed: Option<&PodHosts>,
    readiness: impl Fn(&str) -> Option<Readiness>,
) -> u64 {
    let mut h = DefaultHasher::new();
    match desired {
        Some(d) => {
            1u8.hash(&mut h);
            d.node.hash(&mut h);
            d.spec_hash.hash(&mut h);
            d.owner.hash(&mut h);
            readiness(&d.node).hash(&mut h);
        }
        None => 0u8.hash(&mut h),
    }
    match observed {
        Some(o) => {
            1u8.hash(&mut h);
            o.generation.hash(&mut h);
            for host in &o.hosts {
                host.hash(&mut h);
                readiness(host).hash(&mut h);
            }
        }
        None => 0u8.hash(&mut h),
    }
    h.finish()
}

/// The inputs of every pod key at once, summed up: when they are where the last resync found
/// every pod settled, every pod is still settled and the per-key comparison has nothing to
/// find.
#[derive(Default)]
pub(super) struct Quiet {
    /// Raised when an applied entry changes a desired pod.
    desired: AtomicU64,
    /// Raised when a pod key is worked (its settled fingerprint may be gone).
    worked: AtomicU64,
    /// (desired, pod index generation, hosts' readiness, worked) when a resync last found
    /// every pod settled.
    settled_at: Mutex<Option<(u64, u64, u64, u64)>>,
    /// How many pod keys there were then (unchanged while nothing moves).
    pods: AtomicU64,
}

impl Quiet {
    pub(super) fn desired_changed(&self) {
        self.desired.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn pod_worked(&self) {
        self.worked.fetch_add(1, Ordering::SeqCst);
    }
}

/// What a resync asked the engine to look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Asked {
    /// Pod keys desired or seen on a host.
    pub pods: usize,
    /// Of them, those whose inputs changed since they last settled (or never did).
    pub unsettled: usize,
    /// RC keys, and the keys of pending pods, lost hosts and (unless all is settled and in
    /// sync) convergence.
    pub others: usize,
}

impl Controller {
    /// How host `name` is seen now.
    pub(super) fn readiness_of(&self, name: &str) -> Option<Readiness> {
        let now = crate::clock::now_millis();
        self.cache(name)
            .map(|c| c.read(|v| v.readiness(now, self.config.node_grace)))
    }

    /// The resync's look: every pod key whose fingerprint differs from the one it settled
    /// on, every RC, and the global keys.
    pub(super) fn enqueue_unsettled(&self) -> Asked {
        let index = self.desired();
        let now = crate::clock::now_millis();
        // Read before the pod index, never under it: a watcher holds its host's view while
        // it updates the index.
        let readiness: Vec<Readiness> = self
            .hosts
            .iter()
            .map(|c| c.read(|v| v.readiness(now, self.config.node_grace)))
            .collect();
        let ready = |name: &str| self.by_name.get(name).map(|i| readiness[*i]);
        // Taken before anything is compared: a change from here on shows at the next resync.
        let inputs = (
            self.quiet.desired.load(Ordering::SeqCst),
            self.pod_index.generation(),
            {
                let mut h = DefaultHasher::new();
                readiness.hash(&mut h);
                h.finish()
            },
            self.quiet.worked.load(Ordering::SeqCst),
        );
        let quiet = *self.quiet.settled_at.lock().expect("quiet lock") == Some(inputs);
        let prints: Vec<(&str, Option<String>, u64)> = self.pod_index.read(|observed| {
            if quiet {
                return Vec::new();
            }
            let mut prints = Vec::with_capacity(index.pods.len() + 16);
            for (key, pod) in &index.pods {
                prints.push((
                    key.as_str(),
                    None,
                    fingerprint(Some(&**pod), observed.get(key), ready),
                ));
            }
            for (key, o) in observed {
                if !index.pods.contains_key(key) {
                    prints.push(("", Some(key.clone()), fingerprint(None, Some(o), ready)));
                }
            }
            prints
        });
        let pods = if quiet {
            self.quiet.pods.load(Ordering::SeqCst) as usize
        } else {
            prints.len()
        };
        let unsettled = self.book.unsettled(
            prints
                .iter()
                .map(|(k, owned, print)| (owned.as_deref().unwrap_or(k), *print)),
        );
        // Convergence reads every pod's containers and status. With every pod settled and the
        // desired commit found in place, nothing it reads has changed (a change to a pod's
        // status, a host or the state brings it back by itself).
        let in_sync = index.commit.is_some()
            && self.live.read().expect("live lock").in_sync_on == index.commit;
        let converge = !(unsettled.is_empty() && in_sync);
        *self.quiet.settled_at.lock().expect("quiet lock") = unsettled.is_empty().then_some(inputs);
        self.quiet.pods.store(pods as u64, Ordering::SeqCst);
        let asked = Asked {
            pods,
            unsettled: unsettled.len(),
            others: index.rcs.len() + 2 + usize::from(converge),
        };
        for key in unsettled {
            self.runner
                .enqueue(Key::Pod(key), std::time::Duration::ZERO);
        }
        self.enqueue_others(&index, converge);
        asked
    }

    /// Every RC and the global keys (convergence if `converge`).
    pub(super) fn enqueue_others(&self, index: &Arc<super::DesiredIndex>, converge: bool) {
        for rc in &index.rcs {
            self.runner
                .enqueue(Key::Rc(rc.clone()), std::time::Duration::ZERO);
        }
        if converge {
            self.runner.enqueue(Key::Converge, CONVERGE_DEBOUNCE);
        }
        self.runner.enqueue(Key::Pending, CONVERGE_DEBOUNCE);
        self.runner.enqueue(Key::Hosts, std::time::Duration::ZERO);
    }

    /// Forgets the book's entries of pods neither desired nor seen on any host any more.
    pub(super) fn forget_gone_pods(&self) {
        let index = self.desired();
        let undesired = self.book.keys_where(|k| !index.pods.contains_key(k));
        let gone: Vec<String> = self.pod_index.read(|observed| {
            undesired
                .into_iter()
                .filter(|k| !observed.contains_key(k))
                .collect()
        });
        self.book.remove(&gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str, hash: &str) -> DesiredPod {
        DesiredPod {
            namespace: "default".into(),
            name: "web-1".into(),
            owner: Some("web".into()),
            node: node.into(),
            labels: Default::default(),
            spec: crate::manifest::PodSpec {
                containers: vec![crate::manifest::Container::new("main", "img:1")],
                volumes: vec![],
                restart_policy: crate::manifest::RestartPolicy::Always,
                node_selector: Default::default(),
                termination_grace_period_seconds: 7,
            }
            .into(),
            spec_hash: hash.into(),
            commit: "c1".into(),
        }
    }

    fn on(hosts: &[&str], generation: u64) -> PodHosts {
        PodHosts {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            generation,
        }
    }

    #[test]
    fn the_fingerprint_changes_with_each_input_and_with_nothing_else() {
        let base = pod("h1", "s1");
        let seen = on(&["h1"], 7);
        let ready = |_: &str| Some(Readiness::Ready);
        let print = fingerprint(Some(&base), Some(&seen), ready);
        // The commit label alone: the same.
        let relabelled = DesiredPod {
            commit: "c2".into(),
            ..base.clone()
        };
        assert_eq!(fingerprint(Some(&relabelled), Some(&seen), ready), print);
        let others = [
            fingerprint(Some(&pod("h2", "s1")), Some(&seen), ready),
            fingerprint(Some(&pod("h1", "s2")), Some(&seen), ready),
            fingerprint(None, Some(&seen), ready),
            fingerprint(Some(&base), None, ready),
            fingerprint(Some(&base), Some(&on(&["h1"], 8)), ready),
            fingerprint(Some(&base), Some(&on(&["h1", "h2"], 7)), ready),
            fingerprint(Some(&base), Some(&seen), |_| Some(Readiness::Unknown)),
            fingerprint(Some(&base), Some(&seen), |h| {
                Some(if h == "h1" {
                    Readiness::NotReady
                } else {
                    Readiness::Ready
                })
            }),
            fingerprint(Some(&base), Some(&seen), |_| None),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(*other, print, "input {i} changed, the fingerprint must too");
        }
        assert_eq!(
            fingerprint(Some(&base), Some(&seen.clone()), ready),
            print,
            "deterministic"
        );
    }
}
