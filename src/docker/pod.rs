//! Bringing one pod's containers into existence on a host, idempotently.
//!
//! `create_pod` may be interrupted anywhere (engine restart, leader change) and run again: it
//! looks at what exists under each container's name and only creates what is missing, then
//! starts whatever is not running. A container found under a berth name that is not the pod's
//! (another spec, joined to another holder) is left alone and reported: removing it is a
//! planned, graceful step of its own, never a side effect of creating.
//!
//! Images are not pulled here: the engine pulls them as a step of its own before anything of an
//! older pod is stopped ("image first"). A missing image fails the create.

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions};
use bollard::Docker;

use super::create::{
    add_env, add_hosts, container_body, container_name, empty_dir_volumes, holder_body, Identity,
};
use super::error::{is_not_found, DockerError};
use super::host::DockerHost;
use crate::reconcile::{labels, DesiredPod, HOLDER};
use crate::service::discovery::Discovery;

impl DockerHost {
    /// Creates and starts the pod's containers (its holder first, when it has one), returning
    /// the ids of its own containers in spec order. Running it twice returns the same ids and
    /// changes nothing. `ephemeral` lists container ports to publish on engine-picked ports.
    pub async fn create_pod(
        &self,
        pod: &DesiredPod,
        ephemeral: &[u16],
        term: u64,
    ) -> Result<Vec<String>, DockerError> {
        self.create_pod_with(pod, ephemeral, &Discovery::default(), term)
            .await
    }

    /// [`create_pod`](Self::create_pod), giving containers created now the Services'
    /// variables and hosts entries (`discovery`). Containers that exist already keep theirs:
    /// discovery is fixed at creation, as in Kubernetes.
    pub async fn create_pod_with(
        &self,
        pod: &DesiredPod,
        ephemeral: &[u16],
        discovery: &Discovery,
        term: u64,
    ) -> Result<Vec<String>, DockerError> {
        let id = Identity {
            cluster: self.cluster().to_string(),
            term,
        };
        if pod.spec.containers.is_empty() {
            return Err(DockerError::InvalidPod {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                reason: "a pod needs at least one container".into(),
            });
        }
        let docker = self.client().await?;
        for volume in empty_dir_volumes(pod, &id) {
            let name = volume.name.clone().unwrap_or_default();
            // Creating an existing named volume returns it: no need to look first.
            docker
                .create_volume(volume)
                .await
                .map_err(|e| self.err(format!("create volume {name}"), e))?;
        }
        let mut to_start: Vec<String> = Vec::new();
        let holder = if pod.has_holder() {
            let image = self.ensure_pause_image().await?;
            let name = container_name(&id.cluster, &pod.namespace, &pod.name, HOLDER);
            let id = match self.existing(docker, &name, pod, None).await? {
                Some((id, running)) => {
                    if !running {
                        to_start.push(id.clone());
                    }
                    id
                }
                None => {
                    let mut body = holder_body(pod, &image, ephemeral, &id);
                    add_hosts(&mut body, discovery);
                    self.create_one(docker, &name, body).await?
                }
            };
            // The holder must run before anything can join its namespace.
            self.start(std::slice::from_ref(&id)).await?;
            to_start.retain(|i| i != &id);
            Some(id)
        } else {
            None
        };
        let mut ids: Vec<String> = Vec::with_capacity(pod.spec.containers.len());
        for (index, c) in pod.spec.containers.iter().enumerate() {
            let name = container_name(&id.cluster, &pod.namespace, &pod.name, &c.name);
            let owner = holder.as_deref();
            match self.existing(docker, &name, pod, owner).await? {
                Some((id, running)) => {
                    if !running {
                        to_start.push(id.clone());
                    }
                    ids.push(id);
                }
                None => {
                    let mut body = container_body(pod, index, owner, ephemeral, &id)?;
                    add_env(&mut body, discovery);
                    if owner.is_none() {
                        add_hosts(&mut body, discovery);
                    }
                    let id = self.create_one(docker, &name, body).await?;
                    to_start.push(id.clone());
                    ids.push(id);
                }
            }
        }
        self.start(&to_start).await?;
        Ok(ids)
    }

    async fn create_one(
        &self,
        docker: &Docker,
        name: &str,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<String, DockerError> {
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                body,
            )
            .await
            .map_err(|e| self.err(format!("create container {name}"), e))?;
        for warning in &created.warnings {
            tracing::warn!(host = self.name(), container = %name, %warning, "docker create warning");
        }
        Ok(created.id)
    }

    /// What is under `name`: `None` when nothing is, `(id, running)` when the pod's own
    /// container is (its spec hash, joined to `network_owner`), an error when something else
    /// holds the name.
    async fn existing(
        &self,
        docker: &Docker,
        name: &str,
        pod: &DesiredPod,
        network_owner: Option<&str>,
    ) -> Result<Option<(String, bool)>, DockerError> {
        let found: ContainerInspectResponse = match docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(found) => found,
            Err(e) if is_not_found(&e) => return Ok(None),
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
        let mode = found
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref());
        let joined_right = match network_owner {
            None => !mode.is_some_and(|m| m.starts_with("container:")),
            Some(owner) => mode == Some(format!("container:{owner}").as_str()),
        };
        if !(same_spec && joined_right) {
            return Err(DockerError::NameInUse {
                host: self.name().to_string(),
                name: name.to_string(),
            });
        }
        let running = found
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false);
        Ok(Some((id, running)))
    }
}
