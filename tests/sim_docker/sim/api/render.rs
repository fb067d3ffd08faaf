//! The JSON of a container, as Docker 20.10 writes it in `GET /containers/{id}/json` and in
//! `GET /containers/json`: the fields berth and bollard read, with the values Docker gives,
//! and enough of the rest that a client reading more finds the same shape.
//!
//! Typed and borrowing rather than built as `serde_json::Value`: these two are the hot
//! answers of a benchmark (every full look at a host lists and inspects everything).

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::sim::engine::container::{Container, Published, Status};
use crate::sim::engine::Engine;
use crate::sim::time::{human, now, rfc3339};

/// `{"80/tcp": {}}`: Docker's set of exposed ports.
struct PortSet<'a>(&'a [String]);

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
struct Binding<'a> {
    host_ip: &'a str,
    host_port: String,
}

/// `NetworkSettings.Ports` of a running container that owns its network: every exposed or
/// bound port, with its bindings (on `0.0.0.0` and `::` when no address was asked, as Docker
/// 20.10 reports them) or `null`.
struct PortMap<'a>(&'a Container);

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
struct Endpoint {
    #[serde(rename = "IPAMConfig")]
    ipam_config: (),
    #[serde(rename = "Links")]
    links: (),
    #[serde(rename = "Aliases")]
    aliases: (),
    #[serde(rename = "NetworkID")]
    network_id: &'static str,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    #[serde(rename = "Gateway")]
    gateway: String,
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    ipv6_gateway: &'static str,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: &'static str,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    mac_address: String,
    #[serde(rename = "DriverOpts")]
    driver_opts: (),
}

const BRIDGE_ID: &str = "5171b2b0e0c0b57e5a3c5e0e51d0c3a5b9f4d2c1e0f9a8b7c6d5e4f3a2b1c0d9";

/// `NetworkSettings.Networks`: `bridge` for a container that owns its (default) network,
/// nothing for one that joins another's, empty addresses while stopped.
fn networks(c: &Container) -> BTreeMap<&'static str, Endpoint> {
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
struct MountPoint<'a> {
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

fn mount_points(c: &Container) -> Vec<MountPoint<'_>> {
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

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container) -> serde_json::Value {
    let run = &c.run;
    let running = c.is_running();
    let owns_network = c.network_owner().is_none();
    let mut state = serde_json::json!({
        "Status": run.status.as_str(),
        "Running": running,
        "Paused": false,
        "Restarting": run.status == Status::Restarting,
        "OOMKilled": false,
        "Dead": false,
        "Pid": run.pid,
        "ExitCode": run.exit_code,
        "Error": run.error,
        "StartedAt": rfc3339(run.started_at),
        "FinishedAt": rfc3339(run.finished_at),
    });
    if c.spec.healthcheck {
        state["Health"] = serde_json::json!({
            "Status": if run.status == Status::Running { "healthy" } else { "unhealthy" },
            "FailingStreak": 0,
            "Log": [],
        });
    }
    let restart = c.spec.restart.as_ref();
    let bindings: BTreeMap<&str, Vec<Binding<'_>>> = c
        .spec
        .port_bindings
        .iter()
        .map(|(k, list)| {
            (
                k.as_str(),
                list.iter()
                    .map(|(ip, port)| Binding {
                        host_ip: ip,
                        host_port: port.clone(),
                    })
                    .collect(),
            )
        })
        .collect();
    let mounts_spec: Vec<serde_json::Value> = c
        .spec
        .mounts
        .iter()
        .map(|m| {
            serde_json::json!({"Type": m.typ, "Source": m.source, "Target": m.target,
                "ReadOnly": m.read_only})
        })
        .collect();
    let ports: serde_json::Value = if running && owns_network {
        serde_json::to_value(PortMap(c)).expect("ports serialize")
    } else {
        serde_json::json!({})
    };
    let net = networks(c);
    let bridge = net.get("bridge");
    let mut config = serde_json::json!({
        "Hostname": if c.spec.hostname.is_empty() { &c.id[..12] } else { &c.spec.hostname },
        "Domainname": "",
        "User": "",
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": PortSet(&c.spec.exposed),
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": c.spec.env,
        "Cmd": c.spec.cmd,
        "Image": c.image,
        "Volumes": null,
        "WorkingDir": c.spec.working_dir,
        "Entrypoint": c.spec.entrypoint,
        "OnBuild": null,
        "Labels": c.spec.labels,
    });
    if let Some(signal) = &c.spec.stop_signal {
        config["StopSignal"] = signal.as_str().into();
    }
    if let Some(t) = c.spec.stop_timeout {
        config["StopTimeout"] = t.into();
    }
    serde_json::json!({
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": format!("/var/lib/docker/containers/{}/resolv.conf", c.id),
        "HostnamePath": format!("/var/lib/docker/containers/{}/hostname", c.id),
        "HostsPath": format!("/var/lib/docker/containers/{}/hosts", c.id),
        "LogPath": format!("/var/lib/docker/containers/{0}/{0}-json.log", c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": run.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": null,
            "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": c.spec.network_mode,
            "PortBindings": bindings,
            "RestartPolicy": {
                "Name": restart.map_or("", |r| r.name.as_str()),
                "MaximumRetryCount": restart.map_or(0, |r| r.max_retries),
            },
            "AutoRemove": false,
            "VolumeDriver": "",
            "VolumesFrom": null,
            "Mounts": if mounts_spec.is_empty() { serde_json::Value::Null } else { mounts_spec.into() },
            "Memory": c.spec.memory,
            "NanoCpus": c.spec.nano_cpus,
            "ShmSize": 67_108_864,
            "Runtime": "runc",
            "Isolation": "",
        },
        "GraphDriver": {"Data": null, "Name": "overlay2"},
        "Mounts": mount_points(c),
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": if running && owns_network { &c.id } else { "" },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports,
            "SandboxKey": if running && owns_network { format!("/var/run/docker/netns/{}", &c.id[..12]) } else { String::new() },
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": bridge.map_or("", |b| b.endpoint_id.as_str()),
            "Gateway": bridge.map_or("", |b| b.gateway.as_str()),
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": bridge.map_or("", |b| b.ip_address.as_str()),
            "IPPrefixLen": bridge.map_or(0, |b| b.ip_prefix_len),
            "IPv6Gateway": "",
            "MacAddress": bridge.map_or("", |b| b.mac_address.as_str()),
            "Networks": net,
        },
    })
}

