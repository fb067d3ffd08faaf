//! Decoding liveness and readiness probes.

use super::ctx::Ctx;
use crate::manifest::model::{PortRef, Probe, ProbeAction};
use crate::manifest::names;
use crate::manifest::yaml::{Kind, Node, Value};

pub fn probe(ctx: &mut Ctx, node: &Node, path: &str) -> Option<Probe> {
    let mut f = ctx.map(node, path)?;
    let mut actions = Vec::new();
    if let Some(n) = f.take("exec") {
        let p = f.path_of("exec");
        if let Some(mut e) = ctx.map(n, &p) {
            let command = e
                .take("command")
                .map(|c| ctx.string_list(c, &e.path_of("command")))
                .unwrap_or_default();
            if command.is_empty() {
                ctx.error(n, &e.path_of("command"), "an exec probe needs a command");
            }
            e.finish(ctx);
            actions.push(ProbeAction::Exec { command });
        }
    }
    if let Some(n) = f.take("httpGet") {
        let p = f.path_of("httpGet");
        if let Some(mut h) = ctx.map(n, &p) {
            let path_value = h
                .take("path")
                .and_then(|v| ctx.string(v, &h.path_of("path")))
                .unwrap_or_else(|| "/".into());
            let port = port_ref(ctx, h.take("port"), n, &h.path_of("port"));
            let host = h
                .take("host")
                .and_then(|v| ctx.string(v, &h.path_of("host")));
            let scheme = h.take("scheme").and_then(|v| {
                let sp = h.path_of("scheme");
                let s = ctx.string(v, &sp)?;
                if s != "HTTP" && s != "HTTPS" {
                    ctx.error(
                        v,
                        &sp,
                        format!("unsupported scheme {s:?}: expected HTTP or HTTPS"),
                    );
                }
                Some(s)
            });
            let headers = h
                .take("httpHeaders")
                .map(|v| headers(ctx, v, &h.path_of("httpHeaders")))
                .unwrap_or_default();
            h.finish(ctx);
            if let Some(port) = port {
                actions.push(ProbeAction::HttpGet {
                    path: path_value,
                    port,
                    host,
                    scheme: scheme.unwrap_or_else(|| "HTTP".into()),
                    headers,
                });
            }
        }
    }
    if let Some(n) = f.take("tcpSocket") {
        let p = f.path_of("tcpSocket");
        if let Some(mut t) = ctx.map(n, &p) {
            let port = port_ref(ctx, t.take("port"), n, &t.path_of("port"));
            let host = t
                .take("host")
                .and_then(|v| ctx.string(v, &t.path_of("host")));
            t.finish(ctx);
            if let Some(port) = port {
                actions.push(ProbeAction::TcpSocket { port, host });
            }
        }
    }
    let mut timing = |key: &'static str, default: u32, min: i64| {
        f.take(key)
            .and_then(|n| ctx.int_in(n, &f.path_of(key), min, 86_400))
            .map_or(default, |v| v as u32)
    };
    let initial_delay_seconds = timing("initialDelaySeconds", 0, 0);
    let timeout_seconds = timing("timeoutSeconds", 1, 1);
    let period_seconds = timing("periodSeconds", 10, 1);
    let success_threshold = timing("successThreshold", 1, 1);
    let failure_threshold = timing("failureThreshold", 3, 1);
    let _ = f.take("terminationGracePeriodSeconds");
    let pos = f.pos;
    f.finish(ctx);
    match actions.len() {
        1 => Some(Probe {
            action: actions.pop()?,
            initial_delay_seconds,
            timeout_seconds,
            period_seconds,
            success_threshold,
            failure_threshold,
        }),
        0 => {
            ctx.error_at(pos, path, "a probe needs one of exec, httpGet or tcpSocket");
            None
        }
        _ => {
            ctx.error_at(
                pos,
                path,
                "a probe may have only one of exec, httpGet or tcpSocket",
            );
            None
        }
    }
}

/// A port given by number (1..65535) or by the name of a container port.
pub fn port_ref(ctx: &mut Ctx, node: Option<&Node>, parent: &Node, path: &str) -> Option<PortRef> {
    let Some(node) = node else {
        ctx.error(parent, path, "required field is missing");
        return None;
    };
    match &node.value {
        Value::Scalar(_, Kind::Int) => ctx.port(node, path).map(PortRef::Number),
        Value::Scalar(s, Kind::Str) => {
            // "8080" written as a string is still a number in Kubernetes' IntOrString.
            if let Ok(n) = s.parse::<u16>() {
                if n > 0 {
                    return Some(PortRef::Number(n));
                }
            }
            match names::port_name(s) {
                Ok(()) => Some(PortRef::Name(s.clone())),
                Err(e) => {
                    ctx.error(node, path, e);
                    None
                }
            }
        }
        _ => {
            ctx.error(
                node,
                path,
                format!("expected a port number or name, found {}", node.describe()),
            );
            None
        }
    }
}

fn headers(ctx: &mut Ctx, node: &Node, path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, item) in ctx.seq(node, path).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(mut h) = ctx.map(item, &p) else {
            continue;
        };
        let name = h.take("name");
        let name = ctx.required_string(name, &h, "name");
        let value = h
            .take("value")
            .and_then(|v| ctx.string(v, &h.path_of("value")))
            .unwrap_or_default();
        h.finish(ctx);
        if let Some(name) = name {
            out.push((name, value));
        }
    }
    out
}
