//! Decoding positioned YAML documents into typed objects, recording every problem on the way.
//!
//! Checks that need one object only (field types, names, quantities, ports, volume sources,
//! an RC's selector against its own template) happen here; checks across objects (duplicate
//! names) happen in `validate`.

mod ctx;
mod pod;
mod probe;

use std::collections::HashSet;

pub use ctx::{Ctx, MAX_PROBLEMS_PER_FILE};

use ctx::{field, index, Fields};

use super::annotations::Place;
use super::limits::{show_bytes, MAX_ANNOTATION_BYTES};
use super::model::Node as HostNode;
use super::model::*;
use super::names;
use super::yaml::Node;

/// One decoded object, before cross-object checks.
pub enum Object {
    Pod(Pod),
    Rc(ReplicationController),
    Service(Service),
    Node(HostNode),
}

/// Decodes one YAML document (an object or a `kind: List`), appending what it holds to `out`.
pub fn document(ctx: &mut Ctx, node: &Node, out: &mut Vec<Object>) {
    object(ctx, node, "", out);
}

fn object(ctx: &mut Ctx, node: &Node, path: &str, out: &mut Vec<Object>) {
    let Some(mut f) = ctx.map(node, path) else {
        return;
    };
    let api_version = f.take("apiVersion");
    let api_version = ctx.required_string(api_version, &f, "apiVersion");
    let kind_node = f.take("kind");
    let kind = ctx.required_string(kind_node, &f, "kind");
    if kind.as_deref() == Some("List") {
        if let Some(items) = f.take("items") {
            let ip = f.path_of("items");
            for (i, item) in ctx.seq(items, &ip).iter().enumerate() {
                object(ctx, item, &index(&ip, i), out);
            }
        }
        let _ = f.take("metadata");
        f.finish(ctx);
        return;
    }
    if let Some(v) = &api_version {
        if v != "v1" {
            let at = f.take("apiVersion").map_or(f.pos, |n| n.pos);
            ctx.error_at(
                at,
                &f.path_of("apiVersion"),
                format!("unsupported apiVersion {v:?}: berth reads v1 objects"),
            );
            return;
        }
    }
    let origin = Origin {
        file: ctx.file.to_string(),
        line: f.pos.line,
    };
    let decoded = match kind.as_deref() {
        Some("Pod") => pod_object(ctx, &mut f, origin).map(Object::Pod),
        Some("ReplicationController") => rc(ctx, &mut f, origin).map(Object::Rc),
        Some("Service") => service(ctx, &mut f, origin).map(Object::Service),
        Some("Node") => host_node(ctx, &mut f, origin).map(Object::Node),
        Some(other) => {
            let at = kind_node.map_or(f.pos, |n| n.pos);
            ctx.error_at(
                at,
                &f.path_of("kind"),
                format!("unsupported kind {other:?}: berth reads Pod, ReplicationController, Service, Node and List"),
            );
            return;
        }
        None => return,
    };
    f.finish(ctx);
    if api_version.is_some() {
        out.extend(decoded);
    }
}

/// Labels or selectors: string keys and values, checked against Kubernetes' label syntax.
pub fn labels(ctx: &mut Ctx, node: &Node, path: &str) -> StringMap {
    let map = ctx.string_map(node, path);
    for (k, v) in &map {
        if let Err(e) = names::label_key(k).and_then(|_| names::label_value(v)) {
            ctx.error(node, &field(path, k), e);
        }
    }
    map
}

/// Annotations: any strings, at most [`MAX_ANNOTATION_BYTES`] in all (keys and values), as in
/// Kubernetes; berth's own (`berth.io/...`) must be known, in their place, with a good value.
fn annotations(ctx: &mut Ctx, node: &Node, path: &str, place: Place) -> StringMap {
    let map = ctx.string_map(node, path);
    for (k, v) in &map {
        if let Some(problem) = super::annotations::check(k, v, place) {
            ctx.error(node, &field(path, k), problem);
        }
    }
    let total: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ANNOTATION_BYTES {
        ctx.error(
            node,
            path,
            format!(
                "annotations hold {} in all, over Kubernetes' limit of {} per object",
                show_bytes(total as u64),
                show_bytes(MAX_ANNOTATION_BYTES as u64)
            ),
        );
    }
    map
}

