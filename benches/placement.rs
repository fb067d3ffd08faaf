//! Benchmark: the pure scheduler alone (issue 10, item 2's cost): 100,000 replicas (1,000 RCs
//! of 100) placed on 5,000 fake hosts from empty, then the same state accounted again
//! (`Load::of`, what every placement decision starts from) and the pending pass with nothing
//! pending. No Docker, no Raft: `cargo bench --bench placement`.

use std::collections::BTreeSet;
use std::time::Instant;

use berth::manifest::quantity::{Cpu, Memory};
use berth::manifest::{
    Container, ObjectMeta, PodSpec, PodTemplate, ReplicationController, RestartPolicy,
};
use berth::raft::state::{object_key, ClusterState};
use berth::scheduler::{bind_pending, new_replicas, Host, Load, Workload};

const HOSTS: usize = 5_000;
const RCS: usize = 1_000;
const REPLICAS: usize = 100;

fn rc(i: usize) -> ReplicationController {
    let mut c = Container::new("c", "busybox:1");
    c.resources.requests.cpu = Some(Cpu(100 + (i % 5) as u64 * 50));
    c.resources.requests.memory = Some(Memory((64 + (i % 7) as u64 * 32) << 20));
    let labels: berth::manifest::StringMap = [("app".to_string(), format!("rc{i}"))].into();
    ReplicationController {
        metadata: ObjectMeta {
            name: format!("rc{i}"),
            namespace: "default".into(),
            ..Default::default()
        },
        replicas: REPLICAS as u32,
        selector: labels.clone(),
        template: PodTemplate {
            labels,
            annotations: Default::default(),
            spec: PodSpec {
                containers: vec![c],
                volumes: vec![],
                restart_policy: RestartPolicy::Always,
                node_selector: Default::default(),
                termination_grace_period_seconds: 30,
            },
        },
        origin: Default::default(),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("placement: a benchmark; run it with `cargo bench --bench placement`");
        return;
    }
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|i| Host::new(format!("host-{i:05}"), true).capacity(16_000, 64 << 30))
        .collect();
    let mut state = ClusterState::new();
    state.desired.replication_controllers = (0..RCS).map(rc).collect();

    let start = Instant::now();
    let mut load = Load::new(&hosts);
    let mut placed = 0usize;
    for rc in &state.desired.replication_controllers {
        let key = object_key(&rc.metadata.namespace, &rc.metadata.name);
        let w = Workload::of_rc(rc, &rc.template.labels, &rc.template.spec);
        let add = new_replicas(
            &key,
            &w,
            &rc.template.revision(),
            REPLICAS,
            &mut load,
            &BTreeSet::new(),
            "0123456789abcdef",
            1,
        );
        placed += add.iter().filter(|r| !r.node.is_empty()).count();
        state.replicas.insert(key, add);
    }
    let took = start.elapsed();
    println!(
        "place {placed} replicas ({RCS} RCs x {REPLICAS}) on {HOSTS} hosts from empty: {:.0} ms, {:.0} placements/s",
        took.as_secs_f64() * 1000.0,
        placed as f64 / took.as_secs_f64()
    );

    let start = Instant::now();
    let mut again = Load::of(&state, &hosts);
    let account = start.elapsed();
    let start = Instant::now();
    let binds = bind_pending(&state, &mut again);
    let pass = start.elapsed();
    println!(
        "account the placed state (Load::of): {:.0} ms; pending pass with nothing pending: {:.0} ms ({} placed)",
        account.as_secs_f64() * 1000.0,
        pass.as_secs_f64() * 1000.0,
        binds.len()
    );
    let max = again
        .hosts()
        .filter_map(|h| again.allocated(&h.name))
        .map(|(_, pods)| pods)
        .max()
        .unwrap_or(0);
    println!("most pods on one host: {max} (100,000 / 5,000 = 20)");
}
