//! Connecting to the remote with berth's time limits and credentials applied, per scheme.
//!
//! - `http(s)://`: gix's reqwest client, configured through its hooks. Every request gets the
//!   stall timeout for connecting and for each wait on the server; requests that only list refs
//!   (small answers) also get the time left before the deadline as a hard limit on the whole
//!   request, so a server trickling its ref advertisement is cut off at the deadline. The one
//!   request that carries the pack is bounded per read by the stall timeout and as a whole by the
//!   interrupt gix checks between reads. The token, if any, is added here as a header.
//!   Redirects are not followed (gix refuses them once requests are customized): configure the
//!   remote's final URL. That also means a token is never sent to a host it was not meant for.
//! - `ssh://` and `user@host:path`: the system `ssh`, with the command line of
//!   [`Credentials::ssh_command`](super::settings::Credentials), built here rather than read from
//!   `core.sshCommand`/`GIT_SSH_COMMAND`, so the environment cannot loosen host-key checking.
//! - local paths and `file://`: a local `git-upload-pack`, which needs no limits of its own.
//!
//! Credential helpers and prompts are disabled for every scheme: berth runs unattended, and the
//! only credentials it uses are the ones it was given.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use gix::protocol::transport::client::blocking_io::{http, ssh, Transport};
use gix::remote::{Connection, Direction};
use gix::url::Scheme;

use super::credentials::Token;
use super::error::gix_error;
use super::source::Location;
use super::SyncError;

/// The connection type gix hands out for every scheme.
pub(super) type Conn<'remote, 'repo> =
    Connection<'remote, 'static, 'repo, Box<dyn Transport + Send>>;

/// Opens a connection (no network traffic yet: the handshake happens in `prepare_fetch`).
pub(super) fn connect<'remote, 'repo>(
    remote: &'remote gix::Remote<'repo>,
    location: &Location,
    deadline_at: Instant,
) -> Result<Conn<'remote, 'repo>, SyncError> {
    let unreachable = |source| SyncError::Unreachable {
        remote: location.display.clone(),
        source,
    };
    let connection = match location.url.scheme {
        Scheme::Ssh => {
            let (url, version) = remote
                .sanitized_url_and_version(Direction::Fetch)
                .map_err(unreachable)?;
            let log = ssh_log(location);
            // Truncated, so it only ever holds what ssh said during this fetch.
            std::fs::File::create(&log).map_err(|e| SyncError::Mirror {
                dir: location.dir.clone(),
                source: gix_error(e),
            })?;
            let options = ssh::connect::Options {
                command: Some(
                    location
                        .settings
                        .credentials
                        .ssh_command(location.settings.stall, &log),
                ),
                disallow_shell: false,
                kind: Some(ssh::ProgramKind::Ssh),
            };
            let transport = ssh::connect(url, version, options, false)
                .map_err(|e| unreachable(gix_error(e)))?;
            let transport: Box<dyn Transport + Send> = Box::new(transport);
            remote.to_connection_with_transport(transport)
        }
        Scheme::Http | Scheme::Https => {
            let connection = remote.connect(Direction::Fetch).map_err(unreachable)?;
            let token = location.settings.credentials.read_token()?;
            let options = http_options(remote, location, deadline_at, token)?;
            connection.with_transport_options(Box::new(options))
        }
        _ => remote.connect(Direction::Fetch).map_err(unreachable)?,
    };
    // No credential helpers, no prompts: a 401 becomes AccessDenied.
    Ok(connection.with_credentials(|_| Ok(None)))
}

/// gix's HTTP options from the repository's configuration, plus berth's reqwest hooks.
fn http_options(
    remote: &gix::Remote<'_>,
    location: &Location,
    deadline_at: Instant,
    token: Option<Token>,
) -> Result<http::Options, SyncError> {
    let mirror_err = |source| SyncError::Mirror {
        dir: location.dir.clone(),
        source,
    };
    let url = location.url.to_bstring();
    let configured = remote
        .repo()
        .transport_options(url.as_bstr(), None)
        .map_err(mirror_err)?;
    let mut options = configured
        .and_then(|any| any.downcast::<http::Options>().ok())
        .map(|boxed| *boxed)
        .unwrap_or_default();

    let stall = location.settings.stall;
    let authorization = token.map(|t| t.basic_header(location.url.user()));
    let hooks = http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder.connect_timeout(stall).timeout(stall))
        })),
        configure_request: Some(Box::new(move |request| {
            if !carries_pack(request) {
                *request.timeout_mut() = Some(time_left(deadline_at));
            }
            if let Some(value) = &authorization {
                let mut value = reqwest_git::header::HeaderValue::from_str(value)
                    .map_err(|e| gix::Error::from_error(e))?;
                value.set_sensitive(true);
                request
                    .headers_mut()
                    .insert(reqwest_git::header::AUTHORIZATION, value);
            }
            Ok(())
        })),
    };
    options.backend = Some(Arc::new(Mutex::new(hooks)));
    Ok(options)
}