/// `metadata`, with the name checked by `name_rule`.
fn metadata(
    ctx: &mut Ctx,
    f: &mut Fields,
    name_rule: fn(&str) -> Result<(), String>,
    place: Place,
) -> Option<ObjectMeta> {
    let node = f.take("metadata");
    let Some(node) = node else {
        ctx.error_at(f.pos, &f.path_of("metadata"), "required field is missing");
        return None;
    };
    let mut m = ctx.map(node, &f.path_of("metadata"))?;
    let name_node = m.take("name");
    let name = ctx.required_string(name_node, &m, "name");
    if let (Some(n), Some(node)) = (&name, name_node) {
        if let Err(e) = name_rule(n) {
            ctx.error(node, &m.path_of("name"), e);
        }
    }
    let namespace = m.take("namespace").and_then(|n| {
        let p = m.path_of("namespace");
        let ns = ctx.string(n, &p)?;
        if let Err(e) = names::dns1123_label(&ns) {
            ctx.error(n, &p, e);
        }
        Some(ns)
    });
    let labels = m
        .take("labels")
        .map(|n| labels(ctx, n, &m.path_of("labels")))
        .unwrap_or_default();
    let annotations = m
        .take("annotations")
        .map(|n| annotations(ctx, n, &m.path_of("annotations"), place))
        .unwrap_or_default();
    m.finish(ctx);
    Some(ObjectMeta {
        name: name?,
        namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        labels,
        annotations,
    })
}

fn pod_object(ctx: &mut Ctx, f: &mut Fields, origin: Origin) -> Option<Pod> {
    let metadata = metadata(ctx, f, names::dns1123_subdomain, Place::Pod);
    let spec = required(ctx, f, "spec").and_then(|n| pod::pod_spec(ctx, n, &f.path_of("spec")));
    Some(Pod {
        metadata: metadata?,
        spec: spec?,
        origin,
    })
}

/// A host's scheduling settings: `metadata` (name, labels, annotations; no namespace) and an
/// optional `spec` with `unschedulable` alone (Kubernetes' other Node fields are the kubelet's,
/// and mean nothing here).
fn host_node(ctx: &mut Ctx, f: &mut Fields, origin: Origin) -> Option<HostNode> {
    let metadata = metadata(ctx, f, names::dns1123_label, Place::Node);
    if metadata
        .as_ref()
        .is_some_and(|m| m.namespace != DEFAULT_NAMESPACE)
    {
        ctx.error_at(
            f.key_pos("metadata"),
            &field(&f.path_of("metadata"), "namespace"),
            "a Node belongs to no namespace",
        );
    }
    let mut unschedulable = false;
    if let Some(spec_node) = f.take("spec") {
        let sp = f.path_of("spec");
        if let Some(mut s) = ctx.map(spec_node, &sp) {
            if let Some(n) = s.take("unschedulable") {
                unschedulable = ctx.bool(n, &s.path_of("unschedulable")).unwrap_or(false);
            }
            s.finish(ctx);
        }
    }
    let mut metadata = metadata?;
    metadata.namespace = String::new();
    Some(HostNode {
        metadata,
        unschedulable,
        origin,
    })
}

fn required<'n>(ctx: &mut Ctx, f: &mut Fields<'n>, key: &'static str) -> Option<&'n Node> {
    let node = f.take(key);
    if node.is_none() {
        ctx.error_at(f.pos, &f.path_of(key), "required field is missing");
    }
    node
}

