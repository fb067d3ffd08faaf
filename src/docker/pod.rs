//! Bringing one pod's containers into existence on a host, idempotently.
//!
//! `create_pod` may be interrupted anywhere (engine restart, leader change) and run again: it
//! looks at what exists under each container's name and only does what is missing. A container
//! is kept when it carries the pod's spec hash and, for containers 1.., still joins the network
//! namespace of the current container 0; anything else under a berth name is stale and replaced.

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions};
use bollard::Docker;

use super::create::{container_body, container_name, empty_dir_volumes};
use super::error::{is_not_found, DockerError};
use super::host::DockerHost;
use crate::manifest::DEFAULT_GRACE_SECONDS;
use crate::reconcile::{labels, DesiredPod};

/// What is found under one container name.
enum Existing {
    Absent,
    /// Up to date; `running` says whether it still needs a start.
    Keep {
        id: String,
        running: bool,
    },
    /// A managed container from another spec (or joined to a gone container 0).
    Stale {
        id: String,
        grace: u32,
    },
}

impl DockerHost {
    /// Creates and starts the pod's containers, returning their ids in index order.
    ///
    /// Order of work: images (per pull policy), `emptyDir` volumes, then each container in index
    /// order (container 0 first: the others join its network namespace), then starts, again in
    /// index order. Running it twice returns the same ids and changes nothing.
    pub async fn create_pod(&self, pod: &DesiredPod) -> Result<Vec<String>, DockerError> {
        if pod.spec.containers.is_empty() {
            return Err(DockerError::InvalidPod {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                reason: "a pod needs at least one container".into(),
            });
        }
        let docker = self.client().await?;
        for c in &pod.spec.containers {
            self.ensure_image(&c.image, c.image_pull_policy).await?;
        }
        for volume in empty_dir_volumes(pod) {
            let name = volume.name.clone().unwrap_or_default();
            // Creating an existing named volume returns it: no need to look first.
            docker
                .create_volume(volume)
                .await
                .map_err(|e| self.err(format!("create volume {name}"), e))?;
        }

        let mut ids: Vec<String> = Vec::with_capacity(pod.spec.containers.len());
        let mut to_start: Vec<String> = Vec::new();
        for (index, c) in pod.spec.containers.iter().enumerate() {
            let name = container_name(&pod.namespace, &pod.name, &c.name);
            let owner = ids.first().map(String::as_str);
            match self.existing(docker, &name, pod, owner).await? {
                Existing::Keep { id, running } => {
                    if !running {
                        to_start.push(id.clone());
                    }
                    ids.push(id);
                    continue;
                }
                Existing::Stale { id, grace } => {
                    tracing::info!(host = self.name(), container = %name, "replacing stale container");
                    self.remove(std::slice::from_ref(&id), grace).await?;
                }
                Existing::Absent => {}
            }
            let body = container_body(pod, index, owner)?;
            let created = docker
                .create_container(
                    Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                    body,
                )
                .await
                .map_err(|e| self.err(format!("create container {name}"), e))?;
            for warning in &created.warnings {
                tracing::warn!(host = self.name(), container = %name, %warning, "docker create warning");
            }
            to_start.push(created.id.clone());
            ids.push(created.id);
        }
        self.start(&to_start).await?;
        Ok(ids)
    }

    /// Sorts what is found under `name` into keep, stale or absent.
    async fn existing(
        &self,
        docker: &Docker,
        name: &str,
        pod: &DesiredPod,
        network_owner: Option<&str>,
    ) -> Result<Existing, DockerError> {
        let found: ContainerInspectResponse = match docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(Existing::Absent),
            Err(e) => return Err(self.err(format!("inspect container {name}"), e)),
        };
        let id = found.id.clone().unwrap_or_else(|| name.to_string());
        let container_labels = found
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if container_labels.get(labels::MANAGED).map(String::as_str) != Some("true") {
            return Err(DockerError::NameTaken {
                host: self.name().to_string(),
                name: name.to_string(),
            });
        }
        let same_spec = container_labels.get(labels::SPEC_HASH) == Some(&pod.spec_hash);
        let joined_right = match network_owner {
            None => true,
            Some(owner) => {
                let mode = found
                    .host_config
                    .as_ref()
                    .and_then(|h| h.network_mode.as_deref());
                mode == Some(format!("container:{owner}").as_str())
            }
        };
        if same_spec && joined_right {
            let running = found
                .state
                .as_ref()
                .and_then(|s| s.running)
                .unwrap_or(false);
            return Ok(Existing::Keep { id, running });
        }
        let grace = container_labels
            .get(labels::GRACE)
            .and_then(|g| g.parse().ok())
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Ok(Existing::Stale { id, grace })
    }
}
