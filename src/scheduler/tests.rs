//! The scheduler's decisions, exactly.

use std::collections::BTreeSet;

use super::*;
use crate::manifest::annotations::{CONFLICTS, MAX_PER_NODE, PLACEMENT};
use crate::manifest::quantity::{Cpu, Memory};
use crate::manifest::{Container, ContainerPort, PodSpec, Protocol, RestartPolicy, StringMap};
use crate::raft::state::Replica;

const MI: u64 = 1 << 20;

fn spec() -> PodSpec {
    PodSpec {
        containers: vec![Container::new("c", "i:1")],
        volumes: vec![],
        restart_policy: RestartPolicy::Always,
        node_selector: Default::default(),
        termination_grace_period_seconds: 30,
    }
}

/// A fluent workload: `Pod::rc("web").memory(512).port(80)`.
struct W {
    group: Option<String>,
    spec: PodSpec,
    labels: StringMap,
    annotations: StringMap,
}

impl W {
    fn rc(name: &str) -> W {
        W {
            group: Some(format!("default/{name}")),
            spec: spec(),
            labels: [("app".to_string(), name.to_string())].into(),
            annotations: StringMap::new(),
        }
    }
    fn memory(mut self, mi: u64) -> W {
        self.spec.containers[0].resources.requests.memory = Some(Memory(mi * MI));
        self
    }
    fn cpu(mut self, millis: u64) -> W {
        self.spec.containers[0].resources.requests.cpu = Some(Cpu(millis));
        self
    }
    fn port(mut self, host_port: u16) -> W {
        self.spec.containers[0].ports.push(ContainerPort {
            name: None,
            container_port: 80,
            host_port: Some(host_port),
            host_ip: None,
            protocol: Protocol::Tcp,
        });
        self
    }
    fn select(mut self, k: &str, v: &str) -> W {
        self.spec.node_selector.insert(k.into(), v.into());
        self
    }
    fn note(mut self, k: &str, v: &str) -> W {
        self.annotations.insert(k.into(), v.into());
        self
    }
    fn build(self) -> Workload {
        Workload::new(self.group, &self.spec, &self.labels, &self.annotations)
    }
}

fn hosts(names: &[&str]) -> Vec<Host> {
    names.iter().map(|n| Host::new(*n, true)).collect()
}

fn place(load: &mut Load, w: &Workload, n: usize, seed: &str) -> Vec<Replica> {
    let rc = w.group.clone().unwrap_or_default();
    new_replicas(&rc, w, "r1", n, load, &BTreeSet::new(), seed, 7)
}

fn per_host(replicas: &[Replica]) -> Vec<(String, usize)> {
    let mut m = std::collections::BTreeMap::new();
    for r in replicas {
        *m.entry(r.node.clone()).or_insert(0) += 1;
    }
    m.into_iter().collect()
}

#[test]
fn six_replicas_spread_two_per_host_with_fresh_names() {
    let mut load = Load::new(&hosts(&["a", "b", "c"]));
    let web = place(&mut load, &W::rc("web").build(), 6, "c1");
    assert_eq!(
        per_host(&web),
        [("a".into(), 2), ("b".into(), 2), ("c".into(), 2)]
    );
    assert!(web
        .iter()
        .all(|r| r.name.starts_with("web-") && r.name.len() == 9));
    let names: BTreeSet<_> = web.iter().map(|r| &r.name).collect();
    assert_eq!(names.len(), 6);
}

#[test]
fn placement_is_reproducible() {
    let h = hosts(&["a", "b", "c"]);
    let w = W::rc("web").build();
    assert_eq!(
        place(&mut Load::new(&h), &w, 5, "c1"),
        place(&mut Load::new(&h), &w, 5, "c1")
    );
}

#[test]
fn replicas_spread_before_load_then_least_allocated() {
    let mut load = Load::new(&hosts(&["a", "b"]));
    // b is busier with another RC: web's first replica goes to a, its second to b anyway.
    place(&mut load, &W::rc("db").build(), 1, "c0");
    let web = place(&mut load, &W::rc("web").build(), 2, "c1");
    assert_eq!(per_host(&web), [("a".into(), 1), ("b".into(), 1)]);
}

#[test]
fn node_selector_sends_replicas_only_to_labelled_hosts_and_says_why_not() {
    let h = vec![
        Host::new("a", true).label("disk", "hdd"),
        Host::new("b", true).label("disk", "ssd"),
        Host::new("c", true),
    ];
    let mut load = Load::new(&h);
    let w = W::rc("db").select("disk", "ssd").build();
    let db = place(&mut load, &w, 3, "c1");
    assert!(db.iter().all(|r| r.node == "b"), "{db:?}");
    let why: Vec<String> = load
        .explain(&w)
        .into_iter()
        .map(|(h, r)| format!("{h}: {}", r.err().map_or("fits".into(), |e| e.to_string())))
        .collect();
    assert_eq!(
        why,
        [
            "a: nodeSelector disk=ssd: host has disk=hdd",
            "b: fits",
            "c: nodeSelector disk=ssd: host has no label disk"
        ]
    );
}

