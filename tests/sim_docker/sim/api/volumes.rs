//! `/volumes/...`.

use std::collections::BTreeMap;

use hyper::Response;

use super::reply::{self, Body};
use super::{json_body, Query};
use crate::sim::engine::Volume;
use crate::sim::error::Refusal;
use crate::sim::filters::Filters;
use crate::sim::host::Host;
use crate::sim::time::rfc3339;

fn render(v: &Volume) -> serde_json::Value {
    serde_json::json!({
        "CreatedAt": rfc3339(v.created - v.created % 1_000_000_000),
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": format!("/var/lib/docker/volumes/{}/_data", v.name),
        "Name": v.name,
        "Options": null,
        "Scope": "local",
    })
}

pub fn create(host: &Host, body: &[u8]) -> Result<Response<Body>, Refusal> {
    let body = json_body(body)?;
    let name = body
        .get("Name")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    let labels: BTreeMap<String, String> = body
        .get("Labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let mut engine = host.engine();
    let answer = render(engine.create_volume(name, labels));
    Ok(reply::json(201, &answer, &engine.info.server_version))
}

pub fn list(host: &Host, query: &Query) -> Result<Response<Body>, Refusal> {
    let filters = Filters::parse(query.get("filters"), &crate::sim::engine::volumes::FILTERS)?;
    let engine = host.engine();
    let volumes: Vec<serde_json::Value> = engine
        .list_volumes(&filters)
        .into_iter()
        .map(render)
        .collect();
    let answer = serde_json::json!({"Volumes": volumes, "Warnings": null});
    Ok(reply::json(200, &answer, &engine.info.server_version))
}

pub fn inspect(host: &Host, name: &str) -> Result<Response<Body>, Refusal> {
    let engine = host.engine();
    let answer = render(engine.volume(name)?);
    Ok(reply::json(200, &answer, &engine.info.server_version))
}

pub fn remove(host: &Host, name: &str) -> Result<Response<Body>, Refusal> {
    let mut engine = host.engine();
    engine.remove_volume(name)?;
    Ok(reply::empty(204, &engine.info.server_version))
}
