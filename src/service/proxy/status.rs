//! What `apply` did, and what the proxy is doing: the types the controller logs and the
//! status API serves.

use std::net::SocketAddr;

use serde::Serialize;

use super::counters::CounterSnapshot;
use super::ListenError;
use crate::manifest::Protocol;

/// The outcome of one [`Proxy::apply`](super::Proxy::apply), listener by listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Every wanted listener, Services in key order, then ports and addresses as given.
    pub listeners: Vec<ListenerReport>,
    /// Listeners closed because nothing wants them any more. Connections accepted through a
    /// closed TCP listener run on; UDP sessions end with their listener.
    pub closed: Vec<(SocketAddr, Protocol)>,
}

/// One wanted listener and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerReport {
    /// The Service's `namespace/name`.
    pub service: String,
    /// The Service port's name (or number).
    pub port: String,
    /// The address asked for.
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub outcome: ListenOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOutcome {
    /// Newly bound, on this address (the port is filled in when 0 was asked for).
    Bound(SocketAddr),
    /// Was bound already and stays so; only its endpoints may have changed.
    Kept(SocketAddr),
    /// Not bound, and why. Retryable causes are retried by [`Proxy::run`](super::Proxy::run).
    Failed(ListenError),
}

impl ApplyReport {
    /// The listeners that are not bound.
    pub fn failures(&self) -> impl Iterator<Item = &ListenerReport> {
        self.listeners
            .iter()
            .filter(|l| matches!(l.outcome, ListenOutcome::Failed(_)))
    }

    /// Where the listener asked for as `addr` is bound, if it is.
    pub fn local_addr(&self, addr: SocketAddr, protocol: Protocol) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .filter(|l| l.addr == addr && l.protocol == protocol)
            .find_map(|l| match l.outcome {
                ListenOutcome::Bound(a) | ListenOutcome::Kept(a) => Some(a),
                ListenOutcome::Failed(_) => None,
            })
    }
}

/// Everything the proxy forwards, by Service port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStatus {
    /// Sorted by Service, port name, protocol.
    pub ports: Vec<PortStatus>,
}

/// One Service port: its listeners and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    pub service: String,
    pub port: String,
    pub protocol: Protocol,
    /// Sorted by address.
    pub listeners: Vec<ListenerStatus>,
    /// The listed endpoints, sorted by address. Counters of an endpoint no longer listed are
    /// no longer shown, though its open connections still run.
    pub endpoints: Vec<EndpointStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerStatus {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Where it is bound, when it is.
    pub bound: Option<SocketAddr>,
    /// Why it is not bound, when it is not.
    pub error: Option<String>,
    /// Since the listener was first wanted; kept across `apply` calls while it stays wanted.
    pub counters: CounterSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointStatus {
    pub addr: SocketAddr,
    /// Since the endpoint was listed for this port.
    pub counters: CounterSnapshot,
}

impl ProxyStatus {
    /// The status of one Service port, by Service key and port name.
    pub fn port(&self, service: &str, port: &str) -> Option<&PortStatus> {
        self.ports
            .iter()
            .find(|p| p.service == service && p.port == port)
    }
}

impl PortStatus {
    /// The status of the listener asked for as `addr`.
    pub fn listener(&self, addr: SocketAddr) -> Option<&ListenerStatus> {
        self.listeners.iter().find(|l| l.addr == addr)
    }

    /// The counters of the listed endpoint `addr`.
    pub fn endpoint(&self, addr: SocketAddr) -> Option<&CounterSnapshot> {
        self.endpoints
            .iter()
            .find(|e| e.addr == addr)
            .map(|e| &e.counters)
    }
}
