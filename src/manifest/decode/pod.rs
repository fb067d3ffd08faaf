//! Decoding a pod spec: containers, ports, resources, probes and volumes.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::ctx::{field, index, Ctx, Fields};
use crate::manifest::model::*;
use crate::manifest::names;
use crate::manifest::quantity::{Cpu, Memory};
use crate::manifest::yaml::Node;

/// Volume sources that exist in Kubernetes but not on a plain Docker host.
const FOREIGN_VOLUME_SOURCES: &[&str] = &[
    "secret",
    "configMap",
    "persistentVolumeClaim",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "cephfs",
    "cinder",
    "downwardAPI",
    "projected",
    "csi",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gitRepo",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

pub fn pod_spec(ctx: &mut Ctx, node: &Node, path: &str) -> Option<PodSpec> {
    let mut f = ctx.map(node, path)?;
    let volumes = match f.take("volumes") {
        Some(n) => volumes(ctx, n, &f.path_of("volumes")),
        None => Vec::new(),
    };
    let volume_names: HashSet<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    let containers = match f.take("containers") {
        Some(n) => containers(ctx, n, &f.path_of("containers"), &volume_names),
        None => {
            ctx.error_at(f.pos, &f.path_of("containers"), "required field is missing");
            Vec::new()
        }
    };
    let restart_policy = f
        .take_enum(
            ctx,
            "restartPolicy",
            &[
                ("Always", RestartPolicy::Always),
                ("OnFailure", RestartPolicy::OnFailure),
                ("Never", RestartPolicy::Never),
            ],
        )
        .unwrap_or(RestartPolicy::Always);
    let node_selector = f
        .take("nodeSelector")
        .map(|n| super::labels(ctx, n, &f.path_of("nodeSelector")))
        .unwrap_or_default();
    let grace = f
        .take("terminationGracePeriodSeconds")
        .and_then(|n| ctx.int_in(n, &f.path_of("terminationGracePeriodSeconds"), 0, 86_400))
        .map_or(DEFAULT_GRACE_SECONDS, |v| v as u32);
    // Accepted because Kubernetes always has them; the Docker mapping does not use them yet.
    let _ = f.take("activeDeadlineSeconds");
    let _ = f.take("hostname");
    let _ = f.take("subdomain");
    f.finish(ctx);
    Some(PodSpec {
        containers,
        volumes,
        restart_policy,
        node_selector,
        termination_grace_period_seconds: grace,
    })
}

fn volumes(ctx: &mut Ctx, node: &Node, path: &str) -> Vec<Volume> {
    let mut out: Vec<Volume> = Vec::new();
    // Duplicates are looked up in a set, not in `out`: a list of many volumes must not cost
    // the square of its length (the fuzzer's long lists found that for containers).
    let mut names: HashSet<String> = HashSet::new();
    for (i, item) in ctx.seq(node, path).iter().enumerate() {
        let p = index(path, i);
        let Some(mut f) = ctx.map(item, &p) else {
            continue;
        };
        let name = f.take("name");
        let name = ctx.required_string(name, &f, "name");
        if let Some(n) = &name {
            if let Err(e) = names::dns1123_label(n) {
                ctx.error(item, &f.path_of("name"), e);
            }
            if !names.insert(n.clone()) {
                ctx.error(
                    item,
                    &f.path_of("name"),
                    format!("duplicate volume name {n:?}"),
                );
            }
        }
        // A volume with no source is an emptyDir, as in Kubernetes.
        let mut source = VolumeSource::EmptyDir;
        if let Some(n) = f.take("emptyDir") {
            let ep = f.path_of("emptyDir");
            if let Some(mut e) = ctx.map(n, &ep) {
                let _ = e.take("medium");
                let _ = e.take("sizeLimit");
                e.finish(ctx);
            }
        }
        if let Some(n) = f.take("hostPath") {
            let hp = f.path_of("hostPath");
            if let Some(mut h) = ctx.map(n, &hp) {
                let path_node = h.take("path");
                if let Some(host_path) = ctx.required_string(path_node, &h, "path") {
                    if !host_path.starts_with('/') {
                        ctx.error(
                            n,
                            &h.path_of("path"),
                            format!("{host_path:?} must be an absolute path"),
                        );
                    }
                    source = VolumeSource::HostPath { path: host_path };
                }
                let _ = h.take("type");
                h.finish(ctx);
            }
        }
        for foreign in FOREIGN_VOLUME_SOURCES {
            if f.take(foreign).is_some() {
                ctx.error_at(
                    f.key_pos(foreign),
                    &f.path_of(foreign),
                    format!("volume source {foreign:?} is not available on a Docker host: berth supports emptyDir and hostPath"),
                );
            }
        }
        f.finish(ctx);
        if let Some(name) = name {
            out.push(Volume { name, source });
        }
    }
    out
}

fn containers(ctx: &mut Ctx, node: &Node, path: &str, volumes: &HashSet<&str>) -> Vec<Container> {
    let items = ctx.seq(node, path);
    if items.is_empty() && matches!(node.value, crate::manifest::yaml::Value::Seq(_)) {
        ctx.error(node, path, "a pod needs at least one container");
    }
    let mut out: Vec<Container> = Vec::new();
    // A set, not a scan of `out`: 20,000 containers took seconds (found by the fuzzer).
    let mut names: HashSet<String> = HashSet::new();
    let mut host_ports: HashMap<(u16, Protocol, String), String> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(c) = container(ctx, item, &p, volumes) else {
            continue;
        };
        if !names.insert(c.name.clone()) {
            ctx.error(
                item,
                &field(&p, "name"),
                format!("duplicate container name {:?}", c.name),
            );
        }
        for (j, port) in c.ports.iter().enumerate() {
            let Some(hp) = port.host_port else { continue };
            let key = (hp, port.protocol, port.host_ip.clone().unwrap_or_default());
            let here = format!("{}.ports[{j}]", p);
            if let Some(first) = host_ports.insert(key, here.clone()) {
                ctx.error(
                    item,
                    &field(&here, "hostPort"),
                    format!("hostPort {hp} is already used by {first}"),
                );
            }
        }
        out.push(c);
    }
    out
}

