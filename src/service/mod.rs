//! Services: a stable address in front of a Service's ready pods.
//!
//! [`proxy`] is the data path: listeners on the controllers (each cluster IP, the service
//! address, node ports) that forward TCP connections and UDP datagrams to the endpoints.
//! The control path is pure and lives beside it: [`cluster_ip`] allocates addresses,
//! [`endpoints`] selects and resolves each Service's pods and turns the committed table into
//! the proxy's specs, [`discovery`] gives containers their variables and hosts entries.
//! [`interface`] holds the cluster IPs on a local interface. The controller wires them
//! together (`controller::services`).

pub mod cluster_ip;
pub mod discovery;
pub mod endpoints;
mod error;
pub mod interface;
pub mod node_port;
pub mod proxy;
#[cfg(test)]
mod testing;

pub use error::ServiceError;
