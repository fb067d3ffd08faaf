use super::*;
use crate::manifest::{Container, PodSpec, PullPolicy};

fn container(name: &str) -> Container {
    Container {
        image_pull_policy: PullPolicy::IfNotPresent,
        ..Container::new(name, "img:1")
    }
}

fn pod(name: &str, hash: &str) -> DesiredPod {
    DesiredPod {
        namespace: "default".into(),
        name: name.into(),
        owner: Some("web".into()),
        node: "a".into(),
        labels: Default::default(),
        spec: PodSpec {
            containers: vec![container("main")],
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 7,
        }
        .into(),
        spec_hash: hash.into(),
        commit: "c1".into(),
    }
}

fn two_containers(name: &str, hash: &str) -> DesiredPod {
    let mut p = pod(name, hash);
    std::sync::Arc::make_mut(&mut p.spec)
        .containers
        .push(container("side"));
    p
}

fn seen(pod: &str, container: &str, hash: &str, id: &str) -> ObservedContainer {
    ObservedContainer {
        id: id.into(),
        namespace: "default".into(),
        pod: pod.into(),
        container: container.into(),
        owner: Some("web".into()),
        commit: "c0".into(),
        spec_hash: hash.into(),
        grace_seconds: 3,
        image: "img:1".into(),
        running: true,
        state: "running".into(),
        started_at: Some(100),
        ..Default::default()
    }
}

fn holder(pod: &str, hash: &str, id: &str) -> ObservedContainer {
    ObservedContainer {
        holder: true,
        ..seen(pod, HOLDER, hash, id)
    }
}

fn joined(mut c: ObservedContainer, owner: &str) -> ObservedContainer {
    c.network_owner = Some(owner.into());
    c
}

fn exited(mut c: ObservedContainer, code: i64) -> ObservedContainer {
    c.running = false;
    c.state = "exited".into();
    c.exit_code = Some(code);
    c
}

fn ready() -> PodMemory {
    PodMemory {
        images_ready: true,
        ..PodMemory::default()
    }
}

const NOW: Millis = 1_000_000;

fn decide(
    desired: Option<&DesiredPod>,
    on_a: &[ObservedContainer],
    memory: &PodMemory,
) -> Decision {
    let seen: Vec<(&str, &ObservedContainer)> = on_a.iter().map(|c| ("a", c)).collect();
    plan_pod(&PodInputs {
        desired,
        desired_host_known: true,
        seen: &seen,
        memory,
        now: NOW,
    })
}

#[test]
fn a_missing_pod_pulls_its_images_first_then_is_created() {
    let p = pod("web-1", "h");
    assert_eq!(
        decide(Some(&p), &[], &PodMemory::default()),
        Decision::Act(Step::Pull { pod: p.clone() })
    );
    assert_eq!(
        decide(Some(&p), &[], &ready()),
        Decision::Act(Step::Create { pod: p.clone() })
    );
}

#[test]
fn an_unchanged_running_pod_is_done_whatever_its_commit() {
    let p = pod("web-1", "h");
    assert_eq!(
        decide(
            Some(&p),
            &[seen("web-1", "main", "h", "id1")],
            &PodMemory::default()
        ),
        Decision::Done
    );
}

#[test]
fn a_changed_pod_pulls_before_it_touches_the_old_containers() {
    let p = pod("solo", "new");
    let old = [seen("solo", "main", "old", "id1")];
    assert_eq!(
        decide(Some(&p), &old, &PodMemory::default()),
        Decision::Act(Step::Pull { pod: p.clone() }),
        "a failed pull leaves the old container running"
    );
    assert_eq!(
        decide(Some(&p), &old, &ready()),
        Decision::Act(Step::Stop {
            node: "a".into(),
            pod: "default/solo".into(),
            ids: vec![("id1".into(), None)],
            deadline: NOW + 3_000 + STOP_MARGIN_MS,
        })
    );
}

#[test]
fn a_stop_waits_its_grace_then_kills_then_removes_with_volumes() {
    let p = pod("solo", "new");
    let mut memory = ready();
    memory.stopping.insert("id1".into(), NOW + 5_000);
    let old = [seen("solo", "main", "old", "id1")];
    assert_eq!(
        decide(Some(&p), &old, &memory),
        Decision::Wait {
            until: Some(NOW + 5_000),
            why: "default/solo is stopping on a".into()
        }
    );
    memory.stopping.insert("id1".into(), NOW - 1);
    assert_eq!(
        decide(Some(&p), &old, &memory),
        Decision::Act(Step::Kill {
            node: "a".into(),
            pod: "default/solo".into(),
            ids: vec!["id1".into()]
        })
    );
    assert_eq!(
        decide(Some(&p), &[exited(old[0].clone(), 143)], &memory),
        Decision::Act(Step::Remove {
            node: "a".into(),
            pod: "default/solo".into(),
            ids: vec!["id1".into()],
            volumes: true
        }),
        "the old pod's emptyDirs go with it: a new pod starts with fresh ones"
    );
}

