//! What the controller wants forwarded: one [`ServiceSpec`] per Service, one [`PortSpec`] per
//! Service port.
//!
//! Endpoints belong to a port, not to a Service, because `targetPort` may differ per port (a
//! named `targetPort` may even resolve to a different number in each pod): the controller
//! resolves them and the proxy never looks at pods. All the listen addresses of one port (the
//! cluster IP, the service address, node ports) share its endpoints, its round-robin position
//! and its `ClientIP` affinity, as kube-proxy's do.

use std::net::SocketAddr;
use std::time::Duration;

use crate::manifest::Protocol;

/// One Service as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// `namespace/name`: names the Service in reports, status and logs.
    pub key: String,
    pub ports: Vec<PortSpec>,
    /// `sessionAffinity: ClientIP` with its timeout: connections (TCP) and sessions (UDP) from
    /// one client IP go to the same endpoint until the client has been silent that long.
    pub affinity: Option<Duration>,
}

/// One Service port: where to listen and where to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The port's name, or its number when it has none. Unique within a Service: it keeps a
    /// port's round-robin position, affinity and counters across [`apply`] calls.
    ///
    /// [`apply`]: super::Proxy::apply
    pub name: String,
    /// TCP or UDP. SCTP is reported as unsupported on each of its listeners.
    pub protocol: Protocol,
    /// Every address to listen on: `clusterIP:port`, `service-address:port`,
    /// `address:nodePort`. Port 0 binds an ephemeral port (tests); the report says which.
    pub listen: Vec<SocketAddr>,
    /// Ready endpoints, `podIP:targetPort`, reachable from this controller. The order does not
    /// matter and duplicates are ignored.
    pub endpoints: Vec<SocketAddr>,
}

impl ServiceSpec {
    /// A Service with no ports yet and no affinity.
    pub fn new(key: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            key: key.into(),
            ports: Vec::new(),
            affinity: None,
        }
    }

    /// Adds a port.
    pub fn port(mut self, port: PortSpec) -> ServiceSpec {
        self.ports.push(port);
        self
    }

    /// Turns on `ClientIP` affinity with this timeout.
    pub fn affinity(mut self, timeout: Duration) -> ServiceSpec {
        self.affinity = Some(timeout);
        self
    }
}

impl PortSpec {
    /// A TCP port listening on `listen`, with no endpoints yet.
    pub fn tcp(name: impl Into<String>, listen: impl IntoIterator<Item = SocketAddr>) -> PortSpec {
        PortSpec::new(name, Protocol::Tcp, listen)
    }

    /// A UDP port listening on `listen`, with no endpoints yet.
    pub fn udp(name: impl Into<String>, listen: impl IntoIterator<Item = SocketAddr>) -> PortSpec {
        PortSpec::new(name, Protocol::Udp, listen)
    }

    pub fn new(
        name: impl Into<String>,
        protocol: Protocol,
        listen: impl IntoIterator<Item = SocketAddr>,
    ) -> PortSpec {
        PortSpec {
            name: name.into(),
            protocol,
            listen: listen.into_iter().collect(),
            endpoints: Vec::new(),
        }
    }

    /// Sets the endpoints.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = SocketAddr>) -> PortSpec {
        self.endpoints = endpoints.into_iter().collect();
        self
    }
}
