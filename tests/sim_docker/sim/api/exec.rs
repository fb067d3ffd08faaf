//! `/containers/{id}/exec`, `/exec/{id}/start` and `/exec/{id}/json`.
//!
//! An attached start is answered as dockerd does: `101 UPGRADED` with a raw stream, here an
//! empty one that closes at once (the command printed nothing), after which the client
//! inspects the exec for its exit code.

use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::json_body;
use super::reply::{self, Body};
use crate::sim::error::Refusal;
use crate::sim::host::Host;

pub fn create(host: &Host, reference: &str, body: &[u8]) -> Result<Response<Body>, Refusal> {
    let body = json_body(body)?;
    let cmd: Vec<String> = body
        .get("Cmd")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    if cmd.is_empty() {
        return Err(Refusal::BadRequest("No exec command specified".into()));
    }
    let mut engine = host.engine();
    let id = engine.create_exec(reference, cmd)?;
    Ok(reply::json(
        201,
        &serde_json::json!({ "Id": id }),
        &engine.info.server_version,
    ))
}

pub fn start(
    host: &Host,
    id: &str,
    body: &[u8],
    upgrade: OnUpgrade,
) -> Result<Response<Body>, Refusal> {
    let body = json_body(body)?;
    let detach = body
        .get("Detach")
        .and_then(|d| d.as_bool())
        .unwrap_or(false);
    let mut engine = host.engine();
    engine.run_exec(id)?;
    let version = engine.info.server_version.clone();
    drop(engine);
    if detach {
        return Ok(reply::empty(200, &version));
    }
    host.shared.tracker.spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let _ = io.shutdown().await;
        }
    });
    let mut response = reply::empty(101, &version);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("tcp"));
    Ok(response)
}

pub fn inspect(host: &Host, id: &str) -> Result<Response<Body>, Refusal> {
    let engine = host.engine();
    let exec = engine.exec(id)?;
    let (entrypoint, arguments) = exec.cmd.split_first().expect("an exec has a command");
    let body = serde_json::json!({
        "ID": exec.id,
        "Running": exec.running,
        "ExitCode": exec.exit_code,
        "ProcessConfig": {
            "tty": false,
            "entrypoint": entrypoint,
            "arguments": arguments,
            "privileged": false,
        },
        "OpenStdin": false,
        "OpenStderr": true,
        "OpenStdout": true,
        "CanRemove": false,
        "ContainerID": exec.container_id,
        "DetachKeys": "",
        "Pid": exec.pid,
    });
    Ok(reply::json(200, &body, &engine.info.server_version))
}
