//! `/containers/...`: each handler parses its parameters and calls one engine step.

use hyper::Response;

use super::reply::{self, Body};
use super::{json_body, render, Query};
use crate::sim::engine::parse_signal;
use crate::sim::error::Refusal;
use crate::sim::filters::Filters;
use crate::sim::host::Host;

/// The filters `GET /containers/json` accepts (those berth or a person would use).
const LIST_FILTERS: [&str; 4] = ["label", "name", "id", "status"];

pub fn list(host: &Host, query: &Query) -> Result<Response<Body>, Refusal> {
    let filters = Filters::parse(query.get("filters"), &LIST_FILTERS)?;
    let all = query.flag("all");
    let engine = host.engine();
    let mut found: Vec<_> = engine
        .containers()
        .filter(|c| all || c.is_running() || !filters.get("status").is_empty())
        .filter(|c| {
            filters.labels_match(|k| c.label(k))
                && filters.any("name", |n| c.name.contains(n.trim_start_matches('/')))
                && filters.any("id", |i| c.id.starts_with(i))
                && filters.any("status", |s| s == c.run.status.as_str())
        })
        .collect();
    // Docker lists the newest first.
    found.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let body: Vec<render::Summary<'_>> = found.into_iter().map(render::summary).collect();
    Ok(reply::json(200, &body, &engine.info.server_version))
}

pub fn create(host: &Host, query: &Query, body: &[u8]) -> Result<Response<Body>, Refusal> {
    let body = json_body(body)?;
    let mut engine = host.engine();
    let id = engine.create(query.get("name"), &body)?;
    let answer = serde_json::json!({"Id": id, "Warnings": []});
    Ok(reply::json(201, &answer, &engine.info.server_version))
}

pub fn inspect(host: &Host, reference: &str) -> Result<Response<Body>, Refusal> {
    let engine = host.engine();
    let body = render::inspect(engine.container(reference)?);
    Ok(reply::json(200, &body, &engine.info.server_version))
}

pub fn start(host: &Host, reference: &str) -> Result<Response<Body>, Refusal> {
    let mut engine = host.engine();
    let started = engine.start(reference)?;
    Ok(reply::empty(
        if started { 204 } else { 304 },
        &engine.info.server_version,
    ))
}

pub fn kill(host: &Host, reference: &str, query: &Query) -> Result<Response<Body>, Refusal> {
    let signal = parse_signal(query.get("signal").unwrap_or("SIGKILL"))?;
    let mut engine = host.engine();
    engine.signal(reference, signal)?;
    Ok(reply::empty(204, &engine.info.server_version))
}

pub async fn stop(host: &Host, reference: &str, query: &Query) -> Result<Response<Body>, Refusal> {
    let stopped = host.stop(reference, query.int("t")?).await?;
    let version = host.engine().info.server_version.clone();
    Ok(reply::empty(if stopped { 204 } else { 304 }, &version))
}

pub async fn restart(
    host: &Host,
    reference: &str,
    query: &Query,
) -> Result<Response<Body>, Refusal> {
    host.restart(reference, query.int("t")?).await?;
    let version = host.engine().info.server_version.clone();
    Ok(reply::empty(204, &version))
}

pub fn update(host: &Host, reference: &str, body: &[u8]) -> Result<Response<Body>, Refusal> {
    let body = json_body(body)?;
    let mut engine = host.engine();
    engine.update(reference, &body)?;
    let answer = serde_json::json!({"Warnings": null});
    Ok(reply::json(200, &answer, &engine.info.server_version))
}

pub fn remove(host: &Host, reference: &str, query: &Query) -> Result<Response<Body>, Refusal> {
    let mut engine = host.engine();
    engine.remove(reference, query.flag("force"))?;
    Ok(reply::empty(204, &engine.info.server_version))
}
