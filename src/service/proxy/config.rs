//! The proxy's limits and timeouts. Defaults suit a controller forwarding for a few hundred
//! Services; every bound here is also a bound on memory.

use std::time::Duration;

/// Limits and timeouts, the same for every listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// How long one connection attempt to an endpoint may take before the next endpoint is
    /// tried, within the same client connection. Default 1 s: endpoints are on the hosts'
    /// networks, where a healthy one answers in well under a millisecond.
    pub connect_timeout: Duration,
    /// A TCP connection with no byte in either direction for this long is closed. Default
    /// 10 minutes: longer than most keep-alive pools, shorter than a leaked connection's life.
    pub tcp_idle_timeout: Duration,
    /// A UDP session with no datagram in either direction for this long ends, and the client's
    /// next datagram opens a new one (possibly to another endpoint). Default 30 s, as
    /// conntrack's for unreplied UDP.
    pub udp_idle_timeout: Duration,
    /// TCP connections open at once through one listener; beyond it a new connection is reset
    /// at once. Each costs two 16 KiB buffers, so the default 1,024 bounds a listener's buffers
    /// at 32 MiB.
    pub max_connections: usize,
    /// UDP sessions open at once on one listener; beyond it a new client's datagrams are
    /// dropped. Each holds a socket and a 64 KiB receive buffer (a datagram's maximum), so the
    /// default 1,024 bounds a listener at 64 MiB.
    pub max_udp_sessions: usize,
    /// Clients remembered per Service port for `ClientIP` affinity. At the cap, expired entries
    /// are dropped; if none has expired, a new client is simply not remembered. Default 65,536.
    pub max_affinity_clients: usize,
    /// After a failed connect, an endpoint is tried after the healthy ones for this long, so a
    /// dead endpoint that times out costs one client a delay, not every n-th. Default 5 s.
    pub endpoint_cooldown: Duration,
    /// How often [`Proxy::run`](super::Proxy::run) retries listeners whose bind failed (a port
    /// freed later, a cluster IP added to the interface after `apply`). Default 5 s.
    pub rebind_interval: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(1),
            tcp_idle_timeout: Duration::from_secs(600),
            udp_idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_udp_sessions: 1024,
            max_affinity_clients: 65_536,
            endpoint_cooldown: Duration::from_secs(5),
            rebind_interval: Duration::from_secs(5),
        }
    }
}
