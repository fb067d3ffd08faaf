//! Services on the controller: the leader computes cluster IPs and endpoints and commits them;
//! every member (leader and followers) holds the committed cluster IPs on its interface and
//! hands the committed endpoints to its proxy.
//!
//! ```text
//! leader, every 200 ms: desired Services + desired pods + readiness (pod book) + addresses
//!   (host caches) ─► cluster_ip::allocate, endpoints::endpoints ─► ServiceTable
//!   ─► Command::Services when it differs from the committed one (so: debounced)
//! every member, on each change of the committed table or Services:
//!   ─► Interface::sync(cluster IPs) ─► endpoints::proxy_specs ─► Proxy::apply
//! ```
//!
//! Retired replicas drain: the pod engine does not stop a pod that is no longer desired while
//! the committed table still lists it ready, nor for `--drain-delay` after the table that
//! removed it was committed ([`Controller::drain_wait`]).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{error_chain, Controller};
use crate::clock::now_millis;
use crate::manifest::Service;
use crate::raft::state::{Command, Millis, ServiceTable};
use crate::service::discovery::Discovery;
use crate::service::endpoints::{endpoints, proxy_specs, Listen, PodView, Reach};
use crate::service::interface::Interface;
use crate::service::proxy::{Proxy, ServiceSpec};
use crate::service::{cluster_ip, node_port, ServiceError};

/// How often the leader recomputes endpoints, and so the longest a readiness change waits
/// before it is proposed: changes within one period make one commit.
const ENDPOINT_DEBOUNCE: Duration = Duration::from_millis(200);
/// The longest a pod's creation waits for the cluster IPs of its namespace's new Services.
const DISCOVERY_WAIT: Duration = Duration::from_secs(5);

/// This member's Service machinery.
pub struct ServiceRuntime {
    pub proxy: Proxy,
    interface: Option<Interface>,
    listen: Listen,
    /// What the proxy and interface were last brought to.
    applied: Mutex<Option<(Vec<ServiceSpec>, BTreeSet<Ipv4Addr>)>>,
    /// The last interface error, while it lasts.
    interface_error: Mutex<Option<String>>,
    /// Namespaces whose pods wait for new Services' cluster IPs, since when (see
    /// [`Controller::discovery_wait`]).
    discovery_waits: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ServiceRuntime {
    pub fn new(settings: &super::service_args::ServiceSettings) -> ServiceRuntime {
        ServiceRuntime {
            proxy: Proxy::new(),
            interface: settings.interface.as_deref().map(Interface::new),
            listen: Listen {
                service_address: settings.service_address,
                cluster_ips: settings.interface.is_some(),
                node_address: settings.node_port_address,
            },
            applied: Mutex::new(None),
            interface_error: Mutex::new(None),
            discovery_waits: Mutex::new(HashMap::new()),
        }
    }

    /// Listeners not bound now: `(service, port, address, error)`. From the proxy's live
    /// status, so a port freed later (and bound by the proxy's retry) leaves the list.
    pub fn listener_errors(&self) -> Vec<(String, String, String, String)> {
        self.proxy
            .status()
            .ports
            .into_iter()
            .flat_map(|p| {
                p.listeners
                    .into_iter()
                    .filter_map(|l| Some((l.addr, l.error?)))
                    .map(move |(addr, e)| (p.service.clone(), p.port.clone(), addr.to_string(), e))
            })
            .collect()
    }

    pub fn interface_error(&self) -> Option<String> {
        lock(&self.interface_error).clone()
    }
}

impl Controller {
    /// The proxy's own loop (binds retried, drained at shutdown), then the interface removed.
    pub(super) async fn run_proxy(self: Arc<Self>, shutdown: CancellationToken) {
        self.services.proxy.clone().run(shutdown).await;
        if let Some(i) = &self.services.interface {
            if let Err(e) = i.remove().await {
                tracing::warn!("{e}");
            }
        }
    }

