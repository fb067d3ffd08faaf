//! `place(desired, current, hosts) -> Placement`.
//!
//! Existing replicas keep their names and hosts (no churn); scaling up adds names, scaling down
//! drops the newest. New replicas go to the ready host with the fewest replicas of the same RC,
//! then the fewest pods, then by name, so ties break the same way on every run.
//! Filters beyond readiness (resources, nodeSelector, hostPort, anti-affinity) come with
//! multi-host scheduling; the shape (hosts as a list, a reason per rejection) is ready for them.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::manifest::Manifests;
use crate::raft::state::{object_key, ObjectKey, Replica};

/// A host as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub ready: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub replicas: BTreeMap<ObjectKey, Vec<Replica>>,
    pub pod_nodes: BTreeMap<ObjectKey, String>,
}

/// Places every Pod and RC replica of `desired`. `seed` (the commit sha) makes generated names
/// reproducible; names already in use are never generated again.
pub fn place(desired: &Manifests, current: &Placement, hosts: &[Host], seed: &str) -> Placement {
    let configured: BTreeSet<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let mut load: BTreeMap<&str, usize> = hosts.iter().map(|h| (h.name.as_str(), 0)).collect();
    let mut out = Placement::default();

    for pod in &desired.pods {
        let key = object_key(&pod.metadata.namespace, &pod.metadata.name);
        let node = match current.pod_nodes.get(&key) {
            Some(n) if configured.contains(n.as_str()) => Some(n.clone()),
            _ => pick(hosts, &load, &BTreeMap::new()),
        };
        if let Some(node) = node {
            *load.entry(hosts_name(hosts, &node)).or_default() += 1;
            out.pod_nodes.insert(key, node);
        }
    }

    let used: BTreeSet<&str> = current
        .replicas
        .values()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();
    for rc in &desired.replication_controllers {
        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
        let mut replicas: Vec<Replica> = current
            .replicas
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|r| configured.contains(r.node.as_str()))
            .cloned()
            .collect();
        replicas.truncate(rc.replicas as usize);
        let mut per_host: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &replicas {
            *per_host.entry(hosts_name(hosts, &r.node)).or_default() += 1;
            *load.entry(hosts_name(hosts, &r.node)).or_default() += 1;
        }
        let mut salt = 0u32;
        while replicas.len() < rc.replicas as usize {
            let Some(node) = pick(hosts, &load, &per_host) else {
                break;
            };
            let name = loop {
                let candidate = replica_name(&rc.metadata.name, seed, &key, salt);
                salt += 1;
                if !used.contains(candidate.as_str())
                    && !replicas.iter().any(|r| r.name == candidate)
                {
                    break candidate;
                }
            };
            *per_host.entry(hosts_name(hosts, &node)).or_default() += 1;
            *load.entry(hosts_name(hosts, &node)).or_default() += 1;
            replicas.push(Replica { name, node });
        }
        out.replicas.insert(key, replicas);
    }
    out
}

fn hosts_name<'h>(hosts: &'h [Host], name: &str) -> &'h str {
    hosts
        .iter()
        .find(|h| h.name == name)
        .map_or("", |h| h.name.as_str())
}

/// Ready hosts first; among them the fewest of this RC, then the fewest pods, then by name.
/// With no ready host, a configured one is chosen so the replica is created once it returns.
fn pick(
    hosts: &[Host],
    load: &BTreeMap<&str, usize>,
    per_host: &BTreeMap<&str, usize>,
) -> Option<String> {
    hosts
        .iter()
        .min_by_key(|h| {
            let n = h.name.as_str();
            (
                !h.ready,
                per_host.get(n).copied().unwrap_or(0),
                load.get(n).copied().unwrap_or(0),
                n,
            )
        })
        .map(|h| h.name.clone())
}

/// `<rc>-<5 base-36 characters>`, like Kubernetes' generated names, cut so it stays a valid
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
    use crate::manifest::{load_files, SourceFile};

    fn manifests(replicas: u32) -> Manifests {
        let text = format!(
            "apiVersion: v1\nkind: ReplicationController\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: c, image: 'i:1'}}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: solo}}\nspec:\n  containers: [{{name: c, image: 'i:1'}}]\n"
        );
        load_files(
            &[SourceFile {
                path: "m.yaml".into(),
                bytes: text.into_bytes(),
            }],
            &crate::manifest::Limits::default(),
        )
        .unwrap()
    }

    fn hosts(names: &[&str]) -> Vec<Host> {
        names
            .iter()
            .map(|n| Host {
                name: n.to_string(),
                ready: true,
            })
            .collect()
    }

    #[test]
    fn scaling_keeps_existing_names_and_spreads_new_ones() {
        let h = hosts(&["a", "b"]);
        let p3 = place(&manifests(3), &Placement::default(), &h, "c1");
        let web = &p3.replicas["default/web"];
        assert_eq!(web.len(), 3);
        assert!(web
            .iter()
            .all(|r| r.name.starts_with("web-") && r.name.len() == 9));
        assert_eq!(
            web.iter().filter(|r| r.node == "a").count()
                + web.iter().filter(|r| r.node == "b").count(),
            3
        );
        assert!(
            web.iter().filter(|r| r.node == "a").count() >= 1
                && web.iter().filter(|r| r.node == "b").count() >= 1
        );

        let p5 = place(&manifests(5), &p3, &h, "c2");
        assert_eq!(&p5.replicas["default/web"][..3], &web[..]);
        let names: BTreeSet<_> = p5.replicas["default/web"].iter().map(|r| &r.name).collect();
        assert_eq!(names.len(), 5);

        let p2 = place(&manifests(2), &p5, &h, "c3");
        assert_eq!(&p2.replicas["default/web"][..], &web[..2]);
        assert_eq!(p2.pod_nodes["default/solo"], p3.pod_nodes["default/solo"]);
    }

    #[test]
    fn placement_is_reproducible() {
        let h = hosts(&["a"]);
        assert_eq!(
            place(&manifests(3), &Placement::default(), &h, "c1"),
            place(&manifests(3), &Placement::default(), &h, "c1")
        );
    }

    #[test]
    fn names_removed_by_a_scale_down_are_not_reused_in_the_same_placement() {
        let h = hosts(&["a"]);
        let p1 = place(&manifests(1), &Placement::default(), &h, "c1");
        let p2 = place(&manifests(2), &p1, &h, "c1");
        assert_ne!(
            p2.replicas["default/web"][0].name,
            p2.replicas["default/web"][1].name
        );
    }

    #[test]
    fn ready_hosts_are_preferred() {
        let h = vec![
            Host {
                name: "a".into(),
                ready: false,
            },
            Host {
                name: "b".into(),
                ready: true,
            },
        ];
        let p = place(&manifests(2), &Placement::default(), &h, "c1");
        assert!(p.replicas["default/web"].iter().all(|r| r.node == "b"));
    }
}
