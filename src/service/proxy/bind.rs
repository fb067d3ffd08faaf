//! A listener's slot in the proxy's table, and binding it: the socket, then its loop.
//!
//! Binding is synchronous, so that `apply` reports every bind's outcome when it returns; it
//! runs inside the caller's Tokio runtime, with whose reactor sockets register. A slot whose
//! bind failed keeps its route and counters, and is bound again by a later retry.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::backends::Backends;
use super::counters::Counters;
use super::listeners::{Context, Route};
use super::plan::{ListenKey, RouteKey};
use super::{tcp, udp, ListenError};
use crate::manifest::Protocol;

/// One wanted listener: bound, or why not.
#[derive(Debug)]
pub(super) struct Slot {
    pub route_key: RouteKey,
    pub route: Arc<Route>,
    pub counters: Arc<Counters>,
    pub bound: Result<Bound, ListenError>,
}

#[derive(Debug)]
pub(super) struct Bound {
    pub local: SocketAddr,
    /// Ends the listener's loop (not its connections).
    pub stop: CancellationToken,
}

impl Slot {
    /// A new slot for `key`, bound if its bind succeeds.
    pub fn bind(
        ctx: &Context,
        key: ListenKey,
        route_key: RouteKey,
        backends: Arc<Backends>,
    ) -> Slot {
        let mut slot = Slot {
            route_key,
            route: Arc::new(Route::new(backends)),
            counters: Arc::default(),
            bound: Err(ListenError::NoRuntime), // replaced just below
        };
        slot.start(ctx, key, true);
        slot
    }

    /// Binds a slot that is not bound and starts its loop; records the error otherwise. A
    /// failure is logged as a warning when it is new or changed, so retries stay quiet; a
    /// success after failures is logged once.
    pub fn start(&mut self, ctx: &Context, key: ListenKey, first_try: bool) {
        let stop = ctx.shutdown.child_token();
        let bound = match key.protocol {
            Protocol::Tcp => tcp_listener(key.addr).and_then(|l| {
                let local = l.local_addr()?;
                tcp::spawn(
                    ctx,
                    l,
                    self.route.clone(),
                    self.counters.clone(),
                    stop.clone(),
                );
                Ok(local)
            }),
            Protocol::Udp => udp_socket(key.addr).and_then(|s| {
                let local = s.local_addr()?;
                udp::spawn(
                    ctx,
                    s,
                    self.route.clone(),
                    self.counters.clone(),
                    stop.clone(),
                );
                Ok(local)
            }),
            Protocol::Sctp => {
                self.bound = Err(ListenError::Unsupported {
                    protocol: key.protocol,
                });
                return;
            }
        };
        let (service, port) = (&self.route_key.service, &self.route_key.port);
        match bound {
            Ok(local) => {
                if first_try {
                    tracing::debug!(
                        "service proxy: {service} port {port} listening on {} {local}",
                        key.protocol.docker()
                    );
                } else {
                    tracing::info!(
                        "service proxy: {service} port {port} listening on {} {local} at last",
                        key.protocol.docker()
                    );
                }
                self.bound = Ok(Bound { local, stop });
            }
            Err(e) => {
                let error = ListenError::from_bind(key.addr, key.protocol, &e);
                let changed = first_try || self.bound.as_ref().err() != Some(&error);
                if changed {
                    tracing::warn!("service proxy: {service} port {port}: {error}");
                } else {
                    tracing::debug!("service proxy: {service} port {port}: still {error}");
                }
                self.bound = Err(error);
            }
        }
    }
}

/// Pending connections the kernel holds before accept. Enough for a burst of clients while
/// the accept loop is busy; beyond it clients retry their SYN.
const BACKLOG: u32 = 1024;

/// A TCP listener on `addr`. `SO_REUSEADDR` lets a restarted controller bind again while its
/// previous connections sit in `TIME_WAIT`; it does not let two listeners share a port, so a
/// port in use is still reported.
fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A UDP socket on `addr`.
fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}
