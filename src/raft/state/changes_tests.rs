use super::*;
use crate::manifest::{load_files, Limits, SourceFile};
use crate::raft::state::{Command, CommitRecord, Outcome};

/// A tree of `n` RCs in one file, `web-<i>` running `img-<i>:<version(i)>`, with a Service and
/// a bare Pod in a second file.
fn tree(n: usize, version: impl Fn(usize) -> u32) -> Manifests {
    tree_of(0..n, version)
}

/// [`tree`] with the RCs of `ids` only.
fn tree_of(ids: impl Iterator<Item = usize>, version: impl Fn(usize) -> u32) -> Manifests {
    let rcs: String = ids
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ReplicationController\nmetadata: {{name: web-{i}}}\nspec:\n  replicas: 3\n  template:\n    metadata: {{labels: {{app: web-{i}}}}}\n    spec:\n      containers: [{{name: c, image: 'img-{i}:{v}', env: [{{name: MODE, value: production}}], ports: [{{containerPort: 8080}}]}}]\n---\n",
                v = version(i)
            )
        })
        .collect();
    let other = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web-0}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec:\n  containers: [{name: c, image: 'solo:1'}]\n";
    load(&[("apps.yaml", rcs), ("other.yaml", other.to_string())])
}

fn load(files: &[(&str, String)]) -> Manifests {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(path, text)| SourceFile {
            path: path.to_string(),
            bytes: text.clone().into_bytes(),
        })
        .collect();
    load_files(&files, &Limits::default()).expect("valid tree")
}

fn record(sha: &str) -> CommitRecord {
    CommitRecord::pending(sha.into(), vec![], "A".into(), "m".into(), 0, 1)
}

/// Three replicas per RC of `m`, each of its template's revision.
fn replicas(m: &Manifests) -> BTreeMap<ObjectKey, Vec<Replica>> {
    m.replication_controllers
        .iter()
        .map(|rc| {
            let key = format!("{}/{}", rc.metadata.namespace, rc.metadata.name);
            let list = (0..3)
                .map(|i| Replica {
                    name: format!("{}-{i}abcd", rc.metadata.name),
                    node: format!("host-{i}"),
                    revision: rc.template.revision(),
                    created_at: 1_700_000_000_000,
                })
                .collect();
            (key, list)
        })
        .collect()
}

/// A state whose desired commit `a` is `m`, accepted whole (as an old log would have it).
fn state_with(m: &Manifests) -> ClusterState {
    let mut s = ClusterState::new();
    s.apply(Command::Seen {
        commits: vec![record("a")],
    });
    let ok = s.apply(Command::Accept {
        sha: "a".into(),
        desired: m.clone(),
        replicas: replicas(m),
        pod_nodes: [("default/solo".to_string(), "host-0".to_string())].into(),
        unchanged: false,
        at: 2,
    });
    assert!(ok.ok);
    s.apply(Command::Seen {
        commits: vec![record("b")],
    });
    s
}

fn accept_changes(s: &ClusterState, m: &Manifests) -> Command {
    Command::AcceptChanges {
        sha: "b".into(),
        changes: DesiredChanges::between(s, m, &s.replicas, &s.pod_nodes),
        unchanged: false,
        at: 3,
    }
}

fn accept_whole(s: &ClusterState, m: &Manifests) -> Command {
    Command::Accept {
        sha: "b".into(),
        desired: m.clone(),
        replicas: s.replicas.clone(),
        pod_nodes: s.pod_nodes.clone(),
        unchanged: false,
        at: 3,
    }
}

#[test]
fn a_one_line_change_travels_as_one_object() {
    let before = tree(1000, |_| 1);
    let after = tree(1000, |i| if i == 500 { 2 } else { 1 });
    let s = state_with(&before);
    let whole = serde_json::to_vec(&accept_whole(&s, &after)).unwrap().len();
    let cmd = accept_changes(&s, &after);
    let changes = serde_json::to_vec(&cmd).unwrap().len();
    eprintln!(
        "1-line change in a 1000-RC tree: Accept {whole} bytes, AcceptChanges {changes} bytes"
    );
    let Command::AcceptChanges { changes: c, .. } = &cmd else {
        unreachable!()
    };
    assert_eq!(c.manifests.replication_controllers.len(), 1);
    assert_eq!(
        c.manifests.replication_controllers[0].metadata.name,
        "web-500"
    );
    assert!(c.manifests.moved.is_empty() && c.manifests.removed.is_empty());
    assert!(c.replicas.is_empty() && c.pod_nodes.is_empty());
    assert!(changes * 500 < whole, "{changes} vs {whole}");
}

