//! Making sure a container's image is on the host, as its `imagePullPolicy` asks.
//!
//! A failed pull is reported once, as [`DockerError::ImagePull`]; backoff and retries belong to
//! the caller, which knows how long the pod has been failing.

use std::time::Duration;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::TryStreamExt;

use super::error::{is_not_found, is_transport_failure, message_of, DockerError};
use super::host::DockerHost;
use crate::manifest::PullPolicy;

/// How long a pull may take to begin answering. A registry that resolves slowly is normal;
/// the short request timeout would turn it into a false "engine unreachable".
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

impl DockerHost {
    /// Ensures `image` is present per `policy`:
    /// - `IfNotPresent`: pull only when the engine does not have it;
    /// - `Always`: pull, but when that fails and a local copy exists, warn and use it (a host
    ///   without registry access must still run the images it has);
    /// - `Never`: never pull; absent is [`DockerError::ImageNotPresent`].
    pub async fn ensure_image(&self, image: &str, policy: PullPolicy) -> Result<(), DockerError> {
        let docker = self.client().await?;
        let present = match docker.inspect_image(image).await {
            Ok(_) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => return Err(self.err(format!("inspect image {image}"), e)),
        };
        match (policy, present) {
            (PullPolicy::IfNotPresent, true) => Ok(()),
            (PullPolicy::Never, true) => Ok(()),
            (PullPolicy::Never, false) => Err(DockerError::ImageNotPresent {
                host: self.name().to_string(),
                image: image.to_string(),
            }),
            (PullPolicy::IfNotPresent, false) => self.pull(docker, image).await,
            (PullPolicy::Always, _) => match self.pull(docker, image).await {
                Err(DockerError::ImagePull { message, .. }) if present => {
                    tracing::warn!(host = self.name(), image, %message, "pull failed; using the local image");
                    Ok(())
                }
                other => other,
            },
        }
    }

    /// Pulls `image` to the end of Docker's progress stream.
    async fn pull(&self, docker: &Docker, image: &str) -> Result<(), DockerError> {
        let started = std::time::Instant::now();
        let mut options = CreateImageOptionsBuilder::new().from_image(image);
        if is_name_only(image) {
            // Without a tag Docker would pull every tag of the repository.
            options = options.tag("latest");
        }
        let puller = docker.clone().with_timeout(PULL_TIMEOUT);
        let pulled: Result<Vec<_>, _> = puller
            .create_image(Some(options.build()), None, None)
            .try_collect()
            .await;
        match pulled {
            Ok(_) => {
                tracing::info!(host = self.name(), image, elapsed = ?started.elapsed(), "pulled image");
                Ok(())
            }
            // The engine itself went away: that is about the host, not the image.
            Err(e)
                if is_transport_failure(&e)
                    && !matches!(e, bollard::errors::Error::RequestTimeoutError) =>
            {
                Err(self.err(format!("pull image {image}"), e))
            }
            Err(e) => Err(DockerError::ImagePull {
                image: image.to_string(),
                message: message_of(&e),
            }),
        }
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
}
