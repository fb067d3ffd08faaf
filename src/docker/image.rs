//! Making sure a container's image is on the host, as its `imagePullPolicy` asks.
//!
//! A failed pull is reported once, as [`DockerError::ImagePull`]; backoff and retries belong to
//! the caller, which knows how long the pod has been failing. A pull has no overall deadline
//! (a large image on a slow link is legitimate) but fails when the registry sends no progress
//! for [`PullSettings::stall`]. Two pods wanting the same image on one host share one pull.
//!
//! Credentials for private registries come from a Docker `config.json` (`--registry-auth`):
//! they are sent to the engine for the matching registry only, and never appear in logs,
//! errors or the API ([`RegistryAuth`]'s `Debug` lists registries, not secrets).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use super::error::{is_not_found, is_transport_failure, message_of, DockerError};
use super::host::DockerHost;
use crate::manifest::PullPolicy;

/// How long a pull may go without any progress from the registry.
pub const DEFAULT_PULL_STALL: Duration = Duration::from_secs(60);

/// How berth pulls images: shared by every host.
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// `imagePullPolicy: Always` and the pull fails, but the host holds that exact reference:
    /// use it, with a warning on the pod (for hosts without a registry). `--pull-fallback`.
    pub fallback: bool,
    pub stall: Duration,
    pub auth: RegistryAuth,
}

impl Default for PullSettings {
    fn default() -> PullSettings {
        PullSettings {
            fallback: true,
            stall: DEFAULT_PULL_STALL,
            auth: RegistryAuth::default(),
        }
    }
}

/// Registry credentials by registry host, from a Docker `config.json`'s `auths`.
#[derive(Clone, Default)]
pub struct RegistryAuth {
    by_registry: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut registries: Vec<&String> = self.by_registry.keys().collect();
        registries.sort();
        f.debug_struct("RegistryAuth")
            .field("registries", &registries)
            .finish()
    }
}

/// Why a `--registry-auth` file could not be used. Never holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("--registry-auth {path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl RegistryAuth {
    /// Reads Docker's `config.json` format: `{"auths": {"REGISTRY": {"auth": base64("user:pw")}
    /// or {"username": .., "password": ..}}}`. Other keys (credential helpers) are ignored.
    pub fn from_file(path: &Path) -> Result<RegistryAuth, AuthFileError> {
        let invalid = |reason: String| AuthFileError::Invalid {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON ({e})")))?;
        let auths = json
            .get("auths")
            .and_then(|a| a.as_object())
            .ok_or_else(|| invalid("no \"auths\" object".into()))?;
        let mut by_registry = HashMap::new();
        for (registry, entry) in auths {
            let pair = if let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        invalid(format!(
                            "the \"auth\" of {registry} is not base64 user:password"
                        ))
                    })?;
                let (user, password) = decoded.split_once(':').ok_or_else(|| {
                    invalid(format!("the \"auth\" of {registry} is not user:password"))
                })?;
                (user.to_string(), password.to_string())
            } else {
                let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).map(String::from);
                match (field("username"), field("password")) {
                    (Some(u), Some(p)) => (u, p),
                    _ => {
                        return Err(invalid(format!(
                            "{registry} has neither \"auth\" nor \"username\" and \"password\""
                        )))
                    }
                }
            };
            by_registry.insert(normalise_registry(registry), pair);
        }
        Ok(RegistryAuth { by_registry })
    }

    /// Credentials for the registry `image` is pulled from, if any.
    pub fn for_image(&self, image: &str) -> Option<DockerCredentials> {
        let registry = registry_of(image);
        let (user, password) = self.by_registry.get(&registry)?;
        Some(DockerCredentials {
            username: Some(user.clone()),
            password: Some(password.clone()),
            serveraddress: Some(registry),
            ..Default::default()
        })
    }
}

/// `https://index.docker.io/v1/` and `docker.io` are one registry; a scheme and trailing slash
/// do not matter.
fn normalise_registry(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key)
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

/// The registry of an image reference, as Docker decides it: the first path component when it
/// looks like a host (`.`, `:` or `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_ascii_lowercase()
        }
        _ => "docker.io".to_string(),
    }
}