    /// Computes (leader) and applies (everyone) the Service table, every [`ENDPOINT_DEBOUNCE`].
    pub(super) async fn services_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(ENDPOINT_DEBOUNCE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // Nothing to compute without Services (and none ever committed).
            let any = self
                .raft
                .state()
                .read(|s| !s.desired.services.is_empty() || s.services != ServiceTable::default());
            if any && self.acting() {
                self.propose_service_table().await;
            }
            self.apply_service_table().await;
        }
    }

    /// The table the leader would commit now.
    fn service_table(&self) -> ServiceTable {
        let (services, previous, previous_ports) = self.raft.state().read(|s| {
            (
                s.desired.services.clone(),
                s.services.cluster_ips.clone(),
                s.services.node_ports.clone(),
            )
        });
        let (cluster_ips, mut errors) =
            cluster_ip::allocate(&self.config.services.cidr, &services, &previous);
        let (node_ports, port_errors) = node_port::allocate(&services, &previous_ports);
        for (key, e) in port_errors {
            errors
                .entry(key)
                .and_modify(|all: &mut String| {
                    all.push_str("; ");
                    all.push_str(&e)
                })
                .or_insert(e);
        }
        let index = self.desired();
        let reaches: Vec<Reach> = index.pods.values().map(|p| self.reach(p)).collect();
        let views: Vec<PodView> = index
            .pods
            .values()
            .zip(reaches)
            .map(|(p, reach)| PodView {
                namespace: &p.namespace,
                name: &p.name,
                node: &p.node,
                labels: &p.labels,
                spec: &p.spec,
                ready: self.book.status(&p.key()).is_some_and(|s| s.ready),
                reach,
            })
            .collect();
        ServiceTable {
            cluster_ips,
            endpoints: endpoints(&services, &views),
            errors,
            node_ports,
            left: Default::default(),
        }
    }

