//! The commands that build the large state of issue 9's snapshot test: 50,000 commit records
//! and 100,000 replicas (100 ReplicationControllers of 1,000), proposed the way the controller
//! proposes them (heads seen in batches, one accept as changes, replicas added per RC). Shared
//! by tests/raft_cluster.rs and benches/raft_cluster.rs.

#![allow(dead_code)]

use berth::manifest::limits::Limits;
use berth::manifest::{load_files, SourceFile};
use berth::raft::state::{ClusterState, CommitRecord, DesiredChanges, Replica};
use berth::raft::Command;

pub const RECORDS: usize = 50_000;
pub const RCS: usize = 100;
pub const PER_RC: usize = 1_000;
/// Records per `Seen` (the controller proposes at most 1,000 per fetch).
const PER_SEEN: usize = 500;

/// The desired commit: the last record seen.
pub fn desired_sha() -> String {
    format!("c{}", RECORDS - 1)
}

/// The `Seen` commands of [`RECORDS`] records, oldest first: a 40-character sha, one parent,
/// an author and a one-line message each, as a typical Git history has.
pub fn seen_batches() -> Vec<Command> {
    (0..RECORDS)
        .collect::<Vec<_>>()
        .chunks(PER_SEEN)
        .map(|chunk| Command::Seen {
            commits: chunk
                .iter()
                .map(|i| {
                    let sha = if *i == RECORDS - 1 {
                        desired_sha()
                    } else {
                        format!("c{i}")
                    };
                    CommitRecord::pending(
                        sha,
                        vec![format!("{:040x}", i.saturating_sub(1))],
                        "Alice Example <alice@example.org>".into(),
                        format!("Bump web-{} to the next release (#{i})", i % RCS),
                        1_700_000_000 + *i as i64,
                        1_700_000_000_000 + *i as u64,
                    )
                })
                .collect(),
        })
        .collect()
}

/// The tree: [`RCS`] RCs of [`PER_RC`] replicas each.
pub fn tree() -> berth::manifest::model::Manifests {
    let text: String = (0..RCS)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ReplicationController\nmetadata: {{name: web-{i}}}\nspec:\n  replicas: {PER_RC}\n  template:\n    metadata: {{labels: {{app: web-{i}}}}}\n    spec:\n      containers: [{{name: c, image: 'registry.example.org/web-{i}:1.0.0', ports: [{{containerPort: 8080}}]}}]\n---\n"
            )
        })
        .collect();
    load_files(
        &[SourceFile {
            path: "apps.yaml".into(),
            bytes: text.into_bytes(),
        }],
        &Limits::default(),
    )
    .expect("valid tree")
}

/// The accept of [`tree`] as changes against `state` (no replicas yet), then one `Replicas`
/// per RC adding its [`PER_RC`] replicas on 50 hosts.
pub fn accept_and_replicas(state: &ClusterState) -> Vec<Command> {
    let tree = tree();
    let sha = desired_sha();
    let mut commands = vec![Command::AcceptChanges {
        sha: sha.clone(),
        changes: DesiredChanges::between(state, &tree, &Default::default(), &Default::default()),
        unchanged: false,
        at: 1_700_000_100_000,
    }];
    for rc in &tree.replication_controllers {
        let name = &rc.metadata.name;
        let revision = rc.template.revision();
        commands.push(Command::Replicas {
            sha: sha.clone(),
            rc: format!("default/{name}"),
            add: (0..PER_RC)
                .map(|r| Replica {
                    name: format!("{name}-{r:05x}"),
                    node: format!("host-{:02}", r % 50),
                    revision: revision.clone(),
                    created_at: 1_700_000_100_000 + r as u64,
                })
                .collect(),
            retire: vec![],
            at: 1_700_000_200_000,
            based_on: None,
        });
    }
    commands
}

/// Replicas in `state`, all RCs together.
pub fn replica_count(state: &ClusterState) -> usize {
    state.replicas.values().map(Vec::len).sum()
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
