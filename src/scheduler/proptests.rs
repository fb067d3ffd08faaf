//! Invariants of placement over random hosts and workloads: never over capacity, never against
//! a selector, max-per-node, conflict or host port, and the same output for the same input.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::strategy::Strategy;

use super::{new_replicas, Host, Load, Resources, Workload};
use crate::manifest::annotations::{CONFLICTS, MAX_PER_NODE, PLACEMENT};
use crate::manifest::quantity::{Cpu, Memory};
use crate::manifest::{Container, ContainerPort, PodSpec, Protocol, RestartPolicy, StringMap};
use crate::raft::state::Replica;

#[derive(Debug, Clone)]
struct Rc {
    name: String,
    replicas: usize,
    cpu: u64,
    memory: u64,
    port: Option<u16>,
    disk: Option<&'static str>,
    max_per_node: Option<u32>,
    conflicts_self: bool,
    binpack: bool,
}

fn rc_strategy(i: usize) -> impl Strategy<Value = Rc> {
    (
        1usize..8,
        0u64..1500,
        0u64..2048,
        prop::option::of(prop::sample::select(vec![80u16, 81, 443])),
        prop::option::of(prop::sample::select(vec!["ssd", "hdd"])),
        prop::option::of(1u32..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(replicas, cpu, memory, port, disk, max_per_node, conflicts_self, binpack)| Rc {
                name: format!("rc{i}"),
                replicas,
                cpu,
                memory,
                port,
                disk,
                max_per_node,
                conflicts_self,
                binpack,
            },
        )
}

fn host_strategy(i: usize) -> impl Strategy<Value = Host> {
    (
        any::<bool>(),
        500u64..4000,
        256u64..4096,
        prop::option::of(prop::sample::select(vec!["ssd", "hdd"])),
    )
        .prop_map(move |(ready, cpu, mem, disk)| {
            let h = Host::new(format!("h{i:02}"), ready || i == 0).capacity(cpu, mem << 20);
            match disk {
                Some(d) => h.label("disk", d),
                None => h,
            }
        })
}

fn workload(rc: &Rc) -> Workload {
    let mut c = Container::new("c", "i:1");
    c.resources.requests.cpu = Some(Cpu(rc.cpu));
    c.resources.requests.memory = Some(Memory(rc.memory << 20));
    if let Some(p) = rc.port {
        c.ports.push(ContainerPort {
            name: None,
            container_port: 80,
            host_port: Some(p),
            host_ip: None,
            protocol: Protocol::Tcp,
        });
    }
    let mut node_selector = StringMap::new();
    if let Some(d) = rc.disk {
        node_selector.insert("disk".into(), d.into());
    }
    let spec = PodSpec {
        containers: vec![c],
        volumes: vec![],
        restart_policy: RestartPolicy::Always,
        node_selector,
        termination_grace_period_seconds: 30,
    };
    let labels: StringMap = [("app".to_string(), rc.name.clone())].into();
    let mut annotations = StringMap::new();
    if let Some(m) = rc.max_per_node {
        annotations.insert(MAX_PER_NODE.into(), m.to_string());
    }
    if rc.conflicts_self {
        annotations.insert(CONFLICTS.into(), format!("app={}", rc.name));
    }
    if rc.binpack {
        annotations.insert(PLACEMENT.into(), "binpack".into());
    }
    Workload::new(
        Some(format!("default/{}", rc.name)),
        &spec,
        &labels,
        &annotations,
    )
}

fn place_all(hosts: &[Host], rcs: &[Rc]) -> Vec<(Rc, Vec<Replica>)> {
    let mut load = Load::new(hosts);
    rcs.iter()
        .map(|rc| {
            let w = workload(rc);
            let key = format!("default/{}", rc.name);
            let out = new_replicas(
                &key,
                &w,
                "r",
                rc.replicas,
                &mut load,
                &BTreeSet::new(),
                "s",
                1,
            );
            (rc.clone(), out)
        })
        .collect()
}

fn scenario() -> impl Strategy<Value = (Vec<Host>, Vec<Rc>)> {
    (1usize..6, 1usize..6).prop_flat_map(|(h, r)| {
        (
            (0..h).map(host_strategy).collect::<Vec<_>>(),
            (0..r).map(rc_strategy).collect::<Vec<_>>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn placement_never_breaks_a_filter((hosts, rcs) in scenario()) {
        let placed = place_all(&hosts, &rcs);
        let by_name: BTreeMap<&str, &Host> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut used: BTreeMap<&str, Resources> = BTreeMap::new();
        let mut ports: BTreeSet<(&str, u16)> = BTreeSet::new();
        let mut per_rc_host: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        for (rc, replicas) in &placed {
            prop_assert_eq!(replicas.len(), rc.replicas);
            let w = workload(rc);
            for r in replicas.iter().filter(|r| !r.node.is_empty()) {
                let h = by_name[r.node.as_str()];
                prop_assert!(h.ready && h.schedulable);
                if let Some(d) = rc.disk {
                    prop_assert_eq!(h.labels.get("disk").map(String::as_str), Some(d));
                }
                let u = used.entry(&r.node).or_default();
                *u = u.plus(w.demand);
                let cap = h.capacity.unwrap();
                prop_assert!(u.cpu <= cap.cpu && u.memory <= cap.memory, "over capacity on {}", r.node);
                if let Some(p) = rc.port {
                    prop_assert!(ports.insert((&r.node, p)), "hostPort {} twice on {}", p, r.node);
                }
                let n = per_rc_host.entry((&rc.name, &r.node)).or_default();
                *n += 1;
                if let Some(m) = rc.max_per_node {
                    prop_assert!(*n <= m);
                }
                if rc.conflicts_self {
                    prop_assert_eq!(*n, 1);
                }
            }
        }
    }

    #[test]
    fn placement_is_deterministic((hosts, rcs) in scenario()) {
        let a = place_all(&hosts, &rcs);
        let mut shuffled = hosts.clone();
        shuffled.reverse();
        let b = place_all(&shuffled, &rcs);
        let strip = |v: Vec<(Rc, Vec<Replica>)>| v.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
        prop_assert_eq!(strip(a), strip(b));
    }

    #[test]
    fn a_pending_replica_fits_nowhere((hosts, rcs) in scenario()) {
        // Placing with nothing else changed never leaves a replica pending that some host takes.
        let mut load = Load::new(&hosts);
        for rc in &rcs {
            let w = workload(rc);
            let key = format!("default/{}", rc.name);
            let out = new_replicas(&key, &w, "r", rc.replicas, &mut load, &BTreeSet::new(), "s", 1);
            if out.iter().any(|r| r.node.is_empty()) {
                prop_assert!(load.explain(&w).iter().all(|(_, r)| r.is_err()));
            }
        }
    }
}
