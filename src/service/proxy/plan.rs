//! The pure step of [`Proxy::apply`](super::Proxy::apply): which listeners to keep, bind,
//! refuse and close, from the wanted Services and the listeners the proxy has. No I/O.
//!
//! A listener is identified by address and protocol only. So a listener that stays wanted is
//! kept bound even when it moves to another Service port (its route is swapped in place), and
//! a kept socket never misses a connection to a rebind. When two Service ports want the same
//! address and protocol, the first in `namespace/name` order (then port order) keeps it and
//! the other is refused with a [`ListenError::Conflict`]: decided the same way on every
//! controller and at every `apply`, whatever order the controller listed Services in.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::{ListenError, ServiceSpec};
use crate::manifest::Protocol;

/// A listener's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ListenKey {
    pub addr: SocketAddr,
    pub protocol: Protocol,
}

/// A Service port's identity: Service key, port name, protocol. Its endpoints, round-robin
/// position, affinity and counters live under it across `apply` calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct RouteKey {
    pub service: String,
    pub port: String,
    pub protocol: Protocol,
}

/// What to do with one wanted listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Bound already: keep the socket, point it at `route`.
    Keep,
    /// Not bound (new, or its last bind failed): bind it.
    Bind,
    /// Never bound while this holds.
    Refuse(ListenError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Planned {
    pub key: ListenKey,
    pub route: RouteKey,
    pub action: Action,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ListenerPlan {
    /// Every wanted listener, Services in key order, then ports and addresses as given.
    pub listeners: Vec<Planned>,
    /// Service ports that forward (TCP or UDP, named once), with their position in `services`
    /// as `(service index, port index)`.
    pub routes: Vec<(RouteKey, usize, usize)>,
    /// Listeners the proxy has (bound or failed) that nothing wants any more.
    pub close: Vec<ListenKey>,
}

/// Plans listeners. `current` maps each listener the proxy has to whether it is bound.
pub(super) fn plan(services: &[ServiceSpec], current: &BTreeMap<ListenKey, bool>) -> ListenerPlan {
    let mut order: Vec<usize> = (0..services.len()).collect();
    order.sort_by(|&a, &b| services[a].key.cmp(&services[b].key));
    let mut out = ListenerPlan::default();
    let mut owners: BTreeMap<ListenKey, RouteKey> = BTreeMap::new();
    let mut seen_routes: BTreeSet<RouteKey> = BTreeSet::new();
    for s in order {
        let service = &services[s];
        for (p, port) in service.ports.iter().enumerate() {
            let route = RouteKey {
                service: service.key.clone(),
                port: port.name.clone(),
                protocol: port.protocol,
            };
            let refused = if !matches!(port.protocol, Protocol::Tcp | Protocol::Udp) {
                Some(ListenError::Unsupported {
                    protocol: port.protocol,
                })
            } else if !seen_routes.insert(route.clone()) {
                Some(ListenError::DuplicatePort {
                    service: service.key.clone(),
                    port: port.name.clone(),
                    protocol: port.protocol,
                })
            } else {
                out.routes.push((route.clone(), s, p));
                None
            };
            for &addr in &port.listen {
                let key = ListenKey {
                    addr,
                    protocol: port.protocol,
                };
                let action = match (&refused, owners.get(&key)) {
                    (Some(e), _) => Action::Refuse(e.clone()),
                    (None, Some(owner)) => Action::Refuse(ListenError::Conflict {
                        addr,
                        protocol: port.protocol,
                        owner: owner.service.clone(),
                        owner_port: owner.port.clone(),
                    }),
                    (None, None) => {
                        owners.insert(key, route.clone());
                        match current.get(&key) {
                            Some(true) => Action::Keep,
                            _ => Action::Bind,
                        }
                    }
                };
                out.listeners.push(Planned {
                    key,
                    route: route.clone(),
                    action,
                });
            }
        }
    }
    out.close = current
        .keys()
        .filter(|k| !owners.contains_key(k))
        .copied()
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::proxy::PortSpec;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn tcp(a: &str) -> ListenKey {
        ListenKey {
            addr: addr(a),
            protocol: Protocol::Tcp,
        }
    }

    fn route(service: &str, port: &str) -> RouteKey {
        RouteKey {
            service: service.into(),
            port: port.into(),
            protocol: Protocol::Tcp,
        }
    }

    fn web(listen: &[&str]) -> ServiceSpec {
        ServiceSpec::new("default/web").port(PortSpec::tcp("http", listen.iter().map(|a| addr(a))))
    }

    #[test]
    fn bound_listeners_are_kept_failed_ones_retried_and_unwanted_ones_closed() {
        let current = BTreeMap::from([
            (tcp("10.96.0.1:80"), true),
            (tcp("127.0.0.1:80"), false),
            (tcp("10.96.0.9:80"), true),
        ]);
        let plan = plan(&[web(&["10.96.0.1:80", "127.0.0.1:80"])], &current);
        let actions: Vec<(ListenKey, Action)> = plan
            .listeners
            .iter()
            .map(|l| (l.key, l.action.clone()))
            .collect();
        assert_eq!(
            actions,
            vec![
                (tcp("10.96.0.1:80"), Action::Keep),
                (tcp("127.0.0.1:80"), Action::Bind),
            ]
        );
        assert_eq!(plan.close, vec![tcp("10.96.0.9:80")]);
        assert_eq!(plan.routes, vec![(route("default/web", "http"), 0, 0)]);
    }

    #[test]
    fn the_same_port_on_two_cluster_ips_is_two_listeners() {
        let master = ServiceSpec::new("default/redis-master")
            .port(PortSpec::tcp("6379", [addr("10.96.0.2:6379")]));
        let replica = ServiceSpec::new("default/redis-replica")
            .port(PortSpec::tcp("6379", [addr("10.96.0.3:6379")]));
        let plan = plan(&[replica, master], &BTreeMap::new());
        assert!(plan.listeners.iter().all(|l| l.action == Action::Bind));
        assert_eq!(plan.listeners.len(), 2);
    }

    #[test]
    fn the_first_service_by_key_owns_a_contested_address_whatever_the_input_order() {
        let a = ServiceSpec::new("default/a").port(PortSpec::tcp("6379", [addr("127.0.0.1:6379")]));
        let b = ServiceSpec::new("default/b").port(PortSpec::tcp("6379", [addr("127.0.0.1:6379")]));
        for services in [vec![a.clone(), b.clone()], vec![b, a]] {
            let plan = plan(&services, &BTreeMap::new());
            assert_eq!(plan.listeners[0].route, route("default/a", "6379"));
            assert_eq!(plan.listeners[0].action, Action::Bind);
            assert_eq!(
                plan.listeners[1].action,
                Action::Refuse(ListenError::Conflict {
                    addr: addr("127.0.0.1:6379"),
                    protocol: Protocol::Tcp,
                    owner: "default/a".into(),
                    owner_port: "6379".into(),
                })
            );
        }
    }

    #[test]
    fn a_kept_listener_may_move_to_another_service_without_a_rebind() {
        let current = BTreeMap::from([(tcp("127.0.0.1:8080"), true)]);
        let other =
            ServiceSpec::new("default/other").port(PortSpec::tcp("http", [addr("127.0.0.1:8080")]));
        let plan = plan(&[other], &current);
        assert_eq!(plan.listeners[0].action, Action::Keep);
        assert_eq!(plan.listeners[0].route, route("default/other", "http"));
        assert!(plan.close.is_empty());
    }

    #[test]
    fn sctp_ports_and_duplicate_port_names_are_refused_and_forward_nothing() {
        let sctp = ServiceSpec::new("default/s").port(PortSpec::new(
            "x",
            Protocol::Sctp,
            [addr("127.0.0.1:9")],
        ));
        let twice = ServiceSpec::new("default/t")
            .port(PortSpec::tcp("http", [addr("127.0.0.1:80")]))
            .port(PortSpec::tcp("http", [addr("127.0.0.1:81")]));
        let plan = plan(&[sctp, twice], &BTreeMap::new());
        let refused: Vec<String> = plan
            .listeners
            .iter()
            .filter_map(|l| match &l.action {
                Action::Refuse(e) => Some(e.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            refused,
            vec![
                "SCTP is not proxied (only TCP and UDP are)".to_string(),
                "Service default/t has two TCP ports named \"http\"".to_string(),
            ]
        );
        assert_eq!(plan.routes, vec![(route("default/t", "http"), 1, 0)]);
    }
}
