//! A simulated container: what `POST /containers/create` asked for (its [`Spec`], kept only in
//! the fields an inspect or list answer shows) and what has happened to it since ([`Run`]).
//!
//! The spec is read from the request's JSON by hand rather than through bollard's models:
//! clients send shapes bollard's serializer would not (the CLI's `ExposedPorts` map, a string
//! `Entrypoint`), and a field the simulation does not know is simply ignored, as by Docker.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::sim::error::Refusal;
use crate::sim::time::Nanos;

/// The label that makes a simulated process ignore every signal but SIGKILL, as a shell
/// script or `sleep` running as PID 1 does (its stop then waits out the grace period).
pub const IGNORE_SIGTERM: &str = "sim.ignore-sigterm";
/// The label giving the exit code of every exec in the container (default 0).
pub const EXEC_EXIT_CODE: &str = "sim.exec-exit-code";

/// Docker's restart policy of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// `""`, `no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    pub max_retries: i64,
}

/// A port key (`80/tcp`) and the bindings asked for it: (host IP, host port), where an
/// empty or zero host port asks for any free one.
pub type PortBindings = (String, Vec<(String, String)>);

/// One `HostConfig.Mounts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// `volume`, `bind` or `tmpfs`.
    pub typ: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// What a container was created with: immutable but for the restart policy (`update`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `80/tcp`, ...
    pub exposed: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub healthcheck: bool,
    /// `default`, `bridge`, `host`, `none` or `container:<id or name>`.
    pub network_mode: String,
    pub restart: Option<RestartPolicy>,
    pub port_bindings: Vec<PortBindings>,
    pub mounts: Vec<MountSpec>,
    pub memory: i64,
    pub nano_cpus: i64,
}

/// Docker's container status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    /// Exited and waiting out the restart policy's backoff; Docker counts it as running.
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// A published port while the container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub key: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// What has happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: Nanos,
    pub finished_at: Nanos,
    pub restart_count: u32,
    /// Stopped through the API: the restart policy does not bring it back (Docker's
    /// `HasBeenManuallyStopped`).
    pub manually_stopped: bool,
    /// Bumped at every start and stop, so that a pending policy restart of an older life
    /// knows it is stale.
    pub generation: u64,
    /// The next policy restart's delay, doubled by each quick exit (Docker's backoff).
    pub backoff_ms: u64,
    pub ip: Option<Ipv4Addr>,
    pub published: Vec<Published>,
}

/// One container of a simulated host.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub created: Nanos,
    /// The reference it was created from, as given.
    pub image: String,
    pub image_id: String,
    /// The process: the spec's entrypoint and command, or the image's.
    pub path: String,
    pub args: Vec<String>,
    pub spec: Box<Spec>,
    pub run: Run,
    /// Exit code of execs set through the control interface (else the label, else 0).
    pub exec_exit_code: Option<i64>,
}

impl Container {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.spec.labels.get(key).map(String::as_str)
    }

    /// Running or waiting to restart: what Docker's `State.Running` says.
    pub fn is_running(&self) -> bool {
        matches!(self.run.status, Status::Running | Status::Restarting)
    }

    /// The id of the container whose network namespace this one joins.
    pub fn network_owner(&self) -> Option<&str> {
        self.spec.network_mode.strip_prefix("container:")
    }

    /// Whether the process dies of `signal` (a number): SIGKILL always; signals a process
    /// ignores by default never; the others unless the container is marked to ignore them.
    pub fn dies_of(&self, signal: i32) -> bool {
        const IGNORED_BY_DEFAULT: [i32; 4] = [17, 18, 23, 28]; // CHLD, CONT, URG, WINCH
        signal == 9
            || (!IGNORED_BY_DEFAULT.contains(&signal) && self.label(IGNORE_SIGTERM) != Some("true"))
    }
}

