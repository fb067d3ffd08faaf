//! `/images/create` (a pull from the simulated registry, or an import of a tar stream) and
//! `/images/{name}/json`.
//!
//! A pull takes the simulator's pull delay. A known image streams Docker's progress lines
//! around the delay and lands on the host at its end; an unknown one waits the delay too, then
//! fails with the status and message dockerd gives when the registry says no.

use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::mpsc;

use super::reply::{self, Body};
use super::Query;
use crate::sim::engine::images::{normalise, pull_refusal, Image};
use crate::sim::error::Refusal;
use crate::sim::host::Host;
use crate::sim::time::rfc3339;

fn line(value: serde_json::Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&value).expect("progress JSON");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

pub async fn create(
    host: &Arc<Host>,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, Refusal> {
    match (query.get("fromImage"), query.get("fromSrc")) {
        (Some(image), _) if !image.is_empty() => {
            let reference = match query.get("tag").filter(|t| !t.is_empty()) {
                Some(tag) if !image.contains('@') => format!("{image}:{tag}"),
                _ => image.to_string(),
            };
            pull(host, reference).await
        }
        (_, Some("-")) => {
            let tar = super::body(req).await?;
            let changes: Vec<String> = query
                .all("changes")
                .flat_map(|c| c.split('\n'))
                .filter(|c| !c.trim().is_empty())
                .map(String::from)
                .collect();
            let mut engine = host.engine();
            let id = engine.import(
                &tar,
                query.get("repo").unwrap_or_default(),
                query.get("tag").unwrap_or_default(),
                &changes,
                query.get("message").unwrap_or_default(),
            )?;
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(line(serde_json::json!({ "status": id })));
            Ok(reply::stream(rx, &engine.info.server_version))
        }
        (_, Some(url)) if !url.is_empty() => Err(Refusal::Unsupported(format!(
            "the simulated engine downloads nothing: fromSrc={url}"
        ))),
        _ => Err(Refusal::BadRequest(
            "fromImage or fromSrc is required".into(),
        )),
    }
}

async fn pull(host: &Arc<Host>, reference: String) -> Result<Response<Body>, Refusal> {
    let shared = &host.shared;
    let delay = *shared
        .pull_delay
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let known: Option<Arc<Image>> = shared
        .registry
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&normalise(&reference))
        .cloned();
    let Some(image) = known else {
        tokio::time::sleep(delay).await;
        return Err(pull_refusal(&reference));
    };
    let version = host.engine().info.server_version.clone();
    let (tx, rx) = mpsc::channel(4);
    let host = host.clone();
    let shutdown = shared.shutdown.clone();
    shared.tracker.spawn(async move {
        let tagged = normalise(&reference);
        let (repo, tag) = tagged.rsplit_once(':').unwrap_or((&tagged, "latest"));
        let present = host.engine().image(&tagged).is_ok();
        let _ = tx
            .send(line(
                serde_json::json!({"status": format!("Pulling from {repo}"), "id": tag}),
            ))
            .await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        host.engine().add_pulled(image.clone());
        let digest = format!("Digest: {}", image.id);
        let status = if present {
            format!("Status: Image is up to date for {reference}")
        } else {
            format!("Status: Downloaded newer image for {reference}")
        };
        let _ = tx.send(line(serde_json::json!({ "status": digest }))).await;
        let _ = tx.send(line(serde_json::json!({ "status": status }))).await;
    });
    Ok(reply::stream(rx, &version))
}

pub fn inspect(host: &Host, name: &str) -> Result<Response<Body>, Refusal> {
    let engine = host.engine();
    let image = engine
        .image(name)
        .map_err(|_| Refusal::NoSuchImageInspect(name.to_string()))?;
    let config = serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": image.config.env,
        "Cmd": image.config.cmd,
        "Image": "",
        "Volumes": null,
        "WorkingDir": image.config.working_dir,
        "Entrypoint": image.config.entrypoint,
        "OnBuild": null,
        "Labels": if image.config.labels.is_empty() { None } else { Some(&image.config.labels) },
    });
    let body = serde_json::json!({
        "Id": image.id,
        "RepoTags": image.tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": image.comment,
        "Created": rfc3339(image.created),
        "Container": "",
        "ContainerConfig": config,
        "DockerVersion": engine.info.server_version,
        "Author": "",
        "Config": config,
        "Architecture": image.architecture,
        "Os": "linux",
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Data": null, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": [image.id]},
        "Metadata": {"LastTagTime": rfc3339(image.created)},
    });
    Ok(reply::json(200, &body, &engine.info.server_version))
}
