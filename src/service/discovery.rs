//! Discovery inside containers, as Kubernetes v1 did it before DNS: environment variables for
//! every Service of the pod's namespace, plus a hosts entry from each Service's name to its
//! cluster IP (Docker's `ExtraHosts`), so an app that looks the name up finds it without a DNS
//! server.
//!
//! Both are fixed when a container is created and stay out of the spec hash: adding a Service
//! restarts nothing, exactly as in Kubernetes.

use std::net::Ipv4Addr;

use crate::manifest::Service;
use crate::raft::state::{object_key, ServiceTable};

/// What a pod's containers get.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// `NAME=value`, in Service order.
    pub env: Vec<(String, String)>,
    /// `(name, cluster IP)` for Docker's `ExtraHosts`.
    pub hosts: Vec<(String, Ipv4Addr)>,
}

impl Discovery {
    /// The Services of `namespace` that have a cluster IP in `table`, sorted by name.
    pub fn for_namespace(namespace: &str, services: &[Service], table: &ServiceTable) -> Self {
        let mut found: Vec<(&Service, Ipv4Addr)> = services
            .iter()
            .filter(|s| s.metadata.namespace == namespace)
            .filter_map(|s| {
                let key = object_key(&s.metadata.namespace, &s.metadata.name);
                Some((s, *table.cluster_ips.get(&key)?))
            })
            .collect();
        found.sort_by(|a, b| a.0.metadata.name.cmp(&b.0.metadata.name));
        let mut out = Discovery::default();
        for (svc, ip) in found {
            out.env.extend(env_vars(svc, ip));
            out.hosts.push((svc.metadata.name.clone(), ip));
        }
        out
    }

    /// `NAME=value` strings, leaving out names in `defined` (a container's own env wins).
    pub fn env_strings(&self, defined: &[String]) -> Vec<String> {
        self.env
            .iter()
            .filter(|(k, _)| !defined.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// `name:ip` strings, Docker's `ExtraHosts` format.
    pub fn extra_hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|(n, ip)| format!("{n}:{ip}"))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.hosts.is_empty()
    }
}

/// Kubernetes' variables for one Service (`pkg/kubelet/envvars`).
fn env_vars(svc: &Service, ip: Ipv4Addr) -> Vec<(String, String)> {
    let prefix = upper(&svc.metadata.name);
    let mut out = Vec::new();
    let Some(first) = svc.ports.first() else {
        return out;
    };
    out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
    out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
    for p in &svc.ports {
        if let Some(name) = &p.name {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", upper(name)),
                p.port.to_string(),
            ));
        }
    }
    let proto = first.protocol.docker();
    out.push((
        format!("{prefix}_PORT"),
        format!("{proto}://{ip}:{}", first.port),
    ));
    for p in &svc.ports {
        let proto = p.protocol.docker();
        let base = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((base.clone(), format!("{proto}://{ip}:{}", p.port)));
        out.push((format!("{base}_PROTO"), proto.to_string()));
        out.push((format!("{base}_PORT"), p.port.to_string()));
        out.push((format!("{base}_ADDR"), ip.to_string()));
    }
    out
}

fn upper(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::service;

    #[test]
    fn kubernetes_variables_and_hosts_for_the_namespace_only() {
        let svc = service("default", "redis-master", &[("app", "redis")], &[6379]);
        let other = service("prod", "web", &[("app", "web")], &[80]);
        let mut table = ServiceTable::default();
        table
            .cluster_ips
            .insert("default/redis-master".into(), "10.43.0.7".parse().unwrap());
        table
            .cluster_ips
            .insert("prod/web".into(), "10.43.0.8".parse().unwrap());
        let d = Discovery::for_namespace("default", &[svc, other], &table);
        let env = d.env_strings(&[]);
        for want in [
            "REDIS_MASTER_SERVICE_HOST=10.43.0.7",
            "REDIS_MASTER_SERVICE_PORT=6379",
            "REDIS_MASTER_PORT=tcp://10.43.0.7:6379",
            "REDIS_MASTER_PORT_6379_TCP=tcp://10.43.0.7:6379",
            "REDIS_MASTER_PORT_6379_TCP_PROTO=tcp",
            "REDIS_MASTER_PORT_6379_TCP_PORT=6379",
            "REDIS_MASTER_PORT_6379_TCP_ADDR=10.43.0.7",
        ] {
            assert!(
                env.contains(&want.to_string()),
                "{want} missing from {env:?}"
            );
        }
        assert!(!env.iter().any(|e| e.starts_with("WEB_")));
        assert_eq!(d.extra_hosts(), vec!["redis-master:10.43.0.7"]);
        let own = d.env_strings(&["REDIS_MASTER_SERVICE_HOST".into()]);
        assert!(!own
            .iter()
            .any(|e| e.starts_with("REDIS_MASTER_SERVICE_HOST=")));
    }

    #[test]
    fn a_service_without_a_cluster_ip_is_not_announced() {
        let svc = service("default", "web", &[("app", "web")], &[80]);
        let d = Discovery::for_namespace("default", &[svc], &ServiceTable::default());
        assert!(d.is_empty());
    }
}
