//! One entry of `GET /containers/json`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{mount_points, networks, Endpoint, MountPoint};
use crate::sim::engine::container::{Container, Published, Status};
use crate::sim::engine::Engine;
use crate::sim::time::{human, now};

#[derive(Serialize)]
struct SummaryPort<'a> {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(rename = "PrivatePort")]
    private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    public_port: Option<u16>,
    #[serde(rename = "Type")]
    typ: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SummaryHostConfig<'a> {
    network_mode: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SummaryNetworks {
    networks: BTreeMap<&'static str, Endpoint>,
}

/// One entry of `GET /containers/json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary<'a> {
    id: &'a str,
    names: [String; 1],
    image: &'a str,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    command: String,
    created: u64,
    ports: Vec<SummaryPort<'a>>,
    labels: &'a BTreeMap<String, String>,
    state: &'static str,
    status: String,
    host_config: SummaryHostConfig<'a>,
    network_settings: SummaryNetworks,
    mounts: Vec<MountPoint<'a>>,
}

pub fn summary(c: &Container) -> Summary<'_> {
    let run = &c.run;
    let since = |t| human(now().saturating_sub(t));
    let status = match run.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}", since(run.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            run.exit_code,
            since(run.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", run.exit_code, since(run.finished_at)),
    };
    let mut ports = Vec::new();
    if c.is_running() && c.network_owner().is_none() {
        for key in &c.spec.exposed {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(port) = port.parse() else { continue };
            let bound: Vec<&Published> = run.published.iter().filter(|p| &p.key == key).collect();
            if bound.is_empty() {
                ports.push(SummaryPort {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: proto,
                });
            }
            for p in bound {
                let addresses: &[&str] = if p.host_ip.is_empty() {
                    &["0.0.0.0", "::"]
                } else {
                    &[p.host_ip.as_str()]
                };
                for ip in addresses {
                    ports.push(SummaryPort {
                        ip: Some(ip),
                        private_port: port,
                        public_port: Some(p.host_port),
                        typ: proto,
                    });
                }
            }
        }
    }
    let mut command = c.path.clone();
    for a in &c.args {
        command.push(' ');
        command.push_str(a);
    }
    Summary {
        id: &c.id,
        names: [format!("/{}", c.name)],
        image: &c.image,
        image_id: &c.image_id,
        command,
        created: c.created / 1_000_000_000,
        ports,
        labels: &c.spec.labels,
        state: run.status.as_str(),
        status,
        host_config: SummaryHostConfig {
            network_mode: &c.spec.network_mode,
        },
        network_settings: SummaryNetworks {
            networks: networks(c),
        },
        mounts: mount_points(c),
    }
}

/// Counts for `GET /info`.
pub fn counts(e: &Engine) -> (usize, usize, usize) {
    let total = e.container_count();
    let running = e.running_count();
    (total, running, total - running)
}