fn container(ctx: &mut Ctx, node: &Node, path: &str, volumes: &HashSet<&str>) -> Option<Container> {
    let mut f = ctx.map(node, path)?;
    let name_node = f.take("name");
    let name = ctx.required_string(name_node, &f, "name");
    if let (Some(n), Some(node)) = (&name, name_node) {
        if let Err(e) = names::dns1123_label(n) {
            ctx.error(node, &f.path_of("name"), e);
        }
    }
    let image_node = f.take("image");
    let image = ctx.required_string(image_node, &f, "image");
    let command = f
        .take("command")
        .map(|n| ctx.string_list(n, &f.path_of("command")))
        .unwrap_or_default();
    let args = f
        .take("args")
        .map(|n| ctx.string_list(n, &f.path_of("args")))
        .unwrap_or_default();
    let working_dir = f
        .take("workingDir")
        .and_then(|n| ctx.string(n, &f.path_of("workingDir")));
    let env = f
        .take("env")
        .map(|n| env(ctx, n, &f.path_of("env")))
        .unwrap_or_default();
    let ports = f
        .take("ports")
        .map(|n| ports(ctx, n, &f.path_of("ports")))
        .unwrap_or_default();
    let resources = f
        .take("resources")
        .map(|n| resources(ctx, n, &f.path_of("resources")))
        .unwrap_or_default();
    let pull = f.take_enum(
        ctx,
        "imagePullPolicy",
        &[
            ("Always", PullPolicy::Always),
            ("IfNotPresent", PullPolicy::IfNotPresent),
            ("Never", PullPolicy::Never),
        ],
    );
    let volume_mounts = f
        .take("volumeMounts")
        .map(|n| volume_mounts(ctx, n, &f.path_of("volumeMounts"), volumes))
        .unwrap_or_default();
    let liveness_probe = f
        .take("livenessProbe")
        .and_then(|n| super::probe::probe(ctx, n, &f.path_of("livenessProbe")));
    let readiness_probe = f
        .take("readinessProbe")
        .and_then(|n| super::probe::probe(ctx, n, &f.path_of("readinessProbe")));
    // Kubernetes defaults these; Docker has no use for them.
    let _ = f.take("stdinOnce");
    f.finish(ctx);
    let image = image?;
    Some(Container {
        name: name?,
        image_pull_policy: pull.unwrap_or_else(|| PullPolicy::default_for(&image)),
        image,
        command,
        args,
        working_dir,
        env,
        ports,
        resources,
        volume_mounts,
        liveness_probe,
        readiness_probe,
    })
}

