//! The pure heart of berth: `plan(desired, observed) -> Plan`.
//!
//! Rules, in the order they are applied to each pod:
//! - a host whose engine did not answer (`NodeView::Unknown`) gets no step at all: nothing is
//!   created there and, above all, nothing is removed on partial knowledge;
//! - a desired pod with no container is created;
//! - a pod whose containers carry another spec hash, or that lacks one of its containers, is
//!   replaced whole (its containers share container 0's network namespace, so they are made
//!   together);
//! - an unchanged pod is never touched, except to start containers that stopped and that its
//!   restart policy wants running; if container 0 (the network holder) of a pod with several
//!   containers stopped, the pod is replaced, since a restarted holder gets a new namespace its
//!   siblings would not see;
//! - managed containers that no desired pod claims are removed, after their grace period.

use std::collections::{BTreeMap, BTreeSet};

use super::types::*;
use crate::manifest::RestartPolicy;

pub fn plan(desired: &[DesiredPod], observed: &Observed) -> Plan {
    // (node, namespace, pod) -> containers seen.
    let mut seen: BTreeMap<(&str, &str, &str), Vec<&ObservedContainer>> = BTreeMap::new();
    for (node, view) in observed {
        if let NodeView::Seen(containers) = view {
            for c in containers {
                seen.entry((node.as_str(), c.namespace.as_str(), c.pod.as_str()))
                    .or_default()
                    .push(c);
            }
        }
    }
    let mut steps = Vec::new();
    let mut claimed: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
    for pod in desired {
        match observed.get(&pod.node) {
            Some(NodeView::Seen(_)) => {}
            // Unknown or unconfigured host: wait until it can be seen.
            _ => continue,
        }
        let key = (pod.node.as_str(), pod.namespace.as_str(), pod.name.as_str());
        claimed.insert(key);
        let containers = seen.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(step) = plan_pod(pod, containers) {
            steps.push(step);
        }
    }
    for (key, containers) in &seen {
        if claimed.contains(key) {
            continue;
        }
        let (node, namespace, pod) = *key;
        steps.push(Step::Remove {
            node: node.to_string(),
            pod: format!("{namespace}/{pod}"),
            ids: containers.iter().map(|c| c.id.clone()).collect(),
            grace_seconds: containers
                .iter()
                .map(|c| c.grace_seconds)
                .max()
                .unwrap_or(0),
        });
    }
    Plan { steps }
}

fn plan_pod(pod: &DesiredPod, containers: &[&ObservedContainer]) -> Option<Step> {
    if containers.is_empty() {
        return Some(Step::Create { pod: pod.clone() });
    }
    let wanted: BTreeSet<&str> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut have: BTreeMap<&str, &ObservedContainer> = BTreeMap::new();
    let mut duplicate = false;
    for c in containers {
        duplicate |= have.insert(c.container.as_str(), c).is_some();
    }
    let stale = duplicate
        || containers.iter().any(|c| c.spec_hash != pod.spec_hash)
        || have.keys().copied().collect::<BTreeSet<_>>() != wanted;
    let holder_down = pod.spec.containers.len() > 1
        && containers
            .iter()
            .any(|c| c.index == 0 && !c.running && should_run(pod.spec.restart_policy, c));
    if stale || holder_down {
        return Some(Step::Replace {
            pod: pod.clone(),
            remove: containers.iter().map(|c| c.id.clone()).collect(),
            grace_seconds: containers
                .iter()
                .map(|c| c.grace_seconds)
                .max()
                .unwrap_or(0),
        });
    }
    let ids: Vec<String> = pod
        .spec
        .containers
        .iter()
        .filter_map(|spec| have.get(spec.name.as_str()))
        .filter(|c| !c.running && should_run(pod.spec.restart_policy, c))
        .map(|c| c.id.clone())
        .collect();
    (!ids.is_empty()).then(|| Step::Start {
        node: pod.node.clone(),
        pod: format!("{}/{}", pod.namespace, pod.name),
        ids,
    })
}

/// Is this pod instance where its spec wants it? Every container exists with the pod's spec
/// hash and runs, or has completed (exit 0) under `restartPolicy: Never` or `OnFailure`, which
/// will not start it again. One half of the definition of "converged" (see the controller).
pub fn pod_done(pod: &DesiredPod, seen: &[ObservedContainer]) -> bool {
    pod.spec.containers.iter().all(|want| {
        seen.iter().any(|c| {
            c.namespace == pod.namespace
                && c.pod == pod.name
                && c.container == want.name
                && c.spec_hash == pod.spec_hash
                && (c.running || completed(pod.spec.restart_policy, c))
        })
    })
}

fn completed(policy: RestartPolicy, c: &ObservedContainer) -> bool {
    policy != RestartPolicy::Always && c.state == "exited" && c.exit_code == Some(0)
}

/// Does the restart policy want this stopped container running again? A container that was
/// created but never started always should.
fn should_run(policy: RestartPolicy, c: &ObservedContainer) -> bool {
    if c.state == "created" {
        return true;
    }
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => c.exit_code.unwrap_or(1) != 0,
        RestartPolicy::Never => false,
    }
}