#[derive(Serialize)]
struct SummaryPort<'a> {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(rename = "PrivatePort")]
    private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    public_port: Option<u16>,
    #[serde(rename = "Type")]
    typ: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SummaryHostConfig<'a> {
    network_mode: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SummaryNetworks {
    networks: BTreeMap<&'static str, Endpoint>,
}

/// One entry of `GET /containers/json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary<'a> {
    id: &'a str,
    names: [String; 1],
    image: &'a str,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    command: String,
    created: u64,
    ports: Vec<SummaryPort<'a>>,
    labels: &'a BTreeMap<String, String>,
    state: &'static str,
    status: String,
    host_config: SummaryHostConfig<'a>,
    network_settings: SummaryNetworks,
    mounts: Vec<MountPoint<'a>>,
}

pub fn summary(c: &Container) -> Summary<'_> {
    let run = &c.run;
    let since = |t| human(now().saturating_sub(t));
    let status = match run.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}", since(run.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            run.exit_code,
            since(run.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", run.exit_code, since(run.finished_at)),
    };
    let mut ports = Vec::new();
    if c.is_running() && c.network_owner().is_none() {
        for key in &c.spec.exposed {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(port) = port.parse() else { continue };
            let bound: Vec<&Published> = run.published.iter().filter(|p| &p.key == key).collect();
            if bound.is_empty() {
                ports.push(SummaryPort {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: proto,
                });
            }
            for p in bound {
                let addresses: &[&str] = if p.host_ip.is_empty() {
                    &["0.0.0.0", "::"]
                } else {
                    &[p.host_ip.as_str()]
                };
                for ip in addresses {
                    ports.push(SummaryPort {
                        ip: Some(ip),
                        private_port: port,
                        public_port: Some(p.host_port),
                        typ: proto,
                    });
                }
            }
        }
    }
    let mut command = c.path.clone();
    for a in &c.args {
        command.push(' ');
        command.push_str(a);
    }
    Summary {
        id: &c.id,
        names: [format!("/{}", c.name)],
        image: &c.image,
        image_id: &c.image_id,
        command,
        created: c.created / 1_000_000_000,
        ports,
        labels: &c.spec.labels,
        state: run.status.as_str(),
        status,
        host_config: SummaryHostConfig {
            network_mode: &c.spec.network_mode,
        },
        network_settings: SummaryNetworks {
            networks: networks(c),
        },
        mounts: mount_points(c),
    }
}

/// Counts for `GET /info`.
pub fn counts(e: &Engine) -> (usize, usize, usize) {
    let total = e.container_count();
    let running = e.running_count();
    (total, running, total - running)
}
