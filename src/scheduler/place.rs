//! Where new pod instances go, and what names new replicas get.
//!
//! Existing pod instances keep their names and hosts (no churn): placement only ever adds
//! instances. New replicas go to a ready host with the fewest replicas of the same RC, then the
//! fewest pods, then by name, so ties break the same way on every run; a host whose pods already
//! publish one of the replica's host ports is avoided while another one fits. Placement runs on
//! the leader against committed state, and its result is committed before any container exists.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::manifest::{Manifests, PodSpec, Protocol};
use crate::raft::state::{object_key, ClusterState, Millis, ObjectKey, Replica};

/// A host as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub ready: bool,
}

/// A published host port: (port, protocol).
pub type HostPort = (u16, Protocol);

/// What is placed where already: pods per host, replicas of each RC per host, host ports in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    pods: BTreeMap<String, usize>,
    per_rc: BTreeMap<(ObjectKey, String), usize>,
    ports: BTreeMap<String, BTreeSet<HostPort>>,
}

impl Load {
    /// Everything the committed state places.
    pub fn of(state: &ClusterState) -> Load {
        let mut load = Load::default();
        for pod in &state.desired.pods {
            let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
            if let Some(node) = state.pod_nodes.get(&key) {
                load.add(None, node, &pod.spec);
            }
        }
        for (key, replicas) in &state.replicas {
            for r in replicas {
                match state.template(key, &r.revision) {
                    Some(t) => load.add(Some(key), &r.node, &t.spec),
                    None => *load.pods.entry(r.node.clone()).or_default() += 1,
                }
            }
        }
        load
    }

    fn add(&mut self, rc: Option<&ObjectKey>, node: &str, spec: &PodSpec) {
        *self.pods.entry(node.to_string()).or_default() += 1;
        if let Some(rc) = rc {
            *self
                .per_rc
                .entry((rc.clone(), node.to_string()))
                .or_default() += 1;
        }
        self.ports
            .entry(node.to_string())
            .or_default()
            .extend(host_ports(spec));
    }

    /// Host ports the pods placed on `node` publish.
    pub fn ports_on(&self, node: &str) -> Option<&BTreeSet<HostPort>> {
        self.ports.get(node)
    }
}

/// The host ports a pod spec publishes.
pub fn host_ports(spec: &PodSpec) -> BTreeSet<HostPort> {
    spec.containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter_map(|p| p.host_port.map(|h| (h, p.protocol)))
        .collect()
}

/// Hosts for the bare Pods of `desired`: those already placed stay (on a configured host), new
/// ones are spread. Returns every placed Pod.
pub fn place_pods(
    desired: &Manifests,
    current: &BTreeMap<ObjectKey, String>,
    load: &mut Load,
    hosts: &[Host],
) -> BTreeMap<ObjectKey, String> {
    let configured: BTreeSet<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let mut out = BTreeMap::new();
    for pod in &desired.pods {
        let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
        let node = match current.get(&key) {
            Some(n) if configured.contains(n.as_str()) => Some(n.clone()),
            _ => {
                let node = pick(hosts, load, None, &host_ports(&pod.spec));
                if let Some(n) = &node {
                    load.add(None, n, &pod.spec);
                }
                node
            }
        };
        if let Some(node) = node {
            out.insert(key, node);
        }
    }
    out
}

/// `count` new replicas of the RC `rc` (`namespace/name`) running `spec` at `revision`, named
/// `<name>-<5 characters>` from `seed` (the commit sha) and never one of `taken`, spread as the
/// module says. Fewer when no host is configured.
#[allow(clippy::too_many_arguments)]
pub fn new_replicas(
    rc: &str,
    spec: &PodSpec,
    revision: &str,
    count: usize,
    load: &mut Load,
    hosts: &[Host],
    taken: &BTreeSet<String>,
    seed: &str,
    at: Millis,
) -> Vec<Replica> {
    let name = rc.split_once('/').map_or(rc, |(_, n)| n);
    let ports = host_ports(spec);
    let mut out: Vec<Replica> = Vec::with_capacity(count);
    let mut salt = 0u32;
    while out.len() < count {
        let Some(node) = pick(hosts, load, Some(rc), &ports) else {
            break;
        };
        let replica_name = loop {
            let candidate = replica_name(name, seed, rc, salt);
            salt += 1;
            if !taken.contains(&candidate) && !out.iter().any(|r| r.name == candidate) {
                break candidate;
            }
        };
        load.add(Some(&rc.to_string()), &node, spec);
        out.push(Replica {
            name: replica_name,
            node,
            revision: revision.to_string(),
            created_at: at,
        });
    }
    out
}