fn rc(ctx: &mut Ctx, f: &mut Fields, origin: Origin) -> Option<ReplicationController> {
    let metadata = metadata(
        ctx,
        f,
        names::dns1123_subdomain,
        Place::ReplicationController,
    );
    let spec_node = required(ctx, f, "spec")?;
    let sp = f.path_of("spec");
    let mut s = ctx.map(spec_node, &sp)?;
    let replicas = s
        .take("replicas")
        .and_then(|n| ctx.int_in(n, &s.path_of("replicas"), 0, 10_000))
        .map_or(1, |v| v as u32);
    let selector_node = s.take("selector");
    let selector = selector_node.map(|n| labels(ctx, n, &s.path_of("selector")));
    let _ = s.take("minReadySeconds");
    let template =
        required(ctx, &mut s, "template").and_then(|n| template(ctx, n, &s.path_of("template")));
    let selector_pos = s.key_pos("selector");
    s.finish(ctx);
    let template = template?;
    let selector = match selector {
        Some(sel) if sel.is_empty() => {
            ctx.error_at(
                selector_pos,
                &field(&sp, "selector"),
                "selector must not be empty: it would select nothing",
            );
            return None;
        }
        Some(sel) => {
            if !selector_matches(&sel, &template.labels) {
                ctx.error_at(
                    selector_pos,
                    &field(&sp, "selector"),
                    format!(
                        "selector {} does not match the template's labels {}",
                        show_map(&sel),
                        show_map(&template.labels)
                    ),
                );
            }
            sel
        }
        None if template.labels.is_empty() => {
            ctx.error_at(
                spec_node.pos,
                &field(&sp, "template.metadata.labels"),
                "the template needs labels: with no selector, they are the selector",
            );
            return None;
        }
        None => template.labels.clone(),
    };
    Some(ReplicationController {
        metadata: metadata?,
        replicas,
        selector,
        template,
        origin,
    })
}

fn template(ctx: &mut Ctx, node: &Node, path: &str) -> Option<PodTemplate> {
    let mut t = ctx.map(node, path)?;
    let (labels, annotations) = match t.take("metadata") {
        Some(n) => {
            let mp = t.path_of("metadata");
            match ctx.map(n, &mp) {
                Some(mut m) => {
                    let l = m
                        .take("labels")
                        .map(|n| labels(ctx, n, &m.path_of("labels")))
                        .unwrap_or_default();
                    let a = m
                        .take("annotations")
                        .map(|n| annotations(ctx, n, &m.path_of("annotations"), Place::Template))
                        .unwrap_or_default();
                    // A template's name is ignored by Kubernetes too: replicas get generated names.
                    let _ = m.take("name");
                    m.finish(ctx);
                    (l, a)
                }
                None => Default::default(),
            }
        }
        None => Default::default(),
    };
    let spec =
        required(ctx, &mut t, "spec").and_then(|n| pod::pod_spec(ctx, n, &t.path_of("spec")));
    t.finish(ctx);
    Some(PodTemplate {
        labels,
        annotations,
        spec: spec?,
    })
}

fn service(ctx: &mut Ctx, f: &mut Fields, origin: Origin) -> Option<Service> {
    let metadata = metadata(ctx, f, names::dns1035_label, Place::Service);
    let spec_node = required(ctx, f, "spec")?;
    let mut s = ctx.map(spec_node, &f.path_of("spec"))?;
    let selector_node = s.take("selector");
    let selector = match selector_node {
        Some(n) => labels(ctx, n, &s.path_of("selector")),
        None => {
            ctx.error_at(
                s.pos,
                &s.path_of("selector"),
                "required field is missing: berth has no selector-less Services",
            );
            StringMap::new()
        }
    };
    if let (Some(n), true) = (selector_node, selector.is_empty()) {
        ctx.error(
            n,
            &s.path_of("selector"),
            "selector must not be empty: it would select nothing",
        );
    }
    let ports = match s.take("ports") {
        Some(n) => service_ports(ctx, n, &s.path_of("ports")),
        None => {
            ctx.error_at(s.pos, &s.path_of("ports"), "required field is missing");
            Vec::new()
        }
    };
    // LoadBalancer is read as NodePort: a Docker host has no cloud load balancer to ask for.
    let type_ = s
        .take_enum(
            ctx,
            "type",
            &[
                ("ClusterIP", ServiceType::ClusterIP),
                ("NodePort", ServiceType::NodePort),
                ("LoadBalancer", ServiceType::NodePort),
            ],
        )
        .unwrap_or(ServiceType::ClusterIP);
    let affinity = s.take_enum(
        ctx,
        "sessionAffinity",
        &[("None", false), ("ClientIP", true)],
    );
    let timeout = s
        .take("sessionAffinityConfig")
        .and_then(|n| affinity_timeout(ctx, n, &s.path_of("sessionAffinityConfig")));
    let cluster_ip = s.take("clusterIP").and_then(|n| {
        let path = s.path_of("clusterIP");
        let text = ctx.string(n, &path)?;
        match text.parse::<std::net::Ipv4Addr>() {
            Ok(ip) if !ip.is_unspecified() => Some(ip),
            _ if text.is_empty() => None,
            _ if text == "None" => {
                ctx.error(
                    n,
                    &path,
                    "headless Services (clusterIP: None) are not supported",
                );
                None
            }
            _ => {
                ctx.error(n, &path, format!("{text:?} is not an IPv4 address"));
                None
            }
        }
    });
    let ports_path = s.path_of("ports");
    s.finish(ctx);
    // Kubernetes' default ClientIP timeout is three hours.
    let session_affinity_seconds = (affinity == Some(true)).then(|| timeout.unwrap_or(10_800));
    if type_ == ServiceType::ClusterIP {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.is_some() {
                ctx.error_at(
                    spec_node.pos,
                    &field(&index(&ports_path, i), "nodePort"),
                    "nodePort needs type NodePort or LoadBalancer",
                );
            }
        }
    }
    Some(Service {
        metadata: metadata?,
        selector,
        ports,
        type_,
        session_affinity_seconds,
        cluster_ip,
        origin,
    })
}

