//! What can go wrong talking to one Docker engine, sorted by what the caller should do next.
//!
//! The reconciler needs one distinction above all: "the engine did not answer" (mark the node
//! not ready, remove nothing, look again later) versus "the engine answered and refused" (this
//! step failed; other steps on the node go on). [`DockerError::is_unreachable`] draws that line.

use std::path::PathBuf;

use bollard::errors::Error as BollardError;

/// Errors of [`crate::docker`]. Every variant that came from a request names the host.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The endpoint string is not one berth can use (`unix:///…`, `tcp://host:port`,
    /// `https://host:port`). Fatal: the host's configuration must be fixed.
    #[error("host {host}: bad Docker endpoint '{endpoint}': {reason}")]
    BadEndpoint {
        host: String,
        endpoint: String,
        reason: String,
    },

    /// A TLS endpoint without its client files. Fatal until the files are put in place.
    #[error("host {host}: TLS endpoint '{endpoint}' needs {} in {}", missing.join(", "), dir.display())]
    TlsFiles {
        host: String,
        endpoint: String,
        dir: PathBuf,
        /// File names (`ca.pem`, `cert.pem`, `key.pem`) that are absent.
        missing: Vec<&'static str>,
    },

    /// The client for an endpoint could not be built (unreadable certificate, no TLS crypto
    /// provider, ...). Fatal for this host.
    #[error("host {host}: cannot set up a Docker client for '{endpoint}': {message}")]
    Client {
        host: String,
        endpoint: String,
        message: String,
    },

    /// The engine did not answer: socket missing, connection refused or reset, or no response
    /// within the request timeout. Nothing is known about the host's containers; retry later.
    #[error("host {host}: Docker engine unreachable ({action})")]
    Unreachable {
        host: String,
        action: String,
        #[source]
        source: BollardError,
    },

    /// The engine answered a request with an error (conflict, bad parameter, ...). Retry later
    /// may help (a name race) or not (an invalid mount): the message says which.
    #[error("host {host}: {action} failed")]
    Request {
        host: String,
        action: String,
        #[source]
        source: BollardError,
    },

    /// An image could not be pulled (registry unreachable, unknown image, denied). The caller
    /// marks the pod `ErrImagePull` and retries with backoff; no retry happens here.
    #[error("pulling image '{image}' failed: {message}")]
    ImagePull { image: String, message: String },

    /// A call that berth bounds itself (an exec probe) did not end in time.
    #[error("host {host}: {action} did not end within {after:?}")]
    Timeout {
        host: String,
        action: String,
        after: std::time::Duration,
    },

    /// A berth container name is still held by an older container of the same pod, which the
    /// engine is stopping; creating waits for it.
    #[error("host {host}: container name '{name}' is still held by an older container of the pod (being removed)")]
    NameInUse { host: String, name: String },

    /// `imagePullPolicy: Never` and the image is not on the host.
    #[error("host {host}: image '{image}' is not present and imagePullPolicy is Never")]
    ImageNotPresent { host: String, image: String },

    /// The engine runs on a CPU architecture berth carries no pod holder binary for, so pods
    /// cannot be given their network holder there. Fatal for this host until berth supports
    /// the architecture; `architecture` is what the engine reports (`uname -m`).
    #[error(
        "host {host}: berth has no pod holder binary for architecture '{architecture}' \
         (it carries {supported})"
    )]
    UnsupportedArchitecture {
        host: String,
        architecture: String,
        /// The architectures berth does carry, for the message (`x86_64, aarch64`).
        supported: String,
    },

    /// A container with a berth name exists but lacks `io.berth.managed=true`: someone made it
    /// by hand, and berth never touches containers it does not manage.
    #[error("host {host}: container name '{name}' is taken by a container berth does not manage")]
    NameTaken { host: String, name: String },

    /// The pod cannot be mapped to containers (no containers, a mount naming no volume). The
    /// manifest validator should have caught it, so this points at a bug upstream.
    #[error("pod {namespace}/{pod}: {reason}")]
    InvalidPod {
        namespace: String,
        pod: String,
        reason: String,
    },
}

impl DockerError {
    /// The engine did not answer; the host's state is unknown (not empty).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DockerError::Unreachable { .. })
    }

    /// Sorts a bollard error into [`DockerError::Unreachable`] or [`DockerError::Request`].
    pub(crate) fn from_bollard(
        host: &str,
        action: impl Into<String>,
        source: BollardError,
    ) -> Self {
        let (host, action) = (host.to_string(), action.into());
        if is_transport_failure(&source) {
            DockerError::Unreachable {
                host,
                action,
                source,
            }
        } else {
            DockerError::Request {
                host,
                action,
                source,
            }
        }
    }
}

/// Errors that mean "no (complete) answer came back", as opposed to an answer saying no.
///
/// Connection-level hyper errors count as transport failures whatever their kind: a reset in
/// the middle of a response says as little about the engine's state as a refused connection.
pub(crate) fn is_transport_failure(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::RequestTimeoutError
            | BollardError::SocketNotFoundError(_)
            | BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
    )
}

/// The engine's HTTP status, when it answered with an error.
pub(crate) fn status_of(err: &BollardError) -> Option<u16> {
    match err {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine's own words for an error (without bollard's prefix), for messages to operators.
pub(crate) fn message_of(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// `404 no such container/image/volume`.
pub(crate) fn is_not_found(err: &BollardError) -> bool {
    status_of(err) == Some(404)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_timeouts_are_unreachable_but_server_errors_are_not() {
        let timeout = DockerError::from_bollard("h", "list", BollardError::RequestTimeoutError);
        assert!(timeout.is_unreachable());
        let missing = DockerError::from_bollard(
            "h",
            "list",
            BollardError::SocketNotFoundError("/nope".into()),
        );
        assert!(missing.is_unreachable());
        let conflict = DockerError::from_bollard(
            "h",
            "create",
            BollardError::DockerResponseServerError {
                status_code: 409,
                message: "name in use".into(),
            },
        );
        assert!(!conflict.is_unreachable());
    }
}
