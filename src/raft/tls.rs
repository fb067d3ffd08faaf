//! Optional TLS between members (`--cluster-tls-dir` holding `ca.pem`, `cert.pem`, `key.pem`).
//!
//! The client side is here: every Raft and admin request is sent over rustls, trusting only the
//! cluster's CA (not the system roots: a public certificate for a member's name proves nothing
//! about cluster membership) and presenting this member's certificate as a client certificate.
//!
//! The server side is a documented follow-up: axum 0.8's `serve` speaks plain HTTP only, and the
//! Raft routes are merged into the controller's API listener, which would need a rustls acceptor
//! of its own (tokio-rustls + hyper-util's connection builder, or a TLS-terminating proxy in
//! front). Until then a member's URL is `https://` only behind such a proxy.

use std::path::{Path, PathBuf};

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
    /// The CA, certificate or key is not valid PEM of the expected kind.
    #[error("invalid TLS material in {path}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
}

/// The CA and this member's client identity, as PEM.
#[derive(Clone)]
pub struct ClusterTls {
    ca_pem: Vec<u8>,
    identity_pem: Vec<u8>,
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
        let ca_pem = read(dir.join(CA_FILE))?;
        let mut identity_pem = read(dir.join(CERT_FILE))?;
        identity_pem.push(b'\n');
        identity_pem.extend(read(dir.join(KEY_FILE))?);
        let tls = ClusterTls {
            ca_pem,
            identity_pem,
            dir: dir.to_path_buf(),
        };
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
        let identity =
            reqwest::Identity::from_pem(&self.identity_pem).map_err(invalid(CERT_FILE))?;
        Ok(builder
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .identity(identity)
            .https_only(true))
    }
}
