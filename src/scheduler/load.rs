//! What is placed where, kept up to date one pod at a time, and the filters and scorers that
//! choose a host for the next pod.
//!
//! Hosts that can take pods (ready and schedulable) are kept in one ordered set by how much of
//! them is allocated, so the least allocated host that fits is usually the first or second one
//! looked at: placing a replica costs O(log H) plus the hosts skipped, not a pass over all H.
//! Only the hosts already running the RC are looked at when every host runs one (spread's
//! second level), and a `nodeSelector` starts from the hosts carrying its first label.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::manifest::StringMap;
use crate::raft::state::{object_key, ClusterState, ObjectKey};

use super::{Host, HostPort, Reason, Resources, Selector, Strategy, Workload};

/// Index of a host in [`Load`], in name order.
type Idx = u32;

/// One pod on a host, as other pods' `berth.io/conflicts` see it.
#[derive(Debug, Clone)]
struct Member {
    key: Arc<str>,
    labels: Arc<StringMap>,
}

#[derive(Debug, Clone)]
struct Slot {
    host: Host,
    allocated: Resources,
    pods: u32,
    ports: HashMap<HostPort, Arc<str>>,
    members: Vec<Member>,
    /// Pods here that declare `berth.io/conflicts`, with their selectors.
    conflicting: Vec<(Arc<Selector>, Arc<str>)>,
}

impl Slot {
    fn takes_pods(&self) -> bool {
        self.host.ready && self.host.schedulable
    }

    /// Allocated share in millionths: the mean of CPU and memory (0 while capacity is unknown,
    /// when the pod count decides).
    fn share(&self) -> u32 {
        let Some(cap) = self.host.capacity else {
            return 0;
        };
        let frac = |a: u64, c: u64| {
            if c == 0 {
                1_000_000u128
            } else {
                (a as u128 * 1_000_000 / c as u128).min(1_000_000_000)
            }
        };
        ((frac(self.allocated.cpu, cap.cpu) + frac(self.allocated.memory, cap.memory)) / 2) as u32
    }

    fn rank(&self, idx: Idx) -> (u32, u32, Idx) {
        (self.share(), self.pods, idx)
    }
}

/// The configured hosts and everything placed on them.
#[derive(Debug, Clone, Default)]
pub struct Load {
    slots: Vec<Slot>,
    index: HashMap<String, Idx>,
    /// Hosts that take pods, least allocated first, then fewest pods, then by name.
    order: BTreeSet<(u32, u32, Idx)>,
    groups: HashMap<ObjectKey, u32>,
    per_group: HashMap<(u32, Idx), u32>,
    /// Hosts running at least one pod of each group, in the order they got their first.
    group_hosts: HashMap<u32, Vec<Idx>>,
    by_label: HashMap<(String, String), Vec<Idx>>,
}

impl Load {
    /// Empty hosts (a name given twice counts once).
    pub fn new(hosts: &[Host]) -> Load {
        let mut sorted: Vec<&Host> = hosts.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.dedup_by(|a, b| a.name == b.name);
        let mut load = Load::default();
        for (i, h) in sorted.into_iter().enumerate() {
            let idx = i as Idx;
            load.index.insert(h.name.clone(), idx);
            for (k, v) in &h.labels {
                load.by_label
                    .entry((k.clone(), v.clone()))
                    .or_default()
                    .push(idx);
            }
            let slot = Slot {
                host: h.clone(),
                allocated: Resources::default(),
                pods: 0,
                ports: HashMap::new(),
                members: Vec::new(),
                conflicting: Vec::new(),
            };
            if slot.takes_pods() {
                load.order.insert(slot.rank(idx));
            }
            load.slots.push(slot);
        }
        load
    }

