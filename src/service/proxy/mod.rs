//! The service proxy: the data path from a Service's stable addresses to its ready pods.
//!
//! berth runs it in `berth serve` on every controller. Each controller holds every cluster IP
//! as a local address and Docker hosts route the service CIDR to the controllers, so a
//! container reaching `clusterIP:port` reaches a listener here; clients outside containers use
//! the service address (`--service-address`, default 127.0.0.1) or a node port.
//!
//! ```text
//! controller: Services + ready pods ─► Vec<ServiceSpec> ─► Proxy::apply ─► ApplyReport
//!                                                            │ plan (pure): keep / bind /
//!                                                            │ refuse / close listeners
//!   client ─► listener (clusterIP:port, service address, nodePort)
//!               │ TCP: accept ─► Backends::candidates (affinity, round-robin, cooldown)
//!               │        ─► connect (1 s each, next endpoint on failure) ─► relay both ways
//!               │ UDP: session per client address ─► connected socket to one endpoint
//!               └─► endpoint (podIP:targetPort)
//! Proxy::status ─► ProxyStatus (per port: listeners, endpoints, counters) ─► status API
//! Proxy::run(shutdown): retries failed binds; on shutdown closes everything and drains tasks
//! ```
//!
//! Endpoint lists are swapped in place: established connections keep their endpoint even when
//! it is removed (TCP), new connections use the new list at once. Every resource has a bound
//! (see [`ProxyConfig`]). Logging is one line per listener bound, closed or failing, never one
//! per connection above `debug`.

mod affinity;
mod backends;
mod bind;
mod config;
mod counters;
mod error;
mod listeners;
mod plan;
mod relay;
mod spec;
mod status;
mod tcp;
mod udp;

pub use config::ProxyConfig;
pub use counters::CounterSnapshot;
pub use error::ListenError;
pub use listeners::Proxy;
pub use spec::{PortSpec, ServiceSpec};
pub use status::{
    ApplyReport, EndpointStatus, ListenOutcome, ListenerReport, ListenerStatus, PortStatus,
    ProxyStatus,
};
