//! One Docker engine and the plain calls on it: info, start, stop-and-remove, volume cleanup.
//!
//! The bollard client is built on first use, not in [`DockerHost::connect`], for two reasons:
//! the API version must be negotiated with the engine (bollard speaks 1.53; an engine of the
//! Docker 20.10 line refuses anything above 1.41, and Docker 29 refuses anything below 1.44), and
//! a host whose engine is down at start-up must still be configurable: its calls then fail as
//! [`DockerError::is_unreachable`] until the engine answers. Once built, the client (and its
//! connection pool) is shared by every clone of the `DockerHost`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptions,
    StartContainerOptions,
};
use bollard::Docker;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OnceCell};

use super::endpoint::Endpoint;
use super::error::{is_not_found, status_of, DockerError};
use crate::reconcile::{belongs_to, labels, DEFAULT_CLUSTER};

/// Upper bound for one request to answer (response headers for streams). Short, so that a
/// host that vanished is reported unreachable in seconds instead of stalling a reconcile pass.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the scheduler needs to know of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The engine's version (`20.10.24+dfsg1`).
    pub version: String,
    pub cpus: u32,
    pub memory_bytes: u64,
}

/// A Docker engine berth manages containers on. Cheap to clone; clones share one client.
#[derive(Clone)]
pub struct DockerHost {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    endpoint: String,
    parsed: Endpoint,
    timeout: Duration,
    client: OnceCell<Docker>,
    /// Held while the pod holder image is imported, so that concurrent pod creations on this
    /// host import it once (the others wait, then find it), not once each.
    pause_import: Mutex<()>,
    /// One lock per image being pulled (see `image.rs`).
    pull_gates: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The controller cluster this client works for: only its containers are seen and touched.
    cluster: String,
    /// `--node-advertise`: where its published ports are reached, over the endpoint's host.
    advertise: Option<String>,
}

impl std::fmt::Debug for DockerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerHost")
            .field("name", &self.inner.name)
            .field("endpoint", &self.inner.endpoint)
            .finish()
    }
}

impl DockerHost {
    /// Checks the endpoint (and TLS files) and prepares the host. Contacts nothing: an engine
    /// that is down shows up as unreachable on the first call, not here.
    pub fn connect(
        name: &str,
        endpoint: &str,
        tls_dir: Option<&Path>,
    ) -> Result<DockerHost, DockerError> {
        Self::connect_with_timeout(name, endpoint, tls_dir, REQUEST_TIMEOUT)
    }

    /// [`DockerHost::connect`] with another request timeout (whole seconds, at least one).
    pub fn connect_with_timeout(
        name: &str,
        endpoint: &str,
        tls_dir: Option<&Path>,
        timeout: Duration,
    ) -> Result<DockerHost, DockerError> {
        let parsed = Endpoint::parse(name, endpoint, tls_dir)?;
        if matches!(parsed, Endpoint::Https { .. }) {
            // Certificates are read now so that a broken file is a start-up error.
            parsed.client(name, endpoint, timeout)?;
        }
        Ok(DockerHost {
            inner: Arc::new(Inner {
                name: name.to_string(),
                endpoint: endpoint.to_string(),
                parsed,
                timeout,
                client: OnceCell::new(),
                pause_import: Mutex::new(()),
                pull_gates: Mutex::new(HashMap::new()),
                cluster: DEFAULT_CLUSTER.to_string(),
                advertise: None,
            }),
        })
    }