#[cfg(test)]
mod tests {
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
            },
            spec_hash: hash.into(),
            commit: "c1".into(),
        }
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
            index: 0,
            grace_seconds: 3,
            image: "img:1".into(),
            running: true,
            state: "running".into(),
            exit_code: None,
        }
    }

    fn on_a(containers: Vec<ObservedContainer>) -> Observed {
        [("a".to_string(), NodeView::Seen(containers))].into()
    }

    #[test]
    fn missing_pods_are_created() {
        let p = plan(&[pod("web-1", "h")], &on_a(vec![]));
        assert_eq!(
            p.steps,
            vec![Step::Create {
                pod: pod("web-1", "h")
            }]
        );
    }

    #[test]
    fn unchanged_pods_are_never_touched_whatever_their_commit() {
        let p = plan(
            &[pod("web-1", "h")],
            &on_a(vec![seen("web-1", "main", "h", "id1")]),
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_changed_spec_replaces_only_that_pod() {
        let observed = on_a(vec![
            seen("web-1", "main", "old", "id1"),
            seen("db-1", "main", "d", "id2"),
        ]);
        let p = plan(&[pod("web-1", "new"), pod("db-1", "d")], &observed);
        assert_eq!(
            p.steps,
            vec![Step::Replace {
                pod: pod("web-1", "new"),
                remove: vec!["id1".into()],
                grace_seconds: 3
            }]
        );
    }

    #[test]
    fn containers_nothing_wants_are_removed_with_their_grace() {
        let p = plan(&[], &on_a(vec![seen("web-9", "main", "h", "id9")]));
        assert_eq!(
            p.steps,
            vec![Step::Remove {
                node: "a".into(),
                pod: "default/web-9".into(),
                ids: vec!["id9".into()],
                grace_seconds: 3
            }]
        );
    }

    #[test]
    fn plan_never_acts_on_an_unreachable_host() {
        let observed: Observed = [("a".to_string(), NodeView::Unknown)].into();
        assert!(plan(&[pod("web-1", "h")], &observed).is_empty());
        assert!(plan(&[], &observed).is_empty());
    }

    #[test]
    fn stopped_containers_start_when_the_policy_says_so() {
        let mut c = seen("web-1", "main", "h", "id1");
        c.index = 1;
        c.running = false;
        c.state = "exited".into();
        c.exit_code = Some(0);
        let mut holder = seen("web-1", "side", "h", "id0");
        holder.index = 0;
        let mut desired = pod("web-1", "h");
        desired.spec.containers = vec![container("side"), container("main")];
        let observed = on_a(vec![holder.clone(), c.clone()]);
        assert_eq!(
            plan(std::slice::from_ref(&desired), &observed).steps,
            vec![Step::Start {
                node: "a".into(),
                pod: "default/web-1".into(),
                ids: vec!["id1".into()]
            }]
        );
        desired.spec.restart_policy = RestartPolicy::OnFailure;
        assert!(plan(std::slice::from_ref(&desired), &observed).is_empty());
        desired.spec.restart_policy = RestartPolicy::Never;
        assert!(plan(&[desired], &observed).is_empty());
    }

    #[test]
    fn a_stopped_network_holder_replaces_a_pod_of_several_containers() {
        let mut holder = seen("web-1", "main", "h", "id1");
        holder.running = false;
        holder.state = "exited".into();
        holder.exit_code = Some(137);
        let mut side = seen("web-1", "side", "h", "id2");
        side.index = 1;
        let mut desired = pod("web-1", "h");
        desired.spec.containers.push(container("side"));
        let p = plan(&[desired], &on_a(vec![holder.clone(), side]));
        assert!(
            matches!(&p.steps[..], [Step::Replace { remove, .. }] if remove.len() == 2),
            "{p:?}"
        );
        // A pod of one container is simply started again: no sibling shares its namespace.
        let p = plan(&[pod("web-1", "h")], &on_a(vec![holder]));
        assert!(
            matches!(&p.steps[..], [Step::Start { ids, .. }] if ids == &["id1".to_string()]),
            "{p:?}"
        );
    }

    #[test]
    fn a_pod_missing_a_container_is_replaced_whole() {
        let mut desired = pod("web-1", "h");
        desired.spec.containers.push(container("side"));
        let p = plan(&[desired], &on_a(vec![seen("web-1", "main", "h", "id1")]));
        assert!(matches!(&p.steps[..], [Step::Replace { .. }]), "{p:?}");
    }

    #[test]
    fn a_completed_never_pod_is_done_and_a_failed_one_is_not() {
        let mut desired = pod("job-1", "h");
        desired.spec.restart_policy = RestartPolicy::Never;
        let mut c = seen("job-1", "main", "h", "id1");
        c.running = false;
        c.state = "exited".into();
        c.exit_code = Some(0);
        assert!(pod_done(&desired, std::slice::from_ref(&c)));
        assert!(plan(std::slice::from_ref(&desired), &on_a(vec![c.clone()])).is_empty());
        c.exit_code = Some(1);
        assert!(!pod_done(&desired, std::slice::from_ref(&c)));
        desired.spec.restart_policy = RestartPolicy::Always;
        c.exit_code = Some(0);
        assert!(!pod_done(&desired, &[c]), "an Always pod must run");
    }

    #[test]
    fn pods_on_unconfigured_hosts_wait() {
        let mut p = pod("web-1", "h");
        p.node = "gone".into();
        assert!(plan(&[p], &on_a(vec![])).is_empty());
    }
}
