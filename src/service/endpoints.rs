//! Endpoints: which pods stand behind each Service, and where the controllers reach them.
//!
//! Pure: the controller gathers one [`PodView`] per desired pod (its labels, spec, readiness
//! from the leader's probes, and how it is reached) and [`endpoints`] selects and resolves.
//! The leader commits the result; every controller then builds its proxy's specs from the
//! committed table with [`proxy_specs`], so they all forward to the same pods.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::proxy::{PortSpec, ServiceSpec};
use crate::manifest::{
    selector_matches, PodSpec, PortRef, Protocol, Service, ServicePort, ServiceType, StringMap,
};
use crate::raft::state::{object_key, Endpoint, ServiceTable};

/// How the controllers reach a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// At its own address (an engine on this machine: its bridge is routed here).
    Direct(IpAddr),
    /// At ports published on its host (`container port, protocol, host port`).
    Published {
        host: IpAddr,
        ports: Vec<(u16, Protocol, u16)>,
    },
    /// Not yet: no container, no address.
    Unknown,
}

/// One desired pod, as [`endpoints`] needs it.
#[derive(Debug, Clone)]
pub struct PodView<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub node: &'a str,
    pub labels: &'a StringMap,
    pub spec: &'a PodSpec,
    pub ready: bool,
    pub reach: Reach,
}

/// The name a Service port goes by: its name, or its number when it has none.
pub fn port_name(p: &ServicePort) -> String {
    p.name.clone().unwrap_or_else(|| p.port.to_string())
}

/// The container port `target` names in `spec`: a number as is, a name by the containers'
/// port names (the first match, as Kubernetes).
pub fn target_port(spec: &PodSpec, target: &PortRef, protocol: Protocol) -> Option<u16> {
    match target {
        PortRef::Number(n) => Some(*n),
        PortRef::Name(name) => spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.name.as_deref() == Some(name.as_str()) && p.protocol == protocol)
            .map(|p| p.container_port),
    }
}

/// Every Service's pods, ready or not, with their reachable address per Service port.
///
/// Pods are indexed by namespace and label pair, so each Service looks only at the pods that
/// carry the first pair of its selector: thousands of Services over thousands of pods stay
/// well within the leader's recompute period.
pub fn endpoints(services: &[Service], pods: &[PodView]) -> BTreeMap<String, Vec<Endpoint>> {
    let mut index: HashMap<(&str, &str, &str), Vec<&PodView>> = HashMap::new();
    for p in pods {
        for (k, v) in p.labels {
            index
                .entry((p.namespace, k.as_str(), v.as_str()))
                .or_default()
                .push(p);
        }
    }
    let mut out = BTreeMap::new();
    for svc in services {
        let candidates = svc.selector.iter().next().and_then(|(k, v)| {
            index.get(&(svc.metadata.namespace.as_str(), k.as_str(), v.as_str()))
        });
        let mut list: Vec<Endpoint> = candidates
            .into_iter()
            .flatten()
            .filter(|p| selector_matches(&svc.selector, p.labels))
            .map(|p| Endpoint {
                pod: p.name.to_string(),
                node: p.node.to_string(),
                ready: p.ready,
                ports: svc
                    .ports
                    .iter()
                    .filter_map(|sp| Some((port_name(sp), address(p, sp)?)))
                    .collect(),
            })
            .collect();
        list.sort();
        out.insert(
            object_key(&svc.metadata.namespace, &svc.metadata.name),
            list,
        );
    }
    out
}

fn address(pod: &PodView, sp: &ServicePort) -> Option<SocketAddr> {
    let port = target_port(pod.spec, &sp.target_port, sp.protocol)?;
    match &pod.reach {
        Reach::Direct(ip) => Some(SocketAddr::new(*ip, port)),
        Reach::Published { host, ports } => ports
            .iter()
            .find(|(p, proto, _)| *p == port && *proto == sp.protocol)
            .map(|(_, _, h)| SocketAddr::new(*host, *h)),
        Reach::Unknown => None,
    }
}

/// Where this controller listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// `--service-address`: each Service's port on it, where free. `None`: off.
    pub service_address: Option<IpAddr>,
    /// Listen on the cluster IPs (they are held on an interface).
    pub cluster_ips: bool,
    /// Where node ports listen (every address by default).
    pub node_address: IpAddr,
}