/// The time until `deadline_at`, at least a millisecond (reqwest reads zero as "expired").
fn time_left(deadline_at: Instant) -> Duration {
    deadline_at
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// `true` for the request whose answer is the pack: protocol v2's `command=fetch`, or v1's
/// request body of `want` lines. Everything else (ref advertisement, `ls-refs`) is small.
fn carries_pack(request: &reqwest_git::blocking::Request) -> bool {
    let Some(body) = request.body().and_then(|b| b.as_bytes()) else {
        // A streamed body is only used for pack uploads (push): treat as large.
        return request.method() == reqwest_git::Method::POST;
    };
    contains(body, b"command=fetch") || contains(body, b"want ")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Where ssh writes its own messages during a fetch (`ssh -E`): in the mirror directory,
/// beside the repository's files, which git ignores. It holds host names, key types and
/// fingerprints, never secrets.
fn ssh_log(location: &Location) -> PathBuf {
    location.dir.join("berth-ssh.log")
}

/// Splits connection failures into "refused us" (fatal) and "could not talk to it" (transient),
/// using gix's own classification of the cause, the transport's refusal to use credentials at
/// all, and for ssh remotes what ssh itself said (an untrusted host key, a refused key).
pub(super) fn connect_error(location: &Location, source: gix::Error) -> SyncError {
    use gix::protocol::transport::client::Error as TransportError;
    let remote = location.display.clone();
    match ssh_verdict(location) {
        Some(SshVerdict::HostKey) => return SyncError::HostKeyNotTrusted { remote },
        Some(SshVerdict::Denied(line)) => {
            return SyncError::AccessDenied {
                remote,
                source: gix_error(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    line,
                )),
            }
        }
        Some(SshVerdict::TimedOut(line)) => {
            return SyncError::Unreachable {
                remote,
                source: gix_error(std::io::Error::new(std::io::ErrorKind::TimedOut, line)),
            }
        }
        None => {}
    }
    let refused_identity = matches!(
        source.downcast_any_ref::<TransportError>(),
        Some(TransportError::AuthenticationRefused(_) | TransportError::AuthenticationUnsupported)
    );
    if refused_identity || source.is_unauthenticated() || source.is_permission_denied() {
        SyncError::AccessDenied { remote, source }
    } else {
        SyncError::Unreachable { remote, source }
    }
}

/// A failure of the pack transfer; for ssh, one that ssh reports as a timeout becomes a timed-out
/// I/O error, so [`super::deadline::Bounds::explain`] can call it a stall.
pub(super) fn receive_error(location: &Location, source: gix::Error) -> SyncError {
    let source = match ssh_verdict(location) {
        Some(SshVerdict::TimedOut(line)) => {
            gix_error(std::io::Error::new(std::io::ErrorKind::TimedOut, line))
        }
        _ => source,
    };
    SyncError::Fetch {
        remote: location.display.clone(),
        branch: location.branch.clone(),
        source,
    }
}

/// What ssh's log says about a failed connection.
enum SshVerdict {
    /// The server's host key is unknown or changed.
    HostKey,
    /// The server refused our key (the line ssh wrote).
    Denied(String),
    /// The server did not answer in time.
    TimedOut(String),
}

fn ssh_verdict(location: &Location) -> Option<SshVerdict> {
    if location.url.scheme != Scheme::Ssh {
        return None;
    }
    let said = std::fs::read_to_string(ssh_log(location)).ok()?;
    let line = |needle: &str| {
        said.lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_owned())
    };
    if said.contains("Host key verification failed")
        || said.contains("HOST IDENTIFICATION HAS CHANGED")
    {
        Some(SshVerdict::HostKey)
    } else if let Some(denied) = line("Permission denied") {
        Some(SshVerdict::Denied(denied))
    } else {
        line("timed out")
            .or_else(|| line("Timeout, server"))
            .map(SshVerdict::TimedOut)
    }
}

/// `true` if `text` appears in the message of `err` or of any of its causes.
pub(super) fn mentions(err: &gix::Error, text: &str) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.to_string().contains(text) {
            return true;
        }
        current = e.source();
    }
    format!("{err:?}").contains(text)
}

#[cfg(test)]
mod tests {
    use reqwest_git::blocking::{Body, Request};
    use reqwest_git::Method;

    use super::*;

    fn request(method: Method, body: Option<&[u8]>) -> Request {
        let url = "http://127.0.0.1:9/infra.git/git-upload-pack"
            .parse()
            .expect("valid url");
        let mut request = Request::new(method, url);
        if let Some(body) = body {
            *request.body_mut() = Some(Body::from(body.to_vec()));
        }
        request
    }

    #[test]
    fn only_the_pack_request_escapes_the_hard_per_request_deadline() {
        assert!(
            !carries_pack(&request(Method::GET, None)),
            "ref advertisement"
        );
        let ls_refs = b"0014command=ls-refs\n0001000dpeel\n0000";
        assert!(!carries_pack(&request(Method::POST, Some(ls_refs))));
        let fetch =
            b"0011command=fetch\n00010032want 0123456789012345678901234567890123456789\n0000";
        assert!(carries_pack(&request(Method::POST, Some(fetch))));
        let v1 = b"0032want 0123456789012345678901234567890123456789\n00000009done\n";
        assert!(carries_pack(&request(Method::POST, Some(v1))));
    }
}
