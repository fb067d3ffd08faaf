//! `/_ping`, `/version`, `/info` and `/events`.

use hyper::Response;

use super::reply::{self, Body, API_VERSION, MIN_API_VERSION};
use super::Query;
use crate::sim::engine::events::FILTERS;
use crate::sim::error::Refusal;
use crate::sim::filters::Filters;
use crate::sim::host::Host;
use crate::sim::time::{now, rfc3339};

pub fn ping(host: &Host, head: bool) -> Response<Body> {
    let version = host.engine().info.server_version.clone();
    if head {
        reply::empty(200, &version)
    } else {
        reply::text("OK", &version)
    }
}

fn arch_go(architecture: &str) -> &'static str {
    match architecture {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

pub fn version(host: &Host) -> Response<Body> {
    let info = host.engine().info.clone();
    let details = serde_json::json!({
        "ApiVersion": API_VERSION,
        "Arch": arch_go(&info.architecture),
        "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
        "Experimental": "false",
        "GitCommit": "5d6db84",
        "GoVersion": "go1.19.8",
        "KernelVersion": "6.1.0-sim",
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    });
    let body = serde_json::json!({
        "Platform": {"Name": "berth-sim-docker"},
        "Components": [{"Name": "Engine", "Version": info.server_version, "Details": details}],
        "Version": info.server_version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "5d6db84",
        "GoVersion": "go1.19.8",
        "Os": "linux",
        "Arch": arch_go(&info.architecture),
        "KernelVersion": "6.1.0-sim",
        "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
    });
    reply::json(200, &body, &info.server_version)
}

pub fn info(host: &Host) -> Response<Body> {
    let engine = host.engine();
    let (total, running, stopped) = super::render::counts(&engine);
    let info = &engine.info;
    let body = serde_json::json!({
        "ID": format!("SIM:{:04X}:{:04X}", engine.index >> 16, engine.index & 0xffff),
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": stopped,
        "Images": engine.images().len(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"]],
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 24,
        "NGoroutines": 33,
        "SystemTime": rfc3339(now()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "systemd",
        "CgroupVersion": "2",
        "NEventsListener": usize::from(engine.events.is_watched()),
        "KernelVersion": "6.1.0-sim",
        "OperatingSystem": "Debian GNU/Linux 12 (bookworm) (simulated)",
        "OSVersion": "12",
        "OSType": "linux",
        "Architecture": info.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "NCPU": info.ncpu,
        "MemTotal": info.mem_total,
        "DockerRootDir": "/var/lib/docker",
        "Name": host.name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": info.server_version,
        "DefaultRuntime": "runc",
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"],
        "Warnings": null,
    });
    reply::json(200, &body, &info.server_version)
}

/// `GET /events`: a stream from now on (`since` and `until` are not kept: nothing is
/// replayed), filtered as Docker filters.
pub fn events(host: &Host, query: &Query) -> Result<Response<Body>, Refusal> {
    let filters = Filters::parse(query.get("filters"), &FILTERS)?;
    let mut engine = host.engine();
    let rx = engine.events.subscribe(filters);
    Ok(reply::stream(rx, &engine.info.server_version))
}
