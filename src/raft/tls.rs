//! Optional TLS between members (`--cluster-tls-dir` holding `ca.pem`, `cert.pem`, `key.pem`).
//!
//! The client side is here: every Raft and admin request is sent over rustls, trusting only the
//! cluster's CA (not the system roots: a public certificate for a member's name proves nothing
//! about cluster membership) and presenting this member's certificate as a client certificate.
//!
//! The server side is `tls_server.rs`: [`serve_raft_tls`](super::serve_raft_tls) serves any
//! router (the Raft routes alone on `--raft-listen`, or the controller's whole API with the Raft
//! routes merged in) over rustls, requiring a client certificate from the same CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names inside the TLS directory.
pub const CA_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// Why the TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file of the TLS directory could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The server side refused the CA, certificate or key.
    #[error("invalid TLS material in {dir}: {reason}")]
    Server { dir: PathBuf, reason: String },
    /// The CA, certificate or key is not valid PEM of the expected kind.
    #[error("invalid TLS material in {path}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
}

/// The CA and this member's certificate and key, as PEM.
#[derive(Clone)]
pub struct ClusterTls {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    dir: PathBuf,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("dir", &self.dir)
            .finish()
    }
}

fn read(path: PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&path).map_err(|source| TlsError::Read { path, source })
}

impl ClusterTls {
    /// Loads and checks `ca.pem`, `cert.pem` and `key.pem` from `dir`.
    pub fn from_dir(dir: &Path) -> Result<ClusterTls, TlsError> {
        let tls = ClusterTls {
            ca_pem: read(dir.join(CA_FILE))?,
            cert_pem: read(dir.join(CERT_FILE))?,
            key_pem: read(dir.join(KEY_FILE))?,
            dir: dir.to_path_buf(),
        };
        tls.server_config()?;
        // Fail at start-up, not at the first RPC.
        tls.configure(reqwest::Client::builder())?
            .build()
            .map_err(|source| TlsError::Invalid {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(tls)
    }

    /// `builder` set to trust only the cluster CA and to present this member's certificate.
    pub(crate) fn configure(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, TlsError> {
        let invalid = |file: &str| {
            let path = self.dir.join(file);
            move |source| TlsError::Invalid { path, source }
        };
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).map_err(invalid(CA_FILE))?;
        let mut identity_pem = self.cert_pem.clone();
        identity_pem.push(b'\n');
        identity_pem.extend_from_slice(&self.key_pem);
        let identity = reqwest::Identity::from_pem(&identity_pem).map_err(invalid(CERT_FILE))?;
        Ok(builder
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(identity)
            .https_only(true))
    }
}

impl ClusterTls {
    /// rustls' server side: this member's certificate, client certificates required and
    /// checked against the cluster CA.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        super::tls_server::server_config(&self.ca_pem, &self.cert_pem, &self.key_pem).map_err(
            |reason| TlsError::Server {
                dir: self.dir.clone(),
                reason,
            },
        )
    }
}