    /// `hosts` with everything the committed state places on them: bare Pods and RC replicas
    /// (each by the template of its own revision). Pods on hosts not configured are left out.
    pub fn of(state: &ClusterState, hosts: &[Host]) -> Load {
        let mut load = Load::new(hosts);
        for pod in &state.desired.pods {
            let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
            if let Some(node) = state.pod_nodes.get(&key) {
                load.add(node, &Workload::of_pod(pod), &key);
            }
        }
        for rc in &state.desired.replication_controllers {
            let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
            let mut workloads: HashMap<&str, Workload> = HashMap::new();
            for r in state.replicas.get(&key).into_iter().flatten() {
                if r.node.is_empty() || !load.index.contains_key(&r.node) {
                    continue;
                }
                let w = workloads.entry(r.revision.as_str()).or_insert_with(|| {
                    match state.template(&key, &r.revision) {
                        Some(t) => Workload::of_rc(rc, &t.labels, &t.spec),
                        None => Workload::of_rc(rc, &rc.template.labels, &rc.template.spec),
                    }
                });
                let pod = object_key(&rc.metadata.namespace, &r.name);
                load.add(&r.node, w, &pod);
            }
        }
        load
    }

    /// Is `name` a configured host?
    pub fn has_host(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The hosts, in name order.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.slots.iter().map(|s| &s.host)
    }

    /// What is allocated on `name`, and how many pods it runs.
    pub fn allocated(&self, name: &str) -> Option<(Resources, u32)> {
        let s = &self.slots[*self.index.get(name)? as usize];
        Some((s.allocated, s.pods))
    }

    /// Host ports the pods placed on `name` publish.
    pub fn ports_on(&self, name: &str) -> Vec<HostPort> {
        let Some(idx) = self.index.get(name) else {
            return Vec::new();
        };
        let mut ports: Vec<HostPort> = self.slots[*idx as usize].ports.keys().copied().collect();
        ports.sort();
        ports
    }

    /// Counts pod `key` (running `w`) on `node`; nothing when `node` is not configured.
    pub fn add(&mut self, node: &str, w: &Workload, key: &str) {
        let Some(&idx) = self.index.get(node) else {
            return;
        };
        let group = w.group.as_ref().map(|g| self.group_id(g));
        let slot = &mut self.slots[idx as usize];
        let listed = slot.takes_pods();
        if listed {
            self.order.remove(&slot.rank(idx));
        }
        let key: Arc<str> = Arc::from(key);
        slot.allocated = slot.allocated.plus(w.demand);
        slot.pods += 1;
        for p in &w.ports {
            slot.ports.entry(*p).or_insert_with(|| key.clone());
        }
        slot.members.push(Member {
            key: key.clone(),
            labels: w.labels.clone(),
        });
        if let Some(sel) = &w.conflicts {
            slot.conflicting.push((sel.clone(), key));
        }
        if listed {
            self.order.insert(slot.rank(idx));
        }
        if let Some(g) = group {
            let n = self.per_group.entry((g, idx)).or_default();
            *n += 1;
            if *n == 1 {
                self.group_hosts.entry(g).or_default().push(idx);
            }
        }
    }

    fn group_id(&mut self, group: &str) -> u32 {
        let next = self.groups.len() as u32;
        *self.groups.entry(group.to_string()).or_insert(next)
    }

    fn count(&self, group: Option<u32>, idx: Idx) -> u32 {
        group.map_or(0, |g| self.per_group.get(&(g, idx)).copied().unwrap_or(0))
    }

    /// The filters, in order; the first that fails names the reason.
    fn check(&self, idx: Idx, w: &Workload, group: Option<u32>) -> Result<(), Reason> {
        let s = &self.slots[idx as usize];
        if !s.host.ready {
            return Err(Reason::NotReady);
        }
        if !s.host.schedulable {
            return Err(Reason::Unschedulable);
        }
        for (key, want) in &w.node_selector {
            let has = s.host.labels.get(key);
            if has != Some(want) {
                return Err(Reason::NodeSelector {
                    key: key.clone(),
                    want: want.clone(),
                    has: has.cloned(),
                });
            }
        }
        if let Some(cap) = s.host.capacity {
            let free = cap.minus(s.allocated);
            if w.demand.cpu > free.cpu {
                return Err(Reason::InsufficientCpu {
                    requests: w.demand.cpu,
                    free: free.cpu,
                });
            }
            if w.demand.memory > free.memory {
                return Err(Reason::InsufficientMemory {
                    requests: w.demand.memory,
                    free: free.memory,
                });
            }
        }
        for p in &w.ports {
            if let Some(by) = s.ports.get(p) {
                return Err(Reason::HostPort {
                    port: p.0,
                    protocol: p.1,
                    by: by.to_string(),
                });
            }
        }
        if let Some(max) = w.max_per_node {
            if self.count(group, idx) >= max {
                return Err(Reason::MaxPerNode { max });
            }
        }
        if let Some(sel) = &w.conflicts {
            if let Some(m) = s.members.iter().find(|m| sel.matches(&m.labels)) {
                return Err(Reason::Conflicts {
                    selector: sel.to_string(),
                    by: m.key.to_string(),
                });
            }
        }
        if let Some((sel, by)) = s.conflicting.iter().find(|(sel, _)| sel.matches(&w.labels)) {
            return Err(Reason::Conflicts {
                selector: sel.to_string(),
                by: by.to_string(),
            });
        }
        Ok(())
    }

