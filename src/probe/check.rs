//! One probe check: an `exec` in the container, an HTTP GET or a TCP connect to it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::docker::DockerHost;
use crate::manifest::ProbeAction;

/// Where a check goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: DockerHost,
    /// The container an `exec` runs in.
    pub container: String,
    /// The address for `httpGet`/`tcpSocket`: the container's own address when the controller
    /// can reach it, else a port published on its host. `None` when neither is known.
    pub addr: Option<SocketAddr>,
}

/// Runs one check; `Err` says why it failed, in words for the operator (`HTTP 500`,
/// `connection refused`, `exec exited with 1: ...`).
pub async fn check(
    target: &Target,
    action: &ProbeAction,
    timeout: Duration,
    http: &reqwest::Client,
) -> Result<(), String> {
    match action {
        ProbeAction::Exec { command } => {
            let (code, output) = target
                .host
                .exec(&target.container, command, timeout)
                .await
                .map_err(|e| crate::controller::error_chain(&e))?;
            if code == 0 {
                Ok(())
            } else if output.is_empty() {
                Err(format!("exec exited with {code}"))
            } else {
                Err(format!("exec exited with {code}: {output}"))
            }
        }
        ProbeAction::HttpGet {
            path,
            scheme,
            headers,
            host,
            ..
        } => {
            let addr = target
                .addr
                .ok_or_else(|| "no address to reach the container at".to_string())?;
            let authority = match host {
                Some(h) => format!("{h}:{}", addr.port()),
                None => addr.to_string(),
            };
            let url = format!(
                "{}://{authority}{}",
                scheme.to_ascii_lowercase(),
                if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/{path}")
                }
            );
            let mut request = http.get(&url).timeout(timeout);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(|e| {
                if e.is_timeout() {
                    format!("no answer within {timeout:?}")
                } else if e.is_connect() {
                    "connection refused".to_string()
                } else {
                    format!("request failed: {e}")
                }
            })?;
            let status = response.status();
            // Kubernetes: any code from 200 to 399 is a success.
            if (200..400).contains(&status.as_u16()) {
                Ok(())
            } else {
                Err(format!("HTTP {}", status.as_u16()))
            }
        }
        ProbeAction::TcpSocket { .. } => {
            let addr = target
                .addr
                .ok_or_else(|| "no address to reach the container at".to_string())?;
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("TCP connect to port {}: {e}", addr.port())),
                Err(_) => Err(format!(
                    "TCP connect to port {}: no answer within {timeout:?}",
                    addr.port()
                )),
            }
        }
    }
}
