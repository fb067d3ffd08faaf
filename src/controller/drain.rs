//! Draining a host (`berth.io/drain: "true"` on its Node manifest): its RC replicas move
//! elsewhere one at a time, each RC keeping its ready count, by the rollout rules.
//!
//! A drain is a rolling update that changes hosts instead of templates: replicas on a draining
//! host count as an older revision, and [`rollout::step`] runs with maxSurge 1 and
//! maxUnavailable 0, so one replacement is added (never on a draining host), and the drained
//! replica is retired only once its replacement is available. A drain changes no rollout
//! state: a replacement late past the deadline halts nothing, the drain just waits for it.
//! It runs only for an RC whose rollout is complete; a rollout in progress goes first.

use std::collections::BTreeSet;

use crate::raft::state::{ClusterState, Millis};
use crate::rollout::{self, Amount, Decision, Kind, ReplicaView, Strategy};

/// The revision a drained replica is seen with: not the target, whatever it runs.
const DRAINED: &str = "\u{0}drained";

/// The next drain decision for an RC wanting `desired` replicas of `target`, whose replicas
/// are `views`, `stopping` of its retired replicas still stopping. `None` when no replica is on
/// a draining host.
pub fn step(
    strategy: &Strategy,
    desired: u32,
    target: &str,
    views: &[ReplicaView],
    draining_hosts: &BTreeSet<String>,
    stopping: usize,
    now: Millis,
) -> Option<Decision> {
    if !views.iter().any(|v| draining_hosts.contains(&v.node)) {
        return None;
    }
    let views: Vec<ReplicaView> = views
        .iter()
        .map(|v| {
            let mut v = v.clone();
            if draining_hosts.contains(&v.node) {
                v.revision = DRAINED.to_string();
            }
            v
        })
        .collect();
    let one_at_a_time = Strategy {
        kind: Kind::RollingUpdate,
        max_surge: Amount::Count(1),
        max_unavailable: Amount::Count(0),
        ..*strategy
    };
    let mut d = rollout::step(&one_at_a_time, desired, target, &views, stopping, now);
    d.state = None;
    // Only drained replicas are ever retired by a drain.
    d.retire
        .retain(|n| views.iter().any(|v| &v.name == n && v.revision == DRAINED));
    Some(d)
}

/// The hosts whose Node manifest in the desired commit asks for a drain
/// (`berth.io/drain: "true"`).
pub fn draining_hosts(state: &ClusterState) -> BTreeSet<String> {
    state
        .desired
        .nodes
        .iter()
        .filter(|n| n.draining())
        .map(|n| n.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Health;

    const NOW: Millis = 1_000_000;

    fn v(name: &str, node: &str, ready: bool) -> ReplicaView {
        ReplicaView {
            name: name.into(),
            node: node.into(),
            revision: "r1".into(),
            created_at: NOW - 10_000,
            health: Health {
                images_ready: true,
                ready,
                ready_since: ready.then_some(NOW - 5_000),
                ..Health::default()
            },
        }
    }

    fn drain(views: &[ReplicaView]) -> Option<Decision> {
        let hosts: BTreeSet<String> = ["x".to_string()].into();
        step(&Strategy::default(), 3, "r1", views, &hosts, 0, NOW)
    }

    #[test]
    fn nothing_to_do_without_a_replica_on_a_draining_host() {
        assert_eq!(drain(&[v("a", "y", true), v("b", "z", true)]), None);
    }

    #[test]
    fn one_replacement_first_then_the_drained_replica_once_it_is_available() {
        let start = [v("a", "x", true), v("b", "x", true), v("c", "y", true)];
        let d = drain(&start).expect("a drain");
        assert_eq!(
            (d.add, d.retire.len()),
            (1, 0),
            "surge one, stop nothing yet"
        );

        let mut waiting = start.to_vec();
        waiting.push(v("n1", "z", false));
        let d = drain(&waiting).expect("a drain");
        assert_eq!(d, Decision::default(), "the replacement is not ready yet");

        let mut ready = start.to_vec();
        ready.push(v("n1", "z", true));
        let d = drain(&ready).expect("a drain");
        assert_eq!(d.add, 0);
        assert_eq!(d.retire.len(), 1, "one at a time");
        assert!(["a", "b"].contains(&d.retire[0].as_str()));
    }

    #[test]
    fn a_late_replacement_halts_nothing() {
        let mut late = v("n1", "z", false);
        late.created_at = NOW - 1_000_000;
        let views = [
            v("a", "x", true),
            v("b", "y", true),
            v("c", "y", true),
            late,
        ];
        let d = drain(&views).expect("a drain");
        assert_eq!(d.state, None);
        assert!(d.retire.is_empty(), "the drained replica keeps serving");
    }

    #[test]
    fn a_drained_replica_that_serves_nothing_goes_at_once() {
        let views = [v("a", "x", false), v("b", "y", true), v("c", "y", true)];
        let d = drain(&views).expect("a drain");
        assert_eq!(d.retire, ["a".to_string()]);
    }
}
