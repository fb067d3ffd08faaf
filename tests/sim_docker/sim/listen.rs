//! The sockets: one listener task per host, one task per connection.
//!
//! A host whose link is `Refuse` has no listener: its socket file stays, so a client gets
//! "connection refused" as from a stopped dockerd, and every connection it had is cut (an
//! event stream ends, a pooled connection dies). Back `Up`, the socket is bound again.
//! `Hang` keeps everything open and answers nothing (see [`crate::sim::api::handle`]).

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::api;
use super::host::{Host, Link};

/// Binds `path`, replacing a stale socket file left by an earlier listener.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

/// Serves `host` until the simulator shuts down, starting with `listener` (bound by the
/// caller, so the socket accepts as soon as the simulator is started).
pub async fn serve_host(host: Arc<Host>, mut listener: Option<UnixListener>) {
    let shutdown = host.shared.shutdown.clone();
    let mut link = host.watch_link();
    loop {
        let current = match listener.take() {
            Some(l) => l,
            None => {
                let up = async { link.wait_for(|l| *l != Link::Refuse).await.map(|_| ()) };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = up => if r.is_err() { return },
                }
                match bind(&host.socket) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(
                            host = host.name,
                            "cannot bind {}: {e}",
                            host.socket.display()
                        );
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                }
            }
        };
        // Cancelled when the host goes down: every connection of this listener closes.
        let epoch = CancellationToken::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = link.changed() => {
                    if changed.is_err() || *link.borrow_and_update() == Link::Refuse {
                        break;
                    }
                }
                accepted = current.accept() => match accepted {
                    Ok((stream, _)) => {
                        let conn = serve_connection(host.clone(), stream, epoch.clone());
                        host.shared.tracker.spawn(conn);
                    }
                    Err(e) => {
                        // Out of file descriptors, most likely: wait, do not spin.
                        tracing::warn!(host = host.name, "accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        epoch.cancel();
        drop(current);
        if shutdown.is_cancelled() {
            let _ = std::fs::remove_file(&host.socket);
            return;
        }
    }
}

/// HTTP/1 with upgrades (attached exec) and keep-alive without an idle limit, as dockerd:
/// an idle timeout here would cut pooled client connections that real engines keep.
async fn serve_connection(host: Arc<Host>, stream: UnixStream, epoch: CancellationToken) {
    let shutdown = host.shared.shutdown.clone();
    let service = service_fn(move |req| {
        let host = host.clone();
        async move { Ok::<_, Infallible>(api::handle(host, req).await) }
    });
    let conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        _ = conn => {}
        _ = epoch.cancelled() => {}
        _ = shutdown.cancelled() => {}
    }
}
