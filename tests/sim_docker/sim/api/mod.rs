//! The Docker Engine API of one simulated host: routing, the version prefix, counting, and
//! the handlers (a few lines each, calling the engine).
//!
//! Paths may carry a version (`/v1.41/containers/json`) or not (bollard sends none: it builds
//! `/v1.53/...` and then joins the absolute path over it). A version above 1.41 is refused as
//! dockerd 20.10 refuses it, which is what makes a client's version negotiation matter.

mod containers;
mod exec;
mod images;
mod render;
pub mod reply;
mod system;
mod volumes;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use super::counters::Endpoint;
use super::error::Refusal;
use super::host::Host;
use reply::{Body, API_VERSION, MIN_API_VERSION};

/// Largest request body taken (an image import is the big one; berth's holder is ~20 KiB).
const MAX_BODY: usize = 64 << 20;

/// Answers one request of `host`.
pub async fn handle(host: Arc<Host>, req: Request<Incoming>) -> Response<Body> {
    host.answering().await;
    let server_version = host.engine().info.server_version.clone();
    match route(&host, req).await {
        Ok(response) => response,
        Err(refusal) => reply::refusal(&refusal, &server_version),
    }
}

async fn route(host: &Arc<Host>, mut req: Request<Incoming>) -> Result<Response<Body>, Refusal> {
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let query = Query::parse(req.uri().query());
    let path = strip_version(&path)?;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let endpoint = endpoint_of(&method, &segments, path);
    host.counters.count(endpoint);
    let h = host.as_ref();
    match (endpoint, segments.as_slice()) {
        (Endpoint::Ping, _) => Ok(system::ping(h, method == Method::HEAD)),
        (Endpoint::Version, _) => Ok(system::version(h)),
        (Endpoint::Info, _) => Ok(system::info(h)),
        (Endpoint::Events, _) => system::events(h, &query),
        (Endpoint::ContainerList, _) => containers::list(h, &query),
        (Endpoint::ContainerCreate, _) => containers::create(h, &query, &body(req).await?),
        (Endpoint::ContainerInspect, [_, id, _]) => containers::inspect(h, id),
        (Endpoint::ContainerStart, [_, id, _]) => containers::start(h, id),
        (Endpoint::ContainerStop, [_, id, _]) => containers::stop(h, id, &query).await,
        (Endpoint::ContainerKill, [_, id, _]) => containers::kill(h, id, &query),
        (Endpoint::ContainerRestart, [_, id, _]) => containers::restart(h, id, &query).await,
        (Endpoint::ContainerUpdate, [_, id, _]) => {
            let id = id.to_string();
            containers::update(h, &id, &body(req).await?)
        }
        (Endpoint::ContainerDelete, [_, id]) => containers::remove(h, id, &query),
        (Endpoint::ImageCreate, _) => images::create(host, &query, req).await,
        (Endpoint::ImageInspect, _) => {
            let name = &path["/images/".len()..path.len() - "/json".len()];
            images::inspect(h, name)
        }
        (Endpoint::VolumeCreate, _) => volumes::create(h, &body(req).await?),
        (Endpoint::VolumeList, _) => volumes::list(h, &query),
        (Endpoint::VolumeInspect, [_, name]) => volumes::inspect(h, name),
        (Endpoint::VolumeDelete, [_, name]) => volumes::remove(h, name),
        (Endpoint::ExecCreate, [_, id, _]) => {
            let id = id.to_string();
            exec::create(h, &id, &body(req).await?)
        }
        (Endpoint::ExecStart, [_, id, _]) => {
            let id = id.to_string();
            let upgrade = hyper::upgrade::on(&mut req);
            exec::start(h, &id, &body(req).await?, upgrade)
        }
        (Endpoint::ExecInspect, [_, id, _]) => exec::inspect(h, id),
        _ => Err(Refusal::PageNotFound),
    }
}

/// Which endpoint a request is for.
fn endpoint_of(method: &Method, segments: &[&str], path: &str) -> Endpoint {
    use Endpoint as E;
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match segments {
        ["_ping"] if get => E::Ping,
        ["version"] if get => E::Version,
        ["info"] if get => E::Info,
        ["events"] if get => E::Events,
        ["containers", "json"] if get => E::ContainerList,
        ["containers", "create"] if post => E::ContainerCreate,
        ["containers", _, "json"] if get => E::ContainerInspect,
        ["containers", _, "start"] if post => E::ContainerStart,
        ["containers", _, "stop"] if post => E::ContainerStop,
        ["containers", _, "kill"] if post => E::ContainerKill,
        ["containers", _, "restart"] if post => E::ContainerRestart,
        ["containers", _, "update"] if post => E::ContainerUpdate,
        ["containers", _, "exec"] if post => E::ExecCreate,
        ["containers", _] if method == Method::DELETE => E::ContainerDelete,
        ["images", "create"] if post => E::ImageCreate,
        ["images", .., "json"] if get && segments.len() >= 3 && path.ends_with("/json") => {
            E::ImageInspect
        }
        ["volumes", "create"] if post => E::VolumeCreate,
        ["volumes"] if get => E::VolumeList,
        ["volumes", _] if get => E::VolumeInspect,
        ["volumes", _] if method == Method::DELETE => E::VolumeDelete,
        ["exec", _, "start"] if post => E::ExecStart,
        ["exec", _, "json"] if get => E::ExecInspect,
        _ => E::Other,
    }
}

/// The path without its `/v1.xx` prefix; a version dockerd 20.10 would refuse is refused.
fn strip_version(path: &str) -> Result<&str, Refusal> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (version, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((major, minor)) = version.split_once('.') else {
        return Ok(path);
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Ok(path);
    };
    let number = |v: &str| -> (u32, u32) {
        let (a, b) = v.split_once('.').unwrap_or((v, "0"));
        (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
    };
    if (major, minor) > number(API_VERSION) {
        return Err(Refusal::VersionTooNew(version.to_string(), API_VERSION));
    }
    if (major, minor) < number(MIN_API_VERSION) {
        return Err(Refusal::VersionTooOld(version.to_string(), MIN_API_VERSION));
    }
    Ok(if tail.is_empty() { "/" } else { tail })
}

/// The request body, whole (bounded by [`MAX_BODY`]).
async fn body(req: Request<Incoming>) -> Result<Bytes, Refusal> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| Refusal::BadRequest(format!("reading the request body: {e}")))
}

/// A JSON request body; an empty one is `null`.
fn json_body(bytes: &[u8]) -> Result<serde_json::Value, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| Refusal::BadRequest(format!("invalid JSON: {e}")))
}

/// Query parameters, decoded.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as Docker reads it: `1` or `true`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Refusal> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| Refusal::BadRequest(format!("invalid value for {key}: {v}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_above_1_41_are_refused_and_prefixes_stripped() {
        assert_eq!(
            strip_version("/v1.41/containers/json"),
            Ok("/containers/json")
        );
        assert_eq!(strip_version("/containers/json"), Ok("/containers/json"));
        assert_eq!(strip_version("/volumes"), Ok("/volumes"));
        assert_eq!(
            strip_version("/v1.53/version").unwrap_err().to_string(),
            "client version 1.53 is too new. Maximum supported API version is 1.41"
        );
    }
}