#[test]
fn changes_give_the_same_state_as_the_whole_tree() {
    let before = tree(20, |_| 1);
    // One RC changed, one gone (the file is shorter: every RC below moves), the Service gone,
    // a Pod added.
    let mut after = tree_of((0..20).filter(|i| *i != 7), |i| if i == 3 { 2 } else { 1 });
    after.services.clear();
    after
        .pods
        .extend(load(&[("z.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: late}\nspec:\n  containers: [{name: c, image: 'l:1'}]\n".into())]).pods);
    let s = state_with(&before);
    let c = ManifestChanges::between(&s.desired, &after);
    assert_eq!(
        (
            c.replication_controllers.len(),
            c.moved.len(),
            c.removed.len(),
            c.pods.len()
        ),
        (1, 12, 2, 1)
    );
    let mut whole = s.clone();
    let mut changed = s.clone();
    assert!(whole.apply(accept_whole(&s, &after)).ok);
    assert!(changed.apply(accept_changes(&s, &after)).ok);
    assert_eq!(changed, whole);
    assert_eq!(changed.desired_commit.as_deref(), Some("b"));
    assert_eq!(changed.desired.replication_controllers.len(), 19);
    assert!(!changed.replicas.contains_key("default/web-7"));
}

#[test]
fn an_object_below_an_added_line_travels_as_its_new_origin() {
    let before = tree(3, |_| 1);
    let mut after = before.clone();
    for rc in &mut after.replication_controllers[1..] {
        rc.origin.line += 1;
    }
    let c = ManifestChanges::between(&before, &after);
    assert!(c.replication_controllers.is_empty(), "{c:?}");
    assert_eq!(
        c.moved
            .iter()
            .map(|m| m.object.name.as_str())
            .collect::<Vec<_>>(),
        ["web-1", "web-2"]
    );
    let s = state_with(&before);
    let mut changed = s.clone();
    assert!(changed.apply(accept_changes(&s, &after)).ok);
    assert_eq!(changed.desired, after);
}

#[test]
fn the_order_objects_are_listed_in_does_not_matter() {
    let m = tree(5, |_| 1);
    let mut shuffled = m.clone();
    shuffled.replication_controllers.reverse();
    assert!(ManifestChanges::between(&m, &shuffled).is_empty());
    let mut sorted = shuffled;
    canonical(&mut sorted);
    assert_eq!(sorted, m, "canonical order is file order");
}

#[test]
fn changes_computed_against_another_desired_commit_are_refused_and_change_nothing() {
    let before = tree(3, |_| 1);
    let after = tree(3, |_| 2);
    let s = state_with(&before);
    let stale = accept_changes(&s, &after);
    let mut moved_on = s.clone();
    moved_on.apply(Command::Seen {
        commits: vec![record("c")],
    });
    let same_tree = DesiredChanges::between(&moved_on, &before, &s.replicas, &s.pod_nodes);
    let c = Command::AcceptChanges {
        sha: "c".into(),
        changes: same_tree,
        unchanged: true,
        at: 3,
    };
    assert!(moved_on.apply(c).ok);
    let Command::AcceptChanges { changes, .. } = &stale else {
        unreachable!()
    };
    assert_eq!(changes.base.as_deref(), Some("a"));
    let unchanged = moved_on.clone();
    assert!(!moved_on.apply(stale).ok);
    assert_eq!(moved_on, unchanged);
    assert_eq!(moved_on.commit("b").unwrap().outcome, Outcome::Pending);
}

#[test]
fn removing_an_object_the_desired_state_lacks_is_refused() {
    let m = tree(2, |_| 1);
    let mut s = state_with(&m);
    let mut changes = DesiredChanges::between(&s, &m, &s.replicas, &s.pod_nodes);
    changes.manifests.removed.push(ObjectRef {
        kind: Kind::Service,
        namespace: "default".into(),
        name: "never-was".into(),
    });
    let before = s.clone();
    let cmd = Command::AcceptChanges {
        sha: "b".into(),
        changes,
        unchanged: true,
        at: 3,
    };
    assert!(!s.apply(cmd).ok);
    assert_eq!(s, before);
}

