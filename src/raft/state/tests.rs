use super::*;
use crate::manifest::{load_files, Limits, SourceFile};

pub fn record(sha: &str) -> CommitRecord {
    CommitRecord::pending(
        sha.into(),
        vec![],
        "A <a@example.org>".into(),
        "m".into(),
        0,
        1,
    )
}

/// An RC `web` of `replicas` whose container's env holds `version`.
pub(super) fn manifests(replicas: u32, version: &str) -> Manifests {
    let text = format!(
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: c, image: 'i:1', env: [{{name: V, value: '{version}'}}]}}]\n"
    );
    load_files(
        &[SourceFile {
            path: "m.yaml".into(),
            bytes: text.into_bytes(),
        }],
        &Limits::default(),
    )
    .unwrap()
}

fn replica(name: &str, revision: &str) -> Replica {
    Replica {
        name: name.into(),
        node: "a".into(),
        revision: revision.into(),
        created_at: 1,
    }
}

pub(super) fn accept(s: &mut ClusterState, sha: &str, desired: Manifests, at: Millis) -> Response {
    s.apply(Command::Seen {
        commits: vec![record(sha)],
    });
    let replicas = s.replicas.clone();
    s.apply(Command::Accept {
        sha: sha.into(),
        desired,
        replicas,
        pod_nodes: BTreeMap::new(),
        unchanged: false,
        at,
    })
}

pub(super) fn revision_of(m: &Manifests) -> String {
    m.replication_controllers[0].template.revision()
}

#[test]
fn older_commits_of_a_fetch_are_superseded_and_the_head_is_pending() {
    let mut s = ClusterState::new();
    s.apply(Command::Seen {
        commits: vec![record("a"), record("b")],
    });
    assert_eq!(s.commit("a").unwrap().outcome, Outcome::Superseded);
    assert_eq!(s.commit("b").unwrap().outcome, Outcome::Pending);
    assert_eq!(s.last_head.as_deref(), Some("b"));
}

#[test]
fn a_rejected_commit_leaves_the_desired_state_alone() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", Manifests::default(), 2);
    s.apply(Command::Seen {
        commits: vec![record("b")],
    });
    let r = s.apply(Command::Reject {
        sha: "b".into(),
        errors: vec!["x".into()],
        at: 3,
    });
    assert!(r.ok);
    assert_eq!(s.desired_commit.as_deref(), Some("a"));
    assert_eq!(s.commit("b").unwrap().outcome, Outcome::Rejected);
    assert_eq!(s.last_head.as_deref(), Some("b"));
}

#[test]
fn commands_about_unknown_or_no_longer_desired_commits_are_refused() {
    let mut s = ClusterState::new();
    assert!(
        !s.apply(Command::Converged {
            sha: "x".into(),
            at: 1
        })
        .ok
    );
    accept(&mut s, "a", manifests(1, "1"), 2);
    accept(&mut s, "b", manifests(1, "2"), 3);
    let stale = s.apply(Command::Replicas {
        sha: "a".into(),
        rc: "default/web".into(),
        add: vec![replica("web-new", "x")],
        retire: vec![],
        at: 4,
        based_on: None,
    });
    assert!(
        !stale.ok,
        "a decision for commit a lands after b was accepted"
    );
    assert!(
        !s.apply(Command::Converged {
            sha: "a".into(),
            at: 5
        })
        .ok
    );
}

#[test]
fn a_newer_accept_supersedes_a_commit_still_applying() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", manifests(1, "1"), 2);
    accept(&mut s, "b", manifests(1, "2"), 3);
    let a = s.commit("a").unwrap();
    assert_eq!(a.outcome, Outcome::Superseded);
    assert_eq!(a.refers_to.as_deref(), Some("b"));
    assert_eq!(s.commit("b").unwrap().outcome, Outcome::Applying);
}