fn env(ctx: &mut Ctx, node: &Node, path: &str) -> Vec<EnvVar> {
    let mut out = Vec::new();
    for (i, item) in ctx.seq(node, path).iter().enumerate() {
        let p = index(path, i);
        let Some(mut f) = ctx.map(item, &p) else {
            continue;
        };
        let name_node = f.take("name");
        let name = ctx.required_string(name_node, &f, "name");
        if let (Some(n), Some(node)) = (&name, name_node) {
            if let Err(e) = names::env_name(n) {
                ctx.error(node, &f.path_of("name"), e);
            }
        }
        // The value may be a secret: errors about it never repeat it.
        let value = f
            .take("value")
            .and_then(|n| ctx.secret_string(n, &f.path_of("value")))
            .unwrap_or_default();
        f.finish(ctx);
        if let Some(name) = name {
            out.push(EnvVar { name, value });
        }
    }
    out
}

pub fn protocol(ctx: &mut Ctx, f: &mut Fields, key: &'static str) -> Protocol {
    let Some(n) = f.take(key) else {
        return Protocol::Tcp;
    };
    let p = f.path_of(key);
    match ctx.string(n, &p).as_deref() {
        Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        Some(other) => {
            ctx.error(
                n,
                &p,
                format!("unsupported protocol {other:?}: expected TCP, UDP or SCTP"),
            );
            Protocol::Tcp
        }
        None => Protocol::Tcp,
    }
}

fn ports(ctx: &mut Ctx, node: &Node, path: &str) -> Vec<ContainerPort> {
    let mut out: Vec<ContainerPort> = Vec::new();
    // Names of the ports in `out`, kept as a set so that a long list is not quadratic.
    let mut names: HashSet<String> = HashSet::new();
    for (i, item) in ctx.seq(node, path).iter().enumerate() {
        let p = index(path, i);
        let Some(mut f) = ctx.map(item, &p) else {
            continue;
        };
        let name = f.take("name").and_then(|n| {
            let np = f.path_of("name");
            let s = ctx.string(n, &np)?;
            if let Err(e) = names::port_name(&s) {
                ctx.error(n, &np, e);
            } else if names.contains(&s) {
                ctx.error(n, &np, format!("duplicate port name {s:?}"));
            }
            Some(s)
        });
        let cp_node = f.take("containerPort");
        let container_port = match cp_node {
            Some(n) => ctx.port(n, &f.path_of("containerPort")),
            None => {
                ctx.error_at(
                    f.pos,
                    &f.path_of("containerPort"),
                    "required field is missing",
                );
                None
            }
        };
        let host_port = f
            .take("hostPort")
            .and_then(|n| ctx.port(n, &f.path_of("hostPort")));
        let host_ip = f.take("hostIP").and_then(|n| {
            let hp = f.path_of("hostIP");
            let s = ctx.string(n, &hp)?;
            if s.parse::<std::net::IpAddr>().is_err() {
                ctx.error(n, &hp, format!("{s:?} is not an IP address"));
            }
            Some(s)
        });
        let protocol = protocol(ctx, &mut f, "protocol");
        f.finish(ctx);
        if let Some(container_port) = container_port {
            names.extend(name.clone());
            out.push(ContainerPort {
                name,
                container_port,
                host_port,
                host_ip,
                protocol,
            });
        }
    }
    out
}

