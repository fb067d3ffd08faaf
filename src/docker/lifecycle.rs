//! Stopping, killing, restarting and removing containers, each a short request.
//!
//! Why not Docker's `stop`: it blocks for the whole grace period (up to a day), and a caller
//! waiting on it can do nothing else meanwhile. berth stops in steps instead: [`signal`] sends
//! the container's stop signal and returns at once, the engine looks again when the container
//! dies or its grace runs out, then [`kill`] and [`remove_containers`] finish the job. Every
//! step is idempotent: a container already stopped or gone counts as done.
//!
//! [`signal`]: DockerHost::signal
//! [`kill`]: DockerHost::kill
//! [`remove_containers`]: DockerHost::remove_containers

use bollard::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{KillContainerOptionsBuilder, RestartContainerOptionsBuilder};
use futures_util::future::try_join_all;

use super::error::{is_not_found, status_of, DockerError};
use super::host::DockerHost;

impl DockerHost {
    /// Asks each container to stop with its own stop signal (SIGTERM when `None`). Its restart
    /// policy is set to `no` first, so Docker does not start it again when it exits. Returns at
    /// once; containers not running (or gone) are skipped.
    pub async fn signal(&self, ids: &[(String, Option<String>)]) -> Result<(), DockerError> {
        let docker = self.client().await?;
        try_join_all(ids.iter().map(|(id, signal)| async move {
            let no_restart = ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            };
            match docker.update_container(id, no_restart).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(self.err(format!("update container {id}"), e)),
            }
            let signal = signal.as_deref().unwrap_or("SIGTERM");
            let options = KillContainerOptionsBuilder::new().signal(signal).build();
            match docker.kill_container(id, Some(options)).await {
                Ok(()) => Ok(()),
                Err(e) if gone_or_stopped(&e) => Ok(()),
                Err(e) => Err(self.err(format!("signal {signal} to container {id}"), e)),
            }
        }))
        .await?;
        Ok(())
    }

    /// SIGKILL. Containers not running (or gone) are skipped.
    pub async fn kill(&self, ids: &[String]) -> Result<(), DockerError> {
        let docker = self.client().await?;
        try_join_all(ids.iter().map(|id| async move {
            let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
            match docker.kill_container(id, Some(options)).await {
                Ok(()) => Ok(()),
                Err(e) if gone_or_stopped(&e) => Ok(()),
                Err(e) => Err(self.err(format!("kill container {id}"), e)),
            }
        }))
        .await?;
        Ok(())
    }

    /// Removes containers (stopped ones; a running one is killed) with their anonymous volumes.
    pub async fn remove_containers(&self, ids: &[String]) -> Result<(), DockerError> {
        let docker = self.client().await?;
        try_join_all(ids.iter().map(|id| self.remove_stopped(docker, id))).await?;
        Ok(())
    }

    /// Restarts running containers, giving each `grace_seconds` to stop first. Used when a
    /// container must rejoin its pod's network namespace or failed its liveness probe; the
    /// restart keeps the container (its id, logs and restart count).
    pub async fn restart(&self, ids: &[String], grace_seconds: u32) -> Result<(), DockerError> {
        let docker = self.client().await?;
        // The call lasts up to the grace period itself: give it that on top of the usual timeout.
        let restarter = docker.clone().with_timeout(
            self.request_timeout() + std::time::Duration::from_secs(grace_seconds.into()),
        );
        let t = i32::try_from(grace_seconds).unwrap_or(i32::MAX);
        for id in ids {
            let options = RestartContainerOptionsBuilder::new().t(t).build();
            match restarter.restart_container(id, Some(options)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(self.err(format!("restart container {id}"), e)),
            }
        }
        Ok(())
    }
}

/// 404 (gone) or 409 (not running, or already being removed): the wanted end state holds.
fn gone_or_stopped(e: &bollard::errors::Error) -> bool {
    is_not_found(e) || status_of(e) == Some(409) || status_of(e) == Some(304)
}