/// The proxy's specs: each Service port on its cluster IP, the service address and its node
/// port, forwarding to its ready endpoints in `table`.
pub fn proxy_specs(
    services: &[Service],
    table: &ServiceTable,
    listen: &Listen,
) -> Vec<ServiceSpec> {
    services
        .iter()
        .map(|svc| {
            let key = object_key(&svc.metadata.namespace, &svc.metadata.name);
            let cluster_ip = table.cluster_ips.get(&key).copied();
            let mut spec = ServiceSpec::new(key.clone());
            if let Some(s) = svc.session_affinity_seconds {
                spec = spec.affinity(Duration::from_secs(s.into()));
            }
            for p in &svc.ports {
                let name = port_name(p);
                let mut addrs: Vec<SocketAddr> = Vec::new();
                if let (true, Some(ip)) = (listen.cluster_ips, cluster_ip) {
                    addrs.push(SocketAddr::new(IpAddr::V4(ip), p.port));
                }
                if let Some(a) = listen.service_address {
                    addrs.push(SocketAddr::new(a, p.port));
                }
                let node_port = p.node_port.or_else(|| {
                    table
                        .node_ports
                        .get(&key)
                        .and_then(|m| m.get(&name))
                        .copied()
                });
                if let (ServiceType::NodePort, Some(np)) = (svc.type_, node_port) {
                    addrs.push(SocketAddr::new(listen.node_address, np));
                }
                spec = spec.port(
                    PortSpec::new(name.clone(), p.protocol, addrs)
                        .endpoints(table.ready(&key, &name)),
                );
            }
            spec
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Container, ContainerPort, RestartPolicy};
    use crate::service::testing::service;

    fn spec(named: Option<&str>) -> PodSpec {
        let mut c = Container::new("app", "img:1");
        c.ports.push(ContainerPort {
            name: named.map(String::from),
            container_port: 8080,
            host_port: None,
            host_ip: None,
            protocol: Protocol::Tcp,
        });
        PodSpec {
            containers: vec![c],
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: StringMap::new(),
            termination_grace_period_seconds: 1,
        }
    }

    fn labels(app: &str) -> StringMap {
        [("app".to_string(), app.to_string())].into()
    }

    #[test]
    fn selects_by_labels_and_namespace_and_resolves_named_target_ports() {
        let mut svc = service("default", "web", &[("app", "web")], &[80]);
        svc.ports[0].target_port = PortRef::Name("http".into());
        let (web, other) = (labels("web"), labels("db"));
        let s = spec(Some("http"));
        let pods = vec![
            PodView {
                namespace: "default",
                name: "web-a",
                node: "h1",
                labels: &web,
                spec: &s,
                ready: true,
                reach: Reach::Direct("172.17.0.2".parse().unwrap()),
            },
            PodView {
                namespace: "default",
                name: "web-b",
                node: "h2",
                labels: &web,
                spec: &s,
                ready: false,
                reach: Reach::Published {
                    host: "10.0.0.2".parse().unwrap(),
                    ports: vec![(8080, Protocol::Tcp, 32768)],
                },
            },
            PodView {
                namespace: "other",
                name: "web-c",
                node: "h1",
                labels: &web,
                spec: &s,
                ready: true,
                reach: Reach::Direct("172.17.0.3".parse().unwrap()),
            },
            PodView {
                namespace: "default",
                name: "db-a",
                node: "h1",
                labels: &other,
                spec: &s,
                ready: true,
                reach: Reach::Direct("172.17.0.4".parse().unwrap()),
            },
        ];
        let eps = endpoints(&[svc], &pods);
        let list = &eps["default/web"];
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].pod, "web-a");
        assert_eq!(list[0].ports["80"], "172.17.0.2:8080".parse().unwrap());
        assert!(!list[1].ready);
        assert_eq!(list[1].ports["80"], "10.0.0.2:32768".parse().unwrap());
    }

    #[test]
    fn an_unresolvable_target_port_or_unknown_address_leaves_the_port_out() {
        let mut svc = service("default", "web", &[("app", "web")], &[80]);
        svc.ports[0].target_port = PortRef::Name("nope".into());
        let web = labels("web");
        let s = spec(None);
        let pods = vec![PodView {
            namespace: "default",
            name: "web-a",
            node: "h1",
            labels: &web,
            spec: &s,
            ready: true,
            reach: Reach::Direct("172.17.0.2".parse().unwrap()),
        }];
        let eps = endpoints(&[svc], &pods);
        assert!(eps["default/web"][0].ports.is_empty());
    }

    #[test]
    fn specs_listen_on_cluster_ip_service_address_and_node_port_with_ready_endpoints() {
        let mut svc = service("default", "web", &[("app", "web")], &[80]);
        svc.type_ = ServiceType::NodePort;
        svc.ports[0].node_port = Some(30080);
        let mut table = ServiceTable::default();
        table
            .cluster_ips
            .insert("default/web".into(), "10.43.0.9".parse().unwrap());
        let ep = |pod: &str, ready, addr: &str| Endpoint {
            pod: pod.into(),
            node: "h".into(),
            ready,
            ports: [("80".to_string(), addr.parse().unwrap())].into(),
        };
        table.endpoints.insert(
            "default/web".into(),
            vec![
                ep("a", true, "172.17.0.2:8080"),
                ep("b", false, "172.17.0.3:8080"),
            ],
        );
        let listen = Listen {
            service_address: Some("127.0.0.1".parse().unwrap()),
            cluster_ips: true,
            node_address: "0.0.0.0".parse().unwrap(),
        };
        let specs = proxy_specs(&[svc], &table, &listen);
        let p = &specs[0].ports[0];
        assert_eq!(
            p.listen,
            vec![
                "10.43.0.9:80".parse().unwrap(),
                "127.0.0.1:80".parse().unwrap(),
                "0.0.0.0:30080".parse().unwrap()
            ]
        );
        assert_eq!(p.endpoints, vec!["172.17.0.2:8080".parse().unwrap()]);
    }
}
