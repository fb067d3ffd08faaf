//! Services: a stable address in front of a Service's ready pods.
//!
//! [`proxy`] is the data path: listeners on the controllers (each cluster IP, the service
//! address, node ports) that forward TCP connections and UDP datagrams to the endpoints the
//! controller computes. Allocating cluster IPs, holding them on an interface and computing
//! endpoints belong to the controller, which hands the result to [`proxy::Proxy::apply`].

pub mod proxy;
