use super::*;
use crate::rollout::{Amount, Kind};

const NOW: Millis = 1_000_000;

fn r(name: &str, revision: &str, ready: bool) -> ReplicaView {
    ReplicaView {
        name: name.into(),
        node: "a".into(),
        revision: revision.into(),
        created_at: NOW - 10_000,
        health: Health {
            images_ready: true,
            ready,
            ready_since: ready.then_some(NOW - 5_000),
            problem: (!ready).then(|| "readiness probe failed: HTTP 500".into()),
            blocked_by: None,
            host_lost: false,
        },
    }
}

fn decide(replicas: &[ReplicaView]) -> Decision {
    step(&Strategy::default(), 3, "new", replicas, 0, NOW)
}

#[test]
fn a_first_rollout_adds_every_replica_at_once_and_completes_when_all_are_available() {
    assert_eq!(
        decide(&[]),
        Decision {
            add: 3,
            ..Decision::default()
        }
    );
    let all = [
        r("a", "new", true),
        r("b", "new", true),
        r("c", "new", true),
    ];
    assert_eq!(
        decide(&all),
        Decision {
            state: Some(RolloutState::Complete),
            ..Decision::default()
        }
    );
    let one_not_ready = [
        r("a", "new", true),
        r("b", "new", true),
        r("c", "new", false),
    ];
    assert_eq!(decide(&one_not_ready), Decision::default());
}

#[test]
fn a_rolling_update_surges_one_and_retires_an_old_replica_only_once_a_new_one_is_available() {
    let mut o3 = r("o3", "old", true);
    o3.created_at += 1;
    let old = [r("o1", "old", true), r("o2", "old", true), o3];
    assert_eq!(
        decide(&old),
        Decision {
            add: 1,
            ..Decision::default()
        },
        "maxSurge 1: one new replica, no old one stopped yet"
    );
    let mut with_new = old.to_vec();
    with_new.push(r("n1", "new", false));
    assert_eq!(
        decide(&with_new),
        Decision::default(),
        "waits for the new one"
    );
    with_new[3] = r("n1", "new", true);
    assert_eq!(
        decide(&with_new),
        Decision {
            retire: vec!["o3".into()],
            ..Decision::default()
        },
        "one old replica goes once one new is available (the newest old first)"
    );
}

#[test]
fn min_ready_seconds_counts_before_a_replica_is_available() {
    let mut n1 = r("n1", "new", true);
    n1.health.ready_since = Some(NOW - 2_000);
    let mut o3 = r("o3", "old", true);
    o3.created_at += 1;
    let replicas = [r("o1", "old", true), r("o2", "old", true), o3, n1];
    let s = Strategy {
        min_ready_seconds: 5,
        ..Strategy::default()
    };
    assert_eq!(step(&s, 3, "new", &replicas, 0, NOW), Decision::default());
    assert_eq!(
        step(&s, 3, "new", &replicas, 0, NOW + 3_000).retire,
        vec!["o3".to_string()]
    );
}

#[test]
fn old_replicas_that_serve_nothing_go_first_without_waiting() {
    let replicas = [
        r("o1", "old", true),
        r("o2", "old", false),
        r("o3", "old", true),
    ];
    let d = decide(&replicas);
    assert_eq!(d.add, 1);
    assert_eq!(d.retire, vec!["o2".to_string()], "costs no availability");
}

#[test]
fn max_unavailable_allows_stopping_before_starting() {
    let s = Strategy {
        max_surge: Amount::Count(0),
        max_unavailable: Amount::Count(1),
        ..Strategy::default()
    };
    let old = [
        r("o1", "old", true),
        r("o2", "old", true),
        r("o3", "old", true),
    ];
    let d = step(&s, 3, "new", &old, 0, NOW);
    assert_eq!((d.add, d.retire.len()), (0, 1));
}

#[test]
fn a_new_replica_late_past_the_deadline_halts_with_its_reason_and_nothing_else_moves() {
    let mut late = r("n1", "new", false);
    late.created_at = NOW - 121_000;
    let replicas = [
        r("o1", "old", true),
        r("o2", "old", true),
        r("o3", "old", true),
        late,
    ];
    assert_eq!(
        decide(&replicas),
        Decision {
            state: Some(RolloutState::Halted {
                reasons: vec!["n1: readiness probe failed: HTTP 500".into()]
            }),
            ..Decision::default()
        }
    );
}