impl Spec {
    /// Reads a create body. Only malformed JSON and impossible values are refused.
    pub fn from_json(body: &Value) -> Result<Spec, Refusal> {
        let host = body.get("HostConfig").unwrap_or(&Value::Null);
        let restart = host.get("RestartPolicy").filter(|r| !r.is_null());
        Ok(Spec {
            hostname: string(body, "Hostname"),
            labels: string_map(body.get("Labels")),
            entrypoint: string_list(body.get("Entrypoint")),
            cmd: string_list(body.get("Cmd")),
            env: string_list(body.get("Env")).unwrap_or_default(),
            working_dir: string(body, "WorkingDir"),
            exposed: keys_or_list(body.get("ExposedPorts")),
            stop_signal: body
                .get("StopSignal")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from),
            stop_timeout: body.get("StopTimeout").and_then(Value::as_i64),
            healthcheck: body
                .get("Healthcheck")
                .and_then(|h| h.get("Test"))
                .and_then(Value::as_array)
                .is_some_and(|t| t.first().and_then(Value::as_str) != Some("NONE")),
            network_mode: match string(host, "NetworkMode") {
                mode if mode.is_empty() => "default".to_string(),
                mode => mode,
            },
            restart: restart.map(|r| RestartPolicy {
                name: string(r, "Name"),
                max_retries: r
                    .get("MaximumRetryCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            }),
            port_bindings: port_bindings(host.get("PortBindings"))?,
            mounts: mounts(host.get("Mounts"))?,
            memory: host.get("Memory").and_then(Value::as_i64).unwrap_or(0),
            nano_cpus: host.get("NanoCpus").and_then(Value::as_i64).unwrap_or(0),
        })
    }
}

fn string(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A list of strings, or one string (Docker accepts `"Entrypoint": "sh"`).
fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        ),
        _ => None,
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `{"80/tcp": {}}` (Docker's form) or `["80/tcp"]`.
fn keys_or_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn port_bindings(v: Option<&Value>) -> Result<Vec<PortBindings>, Refusal> {
    let Some(map) = v.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (key, bindings) in map {
        if key
            .split_once('/')
            .map_or(key.as_str(), |(p, _)| p)
            .parse::<u16>()
            .is_err()
        {
            return Err(Refusal::BadRequest(format!(
                "invalid port specification: \"{key}\""
            )));
        }
        let list = bindings
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|b| (string(b, "HostIp"), string(b, "HostPort")))
                    .collect()
            })
            .unwrap_or_default();
        out.push((key.clone(), list));
    }
    Ok(out)
}

fn mounts(v: Option<&Value>) -> Result<Vec<MountSpec>, Refusal> {
    let Some(items) = v.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|m| {
            let typ = string(m, "Type");
            let target = string(m, "Target");
            if target.is_empty() {
                return Err(Refusal::BadRequest(
                    "invalid mount config: Target must not be empty".into(),
                ));
            }
            if !matches!(typ.as_str(), "volume" | "bind" | "tmpfs") {
                return Err(Refusal::BadRequest(format!(
                    "invalid mount config for type \"{typ}\""
                )));
            }
            Ok(MountSpec {
                typ,
                source: string(m, "Source"),
                target,
                read_only: m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_body_keeps_what_inspect_shows() {
        let body = serde_json::json!({
            "Image": "berth-test/busybox:1",
            "Entrypoint": "sleep",
            "Labels": {"io.berth.managed": "true"},
            "ExposedPorts": {"80/tcp": {}},
            "StopSignal": "SIGUSR1",
            "HostConfig": {
                "NetworkMode": "container:abc",
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]},
                "Mounts": [{"Type": "volume", "Source": "v", "Target": "/data"}]
            }
        });
        let spec = Spec::from_json(&body).unwrap();
        assert_eq!(spec.entrypoint, Some(vec!["sleep".to_string()]));
        assert_eq!(spec.exposed, vec!["80/tcp"]);
        assert_eq!(spec.network_mode, "container:abc");
        assert_eq!(spec.restart.as_ref().map(|r| r.max_retries), Some(3));
        assert_eq!(
            spec.port_bindings[0].1,
            vec![(String::new(), String::new())]
        );
        assert_eq!(spec.mounts[0].source, "v");
    }
}
