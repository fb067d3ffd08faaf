//! The JSON of a container, as Docker 20.10 writes it in `GET /containers/{id}/json` and in
//! `GET /containers/json`: the fields berth and bollard read, with the values Docker gives,
//! and enough of the rest that a client reading more finds the same shape.
//!
//! Typed and borrowing rather than built as `serde_json::Value`: these two are the hot
//! answers of a benchmark (every full look at a host lists and inspects everything).

mod inspect;
mod summary;

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

pub use inspect::inspect;
pub use summary::{counts, summary, Summary};

use crate::sim::engine::container::{Container, Published};

/// `{"80/tcp": {}}`: Docker's set of exposed ports.
pub(super) struct PortSet<'a>(&'a [String]);

impl Serialize for PortSet<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for key in self.0 {
            map.serialize_entry(key, &serde_json::Map::new())?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Binding<'a> {
    pub host_ip: &'a str,
    pub host_port: String,
}

/// `NetworkSettings.Ports` of a running container that owns its network: every exposed or
/// bound port, with its bindings (on `0.0.0.0` and `::` when no address was asked, as Docker
/// 20.10 reports them) or `null`.
pub(super) struct PortMap<'a>(&'a Container);

impl Serialize for PortMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut keys: Vec<&String> = c.spec.exposed.iter().collect();
        keys.extend(c.spec.port_bindings.iter().map(|(k, _)| k));
        keys.sort();
        keys.dedup();
        let mut map = s.serialize_map(Some(keys.len()))?;
        for key in keys {
            let bound: Vec<&Published> = c.run.published.iter().filter(|p| &p.key == key).collect();
            if bound.is_empty() {
                map.serialize_entry(key, &())?;
                continue;
            }
            let mut list = Vec::new();
            for p in bound {
                let addresses: &[&str] = if p.host_ip.is_empty() {
                    &["0.0.0.0", "::"]
                } else {
                    &[p.host_ip.as_str()]
                };
                for ip in addresses {
                    list.push(Binding {
                        host_ip: ip,
                        host_port: p.host_port.to_string(),
                    });
                }
            }
            map.serialize_entry(key, &list)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
pub(super) struct Endpoint {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: (),
    #[serde(rename = "Links")]
    pub links: (),
    #[serde(rename = "Aliases")]
    pub aliases: (),
    #[serde(rename = "NetworkID")]
    pub network_id: &'static str,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: &'static str,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: &'static str,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "DriverOpts")]
    pub driver_opts: (),
}

const BRIDGE_ID: &str = "5171b2b0e0c0b57e5a3c5e0e51d0c3a5b9f4d2c1e0f9a8b7c6d5e4f3a2b1c0d9";

/// `NetworkSettings.Networks`: `bridge` for a container that owns its (default) network,
/// nothing for one that joins another's, empty addresses while stopped.
pub(super) fn networks(c: &Container) -> BTreeMap<&'static str, Endpoint> {
    let mode = c.spec.network_mode.as_str();
    if mode.starts_with("container:") || mode == "none" || mode == "host" {
        return BTreeMap::new();
    }
    let (ip, gateway, prefix, mac, endpoint) = match c.run.ip {
        Some(ip) => {
            let o = ip.octets();
            (
                ip.to_string(),
                crate::sim::engine::network::GATEWAY.to_string(),
                16,
                format!("02:42:7f:11:{:02x}:{:02x}", o[2], o[3]),
                format!("{}{:08x}", &c.id[..56], c.run.generation),
            )
        }
        None => Default::default(),
    };
    BTreeMap::from([(
        "bridge",
        Endpoint {
            ipam_config: (),
            links: (),
            aliases: (),
            network_id: BRIDGE_ID,
            endpoint_id: endpoint,
            gateway,
            ip_address: ip,
            ip_prefix_len: prefix,
            ipv6_gateway: "",
            global_ipv6_address: "",
            global_ipv6_prefix_len: 0,
            mac_address: mac,
            driver_opts: (),
        },
    )])
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct MountPoint<'a> {
    #[serde(rename = "Type")]
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    source: String,
    destination: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    driver: Option<&'static str>,
    mode: &'static str,
    #[serde(rename = "RW")]
    rw: bool,
    propagation: &'static str,
}

pub(super) fn mount_points(c: &Container) -> Vec<MountPoint<'_>> {
    c.spec
        .mounts
        .iter()
        .map(|m| {
            let volume = m.typ == "volume";
            MountPoint {
                typ: &m.typ,
                name: volume.then_some(m.source.as_str()),
                source: if volume {
                    format!("/var/lib/docker/volumes/{}/_data", m.source)
                } else {
                    m.source.clone()
                },
                destination: &m.target,
                driver: volume.then_some("local"),
                mode: if volume { "z" } else { "" },
                rw: !m.read_only,
                propagation: if volume { "" } else { "rprivate" },
            }
        })
        .collect()
}