#[test]
fn recreate_stops_every_old_replica_only_once_every_new_one_has_its_images() {
    let s = Strategy {
        kind: Kind::Recreate,
        ..Strategy::default()
    };
    let old = [r("o1", "old", true), r("o2", "old", true)];
    assert_eq!(step(&s, 2, "new", &old, 0, NOW).add, 2);
    let mut pulling = r("n1", "new", false);
    pulling.health.images_ready = false;
    let replicas = [
        old[0].clone(),
        old[1].clone(),
        pulling,
        r("n2", "new", false),
    ];
    assert_eq!(step(&s, 2, "new", &replicas, 0, NOW), Decision::default());
    let mut pulled = replicas.clone();
    pulled[2].health.images_ready = true;
    assert_eq!(
        step(&s, 2, "new", &pulled, 0, NOW).retire,
        vec!["o1".to_string(), "o2".to_string()]
    );
}

#[test]
fn a_host_port_clash_replaces_stop_first_on_that_host() {
    let mut blocked = r("n1", "new", false);
    blocked.health.blocked_by = Some("o2".into());
    let replicas = [
        r("o1", "old", true),
        r("o2", "old", true),
        r("o3", "old", true),
        blocked,
    ];
    assert_eq!(decide(&replicas).retire, vec!["o2".to_string()]);
}

#[test]
fn scaling_down_removes_not_ready_then_crowded_then_newest() {
    let mut b1 = r("b1", "new", true);
    b1.node = "b".into();
    let mut a_new = r("a2", "new", true);
    a_new.created_at = NOW - 1_000;
    let replicas = [r("a1", "new", true), a_new, b1, r("a3", "new", false)];
    let refs: Vec<&ReplicaView> = replicas.iter().collect();
    assert_eq!(scale_down_order(&refs), ["a3", "a2", "a1", "b1"]);
    let d = step(&Strategy::default(), 2, "new", &replicas, 0, NOW);
    assert_eq!(d.retire, vec!["a3".to_string(), "a2".to_string()]);
}

#[test]
fn scaling_down_removes_pending_replicas_first() {
    let mut pending = r("p1", "new", false);
    pending.node = String::new();
    pending.created_at = NOW - 20_000;
    let replicas = [r("a1", "new", false), pending, r("a2", "new", true)];
    let refs: Vec<&ReplicaView> = replicas.iter().collect();
    assert_eq!(scale_down_order(&refs), ["p1", "a1", "a2"]);
}

#[test]
fn replicas_still_stopping_count_towards_the_surge() {
    let mut o3 = r("o3", "old", true);
    o3.created_at += 1;
    let replicas = [
        r("o1", "old", true),
        r("o2", "old", true),
        r("n1", "new", true),
    ];
    // One old replica was retired and is still stopping: nothing more may start yet.
    assert_eq!(
        step(&Strategy::default(), 3, "new", &replicas, 1, NOW).add,
        0
    );
    assert_eq!(
        step(&Strategy::default(), 3, "new", &replicas, 0, NOW).add,
        1
    );
    let _ = o3;
}

#[test]
fn a_scale_down_takes_replicas_on_lost_hosts_first_then_not_ready_then_crowded_then_newest() {
    let mut lost = r("lost", "new", true);
    lost.node = "x".into();
    lost.health.host_lost = true;
    let unready = r("unready", "new", false);
    let mut crowded_old = r("crowded-old", "new", true);
    crowded_old.created_at -= 1;
    let crowded_new = r("crowded-new", "new", true);
    let mut alone = r("alone", "new", true);
    alone.node = "b".into();
    alone.created_at += 5;
    let all = [alone, crowded_old, crowded_new, unready, lost];
    let refs: Vec<&ReplicaView> = all.iter().collect();
    assert_eq!(
        scale_down_order(&refs),
        ["lost", "unready", "crowded-new", "crowded-old", "alone"]
    );
}