fn affinity_timeout(ctx: &mut Ctx, node: &Node, path: &str) -> Option<u32> {
    let mut c = ctx.map(node, path)?;
    let timeout = c.take("clientIP").and_then(|n| {
        let mut ip = ctx.map(n, &c.path_of("clientIP"))?;
        let t = ip
            .take("timeoutSeconds")
            .and_then(|t| ctx.int_in(t, &ip.path_of("timeoutSeconds"), 1, 86_400));
        ip.finish(ctx);
        t
    });
    c.finish(ctx);
    timeout.map(|t| t as u32)
}

fn service_ports(ctx: &mut Ctx, node: &Node, path: &str) -> Vec<ServicePort> {
    let items = ctx.seq(node, path);
    if items.is_empty() {
        ctx.error(node, path, "a Service needs at least one port");
    }
    let mut out: Vec<ServicePort> = Vec::new();
    // The ports in `out`, as a set so that a long list is not quadratic.
    let mut seen: HashSet<(u16, Protocol)> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(mut f) = ctx.map(item, &p) else {
            continue;
        };
        let name = f.take("name").and_then(|n| {
            let np = f.path_of("name");
            let s = ctx.string(n, &np)?;
            if let Err(e) = names::dns1123_label(&s) {
                ctx.error(n, &np, e);
            }
            Some(s)
        });
        let port = match f.take("port") {
            Some(n) => ctx.port(n, &f.path_of("port")),
            None => {
                ctx.error_at(f.pos, &f.path_of("port"), "required field is missing");
                None
            }
        };
        let target_port = f
            .take("targetPort")
            .map(|n| probe::port_ref(ctx, Some(n), item, &f.path_of("targetPort")));
        let node_port = f
            .take("nodePort")
            .and_then(|n| ctx.port(n, &f.path_of("nodePort")));
        let protocol = pod::protocol(ctx, &mut f, "protocol");
        f.finish(ctx);
        let Some(port) = port else { continue };
        if items.len() > 1 && name.is_none() {
            ctx.error(
                item,
                &field(&p, "name"),
                "every port needs a name when a Service has several",
            );
        }
        if !seen.insert((port, protocol)) {
            ctx.error(
                item,
                &field(&p, "port"),
                format!("duplicate port {port}/{}", protocol.docker()),
            );
        }
        out.push(ServicePort {
            name,
            port,
            // Kubernetes: targetPort defaults to port.
            target_port: match target_port {
                Some(Some(t)) => t,
                _ => PortRef::Number(port),
            },
            protocol,
            node_port,
        });
    }
    out
}

fn show_map(m: &StringMap) -> String {
    let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(","))
}
