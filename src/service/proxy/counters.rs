//! Counters for the status API, per listener and per endpoint.
//!
//! Relaxed atomics: each counter is read on its own, never as a consistent set with the
//! others, and a status read a few bytes behind is fine. Bytes are counted as they are
//! relayed, so a long-lived connection shows progress before it ends.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use serde::Serialize;

/// Live counters of one listener or one endpoint. For UDP a "connection" is a session: the
/// datagrams of one client address, relayed through one socket to one endpoint.
#[derive(Debug, Default)]
pub(super) struct Counters {
    connections: AtomicU64,
    active: AtomicU64,
    failed_connects: AtomicU64,
    no_endpoint: AtomicU64,
    over_limit: AtomicU64,
    bytes_to_endpoint: AtomicU64,
    bytes_to_client: AtomicU64,
    dropped_datagrams: AtomicU64,
}

/// A reading of [`Counters`], as the status API shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Connections forwarded to an endpoint (UDP: sessions opened).
    pub connections: u64,
    /// Of those, open now.
    pub active: u64,
    /// Connection attempts to endpoints that were refused, failed or timed out (UDP: sessions
    /// ended by an ICMP refusal). Each is followed by a try of the next endpoint.
    pub failed_connects: u64,
    /// Client connections closed because no endpoint was listed or none could be reached
    /// (UDP: datagrams dropped for that reason).
    pub no_endpoint: u64,
    /// Client connections reset because the listener was at `max_connections` (UDP:
    /// datagrams from new clients dropped at `max_udp_sessions`).
    pub over_limit: u64,
    /// Bytes relayed from clients to endpoints.
    pub bytes_to_endpoint: u64,
    /// Bytes relayed from endpoints to clients.
    pub bytes_to_client: u64,
    /// UDP datagrams dropped because a session's socket was full.
    pub dropped_datagrams: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            connections: self.connections.load(Relaxed),
            active: self.active.load(Relaxed),
            failed_connects: self.failed_connects.load(Relaxed),
            no_endpoint: self.no_endpoint.load(Relaxed),
            over_limit: self.over_limit.load(Relaxed),
            bytes_to_endpoint: self.bytes_to_endpoint.load(Relaxed),
            bytes_to_client: self.bytes_to_client.load(Relaxed),
            dropped_datagrams: self.dropped_datagrams.load(Relaxed),
        }
    }

    pub fn failed_connect(&self) {
        self.failed_connects.fetch_add(1, Relaxed);
    }

    pub fn no_endpoint(&self) {
        self.no_endpoint.fetch_add(1, Relaxed);
    }

    pub fn over_limit(&self) {
        self.over_limit.fetch_add(1, Relaxed);
    }

    pub fn dropped_datagram(&self) {
        self.dropped_datagrams.fetch_add(1, Relaxed);
    }

    pub fn to_endpoint(&self, bytes: usize) {
        self.bytes_to_endpoint.fetch_add(bytes as u64, Relaxed);
    }

    pub fn to_client(&self, bytes: usize) {
        self.bytes_to_client.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts a connection and holds it as active until the guard is dropped, however the
    /// connection's task ends (even cancelled).
    pub fn open(self: &Arc<Self>) -> Active {
        self.connections.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        Active(self.clone())
    }
}

/// An open connection or session; see [`Counters::open`].
#[derive(Debug)]
pub(super) struct Active(Arc<Counters>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// The counters a relay adds to: its listener's and its endpoint's.
#[derive(Debug, Clone)]
pub(super) struct Meters {
    pub listener: Arc<Counters>,
    pub endpoint: Arc<Counters>,
}

impl Meters {
    pub fn to_endpoint(&self, bytes: usize) {
        self.listener.to_endpoint(bytes);
        self.endpoint.to_endpoint(bytes);
    }

    pub fn to_client(&self, bytes: usize) {
        self.listener.to_client(bytes);
        self.endpoint.to_client(bytes);
    }
}
