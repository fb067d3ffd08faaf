//! Where a Docker engine listens, checked once when the host is configured, and how to build a
//! bollard client for it.
//!
//! Parsing is separate from connecting on purpose: a typo in the endpoint is a configuration
//! error to report at start-up, while a missing socket or a refused connection is a host that is
//! down right now and may come back (see [`DockerError::is_unreachable`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use super::error::DockerError;

/// The TLS client files, in the layout `docker --tlsverify` reads from `DOCKER_CERT_PATH`.
pub const TLS_FILES: [&str; 3] = ["ca.pem", "cert.pem", "key.pem"];

/// A parsed engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:///var/run/docker.sock`.
    Unix { path: PathBuf },
    /// `tcp://host:port` or `http://host:port`: plain HTTP, for loopback or trusted networks.
    Http { addr: String },
    /// `https://host:port` (or `tcp://` with a TLS directory, as `docker --tlsverify` reads it):
    /// mutual TLS with `ca.pem`, `cert.pem` and `key.pem` from `dir`.
    Https { addr: String, dir: PathBuf },
}

impl Endpoint {
    /// Checks `endpoint` (and the TLS files when it needs them) without contacting anything.
    pub fn parse(
        host: &str,
        endpoint: &str,
        tls_dir: Option<&Path>,
    ) -> Result<Endpoint, DockerError> {
        let bad = |reason: &str| DockerError::BadEndpoint {
            host: host.to_string(),
            endpoint: endpoint.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = endpoint
            .split_once("://")
            .ok_or_else(|| bad("expected unix:///path, tcp://host:port or https://host:port"))?;
        match scheme {
            "unix" => {
                if tls_dir.is_some() {
                    return Err(bad("a TLS directory makes no sense for a unix socket"));
                }
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(bad(
                        "the socket path must be absolute (unix:///var/run/docker.sock)",
                    ));
                }
                Ok(Endpoint::Unix {
                    path: PathBuf::from(rest),
                })
            }
            "tcp" | "http" | "https" => {
                let tls = scheme == "https" || (scheme == "tcp" && tls_dir.is_some());
                let addr = host_port(rest, if tls { 2376 } else { 2375 }).map_err(|r| bad(&r))?;
                if !tls {
                    if tls_dir.is_some() {
                        return Err(bad(
                            "a TLS directory was given for a plain http:// endpoint",
                        ));
                    }
                    return Ok(Endpoint::Http { addr });
                }
                let dir = tls_dir.ok_or_else(|| {
                    bad("https needs a TLS directory holding ca.pem, cert.pem and key.pem")
                })?;
                let missing: Vec<&'static str> = TLS_FILES
                    .into_iter()
                    .filter(|f| !dir.join(f).is_file())
                    .collect();
                if !missing.is_empty() {
                    return Err(DockerError::TlsFiles {
                        host: host.to_string(),
                        endpoint: endpoint.to_string(),
                        dir: dir.to_path_buf(),
                        missing,
                    });
                }
                Ok(Endpoint::Https {
                    addr,
                    dir: dir.to_path_buf(),
                })
            }
            _ => Err(bad(&format!(
                "unsupported scheme '{scheme}' (use unix, tcp or https)"
            ))),
        }
    }

