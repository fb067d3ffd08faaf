//! Fixtures for the unit tests of this module.

use crate::manifest::{
    ObjectMeta, Origin, PortRef, Protocol, Service, ServicePort, ServiceType, StringMap,
};

/// A ClusterIP Service with unnamed TCP ports (one) or `p<port>`-named ones (several).
pub fn service(namespace: &str, name: &str, selector: &[(&str, &str)], ports: &[u16]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: name.into(),
            namespace: namespace.into(),
            labels: StringMap::new(),
            annotations: StringMap::new(),
        },
        selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ports: ports
            .iter()
            .map(|p| ServicePort {
                name: (ports.len() > 1).then(|| format!("p{p}")),
                port: *p,
                target_port: PortRef::Number(*p),
                protocol: Protocol::Tcp,
                node_port: None,
            })
            .collect(),
        type_: ServiceType::ClusterIP,
        session_affinity_seconds: None,
        cluster_ip: None,
        origin: Origin::default(),
    }
}
