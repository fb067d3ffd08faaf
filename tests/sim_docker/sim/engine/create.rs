//! Adding containers to a host's table, changing their restart policy, removing them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::container::{Container, RestartPolicy, Run, Spec, Status};
use super::Engine;
use crate::sim::error::Refusal;
use crate::sim::time::now;

/// Docker's rule for container names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Engine {
    /// `POST /containers/create`: the new container's id. Named volumes it mounts are created
    /// with it, as Docker does; the container it may join (`container:<id>`) is looked up
    /// only when it starts, as Docker does too.
    pub fn create(&mut self, name: Option<&str>, body: &Value) -> Result<String, Refusal> {
        let name = match name.map(|n| n.strip_prefix('/').unwrap_or(n)) {
            Some(n) if !n.is_empty() => {
                if !valid_name(n) {
                    return Err(Refusal::BadRequest(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            _ => format!("sim_{}", self.seq + 1),
        };
        if let Some(id) = self.names.get(&name) {
            return Err(Refusal::NameInUse {
                name,
                id: id.clone(),
            });
        }
        let reference = body
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let image = self.image(reference)?.clone();
        let mut spec = Spec::from_json(body)?;
        // The image's environment, overridden by the container's, as Docker merges them.
        let own = std::mem::take(&mut spec.env);
        let key = |e: &String| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string());
        let mut env: Vec<String> = image
            .config
            .env
            .iter()
            .filter(|e| !own.iter().any(|o| key(o) == key(e)))
            .cloned()
            .collect();
        env.extend(own);
        spec.env = env;
        let (path, args) = {
            let entrypoint = spec.entrypoint.clone().or(image.config.entrypoint.clone());
            let cmd = match (&spec.entrypoint, &spec.cmd) {
                (_, Some(cmd)) => cmd.clone(),
                (Some(_), None) => Vec::new(),
                (None, None) => image.config.cmd.clone().unwrap_or_default(),
            };
            let mut argv = entrypoint.unwrap_or_default();
            argv.extend(cmd);
            if argv.is_empty() {
                return Err(Refusal::BadRequest("No command specified".into()));
            }
            (argv[0].clone(), argv[1..].to_vec())
        };
        for m in spec.mounts.iter().filter(|m| m.typ == "volume") {
            self.create_volume(&m.source, BTreeMap::new());
        }
        let id = self.new_id();
        let container = Container {
            id: id.clone(),
            name: name.clone(),
            created: now(),
            image: reference.to_string(),
            image_id: image.id.clone(),
            path,
            args,
            spec: Box::new(spec),
            run: Run {
                status: Status::Created,
                pid: 0,
                exit_code: 0,
                error: String::new(),
                started_at: 0,
                finished_at: 0,
                restart_count: 0,
                manually_stopped: false,
                generation: 0,
                backoff_ms: 0,
                ip: None,
                published: Vec::new(),
            },
            exec_exit_code: None,
        };
        self.names.insert(name, id.clone());
        self.events.container(&container, "create", &[]);
        self.containers.insert(id.clone(), container);
        Ok(id)
    }

    /// `POST /containers/{id}/update`: only the restart policy is kept.
    pub fn update(&mut self, reference: &str, body: &Value) -> Result<(), Refusal> {
        let id = self.resolve(reference)?.to_string();
        let c = self
            .containers
            .get_mut(&id)
            .expect("resolved id is in the table");
        if let Some(r) = body.get("RestartPolicy").filter(|r| !r.is_null()) {
            c.spec.restart = Some(RestartPolicy {
                name: r
                    .get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                max_retries: r
                    .get("MaximumRetryCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            });
        }
        self.events.container(&self.containers[&id], "update", &[]);
        Ok(())
    }

    /// `DELETE /containers/{id}`: a running container only with `force` (killed first).
    /// Named volumes stay, as with Docker's `v=1`, which removes anonymous ones only.
    pub fn remove(&mut self, reference: &str, force: bool) -> Result<(), Refusal> {
        let id = self.resolve(reference)?.to_string();
        if self.containers[&id].is_running() {
            if !force {
                return Err(Refusal::RemoveRunning(id));
            }
            self.signal(&id, 9)?;
        }
        let c = self
            .containers
            .remove(&id)
            .expect("resolved id is in the table");
        self.names.remove(&c.name);
        self.execs.forget_container(&id);
        self.events.container(&c, "destroy", &[]);
        Ok(())
    }
}
