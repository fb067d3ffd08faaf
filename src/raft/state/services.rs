//! What the replicated state knows of Services beyond their manifests: each one's cluster IP
//! and its endpoints, committed by the leader so that every controller forwards to the same
//! pods (see `service`).
//!
//! The whole table travels in one [`Command::Services`](super::Command::Services): it is small
//! (a few addresses per Service), and replacing it whole keeps `apply` trivial and
//! deterministic. Cluster IPs are kept by the leader from one table to the next, so a Service
//! keeps its address for as long as it exists.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::ObjectKey;

/// Cluster IPs and endpoints, by Service `namespace/name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTable {
    pub cluster_ips: BTreeMap<ObjectKey, Ipv4Addr>,
    /// Every pod the Service's selector picks, ready or not, sorted by pod.
    pub endpoints: BTreeMap<ObjectKey, Vec<Endpoint>>,
    /// Why a Service has no cluster IP (a `clusterIP` outside the CIDR or taken), by Service.
    #[serde(default)]
    pub errors: BTreeMap<ObjectKey, String>,
    /// Node ports of `type: NodePort` Services, by Service, then by port name: the
    /// manifest's, or allocated (see `service::node_port`).
    #[serde(default)]
    pub node_ports: BTreeMap<ObjectKey, BTreeMap<String, u16>>,
}

/// One pod behind a Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    /// The pod's name (its namespace is the Service's).
    pub pod: String,
    pub node: String,
    /// Ready pods receive traffic; the others are listed for the API only.
    pub ready: bool,
    /// Where the controllers reach the pod, by Service port name (or number when unnamed).
    /// A port missing here has no reachable address yet (not published, no IP).
    pub ports: BTreeMap<String, SocketAddr>,
}

impl ServiceTable {
    /// The ready addresses of one Service port.
    pub fn ready(&self, service: &str, port: &str) -> Vec<SocketAddr> {
        self.endpoints
            .get(service)
            .into_iter()
            .flatten()
            .filter(|e| e.ready)
            .filter_map(|e| e.ports.get(port).copied())
            .collect()
    }

    /// Is the pod `namespace/pod` a ready endpoint of any Service?
    pub fn serves(&self, namespace: &str, pod: &str) -> bool {
        self.endpoints.iter().any(|(svc, list)| {
            svc.split_once('/').is_some_and(|(ns, _)| ns == namespace)
                && list.iter().any(|e| e.ready && e.pod == pod)
        })
    }
}
