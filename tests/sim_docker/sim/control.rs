//! The control interface, separate from the Docker API: a unix socket (`control.sock` beside
//! the hosts' sockets) for benchmarks and tests to take hosts away, crash containers, change
//! what hosts report, and read request counters.
//!
//! ```text
//! GET  /stats                                   hosts, up, containers, running, RSS
//! GET  /counters[?host=N]                       requests per endpoint (totals and per host)
//! POST /counters/reset
//! POST /hosts/N/down[?mode=refuse|hang]         refuse: connection refused, open ones cut
//! POST /hosts/N/up
//! POST /hosts/N/info?ncpu=&mem_total=&architecture=&server_version=
//! POST /hosts/N/containers/ID/crash[?exit_code=1]
//! POST /hosts/N/containers/ID/exec-exit-code?code=C
//! POST /registry?image=REF                      the simulated registry gains an image
//! POST /pull-delay?ms=MS
//! ```
//!
//! `N` is a host's index or its name (`host-0042`). Answers are JSON; errors are
//! `{"message": ...}` with 400 or 404, like the Docker API's.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use super::api::reply::{self, Body};
use super::engine::images::normalise;
use super::engine::{HostInfo, Image};
use super::error::Refusal;
use super::host::{Host, Link, Shared};

const VERSION: &str = "berth-sim-docker";

/// Serves the control socket until shutdown.
pub async fn serve(listener: UnixListener, hosts: Arc<[Arc<Host>]>, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (hosts, shared2) = (hosts.clone(), shared.clone());
        let service = service_fn(move |req| {
            let (hosts, shared) = (hosts.clone(), shared2.clone());
            async move { Ok::<_, Infallible>(handle(&hosts, &shared, req)) }
        });
        let shutdown = shared.shutdown.clone();
        shared.tracker.spawn(async move {
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

fn handle(hosts: &[Arc<Host>], shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let query = super::api::Query::parse(req.uri().query());
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let post = req.method() == Method::POST;
    let answer = match segments.as_slice() {
        ["stats"] => Ok(stats(hosts)),
        ["counters"] => counters(hosts, query.get("host")),
        ["counters", "reset"] if post => {
            hosts.iter().for_each(|h| h.counters.reset());
            Ok(serde_json::json!({}))
        }
        ["hosts", n, "down"] if post => host(hosts, n).and_then(|h| {
            let link = match query.get("mode").unwrap_or("refuse") {
                "refuse" => Link::Refuse,
                "hang" => Link::Hang,
                other => return Err(Refusal::BadRequest(format!("mode {other}: refuse or hang"))),
            };
            h.set_link(link);
            Ok(serde_json::json!({"host": h.name, "link": format!("{link:?}")}))
        }),
        ["hosts", n, "up"] if post => host(hosts, n).map(|h| {
            h.set_link(Link::Up);
            serde_json::json!({"host": h.name, "link": "Up"})
        }),
        ["hosts", n, "info"] if post => host(hosts, n).and_then(|h| set_info(h, &query)),
        ["hosts", n, "containers", id, "crash"] if post => host(hosts, n).and_then(|h| {
            let code = query.int("exit_code")?.unwrap_or(1);
            h.crash(id, code)?;
            Ok(serde_json::json!({"host": h.name, "crashed": id, "exit_code": code}))
        }),
        ["hosts", n, "containers", id, "exec-exit-code"] if post => host(hosts, n).and_then(|h| {
            let code = query.int("code")?.unwrap_or(0);
            h.engine().set_exec_exit_code(id, code)?;
            Ok(serde_json::json!({"host": h.name, "container": id, "code": code}))
        }),
        ["registry"] if post => {
            let image = query.get("image").unwrap_or_default();
            if image.is_empty() {
                Err(Refusal::BadRequest("image= is required".into()))
            } else {
                add_to_registry(shared, image);
                Ok(serde_json::json!({"registry": normalise(image)}))
            }
        }
        ["pull-delay"] if post => query.int("ms").map(|ms| {
            let delay = Duration::from_millis(ms.unwrap_or(0).max(0) as u64);
            *shared
                .pull_delay
                .write()
                .unwrap_or_else(PoisonError::into_inner) = delay;
            serde_json::json!({"pull_delay_ms": delay.as_millis() as u64})
        }),
        _ => Err(Refusal::PageNotFound),
    };
    match answer {
        Ok(body) => reply::json(200, &body, VERSION),
        Err(r) => reply::refusal(&r, VERSION),
    }
}

/// A host by index or name.
fn host<'a>(hosts: &'a [Arc<Host>], n: &str) -> Result<&'a Arc<Host>, Refusal> {
    let found = match n.parse::<usize>() {
        Ok(i) => hosts.get(i),
        Err(_) => hosts.iter().find(|h| h.name == n),
    };
    found.ok_or_else(|| Refusal::BadRequest(format!("no simulated host {n}")))
}

/// Lets every host pull `image` from now on.
pub fn add_to_registry(shared: &Shared, image: &str) {
    shared
        .registry
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(normalise(image), Arc::new(Image::registry(image)));
}

fn set_info(h: &Host, query: &super::api::Query) -> Result<serde_json::Value, Refusal> {
    let mut engine = h.engine();
    let mut info: HostInfo = (*engine.info).clone();
    if let Some(n) = query.int("ncpu")? {
        info.ncpu = n.clamp(0, i64::from(u32::MAX)) as u32;
    }
    if let Some(m) = query.int("mem_total")? {
        info.mem_total = m.max(0) as u64;
    }
    if let Some(a) = query.get("architecture") {
        info.architecture = a.to_string();
    }
    if let Some(v) = query.get("server_version") {
        info.server_version = v.to_string();
    }
    let answer = serde_json::json!({"host": h.name, "ncpu": info.ncpu,
        "mem_total": info.mem_total, "architecture": info.architecture,
        "server_version": info.server_version});
    engine.info = Arc::new(info);
    Ok(answer)
}

fn stats(hosts: &[Arc<Host>]) -> serde_json::Value {
    let (mut containers, mut running, mut up) = (0, 0, 0);
    for h in hosts {
        let engine = h.engine();
        containers += engine.container_count();
        running += engine.running_count();
        up += usize::from(h.link() == Link::Up);
    }
    serde_json::json!({
        "hosts": hosts.len(),
        "hosts_up": up,
        "containers": containers,
        "running": running,
        "rss_kib": rss_kib(),
    })
}

/// This process's resident memory (`VmRSS`), in KiB.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn counters(hosts: &[Arc<Host>], only: Option<&str>) -> Result<serde_json::Value, Refusal> {
    let chosen: Vec<&Arc<Host>> = match only {
        Some(n) => vec![host(hosts, n)?],
        None => hosts.iter().collect(),
    };
    let mut total: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut per_host = serde_json::Map::new();
    for h in chosen {
        let counts = h.counters.snapshot();
        for (endpoint, n) in &counts {
            *total.entry(endpoint).or_default() += n;
        }
        if !counts.is_empty() {
            let counts: BTreeMap<&str, u64> = counts.into_iter().collect();
            per_host.insert(h.name.clone(), serde_json::json!(counts));
        }
    }
    Ok(serde_json::json!({"total": total, "hosts": per_host}))
}
