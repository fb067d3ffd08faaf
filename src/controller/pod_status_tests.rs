use super::*;
use crate::manifest::{Container, PodSpec};

const NOW: Millis = 1_000_000;

fn pod() -> DesiredPod {
    DesiredPod {
        namespace: "default".into(),
        name: "web-1".into(),
        owner: Some("web".into()),
        node: "a".into(),
        labels: Default::default(),
        spec: PodSpec {
            containers: vec![Container::new("main", "i:1")],
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 7,
        }
        .into(),
        spec_hash: "h".into(),
        commit: "c".into(),
    }
}

fn running() -> ObservedContainer {
    ObservedContainer {
        id: "id1".into(),
        namespace: "default".into(),
        pod: "web-1".into(),
        container: "main".into(),
        spec_hash: "h".into(),
        running: true,
        state: "running".into(),
        started_at: Some(NOW - 60_000),
        ..Default::default()
    }
}

fn status(
    desired: Option<&DesiredPod>,
    current: &[&ObservedContainer],
    entry: &PodEntry,
    decision: &Decision,
    readiness: &[(String, Option<Outcome>)],
) -> PodStatus {
    derive(&Inputs {
        desired,
        host_known: true,
        host_lost: false,
        current,
        stale: false,
        entry,
        decision,
        readiness,
        liveness_failure: None,
        blocked_by: None,
        now: NOW,
        previous: &PodStatus::default(),
    })
}

#[test]
fn a_running_pod_without_probes_is_ready_and_done() {
    let p = pod();
    let c = running();
    let s = status(Some(&p), &[&c], &PodEntry::default(), &Decision::Done, &[]);
    assert_eq!(
        (s.phase.as_str(), s.ready, s.ready_since, s.done),
        ("Running", true, Some(NOW), true)
    );
}

#[test]
fn a_failing_readiness_probe_keeps_it_unready_with_the_reason() {
    let p = pod();
    let c = running();
    let failing = Outcome {
        ok: false,
        since: None,
        ran: true,
        last_failure: Some("readiness probe failed: HTTP 500".into()),
    };
    let s = status(
        Some(&p),
        &[&c],
        &PodEntry::default(),
        &Decision::Done,
        &[("main".into(), Some(failing))],
    );
    assert_eq!(
        (s.phase.as_str(), s.ready, s.done),
        ("Running", false, false)
    );
    assert_eq!(
        s.reason.as_deref(),
        Some("readiness probe failed: HTTP 500")
    );
    assert_eq!(
        s.probe_failure.as_deref(),
        Some("readiness probe failed: HTTP 500")
    );
}

#[test]
fn a_pull_failure_shows_as_err_image_pull_then_back_off() {
    let p = pod();
    let entry = PodEntry {
        pull_error: Some("manifest unknown".into()),
        ..PodEntry::default()
    };
    let acting = Decision::Act(crate::reconcile::Step::Pull { pod: p.clone() });
    let s = status(Some(&p), &[], &entry, &acting, &[]);
    assert_eq!(s.phase, "ErrImagePull");
    assert_eq!(s.reason.as_deref(), Some("ErrImagePull: manifest unknown"));
    let waiting = Decision::Wait {
        until: Some(NOW + 4_000),
        why: "x".into(),
    };
    assert_eq!(
        status(Some(&p), &[], &entry, &waiting, &[]).phase,
        "ImagePullBackOff"
    );
}

#[test]
fn a_container_docker_keeps_restarting_is_crash_looping_with_its_count() {
    let p = pod();
    let mut c = running();
    c.running = false;
    c.state = "restarting".into();
    c.exit_code = Some(1);
    c.restart_count = 3;
    let s = status(Some(&p), &[&c], &PodEntry::default(), &Decision::Done, &[]);
    assert_eq!(s.phase, "CrashLoopBackOff");
    assert_eq!(
        s.reason.as_deref(),
        Some("main: exited with 1, 3 restart(s)")
    );
    assert_eq!((s.restarts, s.ready), (3, false));
}

#[test]
fn a_completed_never_pod_is_succeeded_and_done() {
    let mut p = pod();
    std::sync::Arc::make_mut(&mut p.spec).restart_policy = RestartPolicy::Never;
    let mut c = running();
    c.running = false;
    c.state = "exited".into();
    c.exit_code = Some(0);
    let s = status(Some(&p), &[&c], &PodEntry::default(), &Decision::Done, &[]);
    assert_eq!((s.phase.as_str(), s.done), ("Succeeded", true));
}

#[test]
fn readiness_keeps_its_start_while_it_lasts() {
    let p = pod();
    let c = running();
    let previous = PodStatus {
        ready: true,
        ready_since: Some(NOW - 30_000),
        ..PodStatus::default()
    };
    let s = derive(&Inputs {
        desired: Some(&p),
        host_known: true,
        host_lost: false,
        current: &[&c],
        stale: false,
        entry: &PodEntry::default(),
        decision: &Decision::Done,
        readiness: &[],
        liveness_failure: None,
        blocked_by: None,
        now: NOW,
        previous: &previous,
    });
    assert_eq!(s.ready_since, Some(NOW - 30_000));
}
