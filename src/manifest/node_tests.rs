//! `kind: Node`: a host's labels and scheduling, read as strictly as the other kinds.

use super::{load_files, Limits, SourceFile};

fn load(text: &str) -> Result<super::Manifests, Vec<String>> {
    let file = SourceFile {
        path: "nodes/h1.yaml".into(),
        bytes: text.as_bytes().to_vec(),
    };
    load_files(&[file], &Limits::default()).map_err(|p| p.iter().map(ToString::to_string).collect())
}

#[test]
fn a_node_carries_labels_unschedulable_and_drain() {
    let m = load(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: h1\n  labels: {disk: ssd}\n  annotations: {berth.io/drain: \"true\"}\nspec:\n  unschedulable: true\n",
    )
    .unwrap();
    let n = m.node("h1").unwrap();
    assert_eq!(n.metadata.labels["disk"], "ssd");
    assert_eq!(n.metadata.namespace, "");
    assert!(n.unschedulable && n.draining() && n.is_unschedulable());
    assert_eq!(m.len(), 1);
}

#[test]
fn a_node_without_spec_is_schedulable() {
    let m =
        load("apiVersion: v1\nkind: Node\nmetadata:\n  name: h1\n  labels: {zone: a}\n").unwrap();
    assert!(!m.nodes[0].is_unschedulable());
}

#[test]
fn node_mistakes_name_file_line_and_field() {
    let e = load(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: h1\n  namespace: prod\nspec:\n  unschedulable: yes-please\n  taints: []\n",
    )
    .unwrap_err();
    assert!(
        e.iter().any(|p| p.starts_with("nodes/h1.yaml:")
            && p.contains("metadata.namespace: a Node belongs to no namespace")),
        "{e:?}"
    );
    assert!(e.iter().any(|p| p.contains("spec.unschedulable")), "{e:?}");
    assert!(e.iter().any(|p| p.contains("spec.taints")), "{e:?}");
    let e = load(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: h1\n  annotations: {berth.io/drain: \"soon\"}\n",
    )
    .unwrap_err();
    assert!(
        e[0].contains("metadata.annotations.berth.io/drain"),
        "{e:?}"
    );
    let e = load("apiVersion: v1\nkind: Node\nmetadata:\n  name: H_1\n").unwrap_err();
    assert!(e[0].contains("metadata.name"), "{e:?}");
}

#[test]
fn placement_annotations_are_checked_where_they_go() {
    let rc = |annotations: &str| {
        format!(
            "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: web\n  annotations: {{{annotations}}}\nspec:\n  replicas: 1\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: c\n        image: busybox:1\n"
        )
    };
    assert!(load(&rc(
        "berth.io/max-per-node: \"1\", berth.io/conflicts: \"app=db\", berth.io/placement: binpack"
    ))
    .is_ok());
    let e = load(&rc("berth.io/max-per-node: \"0\"")).unwrap_err();
    assert!(e[0].contains("not a whole number of at least 1"), "{e:?}");
    let e = load(&rc("berth.io/conflicts: \"app=db,,x\"")).unwrap_err();
    assert!(e[0].contains("not a label selector"), "{e:?}");
    let e = load(&rc("berth.io/placement: pack")).unwrap_err();
    assert!(e[0].contains("not one of spread, binpack"), "{e:?}");
}
