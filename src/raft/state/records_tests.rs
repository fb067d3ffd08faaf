use super::*;
use crate::raft::state::{Outcome, Trigger, MAX_PARENTS, MAX_TEXT_BYTES, PLAN_DROPPED};

fn record(sha: &str, outcome: Outcome, plan_lines: usize) -> CommitRecord {
    let mut r = CommitRecord::pending(
        sha.into(),
        vec!["0".repeat(40)],
        "A <a@example.org>".into(),
        "m".into(),
        0,
        1,
    );
    r.outcome = outcome;
    r.plan = (0..plan_lines)
        .map(|i| format!("add default/{sha}-{i} on host-1"))
        .collect();
    r
}

fn shas(h: &History) -> Vec<&str> {
    h.iter().map(|r| r.sha.as_str()).collect()
}

fn budget(records: usize, bytes: u64) -> History {
    History::with_budget(Budget { records, bytes })
}

fn sum(h: &History) -> u64 {
    h.iter().map(CommitRecord::estimated_bytes).sum()
}

#[test]
fn the_oldest_records_go_past_the_count() {
    let mut h = budget(3, u64::MAX);
    for sha in ["a", "b", "c", "d", "e"] {
        h.push(record(sha, Outcome::Applied, 1));
    }
    assert_eq!(shas(&h), ["c", "d", "e"]);
    assert_eq!(h.estimated_bytes(), sum(&h));
}

#[test]
fn the_estimate_follows_every_change_without_a_recount() {
    let mut h = budget(100, u64::MAX);
    h.push(record("a", Outcome::Applying, 0));
    h.push(record("b", Outcome::Pending, 0));
    h.update("a", |r| r.note(vec!["one".into(), "two".into()]));
    h.update("b", |r| r.errors = vec!["x".repeat(500)]);
    assert_eq!(h.estimated_bytes(), sum(&h));
    assert_eq!(
        History::from_records(h.records.clone()).estimated_bytes(),
        sum(&h)
    );
}

#[test]
fn the_estimate_is_close_to_the_json() {
    let mut r = record(
        "0123456789abcdef0123456789abcdef01234567",
        Outcome::Failed,
        30,
    );
    r.message = "Deploy web 1.2.3\n\nWith a longer explanation of why.".into();
    r.errors = vec!["web-x7k2q: readiness probe failed: HTTP 500".into()];
    r.applied_at = Some(1_700_000_000_000);
    r.trigger = Trigger::Webhook {
        provider: "github".into(),
        delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
    };
    let json = serde_json::to_vec(&r).unwrap().len() as f64;
    let estimate = r.estimated_bytes() as f64;
    assert!((estimate / json - 1.0).abs() < 0.15, "{estimate} vs {json}");
}

#[test]
fn over_the_bytes_plans_of_old_commits_go_first_oldest_first() {
    let mut h = budget(100, u64::MAX);
    for sha in ["a", "b", "c", "d"] {
        h.push(record(sha, Outcome::Applied, 20));
    }
    // Room for everything but one plan: the new record then needs a second one dropped.
    let plan = record("x", Outcome::Applied, 20).estimated_bytes()
        - record("x", Outcome::Applied, 0).estimated_bytes();
    h.set_budget(Budget {
        records: 100,
        bytes: h.estimated_bytes() - plan,
    });
    h.push(record("e", Outcome::Pending, 0));
    assert_eq!(shas(&h), ["a", "b", "c", "d", "e"], "no record dropped");
    assert_eq!(h[0].plan, [PLAN_DROPPED]);
    assert_eq!(h[1].plan, [PLAN_DROPPED]);
    assert_eq!(h[2].plan.len(), 20);
    assert!(h.estimated_bytes() <= h.budget.bytes);
    assert_eq!(h.estimated_bytes(), sum(&h));
}