#[test]
fn apps_stop_before_their_holder() {
    let apps = [
        holder("web-9", "h", "h1"),
        joined(seen("web-9", "main", "h", "m1"), "h1"),
        joined(seen("web-9", "side", "h", "s1"), "h1"),
    ];
    let Decision::Act(Step::Stop { ids, .. }) = decide(None, &apps, &ready()) else {
        panic!("apps first");
    };
    assert_eq!(ids, vec![("m1".into(), None), ("s1".into(), None)]);
    let stopped = [
        apps[0].clone(),
        exited(apps[1].clone(), 0),
        exited(apps[2].clone(), 0),
    ];
    assert_eq!(
        decide(None, &stopped, &ready()),
        Decision::Act(Step::Kill {
            node: "a".into(),
            pod: "default/web-9".into(),
            ids: vec!["h1".into()]
        })
    );
}

#[test]
fn a_stop_uses_the_images_stop_signal() {
    let mut c = seen("web-9", "main", "h", "id9");
    c.stop_signal = Some("SIGQUIT".into());
    let Decision::Act(Step::Stop { ids, .. }) = decide(None, &[c], &ready()) else {
        panic!("stop");
    };
    assert_eq!(ids, vec![("id9".into(), Some("SIGQUIT".into()))]);
}

#[test]
fn nothing_is_touched_on_a_host_that_does_not_answer() {
    let p = pod("web-1", "h");
    let d = plan_pod(&PodInputs {
        desired: Some(&p),
        desired_host_known: false,
        seen: &[],
        memory: &ready(),
        now: NOW,
    });
    assert_eq!(
        d,
        Decision::Wait {
            until: None,
            why: "host a is not answering".into()
        }
    );
    let observed: Observed = [("a".to_string(), NodeView::Unknown)].into();
    assert!(plan(&[p], &observed, NOW).is_empty());
}

#[test]
fn a_gate_holds_creation_but_not_the_pull() {
    let p = pod("web-2", "new");
    let memory = PodMemory {
        gate: Some("waiting for the old replicas to stop (Recreate)".into()),
        ..PodMemory::default()
    };
    assert_eq!(
        decide(Some(&p), &[], &memory),
        Decision::Act(Step::Pull { pod: p.clone() })
    );
    let memory = PodMemory {
        images_ready: true,
        ..memory
    };
    assert!(matches!(
        decide(Some(&p), &[], &memory),
        Decision::Wait { until: None, .. }
    ));
}

#[test]
fn a_failing_step_waits_out_its_backoff() {
    let p = pod("web-1", "h");
    let mut memory = ready();
    memory.retry = Some((NOW + 4_000, "CreateError: port is already allocated".into()));
    assert_eq!(
        decide(Some(&p), &[], &memory),
        Decision::Wait {
            until: Some(NOW + 4_000),
            why: "CreateError: port is already allocated".into()
        }
    );
    memory.retry = Some((NOW, "old".into()));
    assert!(matches!(
        decide(Some(&p), &[], &memory),
        Decision::Act(Step::Create { .. })
    ));
}

#[test]
fn stopped_containers_start_when_the_policy_says_so_and_docker_will_not() {
    let mut p = pod("web-1", "h");
    let c = exited(seen("web-1", "main", "h", "id1"), 0);
    let start = Decision::Act(Step::Start {
        node: "a".into(),
        pod: "default/web-1".into(),
        ids: vec!["id1".into()],
    });
    assert_eq!(decide(Some(&p), std::slice::from_ref(&c), &ready()), start);
    std::sync::Arc::make_mut(&mut p.spec).restart_policy = RestartPolicy::OnFailure;
    assert_eq!(
        decide(Some(&p), std::slice::from_ref(&c), &ready()),
        Decision::Done
    );
    std::sync::Arc::make_mut(&mut p.spec).restart_policy = RestartPolicy::Never;
    assert_eq!(
        decide(Some(&p), std::slice::from_ref(&c), &ready()),
        Decision::Done
    );
    let mut restarting = c.clone();
    restarting.state = "restarting".into();
    std::sync::Arc::make_mut(&mut p.spec).restart_policy = RestartPolicy::Always;
    assert_eq!(
        decide(Some(&p), &[restarting], &ready()),
        Decision::Done,
        "Docker is restarting it already"
    );
}

