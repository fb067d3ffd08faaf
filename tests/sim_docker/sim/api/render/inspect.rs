//! `GET /containers/{id}/json`: Docker 20.10's shape, typed and borrowed from the container.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{mount_points, networks, Binding, Endpoint, MountPoint, PortMap, PortSet};
use crate::sim::engine::container::{Container, MountSpec, Status};
use crate::sim::time::rfc3339;

/// Docker answers `null` for an absent list, map or object.
type Null = Option<()>;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Health {
    status: &'static str,
    failing_streak: u32,
    log: [(); 0],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct State<'a> {
    status: &'static str,
    running: bool,
    paused: bool,
    restarting: bool,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    dead: bool,
    pid: u32,
    exit_code: i64,
    error: &'a str,
    started_at: String,
    finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LogConfig {
    #[serde(rename = "Type")]
    typ: &'static str,
    config: BTreeMap<(), ()>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RestartPolicy<'a> {
    name: &'a str,
    maximum_retry_count: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MountRequest<'a> {
    #[serde(rename = "Type")]
    typ: &'a str,
    source: &'a str,
    target: &'a str,
    read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig<'a> {
    binds: Null,
    #[serde(rename = "ContainerIDFile")]
    container_id_file: &'static str,
    log_config: LogConfig,
    network_mode: &'a str,
    port_bindings: BTreeMap<&'a str, Vec<Binding<'a>>>,
    restart_policy: RestartPolicy<'a>,
    auto_remove: bool,
    volume_driver: &'static str,
    volumes_from: Null,
    #[serde(skip_serializing_if = "Option::is_none")]
    mounts: Option<Vec<MountRequest<'a>>>,
    memory: i64,
    nano_cpus: i64,
    shm_size: i64,
    runtime: &'static str,
    isolation: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GraphDriver {
    data: Null,
    name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Config<'a> {
    hostname: &'a str,
    domainname: &'static str,
    user: &'static str,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    exposed_ports: PortSet<'a>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: &'a [String],
    cmd: Option<&'a [String]>,
    image: &'a str,
    volumes: Null,
    working_dir: &'a str,
    entrypoint: Option<&'a [String]>,
    on_build: Null,
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_timeout: Option<i64>,
}

/// `NetworkSettings.Ports`: the published ports while running, `{}` otherwise.
enum Ports<'a> {
    Running(PortMap<'a>),
    None,
}

impl Serialize for Ports<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ports::Running(map) => map.serialize(s),
            Ports::None => BTreeMap::<(), ()>::new().serialize(s),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings<'a> {
    bridge: &'static str,
    #[serde(rename = "SandboxID")]
    sandbox_id: &'a str,
    hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    link_local_ipv6_address: &'static str,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    link_local_ipv6_prefix_len: u8,
    ports: Ports<'a>,
    sandbox_key: String,
    #[serde(rename = "SecondaryIPAddresses")]
    secondary_ip_addresses: Null,
    #[serde(rename = "SecondaryIPv6Addresses")]
    secondary_ipv6_addresses: Null,
    #[serde(rename = "EndpointID")]
    endpoint_id: String,
    gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: &'static str,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    global_ipv6_prefix_len: u8,
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    ipv6_gateway: &'static str,
    mac_address: String,
    networks: BTreeMap<&'static str, Endpoint>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect<'a> {
    id: &'a str,
    created: String,
    path: &'a str,
    args: &'a [String],
    state: State<'a>,
    image: &'a str,
    resolv_conf_path: String,
    hostname_path: String,
    hosts_path: String,
    log_path: String,
    name: String,
    restart_count: u32,
    driver: &'static str,
    platform: &'static str,
    mount_label: &'static str,
    process_label: &'static str,
    app_armor_profile: &'static str,
    #[serde(rename = "ExecIDs")]
    exec_ids: Null,
    host_config: HostConfig<'a>,
    graph_driver: GraphDriver,
    mounts: Vec<MountPoint<'a>>,
    config: Config<'a>,
    network_settings: NetworkSettings<'a>,
}

fn mount_request(m: &MountSpec) -> MountRequest<'_> {
    MountRequest {
        typ: &m.typ,
        source: &m.source,
        target: &m.target,
        read_only: m.read_only,
    }
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container) -> Inspect<'_> {
    let run = &c.run;
    let running = c.is_running();
    let sandboxed = running && c.network_owner().is_none();
    let dir = format!("/var/lib/docker/containers/{}", c.id);
    let mut net = networks(c);
    let bridge = net.get_mut("bridge");
    let (endpoint_id, gateway, ip_address, ip_prefix_len, mac_address) = match bridge {
        Some(b) => (
            b.endpoint_id.clone(),
            b.gateway.clone(),
            b.ip_address.clone(),
            b.ip_prefix_len,
            b.mac_address.clone(),
        ),
        None => Default::default(),
    };
    let restart = c.spec.restart.as_ref();
    Inspect {
        id: &c.id,
        created: rfc3339(c.created),
        path: &c.path,
        args: &c.args,
        state: State {
            status: run.status.as_str(),
            running,
            paused: false,
            restarting: run.status == Status::Restarting,
            oom_killed: false,
            dead: false,
            pid: run.pid,
            exit_code: run.exit_code,
            error: &run.error,
            started_at: rfc3339(run.started_at),
            finished_at: rfc3339(run.finished_at),
            health: c.spec.healthcheck.then(|| Health {
                status: if run.status == Status::Running {
                    "healthy"
                } else {
                    "unhealthy"
                },
                failing_streak: 0,
                log: [],
            }),
        },
        image: &c.image_id,
        resolv_conf_path: format!("{dir}/resolv.conf"),
        hostname_path: format!("{dir}/hostname"),
        hosts_path: format!("{dir}/hosts"),
        log_path: format!("{dir}/{}-json.log", c.id),
        name: format!("/{}", c.name),
        restart_count: run.restart_count,
        driver: "overlay2",
        platform: "linux",
        mount_label: "",
        process_label: "",
        app_armor_profile: "",
        exec_ids: None,
        host_config: HostConfig {
            binds: None,
            container_id_file: "",
            log_config: LogConfig {
                typ: "json-file",
                config: BTreeMap::new(),
            },
            network_mode: &c.spec.network_mode,
            port_bindings: c
                .spec
                .port_bindings
                .iter()
                .map(|(k, list)| {
                    let list = list
                        .iter()
                        .map(|(ip, port)| Binding {
                            host_ip: ip,
                            host_port: port.clone(),
                        })
                        .collect();
                    (k.as_str(), list)
                })
                .collect(),
            restart_policy: RestartPolicy {
                name: restart.map_or("", |r| r.name.as_str()),
                maximum_retry_count: restart.map_or(0, |r| r.max_retries),
            },
            auto_remove: false,
            volume_driver: "",
            volumes_from: None,
            mounts: (!c.spec.mounts.is_empty())
                .then(|| c.spec.mounts.iter().map(mount_request).collect()),
            memory: c.spec.memory,
            nano_cpus: c.spec.nano_cpus,
            shm_size: 67_108_864,
            runtime: "runc",
            isolation: "",
        },
        graph_driver: GraphDriver {
            data: None,
            name: "overlay2",
        },
        mounts: mount_points(c),
        config: Config {
            hostname: if c.spec.hostname.is_empty() {
                &c.id[..12]
            } else {
                &c.spec.hostname
            },
            domainname: "",
            user: "",
            attach_stdin: false,
            attach_stdout: false,
            attach_stderr: false,
            exposed_ports: PortSet(&c.spec.exposed),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            env: &c.spec.env,
            cmd: c.spec.cmd.as_deref(),
            image: &c.image,
            volumes: None,
            working_dir: &c.spec.working_dir,
            entrypoint: c.spec.entrypoint.as_deref(),
            on_build: None,
            labels: &c.spec.labels,
            stop_signal: c.spec.stop_signal.as_deref(),
            stop_timeout: c.spec.stop_timeout,
        },
        network_settings: NetworkSettings {
            bridge: "",
            sandbox_id: if sandboxed { &c.id } else { "" },
            hairpin_mode: false,
            link_local_ipv6_address: "",
            link_local_ipv6_prefix_len: 0,
            ports: if sandboxed {
                Ports::Running(PortMap(c))
            } else {
                Ports::None
            },
            sandbox_key: if sandboxed {
                format!("/var/run/docker/netns/{}", &c.id[..12])
            } else {
                String::new()
            },
            secondary_ip_addresses: None,
            secondary_ipv6_addresses: None,
            endpoint_id,
            gateway,
            global_ipv6_address: "",
            global_ipv6_prefix_len: 0,
            ip_address,
            ip_prefix_len,
            ipv6_gateway: "",
            mac_address,
            networks: net,
        },
    }
}
