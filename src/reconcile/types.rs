//! The values the planner works on: pods as wanted, containers as seen, and the steps between.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{PodSpec, StringMap};

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
    /// Position of the container in its pod: 0 holds the pod's network namespace.
    pub const INDEX: &str = "io.berth.index";
}

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
    pub labels: StringMap,
    pub spec: PodSpec,
    /// Hash of everything that, when changed, requires new containers.
    pub spec_hash: String,
    /// The commit whose desired state this is (a label only: it never causes a replacement).
    pub commit: String,
}

/// A managed container as a Docker engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedContainer {
    pub id: String,
    pub namespace: String,
    pub pod: String,
    /// Name of the container inside its pod.
    pub container: String,
    pub owner: Option<String>,
    pub commit: String,
    pub spec_hash: String,
    /// Position in the pod (0 holds the network namespace).
    pub index: usize,
    pub grace_seconds: u32,
    pub image: String,
    pub running: bool,
    /// Docker's state word: `running`, `exited`, `created`, ...
    pub state: String,
    pub exit_code: Option<i64>,
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

/// One idempotent action on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Create and start every container of the pod that does not exist yet.
    Create { pod: DesiredPod },
    /// Start existing, stopped containers of a pod whose spec is unchanged.
    Start {
        node: String,
        pod: String,
        ids: Vec<String>,
    },
    /// Remove the pod's old containers (gracefully), then create it anew.
    Replace {
        pod: DesiredPod,
        remove: Vec<String>,
        grace_seconds: u32,
    },
    /// Stop (gracefully) and remove containers nothing wants any more.
    Remove {
        node: String,
        pod: String,
        ids: Vec<String>,
        grace_seconds: u32,
    },
}

impl Step {
    pub fn node(&self) -> &str {
        match self {
            Step::Create { pod } | Step::Replace { pod, .. } => &pod.node,
            Step::Start { node, .. } | Step::Remove { node, .. } => node,
        }
    }

    /// One line for the commit's recorded plan: `create default/web-x7k2q on local`.
    pub fn describe(&self) -> String {
        match self {
            Step::Create { pod } => {
                format!("create {}/{} on {}", pod.namespace, pod.name, pod.node)
            }
            Step::Start { node, pod, ids } => {
                format!("start {pod} on {node} ({} container(s))", ids.len())
            }
            Step::Replace { pod, remove, .. } => format!(
                "replace {}/{} on {} ({} old container(s))",
                pod.namespace,
                pod.name,
                pod.node,
                remove.len()
            ),
            Step::Remove { node, pod, ids, .. } => {
                format!("remove {pod} on {node} ({} container(s))", ids.len())
            }
        }
    }
}

/// The steps to bring the observed state to the desired one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