#[test]
fn a_pod_of_two_containers_gets_a_holder_and_apps_follow_its_restarts() {
    let p = two_containers("web-1", "h");
    let mut h = holder("web-1", "h", "h1");
    let main = joined(seen("web-1", "main", "h", "m1"), "h1");
    let side = joined(seen("web-1", "side", "h", "s1"), "h1");
    assert_eq!(
        decide(Some(&p), &[h.clone(), main.clone(), side.clone()], &ready()),
        Decision::Done
    );
    // Docker restarted the holder after the apps started: they hold its old namespace.
    h.started_at = Some(500);
    assert_eq!(
        decide(Some(&p), &[h.clone(), main.clone(), side.clone()], &ready()),
        Decision::Act(Step::Restart {
            node: "a".into(),
            pod: "default/web-1".into(),
            ids: vec!["m1".into(), "s1".into()]
        })
    );
    let down = exited(h.clone(), 137);
    assert_eq!(
        decide(Some(&p), &[down, main.clone(), side.clone()], &ready()),
        Decision::Act(Step::Start {
            node: "a".into(),
            pod: "default/web-1".into(),
            ids: vec!["h1".into()]
        })
    );
}

#[test]
fn apps_left_in_a_removed_holders_namespace_are_stale() {
    let p = two_containers("web-1", "h");
    let orphans = [
        joined(seen("web-1", "main", "h", "m1"), "gone"),
        joined(seen("web-1", "side", "h", "s1"), "gone"),
    ];
    assert!(matches!(
        decide(Some(&p), &orphans, &ready()),
        Decision::Act(Step::Stop { .. })
    ));
}

#[test]
fn a_liveness_failure_restarts_the_container() {
    let p = pod("web-1", "h");
    let mut memory = ready();
    memory.restart = vec![("id1".into(), "liveness probe failed: HTTP 500".into())];
    assert_eq!(
        decide(Some(&p), &[seen("web-1", "main", "h", "id1")], &memory),
        Decision::Act(Step::Restart {
            node: "a".into(),
            pod: "default/web-1".into(),
            ids: vec!["id1".into()]
        })
    );
}

#[test]
fn containers_nothing_wants_are_stopped_and_removed_without_a_pull() {
    let p = plan(
        &[],
        &[(
            "a".to_string(),
            NodeView::Seen(vec![exited(seen("web-9", "main", "h", "id9"), 0)]),
        )]
        .into(),
        NOW,
    );
    assert_eq!(
        p.steps,
        vec![Step::Remove {
            node: "a".into(),
            pod: "default/web-9".into(),
            ids: vec!["id9".into()],
            volumes: true
        }]
    );
}

#[test]
fn a_pod_on_another_host_than_desired_is_created_here_and_removed_there() {
    let p = pod("solo", "h");
    let elsewhere = seen("solo", "main", "h", "b1");
    let seen_list = [("b", &elsewhere)];
    let memory = ready();
    let d = plan_pod(&PodInputs {
        desired: Some(&p),
        desired_host_known: true,
        seen: &seen_list,
        memory: &memory,
        now: NOW,
    });
    assert!(
        matches!(d, Decision::Act(Step::Stop { ref node, .. }) if node == "b"),
        "{d:?}"
    );
}

#[test]
fn a_completed_never_pod_is_done_and_a_failed_one_is_not() {
    let mut desired = pod("job-1", "h");
    std::sync::Arc::make_mut(&mut desired.spec).restart_policy = RestartPolicy::Never;
    let c = exited(seen("job-1", "main", "h", "id1"), 0);
    assert!(pod_done(&desired, &[&c]));
    assert_eq!(
        decide(Some(&desired), std::slice::from_ref(&c), &ready()),
        Decision::Done
    );
    let failed = exited(seen("job-1", "main", "h", "id1"), 1);
    assert!(!pod_done(&desired, &[&failed]));
    std::sync::Arc::make_mut(&mut desired.spec).restart_policy = RestartPolicy::Always;
    assert!(!pod_done(&desired, &[&c]), "an Always pod must run");
}