    /// Where the controllers reach a desired pod: its network owner's address on a local
    /// engine, its published ports on a remote one.
    fn reach(&self, pod: &crate::reconcile::DesiredPod) -> Reach {
        let Some(cache) = self.cache(&pod.node) else {
            return Reach::Unknown;
        };
        let host = cache.host();
        cache.read(|v| {
            let mine: Vec<_> = v
                .pod(&pod.namespace, &pod.name)
                .into_iter()
                .filter(|c| c.spec_hash == pod.spec_hash && c.running)
                .collect();
            let owner = if pod.has_holder() {
                mine.iter().find(|c| c.holder)
            } else {
                mine.iter().find(|c| !c.holder)
            };
            let Some(owner) = owner else {
                return Reach::Unknown;
            };
            if host.is_local() {
                match owner.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()) {
                    Some(ip) => Reach::Direct(ip),
                    None => Reach::Unknown,
                }
            } else {
                match host.public_host().and_then(|h| h.parse::<IpAddr>().ok()) {
                    Some(ip) => Reach::Published {
                        host: ip,
                        ports: owner.published.clone(),
                    },
                    None => Reach::Unknown,
                }
            }
        })
    }

    async fn propose_service_table(&self) {
        let table = self.service_table();
        let committed = self.raft.state().read(|s| s.services.clone());
        if table.same_endpoints(&committed) {
            return;
        }
        let table = table.with_left_from(&committed, now_millis());
        self.propose_quietly(Command::Services { table }).await;
    }

    async fn apply_service_table(&self) {
        let (services, table): (Vec<Service>, ServiceTable) = self
            .raft
            .state()
            .read(|s| (s.desired.services.clone(), s.services.clone()));
        let specs = proxy_specs(&services, &table, &self.services.listen);
        let ips: BTreeSet<Ipv4Addr> = if self.services.interface.is_some() {
            table.cluster_ips.values().copied().collect()
        } else {
            BTreeSet::new()
        };
        let same = lock(&self.services.applied)
            .as_ref()
            .is_some_and(|(s, i)| *s == specs && *i == ips);
        if same {
            return;
        }
        if let Some(interface) = &self.services.interface {
            let result: Result<(), ServiceError> = interface.sync(&ips).await;
            let mut last = lock(&self.services.interface_error);
            match result {
                Ok(()) => {
                    if last.take().is_some() {
                        tracing::info!("cluster IPs held on {} again", interface.name());
                    }
                }
                Err(e) => {
                    let msg = error_chain(&e);
                    if last.as_ref() != Some(&msg) {
                        tracing::warn!("{msg}");
                    }
                    *last = Some(msg);
                }
            }
        }
        let report = self.services.proxy.apply(&specs);
        for f in report.failures() {
            if let crate::service::proxy::ListenOutcome::Failed(e) = &f.outcome {
                tracing::debug!(service = %f.service, port = %f.port, addr = %f.addr, "{e}");
            }
        }
        *lock(&self.services.applied) = Some((specs, ips));
    }

    /// How long a pod that is no longer desired must still wait before it is stopped: while
    /// the committed table lists it as a ready endpoint, and for the drain delay after the
    /// table that removed it was committed. `None`: stop it now.
    pub(super) fn drain_wait(&self, key: &str) -> Option<Duration> {
        let (namespace, pod) = key.split_once('/')?;
        let (served, left) = self.raft.state().read(|s| {
            (
                s.services.serves(namespace, pod),
                s.services.left.get(key).copied(),
            )
        });
        drain_remaining(served, left, self.config.services.drain_delay, now_millis())
    }

    /// How long a pod of `namespace` should wait before its containers are created: while a
    /// Service of its namespace has no committed cluster IP yet (it came in the same commit),
    /// so that the pod's discovery includes it. Bounded by [`DISCOVERY_WAIT`]: a leader that
    /// cannot commit its table never holds pods back for long.
    pub(super) fn discovery_wait(&self, namespace: &str) -> Option<Duration> {
        let pending = self.raft.state().read(|s| {
            s.desired.services.iter().any(|svc| {
                let key =
                    crate::raft::state::object_key(&svc.metadata.namespace, &svc.metadata.name);
                svc.metadata.namespace == namespace
                    && !s.services.cluster_ips.contains_key(&key)
                    && !s.services.errors.contains_key(&key)
            })
        });
        let mut waits = lock(&self.services.discovery_waits);
        if !pending {
            waits.remove(namespace);
            return None;
        }
        let since = *waits
            .entry(namespace.to_string())
            .or_insert_with(Instant::now);
        (since.elapsed() < DISCOVERY_WAIT).then_some(ENDPOINT_DEBOUNCE)
    }

    /// What a new container of a pod in `namespace` learns of the Services.
    pub(super) fn discovery(&self, namespace: &str) -> Discovery {
        self.raft
            .state()
            .read(|s| Discovery::for_namespace(namespace, &s.desired.services, &s.services))
    }
}

/// How long a retired pod must still wait: while it is `served` (a ready endpoint in the
/// committed table), and until `drain` after it `left` the endpoints (as committed, on the
/// leader's clock of then). `None`: stop it now.
fn drain_remaining(
    served: bool,
    left: Option<Millis>,
    drain: Duration,
    now: Millis,
) -> Option<Duration> {
    if served {
        return Some(ENDPOINT_DEBOUNCE);
    }
    let until = left?.saturating_add(drain.as_millis() as Millis);
    (until > now).then(|| Duration::from_millis(until - now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_pod_waits_while_served_then_for_the_drain_delay() {
        let drain = Duration::from_secs(2);
        let t0: Millis = 1_700_000_000_000;
        // Still listed: look again after the next endpoint commit.
        assert_eq!(
            drain_remaining(true, None, drain, t0),
            Some(ENDPOINT_DEBOUNCE)
        );
        // Left at t0: waits out the rest of the drain, then nothing.
        assert_eq!(
            drain_remaining(false, Some(t0), drain, t0 + 500),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(drain_remaining(false, Some(t0), drain, t0 + 2000), None);
        // Never an endpoint (no Service selects it): stops at once.
        assert_eq!(drain_remaining(false, None, drain, t0), None);
    }
}
