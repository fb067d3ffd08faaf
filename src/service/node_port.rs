//! Node ports for `type: NodePort` Services whose manifest names none: allocated, like
//! cluster IPs, deterministically by the leader and committed, so every controller listens on
//! the same port and a Service keeps its port across commits.

use std::collections::{BTreeMap, BTreeSet};

use super::endpoints::port_name;
use crate::manifest::{Service, ServiceType};
use crate::raft::state::object_key;

/// Kubernetes' default node port range.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// Node ports by Service, then by port name: fixed ones as given, others kept from
/// `previous` or allocated from [`NODE_PORTS`]. Errors by Service for a fixed port taken twice
/// or a full range.
pub fn allocate(
    services: &[Service],
    previous: &BTreeMap<String, BTreeMap<String, u16>>,
) -> (
    BTreeMap<String, BTreeMap<String, u16>>,
    BTreeMap<String, String>,
) {
    let mut keyed: Vec<(String, &Service)> = services
        .iter()
        .filter(|s| s.type_ == ServiceType::NodePort)
        .map(|s| (object_key(&s.metadata.namespace, &s.metadata.name), s))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();
    let mut errors = BTreeMap::new();
    // Two ports may share a number when their protocols differ (53/TCP and 53/UDP), as in
    // Kubernetes; the proxy's listeners are per protocol.
    let mut taken: BTreeSet<(u16, crate::manifest::Protocol)> = BTreeSet::new();
    for (key, svc) in &keyed {
        for p in &svc.ports {
            if let Some(n) = p.node_port {
                if taken.insert((n, p.protocol)) {
                    out.entry(key.clone()).or_default().insert(port_name(p), n);
                } else {
                    errors.insert(
                        key.clone(),
                        format!("nodePort {n} is already another Service's"),
                    );
                }
            }
        }
    }
    let mut fresh = Vec::new();
    for (key, svc) in &keyed {
        for p in svc.ports.iter().filter(|p| p.node_port.is_none()) {
            let name = port_name(p);
            match previous.get(key).and_then(|m| m.get(&name)) {
                Some(n) if NODE_PORTS.contains(n) && taken.insert((*n, p.protocol)) => {
                    out.entry(key.clone()).or_default().insert(name, *n);
                }
                _ => fresh.push((key, name, p.protocol)),
            }
        }
    }
    let size = u32::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
    for (key, name, protocol) in fresh {
        let start = fnv(&format!("{key}/{name}")) % size;
        let found = (0..size)
            .map(|i| NODE_PORTS.start() + ((start + i) % size) as u16)
            .find(|n| !taken.contains(&(*n, protocol)));
        match found {
            Some(n) => {
                taken.insert((n, protocol));
                out.entry(key.clone()).or_default().insert(name, n);
            }
            None => {
                errors.insert(key.clone(), "the node port range is full".to_string());
            }
        }
    }
    (out, errors)
}

fn fnv(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::service;

    #[test]
    fn fixed_kept_and_new_node_ports() {
        let mut a = service("default", "a", &[("app", "a")], &[80]);
        a.type_ = ServiceType::NodePort;
        a.ports[0].node_port = Some(30080);
        let mut b = service("default", "b", &[("app", "b")], &[80, 443]);
        b.type_ = ServiceType::NodePort;
        let plain = service("default", "c", &[("app", "c")], &[80]);
        let (ports, errors) = allocate(&[a.clone(), b.clone(), plain], &BTreeMap::new());
        assert!(errors.is_empty());
        assert_eq!(ports["default/a"]["80"], 30080);
        let (p80, p443) = (ports["default/b"]["p80"], ports["default/b"]["p443"]);
        assert!(NODE_PORTS.contains(&p80) && NODE_PORTS.contains(&p443));
        assert_ne!(p80, p443);
        assert!(!ports.contains_key("default/c"));
        // Stable across commits, whatever the order.
        let (again, _) = allocate(&[b, a], &ports);
        assert_eq!(again, ports);
    }

    #[test]
    fn a_fixed_node_port_taken_twice_is_an_error() {
        let mut a = service("default", "a", &[("app", "a")], &[80]);
        a.type_ = ServiceType::NodePort;
        a.ports[0].node_port = Some(30080);
        let mut b = a.clone();
        b.metadata.name = "b".into();
        let (_, errors) = allocate(&[a, b], &BTreeMap::new());
        assert!(errors["default/b"].contains("30080"));
    }
}