impl DockerHost {
    /// Ensures `image` is present per `policy`:
    /// - `IfNotPresent`: pull only when the engine does not have it;
    /// - `Always`: pull; when that fails, the host holds the reference and
    ///   [`PullSettings::fallback`] is on, use it and return the warning to show on the pod;
    /// - `Never`: never pull; absent is [`DockerError::ImageNotPresent`].
    pub async fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        settings: &PullSettings,
    ) -> Result<Option<String>, DockerError> {
        let docker = self.client().await?;
        // One pull of an image per host at a time; a second asker finds it there after.
        let gate = self.pull_gate(image).await;
        let _one_at_a_time = gate.lock().await;
        let present = match docker.inspect_image(image).await {
            Ok(_) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(self.err(format!("inspect image {image}"), e)),
        };
        match (policy, present) {
            (PullPolicy::IfNotPresent | PullPolicy::Never, true) => Ok(None),
            (PullPolicy::Never, false) => Err(DockerError::ImageNotPresent {
                host: self.name().to_string(),
                image: image.to_string(),
            }),
            (PullPolicy::IfNotPresent, false) => {
                self.pull(docker, image, settings).await.map(|()| None)
            }
            (PullPolicy::Always, _) => match self.pull(docker, image, settings).await {
                Err(DockerError::ImagePull { message, .. }) if present && settings.fallback => {
                    let warning = format!(
                        "pulling {image} failed ({message}); using the image already on {}",
                        self.name()
                    );
                    tracing::warn!(
                        host = self.name(),
                        image,
                        "pull failed; using the local image"
                    );
                    Ok(Some(warning))
                }
                other => other.map(|()| None),
            },
        }
    }

    async fn pull_gate(&self, image: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.pull_gates().lock().await;
        // Forget gates nobody holds, so the map does not grow with every image ever pulled.
        gates.retain(|_, g| Arc::strong_count(g) > 1);
        gates.entry(image.to_string()).or_default().clone()
    }

    /// Pulls `image` to the end of Docker's progress stream, failing when it stalls.
    async fn pull(
        &self,
        docker: &Docker,
        image: &str,
        settings: &PullSettings,
    ) -> Result<(), DockerError> {
        let started = std::time::Instant::now();
        let mut options = CreateImageOptionsBuilder::new().from_image(image);
        if is_name_only(image) {
            // Without a tag Docker would pull every tag of the repository.
            options = options.tag("latest");
        }
        // The stall deadline below bounds the wait; the client's own must not cut a long pull.
        let puller = docker.clone().with_timeout(Duration::from_secs(24 * 3600));
        let credentials = settings.auth.for_image(image);
        let mut progress = puller.create_image(Some(options.build()), None, credentials);
        loop {
            match tokio::time::timeout(settings.stall, progress.next()).await {
                Err(_) => {
                    return Err(DockerError::ImagePull {
                        image: image.to_string(),
                        message: format!("no progress for {:?}", settings.stall),
                    })
                }
                Ok(None) => break,
                Ok(Some(Ok(_))) => {}
                // The engine itself went away: that is about the host, not the image.
                Ok(Some(Err(e)))
                    if is_transport_failure(&e)
                        && !matches!(e, bollard::errors::Error::RequestTimeoutError) =>
                {
                    return Err(self.err(format!("pull image {image}"), e))
                }
                Ok(Some(Err(e))) => {
                    return Err(DockerError::ImagePull {
                        image: image.to_string(),
                        message: message_of(&e),
                    })
                }
            }
        }
        tracing::info!(host = self.name(), image, elapsed = ?started.elapsed(), "pulled image");
        Ok(())
    }
}

/// `redis` or `localhost:5000/app`: no tag and no digest.
fn is_name_only(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    !last.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_untagged_undigested_references_are_name_only() {
        assert!(is_name_only("redis"));
        assert!(is_name_only("localhost:5000/app"));
        assert!(!is_name_only("redis:7"));
        assert!(!is_name_only("localhost:5000/app:v1"));
        assert!(!is_name_only("app@sha256:abcd"));
    }

    #[test]
    fn registries_are_found_as_docker_finds_them() {
        assert_eq!(registry_of("redis:7"), "docker.io");
        assert_eq!(registry_of("library/redis"), "docker.io");
        assert_eq!(
            registry_of("10.213.4.1:5000/berth/app:1"),
            "10.213.4.1:5000"
        );
        assert_eq!(
            registry_of("registry.example.org/shop/web"),
            "registry.example.org"
        );
        assert_eq!(registry_of("localhost/app"), "localhost");
    }

    #[test]
    fn a_docker_config_gives_credentials_per_registry_and_never_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("berth:s3cret-pw");
        std::fs::write(
            &path,
            format!(r#"{{"auths": {{"10.213.4.1:5000": {{"auth": "{auth}"}}, "https://index.docker.io/v1/": {{"username": "u", "password": "p"}}}}, "credsStore": "x"}}"#),
        )
        .unwrap();
        let auth = RegistryAuth::from_file(&path).unwrap();
        let creds = auth.for_image("10.213.4.1:5000/berth/app:1").unwrap();
        assert_eq!(
            (creds.username.as_deref(), creds.password.as_deref()),
            (Some("berth"), Some("s3cret-pw"))
        );
        assert!(auth.for_image("redis:7").is_some());
        assert!(auth.for_image("quay.io/x/y").is_none());
        assert!(!format!("{auth:?}").contains("s3cret"));
        std::fs::write(&path, r#"{"auths": {"r": {"auth": "bm8tY29sb24="}}}"#).unwrap();
        let e = RegistryAuth::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("is not user:password"), "{e}");
    }
}