#[test]
fn the_plan_of_a_commit_still_applying_is_kept() {
    let mut h = budget(100, u64::MAX);
    h.push(record("a", Outcome::Applying, 20));
    h.push(record("b", Outcome::Applied, 20));
    h.set_budget(Budget {
        records: 100,
        bytes: h.estimated_bytes() - 10,
    });
    h.push(record("c", Outcome::Pending, 0));
    assert_eq!(h[0].plan.len(), 20, "still applying");
    assert_eq!(h[1].plan, [PLAN_DROPPED]);
}

#[test]
fn only_then_the_oldest_records_go_and_the_newest_always_stays() {
    let mut h = budget(100, u64::MAX);
    for sha in ["a", "b", "c"] {
        h.push(record(sha, Outcome::Applied, 0));
    }
    h.push(record("d", Outcome::Applying, 20));
    let one = record("a", Outcome::Applied, 0).estimated_bytes();
    h.set_budget(Budget {
        records: 100,
        bytes: h.estimated_bytes() - one,
    });
    h.push(record("e", Outcome::Pending, 0));
    assert_eq!(shas(&h), ["c", "d", "e"]);
    assert_eq!(h[1].plan.len(), 20);
    h.set_budget(Budget {
        records: 100,
        bytes: 1,
    });
    h.push(record("f", Outcome::Pending, 0));
    assert_eq!(shas(&h), ["f"]);
    assert_eq!(h.estimated_bytes(), sum(&h));
}

#[test]
fn a_history_loaded_from_its_json_makes_the_same_decisions() {
    let steps = |h: &mut History, from: usize, to: usize| {
        for i in from..to {
            let sha = format!("c{i}");
            h.push(record(&sha, Outcome::Applying, 5));
            h.update(&sha, |r| {
                r.note(vec![format!("retire default/{i}")]);
                r.outcome = if i % 3 == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Applied
                };
            });
        }
    };
    let small = Budget {
        records: 40,
        bytes: 12_000,
    };
    let mut straight = History::with_budget(small);
    steps(&mut straight, 0, 100);
    let mut reloaded = History::with_budget(small);
    steps(&mut reloaded, 0, 50);
    let json = serde_json::to_string(&reloaded).unwrap();
    let mut reloaded: History = serde_json::from_str(&json).unwrap();
    reloaded.set_budget(small);
    steps(&mut reloaded, 50, 100);
    assert_eq!(reloaded, straight);
    assert!(straight.iter().any(|r| r.plan == [PLAN_DROPPED]));
}

#[test]
fn records_are_bounded_on_the_way_in_whoever_built_them() {
    let mut r = record("a", Outcome::Pending, 0);
    r.message = "m".repeat(100_000);
    r.author = "a".repeat(100_000);
    r.parents = vec!["p".repeat(40); 10_000];
    r.errors = vec!["e".repeat(100_000); 10_000];
    r.plan = vec!["p".repeat(100_000); 5_000];
    r.trigger = Trigger::Webhook {
        provider: "github".into(),
        delivery: Some("d".repeat(100_000)),
    };
    let mut h = History::default();
    h.push(r);
    let r = &h[0];
    assert!(r.message.len() < MAX_TEXT_BYTES + 64);
    assert!(r.author.len() < MAX_TEXT_BYTES + 64);
    assert_eq!(r.parents.len(), MAX_PARENTS);
    assert_eq!(r.errors.len(), crate::raft::state::MAX_ERRORS);
    assert_eq!(r.plan.len(), crate::raft::state::MAX_PLAN_LINES + 1);
    assert_eq!(r.plan.last().unwrap(), "… 4000 more steps not recorded");
    let Trigger::Webhook { delivery, .. } = &r.trigger else {
        unreachable!()
    };
    assert!(delivery.as_ref().unwrap().len() < 400);
    // The worst record possible stays a small fraction of the budget.
    assert!(
        r.estimated_bytes() < HISTORY_BYTES / 8,
        "{}",
        r.estimated_bytes()
    );
}

