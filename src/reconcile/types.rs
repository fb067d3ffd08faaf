//! The values the planner works on: pods as wanted, containers as seen, and the steps between.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::manifest::{PodSpec, Protocol, StringMap};
use crate::raft::state::Millis;

/// Docker labels berth puts on every container it creates. Operators and tooling rely on them;
/// containers without `io.berth.managed=true` are never touched.
pub mod labels {
    pub const MANAGED: &str = "io.berth.managed";
    pub const NAMESPACE: &str = "io.berth.namespace";
    pub const POD: &str = "io.berth.pod";
    pub const CONTAINER: &str = "io.berth.container";
    pub const OWNER: &str = "io.berth.owner";
    pub const COMMIT: &str = "io.berth.commit";
    pub const SPEC_HASH: &str = "io.berth.spec-hash";
    /// Seconds between SIGTERM and SIGKILL when the container is pruned (its spec may be gone
    /// from the desired state by then).
    pub const GRACE: &str = "io.berth.grace";
    /// Position of the container in its pod's spec.
    pub const INDEX: &str = "io.berth.index";
    /// `holder` on the small container that holds a pod's network namespace (pods of several
    /// containers); absent on the pod's own containers.
    pub const ROLE: &str = "io.berth.role";
    /// The controller cluster that made it (`--cluster-name`). A cluster never touches another
    /// cluster's containers; containers without the label belong to the default cluster.
    pub const CLUSTER: &str = "io.berth.cluster";
    /// The Raft term of the leader that made it: a leader never removes what a newer term made.
    pub const TERM: &str = "io.berth.term";
}

/// The cluster name of containers made before clusters had names.
pub const DEFAULT_CLUSTER: &str = "berth";

/// Does a container (or volume) with these labels belong to `cluster`?
pub fn belongs_to(labels: &std::collections::HashMap<String, String>, cluster: &str) -> bool {
    match labels.get(labels::CLUSTER) {
        Some(c) => c == cluster,
        None => cluster == DEFAULT_CLUSTER,
    }
}

/// The value of [`labels::ROLE`] and [`labels::CONTAINER`] on a pod's holder container. Not a
/// valid container name in a manifest (`_`), so it can never clash with one.
pub const HOLDER: &str = "_holder";

/// One pod instance as the desired state wants it: a bare Pod, or one replica of an RC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredPod {
    pub namespace: String,
    /// The Pod's name, or the replica's generated name (`web-x7k2q`).
    pub name: String,
    /// The ReplicationController owning this replica.
    pub owner: Option<String>,
    /// The host it is placed on.
    pub node: String,
    /// Shared by every replica of one template (as is `spec`): 100,000 replicas of 1,000 RCs
    /// hold 1,000 copies, not 100,000.
    pub labels: Arc<StringMap>,
    pub spec: Arc<PodSpec>,
    /// Hash of everything that, when changed, requires new containers.
    pub spec_hash: String,
    /// The commit whose desired state this is (a label only: it never causes a replacement).
    pub commit: String,
}

impl DesiredPod {
    /// `namespace/name`: the key its work is done under.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Pods of several containers get a holder container that owns their network namespace,
    /// so the namespace outlives any one container's restart. A pod of one container owns its
    /// namespace itself: there is nobody to share it with.
    pub fn has_holder(&self) -> bool {
        self.spec.containers.len() > 1
    }
}

