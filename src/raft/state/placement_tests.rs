//! Placements as committed decisions: pending replicas, binding them, and refusing a
//! placement computed against a state whose chosen hosts changed meanwhile.

use super::tests::{accept, manifests, revision_of};
use super::*;

fn add(name: &str, node: &str, rev: &str, based_on: Option<u64>) -> Command {
    Command::Replicas {
        sha: "a".into(),
        rc: "default/web".into(),
        add: vec![Replica {
            name: name.into(),
            node: node.into(),
            revision: rev.into(),
            created_at: 1,
        }],
        retire: vec![],
        at: 2,
        based_on,
    }
}

#[test]
fn a_placement_is_refused_only_when_a_host_it_chose_took_pods_since() {
    let mut s = ClusterState::new();
    let m = manifests(3, "1");
    let rev = revision_of(&m);
    accept(&mut s, "a", m, 1);
    let g = s.placement.generation;
    assert!(s.apply(add("web-1", "h1", &rev, Some(g))).ok);
    // Computed at g too, onto another host: still valid.
    assert!(s.apply(add("web-2", "h2", &rev, Some(g))).ok);
    // Computed at g, onto h1, which took web-1 since: refused, and recomputed later.
    assert!(!s.apply(add("web-3", "h1", &rev, Some(g))).ok);
    assert!(
        s.apply(add("web-3", "h1", &rev, Some(s.placement.generation)))
            .ok
    );
    // A new accepted commit replaces placements wholesale: everything older is stale.
    let before = s.placement.generation;
    accept(&mut s, "b", manifests(3, "1"), 3);
    assert!(!s.placement.fresh(before, ["h3"].into_iter()));
}

#[test]
fn pending_replicas_are_bound_once_and_only_while_pending() {
    let mut s = ClusterState::new();
    let m = manifests(2, "1");
    let rev = revision_of(&m);
    accept(&mut s, "a", m, 1);
    assert!(s.apply(add("web-1", "", &rev, None)).ok);
    assert!(s.commit("a").unwrap().plan[0].contains("pending"));
    let bind = |g: u64| Command::Bind {
        replicas: [(
            "default/web".to_string(),
            vec![("web-1".to_string(), "h1".to_string())],
        )]
        .into(),
        pods: Default::default(),
        based_on: g,
    };
    let g = s.placement.generation;
    assert!(s.apply(bind(g)).ok);
    assert_eq!(s.replicas["default/web"][0].node, "h1");
    assert!(
        !s.apply(bind(s.placement.generation)).ok,
        "no longer pending"
    );
}

#[test]
fn a_bare_pod_is_bound_only_if_desired_and_unplaced() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", Manifests::default(), 1);
    let cmd = Command::Bind {
        replicas: Default::default(),
        pods: [("default/ghost".to_string(), "h1".to_string())].into(),
        based_on: s.placement.generation,
    };
    assert!(!s.apply(cmd).ok);
}

#[test]
fn logs_and_states_from_before_placement_generations_still_read() {
    let old = r#"{"Replicas":{"sha":"a","rc":"default/web","add":[],"retire":["web-1"],"at":3}}"#;
    let cmd: Command = serde_json::from_str(old).unwrap();
    assert!(matches!(cmd, Command::Replicas { based_on: None, .. }));
    let mut state = serde_json::to_value(ClusterState::new()).unwrap();
    state.as_object_mut().unwrap().remove("placement");
    let back: ClusterState = serde_json::from_value(state).unwrap();
    assert_eq!(back.placement, PlacementClock::default());
}

#[test]
fn decisions_batched_together_do_not_make_each_other_stale() {
    let mut s = ClusterState::new();
    let m = manifests(4, "1");
    let rev = revision_of(&m);
    accept(&mut s, "a", m, 1);
    let g = s.placement.generation;
    // Another decision took h2 after g, before the batch.
    assert!(s.apply(add("web-0", "h2", &rev, Some(g))).ok);
    let r = s.apply(Command::Placements {
        decisions: vec![
            add("web-1", "h1", &rev, Some(g)),
            // h1 changed inside the batch: computed knowing it, so still valid.
            add("web-2", "h1", &rev, Some(g)),
            // h2 changed before the batch, after g: stale, refused alone.
            add("web-3", "h2", &rev, Some(g)),
            // Only placement decisions are batched.
            Command::Converged {
                sha: "a".into(),
                at: 3,
            },
        ],
    });
    assert!(!r.ok);
    assert_eq!(r.each, vec![true, true, false, false]);
    let names: Vec<&str> = s.replicas["default/web"]
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    assert_eq!(s.placement.generation, g + 3);
}
