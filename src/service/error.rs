//! Errors of the Service control path (the data path has its own, in `proxy::error`).

/// What can go wrong between the committed Services and the proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// `--service-cidr` is not an IPv4 network with a usable size.
    #[error("{text:?} is not an IPv4 CIDR with room for Services (e.g. 10.43.0.0/16): {reason}")]
    Cidr { text: String, reason: &'static str },
    /// A manifest's `clusterIP` cannot be given to its Service.
    #[error("clusterIP {ip}: {reason}")]
    ClusterIp {
        ip: std::net::Ipv4Addr,
        reason: String,
    },
    /// The CIDR has no free address left.
    #[error("the service CIDR {cidr} is full")]
    Full { cidr: String },
    /// Holding cluster IPs on the interface failed (most often: no CAP_NET_ADMIN).
    #[error("cluster IPs on {interface}: {message}")]
    Interface { interface: String, message: String },
}