#[test]
fn resources_fill_hosts_then_leave_replicas_pending_with_reasons() {
    let h = vec![
        Host::new("a", true).capacity(1000, 1024 * MI),
        Host::new("b", true).capacity(1000, 1024 * MI),
    ];
    let mut load = Load::new(&h);
    let w = W::rc("web").memory(400).build();
    let web = place(&mut load, &w, 5, "c1");
    assert_eq!(
        per_host(&web),
        [("".into(), 1), ("a".into(), 2), ("b".into(), 2)],
        "two of 400Mi fit in 1Gi; the fifth is pending"
    );
    let (_, why) = &load.explain(&w)[0];
    assert_eq!(
        why.as_ref().unwrap_err().to_string(),
        "insufficient memory: requests 400Mi, free 224Mi"
    );
    let cpu = W::rc("cpu").cpu(1500).build();
    assert_eq!(
        load.explain(&cpu)[1].1.as_ref().unwrap_err().to_string(),
        "insufficient cpu: requests 1500m, free 900m"
    );
}

#[test]
fn host_ports_are_never_shared_and_name_the_holder() {
    let mut load = Load::new(&hosts(&["a", "b", "c"]));
    let w = W::rc("web").port(80).build();
    let web = place(&mut load, &w, 4, "c1");
    assert_eq!(web.iter().filter(|r| r.node.is_empty()).count(), 1);
    let holder = &web.iter().find(|r| r.node == "a").unwrap().name;
    assert_eq!(
        load.explain(&w)[0].1.as_ref().unwrap_err().to_string(),
        format!("hostPort 80 in use by default/{holder}")
    );
    // Another RC on another port still fits anywhere.
    let other = place(&mut load, &W::rc("api").port(81).build(), 3, "c2");
    assert!(other.iter().all(|r| !r.node.is_empty()));
}

#[test]
fn max_per_node_leaves_the_fourth_replica_pending() {
    let mut load = Load::new(&hosts(&["a", "b", "c"]));
    let w = W::rc("web").note(MAX_PER_NODE, "1").build();
    let web = place(&mut load, &w, 4, "c1");
    assert_eq!(
        per_host(&web),
        [
            ("".into(), 1),
            ("a".into(), 1),
            ("b".into(), 1),
            ("c".into(), 1)
        ]
    );
    assert!(load
        .explain(&w)
        .iter()
        .all(|(_, r)| r.as_ref().unwrap_err().to_string()
            == "max-per-node 1: host already runs 1 of this RC"));
}

#[test]
fn conflicts_keep_pods_apart_both_ways() {
    let mut load = Load::new(&hosts(&["a", "b"]));
    place(&mut load, &W::rc("db").build(), 1, "c0"); // on a
    let cache = W::rc("cache").note(CONFLICTS, "app=db").build();
    let c = place(&mut load, &cache, 2, "c1");
    assert_eq!(per_host(&c), [("b".into(), 2)]);
    // A second db must not join the caches on b, since they declared the conflict.
    let db2 = W::rc("db2").build();
    let mut labels = StringMap::new();
    labels.insert("app".into(), "db".into());
    let db2 = Workload {
        labels: std::sync::Arc::new(labels),
        ..db2
    };
    let why = load.explain(&db2);
    assert!(why[1]
        .1
        .as_ref()
        .unwrap_err()
        .to_string()
        .starts_with("conflicts app=db: host runs default/cache-"));
}

#[test]
fn binpack_fills_the_most_allocated_host_first() {
    let h = vec![
        Host::new("a", true).capacity(4000, 4096 * MI),
        Host::new("b", true).capacity(4000, 4096 * MI),
    ];
    let mut load = Load::new(&h);
    let w = W::rc("batch")
        .memory(1024)
        .cpu(1000)
        .note(PLACEMENT, "binpack")
        .build();
    let b = place(&mut load, &w, 5, "c1");
    assert_eq!(per_host(&b), [("a".into(), 4), ("b".into(), 1)]);
}

#[test]
fn not_ready_and_unschedulable_hosts_take_nothing_new() {
    let h = vec![
        Host::new("a", false),
        Host::new("b", true).unschedulable(),
        Host::new("c", true),
    ];
    let mut load = Load::new(&h);
    let w = W::rc("web").build();
    assert!(place(&mut load, &w, 3, "c1").iter().all(|r| r.node == "c"));
    let why: Vec<String> = load
        .explain(&w)
        .into_iter()
        .filter_map(|(_, r)| r.err().map(|e| e.to_string()))
        .collect();
    assert_eq!(why, ["host not ready", "host unschedulable"]);
}

#[test]
fn placed_replicas_stay_when_a_host_joins() {
    use crate::manifest::{ObjectMeta, PodTemplate, ReplicationController};
    use crate::raft::state::ClusterState;
    let rc = ReplicationController {
        metadata: ObjectMeta {
            name: "web".into(),
            namespace: "default".into(),
            ..Default::default()
        },
        replicas: 4,
        selector: [("app".to_string(), "web".to_string())].into(),
        template: PodTemplate {
            labels: [("app".to_string(), "web".to_string())].into(),
            annotations: Default::default(),
            spec: spec().clone(),
        },
        origin: Default::default(),
    };
    let mut state = ClusterState::new();
    state.desired.replication_controllers.push(rc.clone());
    let w = Workload::of_rc(&rc, &rc.template.labels, &rc.template.spec);
    let two = hosts(&["a", "b"]);
    let mut load = Load::of(&state, &two);
    let mut placed = place(&mut load, &w, 4, "c1");
    placed[3].node.clear(); // one pending
    state.replicas.insert("default/web".into(), placed.clone());
    let three = hosts(&["a", "b", "c"]);
    let mut load = Load::of(&state, &three);
    let binds = bind_pending(&state, &mut load);
    assert_eq!(binds.len(), 1);
    assert_eq!(
        binds.replicas["default/web"][0].1, "c",
        "the pending one goes to the new host"
    );
    assert_eq!(load.allocated("a").unwrap().1, 2, "nothing moved off a");
}