    /// A bollard client for this endpoint, at bollard's newest API version (negotiated down
    /// by the caller once the engine answers). Contacts nothing; fails when the socket file is
    /// missing, which the caller reports as unreachable.
    pub(crate) fn client(
        &self,
        host: &str,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Docker, DockerError> {
        // bollard takes whole seconds; never let a sub-second timeout become "no time at all".
        let secs = timeout.as_secs().max(1);
        let built = match self {
            Endpoint::Unix { path } => {
                Docker::connect_with_unix(&path.to_string_lossy(), secs, API_DEFAULT_VERSION)
            }
            Endpoint::Http { addr } => Docker::connect_with_http(addr, secs, API_DEFAULT_VERSION),
            Endpoint::Https { addr, dir } => {
                let (addr, dir) = (addr.clone(), dir.clone());
                // rustls panics instead of erring when several crypto providers are compiled
                // in and none was installed for the process; turn that into an error here.
                std::panic::catch_unwind(move || {
                    Docker::connect_with_ssl(
                        &addr,
                        &dir.join("key.pem"),
                        &dir.join("cert.pem"),
                        &dir.join("ca.pem"),
                        secs,
                        API_DEFAULT_VERSION,
                    )
                })
                .map_err(|_| DockerError::Client {
                    host: host.to_string(),
                    endpoint: endpoint.to_string(),
                    message: "no TLS crypto provider installed for the process \
                              (install a rustls CryptoProvider at start-up)"
                        .to_string(),
                })?
            }
        };
        built.map_err(|e| match e {
            bollard::errors::Error::SocketNotFoundError(_) => {
                DockerError::from_bollard(host, "connect", e)
            }
            other => DockerError::Client {
                host: host.to_string(),
                endpoint: endpoint.to_string(),
                message: other.to_string(),
            },
        })
    }
}

/// `host:port` from the part after `scheme://`, with the default port filled in.
fn host_port(rest: &str, default_port: u16) -> Result<String, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err("no host given".into());
    }
    if rest.contains('/') || rest.contains('@') || rest.contains('?') {
        return Err("expected host:port with no path, user or query".into());
    }
    // `[::1]:2375` keeps its brackets; a bare `::1` cannot carry a port and is refused.
    let (name, port) = match rest.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && (!name.contains(':') || name.ends_with(']')) => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("port '{port}' is not a number from 1 to 65535"))?;
            if port == 0 {
                return Err("port 0 is not a port one can connect to".into());
            }
            (name, port)
        }
        Some(_) if !rest.starts_with('[') => {
            return Err("IPv6 addresses need brackets: tcp://[::1]:2375".into())
        }
        _ => (rest, default_port),
    };
    Ok(format!("{name}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(endpoint: &str) -> Result<Endpoint, DockerError> {
        Endpoint::parse("h", endpoint, None)
    }

    #[test]
    fn accepts_the_three_schemes() {
        assert_eq!(
            parse("unix:///var/run/docker.sock").unwrap(),
            Endpoint::Unix {
                path: "/var/run/docker.sock".into()
            }
        );
        assert_eq!(
            parse("tcp://10.0.0.5:2375").unwrap(),
            Endpoint::Http {
                addr: "10.0.0.5:2375".into()
            }
        );
        assert_eq!(
            parse("tcp://docker-1").unwrap(),
            Endpoint::Http {
                addr: "docker-1:2375".into()
            }
        );
        assert_eq!(
            parse("tcp://[::1]:2375/").unwrap(),
            Endpoint::Http {
                addr: "[::1]:2375".into()
            }
        );
    }

    #[test]
    fn refuses_typos_naming_the_endpoint() {
        for bad in [
            "/var/run/docker.sock",
            "unix://relative.sock",
            "ssh://me@box",
            "tcp://",
            "tcp://box:notaport",
            "tcp://box:2375/v1.41",
            "tcp://::1:2375",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, DockerError::BadEndpoint { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_tls_client_that_cannot_be_built_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        for f in TLS_FILES {
            std::fs::write(dir.path().join(f), "not a pem").unwrap();
        }
        let endpoint = Endpoint::parse("h", "https://box:2376", Some(dir.path())).unwrap();
        // Whether it builds depends on the process' rustls provider; it must never panic.
        match endpoint.client("h", "https://box:2376", Duration::from_secs(1)) {
            Ok(_) | Err(DockerError::Client { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn https_needs_a_tls_directory_with_all_three_files() {
        let err = parse("https://box:2376").unwrap_err();
        assert!(err.to_string().contains("TLS directory"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let err = Endpoint::parse("h", "https://box:2376", Some(dir.path())).unwrap_err();
        match &err {
            DockerError::TlsFiles { missing, .. } => assert_eq!(missing, &["cert.pem", "key.pem"]),
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("cert.pem, key.pem"), "{err}");

        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        std::fs::write(dir.path().join("key.pem"), "x").unwrap();
        assert_eq!(
            Endpoint::parse("h", "tcp://box", Some(dir.path())).unwrap(),
            Endpoint::Https {
                addr: "box:2376".into(),
                dir: dir.path().to_path_buf()
            }
        );
    }
}