    /// The same host, for the controller cluster `cluster` (`--cluster-name`): it sees and
    /// touches only that cluster's containers and volumes, and names and labels what it
    /// creates with it. Call before any request (clients are shared by clones).
    pub fn for_cluster(self, cluster: &str) -> DockerHost {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            name: shared.name.clone(),
            endpoint: shared.endpoint.clone(),
            parsed: shared.parsed.clone(),
            timeout: shared.timeout,
            client: OnceCell::new(),
            pause_import: Mutex::new(()),
            pull_gates: Mutex::new(HashMap::new()),
            cluster: shared.cluster.clone(),
            advertise: shared.advertise.clone(),
        });
        DockerHost {
            inner: Arc::new(Inner {
                cluster: cluster.to_string(),
                ..inner
            }),
        }
    }

    /// The same host, its published ports reached at `advertise` when given (`--node-advertise`).
    /// Call before any request, as [`DockerHost::for_cluster`].
    pub fn advertised_at(self, advertise: Option<String>) -> DockerHost {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => DockerHost {
                inner: Arc::new(Inner { advertise, ..inner }),
            },
            Err(shared) => {
                let h = DockerHost { inner: shared }.for_cluster_copy();
                h.advertised_at(advertise)
            }
        }
    }

    fn for_cluster_copy(&self) -> DockerHost {
        self.clone().for_cluster(&self.inner.cluster.clone())
    }

    /// The controller cluster this host is seen for.
    pub fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    /// The host's name, as berth's configuration calls it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The endpoint, parsed.
    pub(crate) fn parsed_endpoint(&self) -> &Endpoint {
        &self.inner.parsed
    }

    /// The shared client, built and version-negotiated on first success.
    pub(crate) async fn client(&self) -> Result<&Docker, DockerError> {
        let inner = &self.inner;
        inner
            .client
            .get_or_try_init(|| async {
                let docker = inner
                    .parsed
                    .client(&inner.name, &inner.endpoint, inner.timeout)?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| DockerError::from_bollard(&inner.name, "negotiate API version", e))
            })
            .await
    }

    /// The lock that serialises imports of the pod holder image on this host.
    pub(crate) fn pause_import(&self) -> &Mutex<()> {
        &self.inner.pause_import
    }

    pub(crate) fn pull_gates(&self) -> &Mutex<HashMap<String, Arc<Mutex<()>>>> {
        &self.inner.pull_gates
    }

    /// The host's own address, for a remote engine (`tcp://10.0.0.5:2375` → `10.0.0.5`): where
    /// its published ports answer. `None` for a local socket.
    pub fn public_host(&self) -> Option<String> {
        if let Some(a) = &self.inner.advertise {
            return Some(a.clone());
        }
        let addr = match &self.inner.parsed {
            Endpoint::Unix { .. } => return None,
            Endpoint::Http { addr } | Endpoint::Https { addr, .. } => addr,
        };
        let host = match addr.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => addr.as_str(),
        };
        Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
    }

    /// The timeout of one ordinary request.
    pub fn request_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Is the engine on this machine (a `unix://` socket)? Then its containers' addresses on
    /// the engine's bridge are reachable from here, as on any Docker host; a remote engine's
    /// containers are reached through ports published on the host instead.
    pub fn is_local(&self) -> bool {
        matches!(self.inner.parsed, Endpoint::Unix { .. })
    }

    /// Wraps a bollard error with this host's name and what was being done.
    pub(crate) fn err(&self, action: impl Into<String>, e: bollard::errors::Error) -> DockerError {
        DockerError::from_bollard(&self.inner.name, action, e)
    }

    /// Engine version, CPUs and memory.
    pub async fn info(&self) -> Result<NodeInfo, DockerError> {
        let docker = self.client().await?;
        let info = docker.info().await.map_err(|e| self.err("info", e))?;
        Ok(NodeInfo {
            version: info.server_version.unwrap_or_default(),
            cpus: info.ncpu.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            memory_bytes: info.mem_total.unwrap_or(0).max(0) as u64,
        })
    }

    /// Starts containers in the order given (a pod's network owner first). Starting a running
    /// container is a no-op.
    pub async fn start(&self, ids: &[String]) -> Result<(), DockerError> {
        let docker = self.client().await?;
        for id in ids {
            match docker
                .start_container(id, None::<StartContainerOptions>)
                .await
            {
                Ok(()) => {}
                // Already started (304): the wanted end state.
                Err(e) if status_of(&e) == Some(304) => {}
                Err(e) => return Err(self.err(format!("start container {id}"), e)),
            }
        }
        Ok(())
    }

    /// Force-removes one container with its anonymous volumes.
    pub(crate) async fn remove_stopped(
        &self,
        docker: &Docker,
        id: &str,
    ) -> Result<(), DockerError> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Another caller is removing it right now: the end state is the same.
            Err(e)
                if status_of(&e) == Some(409) && e.to_string().contains("already in progress") =>
            {
                Ok(())
            }
            Err(e) => Err(self.err(format!("remove container {id}"), e)),
        }
    }

    /// Removes the pod's `emptyDir` volumes. Call it once the pod's containers are gone: a
    /// volume still in use is an error, never removed from under a container.
    pub async fn remove_pod_volumes(&self, namespace: &str, pod: &str) -> Result<(), DockerError> {
        let docker = self.client().await?;
        let filters: HashMap<&str, Vec<String>> = HashMap::from([(
            "label",
            vec![
                format!("{}=true", labels::MANAGED),
                format!("{}={namespace}", labels::NAMESPACE),
                format!("{}={pod}", labels::POD),
            ],
        )]);
        let listed = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| self.err(format!("list volumes of {namespace}/{pod}"), e))?;
        let ours = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .filter(|v| belongs_to(&v.labels, self.cluster()));
        for volume in ours {
            match docker
                .remove_volume(&volume.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(self.err(format!("remove volume {}", volume.name), e)),
            }
        }
        Ok(())
    }
}