/// The numbers for the budget's comment: 50,000 ordinary records (a message, a parent, a few
/// plan lines, some with an error).
#[test]
fn fifty_thousand_ordinary_records_fit_the_budget() {
    let mut h = History::default();
    let started = std::time::Instant::now();
    for i in 0..HISTORY_LIMIT {
        let mut r = record(&format!("{i:040x}"), Outcome::Applied, 8);
        r.message = format!("Deploy release {i}: bump images, raise memory limits of the workers");
        if i % 10 == 0 {
            r.errors = vec![format!("web-{i}: readiness probe failed: HTTP 503")];
        }
        h.push(r);
    }
    let pushed = started.elapsed();
    let json = serde_json::to_vec(&h).unwrap().len();
    eprintln!(
        "50k records: estimate {} bytes, JSON {json} bytes, pushed in {pushed:?}",
        h.estimated_bytes()
    );
    assert_eq!(h.len(), HISTORY_LIMIT);
    assert!(h.estimated_bytes() < HISTORY_BYTES);
    assert!(h.iter().all(|r| r.plan.len() == 8), "no plan dropped");
}

/// Properties of the budget over random pushes and updates.
mod budget_properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A new record with this many plan lines, finished or still applying.
        Push { plan: usize, done: bool },
        /// Plan lines noted on the record `back` places from the newest.
        Note { back: usize, lines: usize },
        /// The record `back` places from the newest finishes.
        Finish { back: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..60, any::<bool>()).prop_map(|(plan, done)| Op::Push { plan, done }),
            (0usize..8, 0usize..40).prop_map(|(back, lines)| Op::Note { back, lines }),
            (0usize..8).prop_map(|back| Op::Finish { back }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn the_budget_holds_oldest_go_first_and_a_loaded_copy_decides_alike(
            ops in prop::collection::vec(op(), 1..80),
            records in 3usize..30,
            bytes in 1_000u64..20_000,
        ) {
            let limits = Budget { records, bytes };
            let mut h = History::with_budget(limits);
            let mut pushed: Vec<String> = Vec::new();
            // A copy reloaded from its JSON halfway, as a snapshot install would.
            let mut copy: Option<History> = None;
            for (n, op) in ops.iter().enumerate() {
                if n == ops.len() / 2 {
                    let mut c: History =
                        serde_json::from_slice(&serde_json::to_vec(&h).unwrap()).unwrap();
                    c.set_budget(limits);
                    copy = Some(c);
                }
                let sha = format!("s{n}");
                let apply = |h: &mut History| match op {
                    Op::Push { plan, done } => {
                        let outcome = if *done { Outcome::Applied } else { Outcome::Applying };
                        h.push(record(&sha, outcome, *plan));
                    }
                    Op::Note { back, lines } => {
                        if let Some(target) = h.iter().rev().nth(*back).map(|r| r.sha.clone()) {
                            let lines = (0..*lines).map(|i| format!("step {n}-{i}")).collect();
                            h.update(&target, |r| r.note(lines));
                        }
                    }
                    Op::Finish { back } => {
                        if let Some(target) = h.iter().rev().nth(*back).map(|r| r.sha.clone()) {
                            h.update(&target, |r| r.outcome = Outcome::Applied);
                        }
                    }
                };
                apply(&mut h);
                if let Some(c) = copy.as_mut() {
                    apply(c);
                }
                if matches!(op, Op::Push { .. }) {
                    pushed.push(sha);
                }
                // The running estimate is the sum of the records' own.
                prop_assert_eq!(h.estimated_bytes(), sum(&h));
                // Within the count, and within the bytes unless only the newest is left.
                prop_assert!(h.len() <= records);
                prop_assert!(h.estimated_bytes() <= bytes || h.len() == 1);
                // What is left is the newest records, in order: only the oldest were dropped.
                let left: Vec<&str> = shas(&h);
                let tail: Vec<&str> = pushed[pushed.len() - left.len()..].iter().map(String::as_str).collect();
                prop_assert_eq!(left, tail);
                // A plan is only ever dropped from a finished record, with the marker.
                for r in h.iter() {
                    if r.plan == [PLAN_DROPPED] {
                        prop_assert!(r.outcome.is_final());
                    }
                }
            }
            if let Some(c) = copy {
                prop_assert_eq!(&c, &h);
            }
        }
    }
}