/// Ready hosts first; then hosts where none of `ports` is published yet; then the fewest of
/// this RC, the fewest pods, and the name. With no ready host, a configured one is chosen so the
/// replica is created once it returns.
fn pick(
    hosts: &[Host],
    load: &Load,
    rc: Option<&str>,
    ports: &BTreeSet<HostPort>,
) -> Option<String> {
    hosts
        .iter()
        .min_by_key(|h| {
            let n = h.name.as_str();
            let clash = load
                .ports
                .get(n)
                .is_some_and(|used| !used.is_disjoint(ports));
            let mine = rc.map_or(0, |rc| {
                load.per_rc
                    .get(&(rc.to_string(), n.to_string()))
                    .copied()
                    .unwrap_or(0)
            });
            (
                !h.ready,
                clash,
                mine,
                load.pods.get(n).copied().unwrap_or(0),
                n,
            )
        })
        .map(|h| h.name.clone())
}

/// `<rc>-<5 base-27 characters>`, like Kubernetes' generated names, cut so it stays a valid
/// DNS-1123 subdomain.
fn replica_name(rc: &str, seed: &str, key: &str, salt: u32) -> String {
    let digest = Sha256::digest(format!("{seed}/{key}/{salt}").as_bytes());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = digest
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    let base = &rc[..rc.len().min(253 - 6)];
    format!("{base}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Container, ContainerPort, RestartPolicy};

    fn hosts(names: &[&str]) -> Vec<Host> {
        names
            .iter()
            .map(|n| Host {
                name: n.to_string(),
                ready: true,
            })
            .collect()
    }

    fn spec(host_port: Option<u16>) -> PodSpec {
        let mut c = Container::new("c", "i:1");
        c.ports.push(ContainerPort {
            name: None,
            container_port: 80,
            host_port,
            host_ip: None,
            protocol: Protocol::Tcp,
        });
        PodSpec {
            containers: vec![c],
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 30,
        }
    }

    fn add(load: &mut Load, hosts: &[Host], n: usize, seed: &str) -> Vec<Replica> {
        new_replicas(
            "default/web",
            &spec(None),
            "r1",
            n,
            load,
            hosts,
            &BTreeSet::new(),
            seed,
            7,
        )
    }

    #[test]
    fn new_replicas_spread_and_get_fresh_names() {
        let h = hosts(&["a", "b"]);
        let mut load = Load::default();
        let web = add(&mut load, &h, 3, "c1");
        assert_eq!(web.len(), 3);
        assert!(web
            .iter()
            .all(|r| r.name.starts_with("web-") && r.name.len() == 9));
        assert!(web.iter().all(|r| r.revision == "r1" && r.created_at == 7));
        let on_a = web.iter().filter(|r| r.node == "a").count();
        assert_eq!((on_a, 3 - on_a), (2, 1));
        let taken: BTreeSet<String> = web.iter().map(|r| r.name.clone()).collect();
        let more = new_replicas(
            "default/web",
            &spec(None),
            "r1",
            1,
            &mut load,
            &h,
            &taken,
            "c1",
            7,
        );
        assert_eq!(more[0].node, "b", "b has fewer of this RC");
        let names: BTreeSet<_> = web.iter().chain(&more).map(|r| &r.name).collect();
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn placement_is_reproducible() {
        let h = hosts(&["a", "b"]);
        assert_eq!(
            add(&mut Load::default(), &h, 3, "c1"),
            add(&mut Load::default(), &h, 3, "c1")
        );
    }

    #[test]
    fn taken_names_are_never_generated() {
        let h = hosts(&["a"]);
        let first = add(&mut Load::default(), &h, 1, "c1");
        let taken: BTreeSet<String> = [first[0].name.clone()].into();
        let again = new_replicas(
            "default/web",
            &spec(None),
            "r1",
            1,
            &mut Load::default(),
            &h,
            &taken,
            "c1",
            7,
        );
        assert_ne!(again[0].name, first[0].name);
    }

    #[test]
    fn ready_hosts_then_free_host_ports_are_preferred() {
        let h = vec![
            Host {
                name: "a".into(),
                ready: false,
            },
            Host {
                name: "b".into(),
                ready: true,
            },
            Host {
                name: "c".into(),
                ready: true,
            },
        ];
        let mut load = Load::default();
        let with_port = spec(Some(8080));
        let first = new_replicas(
            "default/web",
            &with_port,
            "r1",
            2,
            &mut load,
            &h,
            &BTreeSet::new(),
            "c1",
            1,
        );
        let nodes: Vec<&str> = first.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, ["b", "c"], "one per host while the port is free");
    }
}