#[test]
fn a_changed_template_starts_a_rollout_and_keeps_the_old_template_while_it_is_run() {
    let mut s = ClusterState::new();
    let v1 = manifests(2, "1");
    let r1 = revision_of(&v1);
    accept(&mut s, "a", v1, 2);
    assert_eq!(s.rollouts["default/web"].state, RolloutState::Progressing);
    s.apply(Command::Replicas {
        sha: "a".into(),
        rc: "default/web".into(),
        add: vec![replica("web-1", &r1), replica("web-2", &r1)],
        retire: vec![],
        at: 3,
        based_on: None,
    });
    s.apply(Command::RolloutState {
        sha: "a".into(),
        rc: "default/web".into(),
        state: RolloutState::Complete,
        at: 4,
    });
    assert!(
        s.apply(Command::Converged {
            sha: "a".into(),
            at: 5
        })
        .ok
    );
    assert_eq!(s.last_converged.as_deref(), Some("a"));

    let v2 = manifests(2, "2");
    let r2 = revision_of(&v2);
    accept(&mut s, "b", v2, 6);
    let rollout = &s.rollouts["default/web"];
    assert_eq!(
        (rollout.revision.as_str(), &rollout.state),
        (r2.as_str(), &RolloutState::Progressing)
    );
    assert_eq!(s.replicas["default/web"].len(), 2, "old replicas are kept");
    assert!(
        s.template("default/web", &r1).is_some(),
        "the old template is kept"
    );
    assert!(s.template("default/web", &r2).is_some());

    // One new replica in, one old out, then the other: the old template goes with the last.
    s.apply(Command::Replicas {
        sha: "b".into(),
        rc: "default/web".into(),
        add: vec![replica("web-3", &r2)],
        retire: vec!["web-1".into()],
        at: 7,
        based_on: None,
    });
    assert!(s.template("default/web", &r1).is_some());
    s.apply(Command::Replicas {
        sha: "b".into(),
        rc: "default/web".into(),
        add: vec![replica("web-4", &r2)],
        retire: vec!["web-2".into()],
        at: 8,
        based_on: None,
    });
    assert!(s.template("default/web", &r1).is_none());
    assert!(s.templates.is_empty());
    let plan = &s.commit("b").unwrap().plan;
    assert_eq!(
        plan,
        &[
            "add default/web-3 on a",
            "retire default/web-1",
            "add default/web-4 on a",
            "retire default/web-2"
        ]
    );
}

#[test]
fn replica_names_are_never_reused() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", manifests(1, "1"), 2);
    let add = |name: &str| Command::Replicas {
        sha: "a".into(),
        rc: "default/web".into(),
        add: vec![replica(name, "r")],
        retire: vec![],
        at: 3,
        based_on: None,
    };
    assert!(s.apply(add("web-1")).ok);
    assert!(!s.apply(add("web-1")).ok);
}

#[test]
fn a_halted_rollout_fails_the_commit_which_then_never_converges() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", manifests(1, "1"), 2);
    s.apply(Command::RolloutState {
        sha: "a".into(),
        rc: "default/web".into(),
        state: RolloutState::Halted {
            reasons: vec!["web-x: readiness probe failed: HTTP 500".into()],
        },
        at: 3,
    });
    let c = s.commit("a").unwrap();
    assert_eq!(c.outcome, Outcome::Failed);
    assert_eq!(c.errors, ["web-x: readiness probe failed: HTTP 500"]);
    assert!(
        !s.apply(Command::Converged {
            sha: "a".into(),
            at: 4
        })
        .ok
    );
    assert_eq!(s.commit("a").unwrap().outcome, Outcome::Failed);
}

#[test]
fn a_rollback_records_both_commits_honestly() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", manifests(1, "1"), 2);
    s.apply(Command::Converged {
        sha: "a".into(),
        at: 3,
    });
    accept(&mut s, "b", manifests(1, "2"), 4);
    s.apply(Command::Failed {
        sha: "b".into(),
        reasons: vec!["web-y: ErrImagePull: manifest unknown".into()],
        at: 5,
    });
    let to = Box::new(s.commit("a").unwrap().clone());
    let ok = s.apply(Command::Rollback {
        failed: "b".into(),
        to,
        desired: manifests(1, "1"),
        replicas: s.replicas.clone(),
        pod_nodes: BTreeMap::new(),
        at: 6,
    });
    assert!(ok.ok);
    let b = s.commit("b").unwrap();
    assert_eq!(
        (b.outcome, b.refers_to.as_deref()),
        (Outcome::RolledBack, Some("a"))
    );
    let again = s.commit("a").unwrap();
    assert_eq!(again.outcome, Outcome::Applying);
    assert_eq!(again.trigger, Trigger::Rollback);
    assert_eq!(again.converged_at, None, "a new record, not the old one");
    assert_eq!(s.history.len(), 3);
    assert_eq!(s.desired_commit.as_deref(), Some("a"));
}

#[test]
fn legacy_replicas_without_a_revision_run_the_template_they_were_placed_for() {
    let mut s = ClusterState::new();
    s.apply(Command::Seen {
        commits: vec![record("a")],
    });
    let v1 = manifests(1, "1");
    let r1 = revision_of(&v1);
    // An Accept entry as written before revisions existed.
    s.apply(Command::Accept {
        sha: "a".into(),
        desired: v1,
        replicas: [(
            "default/web".to_string(),
            vec![Replica {
                name: "web-1".into(),
                node: "a".into(),
                revision: String::new(),
                created_at: 0,
            }],
        )]
        .into(),
        pod_nodes: BTreeMap::new(),
        unchanged: false,
        at: 2,
    });
    assert_eq!(s.replicas["default/web"][0].revision, r1);
    assert_eq!(s.rollouts["default/web"].state, RolloutState::Complete);
}

#[test]
fn history_is_capped_oldest_first() {
    let mut s = ClusterState::new();
    for i in 0..HISTORY_LIMIT + 5 {
        s.apply(Command::Seen {
            commits: vec![record(&i.to_string())],
        });
    }
    assert_eq!(s.history.len(), HISTORY_LIMIT);
    assert_eq!(s.history.front().unwrap().sha, "5");
}