/// A managed container as a Docker engine reports it (list and inspect).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedContainer {
    pub id: String,
    pub namespace: String,
    pub pod: String,
    /// Name of the container inside its pod ([`HOLDER`] for the holder).
    pub container: String,
    pub owner: Option<String>,
    pub commit: String,
    pub spec_hash: String,
    /// Position in the pod's spec.
    pub index: usize,
    pub grace_seconds: u32,
    pub image: String,
    pub running: bool,
    /// Docker's state word: `running`, `exited`, `created`, `restarting`, ...
    pub state: String,
    pub exit_code: Option<i64>,
    /// The exit code of its last run, kept while it runs again (a crash loop's cause).
    pub last_exit_code: Option<i64>,
    /// The pod's holder container.
    pub holder: bool,
    /// When the current run started (from inspect), milliseconds since the epoch.
    pub started_at: Option<Millis>,
    /// Restarts by Docker's restart policy.
    pub restart_count: u32,
    /// Docker `HEALTHCHECK` status (`starting`, `healthy`, `unhealthy`), when the image has one.
    pub health: Option<String>,
    /// The container's IP on its engine's bridge (for the owner of a network namespace).
    pub ip: Option<String>,
    /// The container whose network namespace this one joined (`network_mode: container:<id>`).
    pub network_owner: Option<String>,
    /// The signal `docker stop` would send (the image's `STOPSIGNAL`), if not SIGTERM.
    pub stop_signal: Option<String>,
    /// Host ports published: (container port, protocol, host port).
    pub published: Vec<(u16, Protocol, u16)>,
    /// Docker's error for the last start, if any (`port is already allocated`).
    pub error: Option<String>,
    /// The Raft term of the leader that created it (0 when made before terms were recorded).
    pub term: u64,
}

/// What is known of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeView {
    /// The engine answered; these are all its managed containers.
    Seen(Vec<ObservedContainer>),
    /// The engine did not answer: nothing about it is known, so nothing there is removed.
    Unknown,
}

pub type Observed = BTreeMap<String, NodeView>;

/// One idempotent action for one pod instance on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Make sure the pod's images are on its host, before anything of an older pod is stopped.
    Pull { pod: DesiredPod },
    /// Create and start every container of the pod that does not exist yet.
    Create { pod: DesiredPod },
    /// Start existing, stopped containers of a pod whose spec is unchanged.
    Start {
        node: String,
        pod: String,
        ids: Vec<String>,
    },
    /// Restart running containers: they sit in a network namespace their holder no longer
    /// holds, or their liveness probe failed.
    Restart {
        node: String,
        pod: String,
        ids: Vec<String>,
    },
    /// Begin a graceful stop: each container gets its stop signal; [`Step::Kill`] follows when
    /// it is still running at `deadline`.
    Stop {
        node: String,
        pod: String,
        ids: Vec<(String, Option<String>)>,
        deadline: Millis,
    },
    /// Stop at once (SIGKILL): a grace period ran out, or a holder whose apps are gone.
    Kill {
        node: String,
        pod: String,
        ids: Vec<String>,
    },
    /// Remove stopped containers; with `volumes`, the pod's `emptyDir` volumes on that host too.
    Remove {
        node: String,
        pod: String,
        ids: Vec<String>,
        volumes: bool,
    },
}

impl Step {
    pub fn node(&self) -> &str {
        match self {
            Step::Pull { pod } | Step::Create { pod } => &pod.node,
            Step::Start { node, .. }
            | Step::Restart { node, .. }
            | Step::Stop { node, .. }
            | Step::Kill { node, .. }
            | Step::Remove { node, .. } => node,
        }
    }

    /// One line for the commit's recorded plan: `create default/web-x7k2q on local`. Lines
    /// are recorded once per commit, however often a step is retried.
    pub fn describe(&self) -> String {
        match self {
            Step::Pull { pod } => {
                format!(
                    "pull images of {}/{} on {}",
                    pod.namespace, pod.name, pod.node
                )
            }
            Step::Create { pod } => {
                format!("create {}/{} on {}", pod.namespace, pod.name, pod.node)
            }
            Step::Start { node, pod, .. } => format!("start {pod} on {node}"),
            Step::Restart { node, pod, .. } => format!("restart {pod} on {node}"),
            Step::Stop { node, pod, .. } => format!("stop {pod} on {node}"),
            Step::Kill { node, pod, .. } => format!("stop {pod} on {node}"),
            Step::Remove { node, pod, .. } => format!("remove {pod} on {node}"),
        }
    }
}

/// The steps to bring the observed state to the desired one, one per pod instance at most.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
