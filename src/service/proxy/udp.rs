//! A UDP listener: a session per client address, each with its own connected socket to one
//! endpoint, relaying datagrams both ways until it has been idle for `udp_idle_timeout`.
//!
//! One task receives every client datagram of the listener and owns the session table (no
//! lock on the path); each session has a task that receives the endpoint's replies and sends
//! them to the client from the listener's socket, so they come from the address the client
//! sent to. (A listener on a wildcard address would send replies from whichever address the
//! route picks: bind UDP listeners to specific addresses, as cluster IPs are.)
//!
//! Bounds: at most `max_udp_sessions` sessions (then a new client's datagrams are dropped and
//! counted), one 64 KiB buffer per session and one per listener, and a datagram that finds its
//! session's socket full is dropped rather than queued: UDP senders expect loss, not delay.
//!
//! Unlike a TCP connection, a session does not outlive its endpoint's removal: UDP clients
//! (DNS resolvers, say) reuse one source port for ever, so a session to a removed endpoint
//! would swallow their datagrams until they fell silent. The next datagram after the removal
//! opens a session to a listed endpoint, as kube-proxy achieves by flushing conntrack. An ICMP
//! refusal from the endpoint ends the session and cools the endpoint down likewise.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::backends::{Backends, Endpoint};
use super::counters::{Counters, Meters};
use super::listeners::{Context, Route};
use super::relay::idle_watch;

/// The largest UDP payload over IPv4 is 65,507 bytes; a smaller buffer would truncate.
const DATAGRAM: usize = 65_536;

/// Ended sessions are swept at most this often, whatever the idle timeout.
const SWEEP_MIN: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts relaying on `socket` until `stop`; sessions end with it.
pub(super) fn spawn(
    ctx: &Context,
    socket: UdpSocket,
    route: Arc<Route>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    ctx.tasks.spawn(receive_loop(
        ctx.clone(),
        Arc::new(socket),
        route,
        counters,
        stop,
    ));
}

/// One client's session, as the receive loop holds it.
struct Session {
    upstream: Arc<UdpSocket>,
    endpoint: Arc<Endpoint>,
    meters: Meters,
    activity: Arc<AtomicBool>,
    /// Cancelled when the session ends, from either side.
    ended: CancellationToken,
}

impl Session {
    fn usable(&self) -> bool {
        !self.ended.is_cancelled() && !self.endpoint.retired()
    }
}

async fn receive_loop(
    ctx: Context,
    socket: Arc<UdpSocket>,
    route: Arc<Route>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut buf = vec![0u8; DATAGRAM];
    // Ended sessions still hold their socket here until swept: once per idle period, so a
    // burst of one-off clients does not keep a file descriptor each for long.
    let mut sweep = tokio::time::interval(ctx.config.udp_idle_timeout.max(SWEEP_MIN));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = sweep.tick() => {
                sessions.retain(|_, s| s.usable());
                continue;
            }
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, client) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("service proxy: UDP receive failed: {e}");
                continue;
            }
        };
        if sessions.get(&client).is_some_and(|s| !s.usable()) {
            if let Some(stale) = sessions.remove(&client) {
                stale.ended.cancel();
            }
        }
        if !sessions.contains_key(&client) {
            if sessions.len() >= ctx.config.max_udp_sessions {
                sessions.retain(|_, s| s.usable());
            }
            if sessions.len() >= ctx.config.max_udp_sessions {
                counters.over_limit();
                continue;
            }
            match open(&ctx, &socket, client, route.get(), &counters, &stop).await {
                Some(session) => {
                    sessions.insert(client, session);
                }
                None => {
                    counters.no_endpoint();
                    continue;
                }
            }
        }
        let Some(session) = sessions.get(&client) else {
            continue;
        };
        match session.upstream.try_send(&buf[..n]) {
            Ok(sent) => {
                session.meters.to_endpoint(sent);
                session.activity.store(true, Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => counters.dropped_datagram(),
            Err(e) => {
                // An earlier datagram's ICMP refusal surfaces here, or on the session's recv.
                refused(&session.endpoint, &counters, &route.get(), &e);
                session.ended.cancel();
                counters.dropped_datagram();
            }
        }
    }
    for session in sessions.values() {
        session.ended.cancel();
    }
}

/// Opens a session for `client` to the first candidate a socket can be connected to.
async fn open(
    ctx: &Context,
    listener_socket: &Arc<UdpSocket>,
    client: SocketAddr,
    backends: Arc<Backends>,
    counters: &Arc<Counters>,
    stop: &CancellationToken,
) -> Option<Session> {
    for endpoint in backends.candidates(client.ip()) {
        let upstream = match connect(endpoint.addr).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                refused(&endpoint, counters, &backends, &e);
                continue;
            }
        };
        backends.connected(client.ip(), endpoint.addr);
        let meters = Meters {
            listener: counters.clone(),
            endpoint: endpoint.counters.clone(),
        };
        let session = Session {
            upstream: upstream.clone(),
            endpoint: endpoint.clone(),
            meters: meters.clone(),
            activity: Arc::new(AtomicBool::new(true)),
            ended: stop.child_token(),
        };
        let replies = Replies {
            listener_socket: listener_socket.clone(),
            upstream,
            client,
            endpoint,
            backends: backends.clone(),
            meters,
            activity: session.activity.clone(),
            ended: session.ended.clone(),
        };
        ctx.tasks.spawn(replies.run(ctx.config.udp_idle_timeout));
        return Some(session);
    }
    None
}

async fn connect(endpoint: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match endpoint {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(endpoint).await?;
    // The receive loop sends with `try_send`, which trusts the reactor's cached readiness; a
    // new socket has none until the reactor has seen it once, and would drop its first
    // datagram. One wait here, then writable it stays until a send would block.
    socket.writable().await?;
    Ok(socket)
}

fn refused(endpoint: &Endpoint, counters: &Counters, backends: &Backends, e: &io::Error) {
    tracing::debug!(
        "service proxy: {} port {}: UDP endpoint {} failed: {e}",
        backends.key().service,
        backends.key().port,
        endpoint.addr
    );
    endpoint.failed(backends.cooldown());
    counters.failed_connect();
}

/// The endpoint-to-client half of a session, and its lifetime.
struct Replies {
    listener_socket: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    endpoint: Arc<Endpoint>,
    backends: Arc<Backends>,
    meters: Meters,
    activity: Arc<AtomicBool>,
    ended: CancellationToken,
}

impl Replies {
    async fn run(self, idle: std::time::Duration) {
        let _open = (self.meters.listener.open(), self.meters.endpoint.open());
        let mut buf = vec![0u8; DATAGRAM];
        let watch = idle_watch(&self.activity, idle);
        tokio::pin!(watch);
        loop {
            let received = tokio::select! {
                () = self.ended.cancelled() => break,
                () = &mut watch => break,
                r = self.upstream.recv(&mut buf) => r,
            };
            match received {
                Ok(n) => match self.listener_socket.send_to(&buf[..n], self.client).await {
                    Ok(sent) => {
                        self.meters.to_client(sent);
                        self.activity.store(true, Relaxed);
                    }
                    Err(e) => tracing::debug!("service proxy: UDP reply to {}: {e}", self.client),
                },
                Err(e) => {
                    refused(&self.endpoint, &self.meters.listener, &self.backends, &e);
                    break;
                }
            }
        }
        self.ended.cancel();
        self.backends.finished(self.client.ip(), self.endpoint.addr);
    }
}