fn resources(ctx: &mut Ctx, node: &Node, path: &str) -> Resources {
    let Some(mut f) = ctx.map(node, path) else {
        return Resources::default();
    };
    let requests = f
        .take("requests")
        .map(|n| resource_list(ctx, n, &f.path_of("requests")))
        .unwrap_or_default();
    let limits = f
        .take("limits")
        .map(|n| resource_list(ctx, n, &f.path_of("limits")))
        .unwrap_or_default();
    f.finish(ctx);
    for (what, req, lim) in [
        ("cpu", requests.cpu.map(|c| c.0), limits.cpu.map(|c| c.0)),
        (
            "memory",
            requests.memory.map(|m| m.0),
            limits.memory.map(|m| m.0),
        ),
    ] {
        if let (Some(r), Some(l)) = (req, lim) {
            if r > l {
                ctx.error(
                    node,
                    &field(path, &format!("requests.{what}")),
                    "request is larger than the limit",
                );
            }
        }
    }
    Resources { requests, limits }
}

fn resource_list(ctx: &mut Ctx, node: &Node, path: &str) -> ResourceList {
    let mut out = ResourceList::default();
    let Some(mut f) = ctx.map(node, path) else {
        return out;
    };
    if let Some(n) = f.take("cpu") {
        let p = f.path_of("cpu");
        if let Some(s) = ctx.number_or_string(n, &p) {
            out.cpu = Cpu::parse(&s).map_err(|e| ctx.error(n, &p, e)).ok();
        }
    }
    if let Some(n) = f.take("memory") {
        let p = f.path_of("memory");
        if let Some(s) = ctx.number_or_string(n, &p) {
            out.memory = Memory::parse(&s).map_err(|e| ctx.error(n, &p, e)).ok();
        }
    }
    // Accepted and ignored: Docker has no equivalent of ephemeral storage or extended resources.
    let _ = f.take("ephemeral-storage");
    f.finish(ctx);
    out
}

fn volume_mounts(
    ctx: &mut Ctx,
    node: &Node,
    path: &str,
    volumes: &HashSet<&str>,
) -> Vec<VolumeMount> {
    let mut out: Vec<VolumeMount> = Vec::new();
    let mut paths: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in ctx.seq(node, path).iter().enumerate() {
        let p = index(path, i);
        let Some(mut f) = ctx.map(item, &p) else {
            continue;
        };
        let name_node = f.take("name");
        let name = ctx.required_string(name_node, &f, "name");
        if let (Some(n), Some(node)) = (&name, name_node) {
            if !volumes.contains(n.as_str()) {
                ctx.error(
                    node,
                    &f.path_of("name"),
                    format!("no volume named {n:?} in this pod's volumes"),
                );
            }
        }
        let mp_node = f.take("mountPath");
        let mount_path = ctx.required_string(mp_node, &f, "mountPath");
        if let (Some(mp), Some(node)) = (&mount_path, mp_node) {
            if !mp.starts_with('/') {
                ctx.error(
                    node,
                    &f.path_of("mountPath"),
                    format!("{mp:?} must be an absolute path"),
                );
            } else if let Some(first) = paths.insert(mp.clone(), i) {
                ctx.error(
                    node,
                    &f.path_of("mountPath"),
                    format!("{mp:?} is already mounted by {path}[{first}]"),
                );
            }
        }
        let read_only = f
            .take("readOnly")
            .and_then(|n| ctx.bool(n, &f.path_of("readOnly")))
            .unwrap_or(false);
        f.finish(ctx);
        if let (Some(name), Some(mount_path)) = (name, mount_path) {
            out.push(VolumeMount {
                name,
                mount_path,
                read_only,
            });
        }
    }
    out
}