#[test]
fn replica_lists_and_pod_hosts_travel_only_when_they_differ() {
    let m = tree(3, |_| 1);
    let s = state_with(&m);
    let mut replicas = s.replicas.clone();
    replicas.get_mut("default/web-1").unwrap()[0].revision = "0123".into();
    replicas.remove("default/web-2");
    let mut pod_nodes = s.pod_nodes.clone();
    pod_nodes.insert("default/solo".into(), "host-9".into());
    let c = DesiredChanges::between(&s, &m, &replicas, &pod_nodes);
    assert_eq!(
        c.replicas.keys().collect::<Vec<_>>(),
        ["default/web-1", "default/web-2"]
    );
    assert_eq!(c.replicas["default/web-2"], None);
    assert_eq!(c.pod_nodes["default/solo"].as_deref(), Some("host-9"));
    let (_, r, p) = c.resolve(&s).expect("applies");
    assert_eq!((r, p), (replicas, pod_nodes));
}

/// Properties over random sequences of trees: accepting each as changes gives, step by step,
/// the state that accepting it whole gives; replaying the commands from the start gives the
/// same state; and so does a snapshot (the state's JSON) taken midway plus the commands after.
mod equivalence {
    use super::*;
    use proptest::prelude::*;

    /// RCs `web-<i>` present (with their image version) or absent, and comment lines above
    /// them (which move every object's origin).
    type Shape = (Vec<Option<u32>>, usize);

    fn shape() -> impl Strategy<Value = Shape> {
        (
            prop::collection::vec(prop::option::of(0u32..3), 8),
            0usize..3,
        )
    }

    fn tree_of_shape((versions, padding): &Shape) -> Manifests {
        let mut m = tree_of(
            versions
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_some())
                .map(|(i, _)| i),
            |i| versions[i].unwrap_or(0),
        );
        for rc in &mut m.replication_controllers {
            rc.origin.line += *padding as u32;
        }
        // Listed in reverse: the order a proposer lists objects in must not matter.
        m.replication_controllers.reverse();
        m
    }

    /// The commands of one step: the head seen, then accepted (as changes or whole).
    fn step(s: &ClusterState, i: usize, m: &Manifests, as_changes: bool) -> Vec<Command> {
        let sha = format!("c{i}");
        let mut next = s.clone();
        next.apply(Command::Seen {
            commits: vec![record(&sha)],
        });
        let replicas = replicas(m);
        let pod_nodes: BTreeMap<ObjectKey, String> =
            [("default/solo".to_string(), format!("host-{}", i % 2))].into();
        let accept = if as_changes {
            Command::AcceptChanges {
                sha: sha.clone(),
                changes: DesiredChanges::between(&next, m, &replicas, &pod_nodes),
                unchanged: false,
                at: i as u64,
            }
        } else {
            Command::Accept {
                sha: sha.clone(),
                desired: m.clone(),
                replicas,
                pod_nodes,
                unchanged: false,
                at: i as u64,
            }
        };
        vec![
            Command::Seen {
                commits: vec![record(&sha)],
            },
            accept,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn changes_replay_and_snapshots_give_the_same_state(
            shapes in prop::collection::vec(shape(), 1..6),
            cut in 0usize..6,
        ) {
            let mut changed = ClusterState::new();
            let mut whole = ClusterState::new();
            let mut log = Vec::new();
            let mut snapshot = None;
            for (i, shape) in shapes.iter().enumerate() {
                if i == cut {
                    snapshot = Some((serde_json::to_vec(&changed).unwrap(), log.len()));
                }
                let m = tree_of_shape(shape);
                for cmd in step(&changed, i, &m, true) {
                    prop_assert!(changed.apply(cmd.clone()).ok);
                    log.push(cmd);
                }
                for cmd in step(&whole, i, &m, false) {
                    prop_assert!(whole.apply(cmd).ok);
                }
                prop_assert_eq!(&changed, &whole);
            }
            // Replay from nothing, through each command's JSON as the log stores it.
            let mut replayed = ClusterState::new();
            for cmd in &log {
                let cmd: Command = serde_json::from_slice(&serde_json::to_vec(cmd).unwrap()).unwrap();
                prop_assert!(replayed.apply(cmd).ok);
            }
            prop_assert_eq!(&replayed, &changed);
            // A snapshot taken midway, then the commands after it.
            if let Some((bytes, from)) = snapshot {
                let mut installed: ClusterState = serde_json::from_slice(&bytes).unwrap();
                for cmd in &log[from..] {
                    prop_assert!(installed.apply(cmd.clone()).ok);
                }
                prop_assert_eq!(&installed, &changed);
            }
        }
    }
}
