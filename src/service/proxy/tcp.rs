//! A TCP listener: accept, choose an endpoint, connect (trying the next endpoint on failure),
//! relay.
//!
//! Each accepted connection is its own tracked task holding one permit of its listener's
//! `max_connections`; a connection beyond the cap is reset at once rather than queued, so a
//! flood costs an accept and a close, never memory. The listener's `stop` ends accepting only:
//! connections already relayed run on until they end or the proxy shuts down, so removing a
//! Service port (or moving a listener) never cuts a client mid-stream.
//!
//! With no endpoint listed, or none reachable, the client is reset (RST) rather than closed
//! (FIN): it sees "connection reset" at once instead of an empty reply it might take for an
//! answer, much like kube-proxy's REJECT for a Service without endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backends::{Backends, Endpoint};
use super::counters::{Counters, Meters};
use super::listeners::{Context, Route};
use super::relay::{relay, End};

/// Accept errors (out of file descriptors, say) are logged at most this often, and accepting
/// pauses briefly after each so that a persistent one does not spin.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(60);
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Starts accepting on `listener` until `stop` (a child of the proxy's shutdown).
pub(super) fn spawn(
    ctx: &Context,
    listener: TcpListener,
    route: Arc<Route>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(
        ctx.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    ctx.tasks.spawn(accept_loop(
        ctx.clone(),
        listener,
        route,
        counters,
        limit,
        stop,
    ));
}

async fn accept_loop(
    ctx: Context,
    listener: TcpListener,
    route: Arc<Route>,
    counters: Arc<Counters>,
    limit: Arc<Semaphore>,
    stop: CancellationToken,
) {
    let mut warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((client, peer)) => {
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    counters.over_limit();
                    let _ = client.set_zero_linger();
                    continue;
                };
                ctx.tasks.spawn(connection(
                    ctx.clone(),
                    client,
                    peer,
                    route.get(),
                    counters.clone(),
                    permit,
                ));
            }
            Err(e) => {
                if warned.is_none_or(|at| at.elapsed() >= ACCEPT_WARN_EVERY) {
                    let addr = listener.local_addr().ok();
                    tracing::warn!("service proxy: accepting on {addr:?} failed: {e}");
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                }
            }
        }
    }
}

async fn connection(
    ctx: Context,
    mut client: TcpStream,
    peer: SocketAddr,
    backends: Arc<Backends>,
    listener: Arc<Counters>,
    _permit: OwnedSemaphorePermit,
) {
    let Some((endpoint, mut backend)) = connect(&ctx, &backends, peer, &listener).await else {
        listener.no_endpoint();
        let _ = client.set_zero_linger();
        return;
    };
    // A proxy must not add Nagle's delay to small writes the client wanted sent at once.
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    backends.connected(peer.ip(), endpoint.addr);
    let _open = (listener.open(), endpoint.counters.open());
    let meters = Meters {
        listener,
        endpoint: endpoint.counters.clone(),
    };
    let idle = ctx.config.tcp_idle_timeout;
    // The relay polls its shutdown future at every wake-up, and a pending `cancelled()` locks
    // its token's waiter list each time: on the proxy's one token that would be a lock every
    // connection on every thread contends for, per read. A child token per connection makes
    // it a lock nobody else takes.
    let shutdown = ctx.shutdown.child_token();
    let end = relay(&mut client, &mut backend, &meters, idle, &shutdown).await;
    match end {
        End::Failed(e) => tracing::debug!("service proxy: {peer} ↔ {}: {e}", endpoint.addr),
        End::Idle => tracing::debug!("service proxy: {peer} ↔ {}: idle, closed", endpoint.addr),
        End::Closed | End::Shutdown => {}
    }
    backends.finished(peer.ip(), endpoint.addr);
}

/// Connects to the first candidate that answers within the connect timeout.
async fn connect(
    ctx: &Context,
    backends: &Backends,
    peer: SocketAddr,
    listener: &Counters,
) -> Option<(Arc<Endpoint>, TcpStream)> {
    for endpoint in backends.candidates(peer.ip()) {
        let attempt = tokio::select! {
            () = ctx.shutdown.cancelled() => return None,
            r = tokio::time::timeout(ctx.config.connect_timeout, TcpStream::connect(endpoint.addr)) => r,
        };
        let error = match attempt {
            Ok(Ok(stream)) => return Some((endpoint, stream)),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", ctx.config.connect_timeout),
        };
        tracing::debug!(
            "service proxy: {} port {}: endpoint {} failed: {error}",
            backends.key().service,
            backends.key().port,
            endpoint.addr
        );
        endpoint.failed(backends.cooldown());
        listener.failed_connect();
    }
    None
}