    /// The host for one more pod running `w`, if one fits: filters, then the scorers of its
    /// strategy, ties broken by name.
    pub fn pick(&self, w: &Workload) -> Option<&str> {
        let group = w.group.as_ref().and_then(|g| self.groups.get(g)).copied();
        self.pick_idx(w, group)
            .map(|i| self.slots[i as usize].host.name.as_str())
    }

    fn pick_idx(&self, w: &Workload, group: Option<u32>) -> Option<Idx> {
        let fits = |idx: Idx| self.check(idx, w, group).is_ok();
        let rank = |idx: Idx| self.slots[idx as usize].rank(idx);
        if let Some((k, v)) = w.node_selector.iter().next() {
            // Few hosts usually carry a selected label: look at those alone.
            let candidates = self.by_label.get(&(k.clone(), v.clone()))?;
            let fitting = candidates.iter().copied().filter(|&i| fits(i));
            return match w.strategy {
                Strategy::Spread => fitting.min_by_key(|&i| (self.count(group, i), rank(i))),
                Strategy::Binpack => fitting.min_by_key(|&i| {
                    let (share, pods, idx) = rank(i);
                    (u32::MAX - share, u32::MAX - pods, idx)
                }),
            };
        }
        match w.strategy {
            Strategy::Spread => {
                let first = self
                    .order
                    .iter()
                    .map(|&(_, _, i)| i)
                    .filter(|&i| self.count(group, i) == 0)
                    .find(|&i| fits(i));
                if first.is_some() {
                    return first;
                }
                // Every host that fits already runs one of this RC: the fewest, then as above.
                let hosts = group.and_then(|g| self.group_hosts.get(&g))?;
                hosts
                    .iter()
                    .copied()
                    .filter(|&i| fits(i))
                    .min_by_key(|&i| (self.count(group, i), rank(i)))
            }
            Strategy::Binpack => {
                // Most allocated first; among equals, by name.
                let mut best: Option<(u32, u32, Idx)> = None;
                for &(share, pods, i) in self.order.iter().rev() {
                    if let Some((s, p, _)) = best {
                        if (share, pods) != (s, p) {
                            break;
                        }
                    }
                    if fits(i) {
                        best = Some((share, pods, i));
                    }
                }
                best.map(|(_, _, i)| i)
            }
        }
    }

    /// Places pod `key` (running `w`): its host, now counted, or `None` when no host fits.
    pub fn place(&mut self, w: &Workload, key: &str) -> Option<String> {
        let group = w.group.as_ref().and_then(|g| self.groups.get(g)).copied();
        let idx = self.pick_idx(w, group)?;
        let name = self.slots[idx as usize].host.name.clone();
        self.add(&name, w, key);
        Some(name)
    }

    /// Every host, in name order, with the reason it rejects one more pod running `w` (`Ok`
    /// where it would fit).
    pub fn explain(&self, w: &Workload) -> Vec<(String, Result<(), Reason>)> {
        let group = w.group.as_ref().and_then(|g| self.groups.get(g)).copied();
        (0..self.slots.len() as Idx)
            .map(|i| {
                (
                    self.slots[i as usize].host.name.clone(),
                    self.check(i, w, group),
                )
            })
            .collect()
    }
}
