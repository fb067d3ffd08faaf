//! Running a command in a container (`exec` readiness and liveness probes).

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::error::DockerError;
use super::host::DockerHost;

/// Output kept from a failing command, for the probe's failure message.
const KEPT_OUTPUT: usize = 200;

impl DockerHost {
    /// Runs `command` in container `id` and waits up to `timeout` for it to end. Returns its
    /// exit code and the start of what it printed.
    pub async fn exec(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<(i64, String), DockerError> {
        let docker = self.client().await?;
        let created = docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err(format!("exec in container {id}"), e))?;
        let run = async {
            let mut output = String::new();
            let started = docker
                .start_exec(
                    &created.id,
                    Some(StartExecOptions {
                        detach: false,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| self.err(format!("exec in container {id}"), e))?;
            if let StartExecResults::Attached {
                output: mut stream, ..
            } = started
            {
                while let Some(chunk) = stream.next().await {
                    if let Ok(chunk) = chunk {
                        if output.len() < KEPT_OUTPUT {
                            output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                        }
                    }
                }
            }
            let inspected = docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| self.err(format!("inspect exec in container {id}"), e))?;
            let mut cut = output.len().min(KEPT_OUTPUT);
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
            Ok((inspected.exit_code.unwrap_or(-1), output.trim().to_string()))
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| DockerError::Timeout {
                host: self.name().to_string(),
                action: format!("exec {:?} in container {id}", command.join(" ")),
                after: timeout,
            })?
    }
}
