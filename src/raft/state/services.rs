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
    /// Pods (`namespace/name`) that stopped being a ready endpoint, and when the table that
    /// said so was made. A retired pod keeps running until then plus `--drain-delay`, timed
    /// from here so that a new leader finishes the drain the old one started. Entries go once
    /// older than [`LEFT_KEPT_MILLIS`] (pruned with the next change).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left: BTreeMap<String, super::Millis>,
}

/// How long a pod's leaving the endpoints is remembered: far above any sensible drain delay.
pub const LEFT_KEPT_MILLIS: super::Millis = 10 * 60 * 1000;

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

    /// This table with the leaving times carried over from `committed` (the table in force):
    /// pods ready there and not here left `now`; a pod ready again has not left; entries older
    /// than [`LEFT_KEPT_MILLIS`] are forgotten.
    pub fn with_left_from(mut self, committed: &ServiceTable, now: super::Millis) -> ServiceTable {
        let was = committed.ready_pods();
        let is = self.ready_pods();
        let mut left = committed.left.clone();
        left.retain(|_, at| now.saturating_sub(*at) < LEFT_KEPT_MILLIS);
        for pod in was.difference(&is) {
            left.insert(pod.clone(), now);
        }
        for pod in &is {
            left.remove(pod);
        }
        self.left = left;
        self
    }

    /// Equal but for the leaving times (which alone are no reason to commit a new table).
    pub fn same_endpoints(&self, other: &ServiceTable) -> bool {
        self.cluster_ips == other.cluster_ips
            && self.endpoints == other.endpoints
            && self.errors == other.errors
            && self.node_ports == other.node_ports
    }

    /// `namespace/pod` of every ready endpoint.
    fn ready_pods(&self) -> std::collections::BTreeSet<String> {
        self.endpoints
            .iter()
            .flat_map(|(svc, list)| {
                let ns = svc.split_once('/').map_or("default", |(ns, _)| ns);
                list.iter()
                    .filter(|e| e.ready)
                    .map(move |e| format!("{ns}/{}", e.pod))
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ready: &[&str]) -> ServiceTable {
        let list = ready
            .iter()
            .map(|pod| Endpoint {
                pod: pod.to_string(),
                node: "a".into(),
                ready: true,
                ports: BTreeMap::new(),
            })
            .collect();
        ServiceTable {
            endpoints: BTreeMap::from([("shop/web".to_string(), list)]),
            ..Default::default()
        }
    }

    #[test]
    fn leaving_times_are_carried_over_until_a_pod_is_back_or_long_gone() {
        let t0 = 1_700_000_000_000;
        // web-1 leaves at t0.
        let first = table(&["web-2"]).with_left_from(&table(&["web-1", "web-2"]), t0);
        assert_eq!(first.left, BTreeMap::from([("shop/web-1".to_string(), t0)]));
        assert!(!first.same_endpoints(&table(&["web-1", "web-2"])));
        // The next table keeps that time (a new leader drains from it), and adds web-2's.
        let second = table(&[]).with_left_from(&first, t0 + 500);
        assert_eq!(second.left["shop/web-1"], t0);
        assert_eq!(second.left["shop/web-2"], t0 + 500);
        // A pod ready again has not left; old entries go.
        let third = table(&["web-2"]).with_left_from(&second, t0 + LEFT_KEPT_MILLIS + 1);
        assert!(third.left.is_empty(), "{:?}", third.left);
        // Leaving times alone do not make tables differ.
        assert!(third.same_endpoints(&table(&["web-2"])));
    }
}
