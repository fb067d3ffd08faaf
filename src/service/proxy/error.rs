//! Why a listener is not bound. A listener that cannot bind is a status, never a crash: the
//! others keep working and [`Proxy::run`](super::Proxy::run) retries it.
//!
//! Messages name the port, the address and the protocol so an operator can act on the status
//! alone ("TCP port 80 on 10.96.0.1 is in use"). Errors are `Clone` because the status keeps
//! the last one of each listener; the operating system's message is kept as text.

use std::io;
use std::net::SocketAddr;

use crate::manifest::Protocol;

/// A listener that is not bound, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenError {
    /// Another socket (another program, or a listener of berth's own on a wildcard address)
    /// holds the port. Retried: the port may be freed.
    #[error("{} port {} on {} is in use", .protocol.docker().to_uppercase(), .addr.port(), .addr.ip())]
    InUse {
        addr: SocketAddr,
        protocol: Protocol,
    },
    /// The address is not on any interface of this host: a cluster IP not yet added to the
    /// controller's interface. Retried.
    #[error("{} is not an address of this host (not yet added to an interface?)", .addr.ip())]
    NotLocal { addr: SocketAddr },
    /// Ports below 1024 need root or `CAP_NET_BIND_SERVICE`. Retried, though it rarely helps.
    #[error("binding port {} on {} needs root or CAP_NET_BIND_SERVICE", .addr.port(), .addr.ip())]
    PermissionDenied { addr: SocketAddr },
    /// Another Service port wants the same address and protocol; the first in `namespace/name`
    /// order keeps it. Not retried: the next `apply` decides again.
    #[error(
        "{} port {} on {} is already wanted by {owner} (port {owner_port})",
        .protocol.docker().to_uppercase(), .addr.port(), .addr.ip()
    )]
    Conflict {
        addr: SocketAddr,
        protocol: Protocol,
        owner: String,
        owner_port: String,
    },
    /// Two ports of one Service share a name and protocol: the first is forwarded, the second
    /// refused (the manifest should not have passed validation).
    #[error("Service {service} has two {} ports named {port:?}", .protocol.docker().to_uppercase())]
    DuplicatePort {
        service: String,
        port: String,
        protocol: Protocol,
    },
    /// Only TCP and UDP are forwarded.
    #[error("{} is not proxied (only TCP and UDP are)", .protocol.docker().to_uppercase())]
    Unsupported { protocol: Protocol },
    /// `apply` must run inside a Tokio runtime: listeners are registered with its reactor.
    #[error("the proxy was given services outside a Tokio runtime")]
    NoRuntime,
    /// `apply` after [`Proxy::run`](super::Proxy::run) returned: nothing new is bound.
    #[error("the proxy has shut down")]
    ShutDown,
    /// Any other failure to bind, with the operating system's message.
    #[error("cannot listen on {} {addr}: {message}", .protocol.docker().to_uppercase())]
    Io {
        addr: SocketAddr,
        protocol: Protocol,
        message: String,
    },
}

impl ListenError {
    /// Names a bind failure by its cause.
    pub(super) fn from_bind(addr: SocketAddr, protocol: Protocol, e: &io::Error) -> ListenError {
        match e.kind() {
            io::ErrorKind::AddrInUse => ListenError::InUse { addr, protocol },
            io::ErrorKind::AddrNotAvailable => ListenError::NotLocal { addr },
            io::ErrorKind::PermissionDenied => ListenError::PermissionDenied { addr },
            _ => ListenError::Io {
                addr,
                protocol,
                message: e.to_string(),
            },
        }
    }

    /// Whether [`Proxy::run`](super::Proxy::run) should try to bind again: the cause is on the
    /// host and may go away, not in what was asked.
    pub(super) fn retryable(&self) -> bool {
        matches!(
            self,
            ListenError::InUse { .. }
                | ListenError::NotLocal { .. }
                | ListenError::PermissionDenied { .. }
                | ListenError::Io { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_named_by_protocol_port_and_address() {
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("address");
        let e = io::Error::from(io::ErrorKind::AddrInUse);
        let error = ListenError::from_bind(addr, Protocol::Tcp, &e);
        assert_eq!(error.to_string(), "TCP port 80 on 127.0.0.1 is in use");
        assert!(error.retryable());
    }

    #[test]
    fn a_conflict_names_the_owner_and_is_not_retried() {
        let error = ListenError::Conflict {
            addr: "10.96.0.1:6379".parse().expect("address"),
            protocol: Protocol::Tcp,
            owner: "default/redis-master".into(),
            owner_port: "6379".into(),
        };
        assert_eq!(
            error.to_string(),
            "TCP port 6379 on 10.96.0.1 is already wanted by default/redis-master (port 6379)"
        );
        assert!(!error.retryable());
    }
}