/// A state whose commit `b` failed after `a` converged.
fn failed_after_converged() -> ClusterState {
    let mut s = ClusterState::new();
    accept(&mut s, "a", manifests(1, "1"), 2);
    s.apply(Command::Converged {
        sha: "a".into(),
        at: 3,
    });
    accept(&mut s, "b", manifests(1, "2"), 4);
    s.apply(Command::Failed {
        sha: "b".into(),
        reasons: vec!["web-y: ErrImagePull: manifest unknown".into()],
        at: 5,
    });
    s
}

#[test]
fn a_rollback_as_changes_gives_the_state_of_a_whole_rollback() {
    let s = failed_after_converged();
    let to = Box::new(s.commit("a").unwrap().clone());
    let mut whole = s.clone();
    assert!(
        whole
            .apply(Command::Rollback {
                failed: "b".into(),
                to: to.clone(),
                desired: manifests(1, "1"),
                replicas: s.replicas.clone(),
                pod_nodes: BTreeMap::new(),
                at: 6,
            })
            .ok
    );
    let changes = DesiredChanges::between(&s, &manifests(1, "1"), &s.replicas, &s.pod_nodes);
    assert_eq!(changes.base.as_deref(), Some("b"));
    let rollback = Command::RollbackChanges {
        failed: "b".into(),
        to,
        changes,
        at: 6,
    };
    let mut changed = s.clone();
    assert!(changed.apply(rollback.clone()).ok);
    assert_eq!(changed, whole);
    // Once applied, the same proposal is stale: `a` is desired now, not `b`.
    assert!(!changed.apply(rollback).ok);
    assert_eq!(changed, whole);
}

#[test]
fn a_halted_rollout_keeps_its_reasons_within_the_caps() {
    let mut s = ClusterState::new();
    accept(&mut s, "a", manifests(1, "1"), 2);
    s.apply(Command::RolloutState {
        sha: "a".into(),
        rc: "default/web".into(),
        state: RolloutState::Halted {
            reasons: vec!["x".repeat(100_000); 1_000],
        },
        at: 3,
    });
    let RolloutState::Halted { reasons } = &s.rollouts["default/web"].state else {
        panic!("not halted");
    };
    assert_eq!(reasons.len(), MAX_ERRORS);
    assert!(reasons.iter().all(|r| r.len() < MAX_TEXT_BYTES + 64));
    assert_eq!(s.commit("a").unwrap().errors.len(), MAX_ERRORS);
}

#[test]
fn a_recovery_is_recorded_and_the_state_takes_this_format() {
    let mut s = ClusterState {
        format: 2,
        ..ClusterState::default()
    };
    for i in 0..MAX_RECOVERIES as u64 + 2 {
        assert!(
            s.apply(Command::Recovered {
                member: 7,
                from_members: vec![1, 2, 3],
                last_index: i,
                at: 9,
            })
            .ok
        );
    }
    assert_eq!(s.format, STATE_FORMAT);
    assert_eq!(s.recoveries.len(), MAX_RECOVERIES);
    assert_eq!(s.recoveries[0].last_index, 2, "the oldest go first");
}

#[test]
fn the_history_budget_is_the_clusters_setting() {
    let mut s = ClusterState::new();
    let plan_record = |sha: &str| {
        let mut r = record(sha);
        r.outcome = Outcome::Applied;
        r.plan = (0..100)
            .map(|i| format!("add default/{sha}-{i} on h"))
            .collect();
        r
    };
    let commits: Vec<CommitRecord> = (0..50).map(|i| plan_record(&format!("c{i}"))).collect();
    s.apply(Command::Seen { commits });
    assert!(
        s.history.iter().all(|r| r.plan.len() == 100),
        "the default holds them"
    );
    let values: SettingValues = [(HISTORY_SIZE.to_string(), "20000".to_string())].into();
    s.apply(Command::Settings {
        values,
        by: 1,
        at: 5,
    });
    s.apply(Command::Seen {
        commits: vec![plan_record("next")],
    });
    assert!(s.history.estimated_bytes() <= 20_000);
    assert!(s.history.iter().any(|r| r.plan == [PLAN_DROPPED]));
    assert_eq!(s.history.back().unwrap().sha, "next");
}

#[test]
fn a_state_from_before_formats_and_budgets_loads() {
    // The JSON an older berth wrote: no format, no settings, no recoveries, history a list.
    let mut s = ClusterState::new();
    s.apply(Command::Seen {
        commits: vec![record("a")],
    });
    let mut old = serde_json::to_value(&s).unwrap();
    let o = old.as_object_mut().unwrap();
    for field in ["format", "settings", "recoveries", "rollouts", "templates"] {
        o.remove(field);
    }
    let loaded: ClusterState = serde_json::from_value(old).unwrap();
    assert_eq!(loaded.format, 0);
    assert_eq!(loaded.history, s.history);
}
