//! [`Proxy`]: the table of listeners, reconciled by `apply`, retried and finally drained by
//! `run`.
//!
//! One mutex guards the table; it is held by `apply`, the periodic rebind and `status`, never
//! on the data path. Connections find their endpoints through a [`Route`] (one per listener),
//! so `apply` swaps endpoint lists and even a listener's Service port without touching
//! sockets or connections.
//!
//! Tasks: each listener's loop and each connection or UDP session is spawned on one
//! `TaskTracker`. A listener's loop stops on its own token (closed by `apply`) or the proxy's;
//! connections stop only on the proxy's, which `run` cancels when its shutdown is, before
//! waiting for every task. Dropping the last `Proxy` handle cancels it too, so a proxy never
//! leaves tasks behind.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backends::{lock, read, write, Backends};
use super::bind::Slot;
use super::plan::{plan, Action, ListenKey, RouteKey};
use super::status::{EndpointStatus, ListenerStatus, PortStatus};
use super::{
    ApplyReport, ListenError, ListenOutcome, ListenerReport, ProxyConfig, ProxyStatus, ServiceSpec,
};

/// See [`Inner::retry_soon`].
const RETRY_SOON: Duration = Duration::from_millis(20);

/// What every listener and connection task shares.
#[derive(Debug, Clone)]
pub(super) struct Context {
    pub config: Arc<ProxyConfig>,
    pub tasks: TaskTracker,
    /// The proxy's own shutdown; cancelled by `run` or when the last handle is dropped.
    pub shutdown: CancellationToken,
}

/// Which Service port a listener forwards to; swapped in place by `apply`.
#[derive(Debug)]
pub(super) struct Route(RwLock<Arc<Backends>>);

impl Route {
    pub fn get(&self) -> Arc<Backends> {
        read(&self.0).clone()
    }

    pub fn new(backends: Arc<Backends>) -> Route {
        Route(RwLock::new(backends))
    }

    pub fn set(&self, backends: Arc<Backends>) {
        *write(&self.0) = backends;
    }
}

/// The service proxy: listeners on cluster IPs, the service address and node ports, forwarding
/// to the endpoints the controller computes. Cheap to clone; all clones are one proxy.
///
/// ```ignore
/// let proxy = Proxy::new();
/// tasks.spawn({ let proxy = proxy.clone(); async move { proxy.run(shutdown).await } });
/// // whenever Services or endpoints change (and from time to time):
/// let report = proxy.apply(&services);
/// for failed in report.failures() { ... }
/// // for the status API:
/// let status = proxy.status();
/// ```
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: Context,
    state: Mutex<State>,
    /// Wakes `run` to retry binds soon: set when an `apply` closed a listener and a bind in
    /// the same `apply` found its port in use, most likely held by that listener until its
    /// loop has seen the close (moving a node port from `0.0.0.0` to one address, say).
    retry_soon: Notify,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

#[derive(Debug, Default)]
struct State {
    shut_down: bool,
    /// Listeners that are bound, or whose bind failed for a cause that may pass.
    slots: BTreeMap<ListenKey, Slot>,
    /// Listeners refused by the last `apply` (conflicts, unsupported protocols).
    refused: Vec<(ListenKey, RouteKey, ListenError)>,
    routes: BTreeMap<RouteKey, Arc<Backends>>,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy::new()
    }
}

impl Proxy {
    /// A proxy with the default [`ProxyConfig`] and no listeners.
    pub fn new() -> Proxy {
        Proxy::with_config(ProxyConfig::default())
    }

    pub fn with_config(config: ProxyConfig) -> Proxy {
        Proxy {
            inner: Arc::new(Inner {
                ctx: Context {
                    config: Arc::new(config),
                    tasks: TaskTracker::new(),
                    shutdown: CancellationToken::new(),
                },
                state: Mutex::new(State::default()),
                retry_soon: Notify::new(),
            }),
        }
    }

    /// Makes the listeners what `services` want: binds new ones, closes unwanted ones (their
    /// TCP connections run on), keeps the rest bound, and swaps every port's endpoints and
    /// affinity in place. `services` is the whole wanted set: a Service left out is removed.
    ///
    /// Never fails as a whole: each listener's outcome is in the report, and a listener that
    /// cannot bind (port in use, address not local yet) is retried by [`Proxy::run`] and by
    /// the next `apply`. Must be called inside a Tokio runtime. Idempotent: calling it again
    /// with the same services changes nothing.
    pub fn apply(&self, services: &[ServiceSpec]) -> ApplyReport {
        let mut state = lock(&self.inner.state);
        let refuse_all = if state.shut_down {
            Some(ListenError::ShutDown)
        } else if tokio::runtime::Handle::try_current().is_err() {
            Some(ListenError::NoRuntime)
        } else {
            None
        };
        let current = state
            .slots
            .iter()
            .map(|(k, s)| (*k, s.bound.is_ok()))
            .collect();
        let plan = plan(services, &current);
        if let Some(e) = refuse_all {
            let listeners = plan
                .listeners
                .into_iter()
                .map(|l| report(l.key, l.route, ListenOutcome::Failed(e.clone())))
                .collect();
            return ApplyReport {
                listeners,
                closed: Vec::new(),
            };
        }
        let config = &self.inner.ctx.config;
        let mut routes = BTreeMap::new();
        for (key, s, p) in plan.routes {
            let backends = state.routes.remove(&key).unwrap_or_else(|| {
                Arc::new(Backends::new(
                    key.clone(),
                    config.max_affinity_clients,
                    config.endpoint_cooldown,
                ))
            });
            backends.update(&services[s].ports[p].endpoints, services[s].affinity);
            routes.insert(key, backends);
        }
        state.routes = routes;
        let mut out = ApplyReport::default();
        for key in plan.close {
            if let Some(slot) = state.slots.remove(&key) {
                if let Ok(bound) = &slot.bound {
                    bound.stop.cancel();
                    tracing::debug!(
                        "service proxy: closed {} {} (was {} port {})",
                        key.protocol.docker(),
                        bound.local,
                        slot.route_key.service,
                        slot.route_key.port
                    );
                }
                out.closed.push((key.addr, key.protocol));
            }
        }
        state.refused.clear();
        let mut in_use = false;
        for planned in plan.listeners {
            let (key, route_key) = (planned.key, planned.route);
            let outcome = match planned.action {
                Action::Refuse(e) => {
                    state.refused.push((key, route_key.clone(), e.clone()));
                    ListenOutcome::Failed(e)
                }
                Action::Keep | Action::Bind => {
                    let Some(backends) = state.routes.get(&route_key).cloned() else {
                        continue; // every non-refused listener's route was made above
                    };
                    let ctx = &self.inner.ctx;
                    let slot = match state.slots.entry(key) {
                        Entry::Vacant(v) => {
                            v.insert(Slot::bind(ctx, key, route_key.clone(), backends))
                        }
                        Entry::Occupied(o) => {
                            let slot = o.into_mut();
                            slot.route_key = route_key.clone();
                            slot.route.set(backends);
                            if slot.bound.is_err() {
                                slot.start(ctx, key, false);
                            }
                            slot
                        }
                    };
                    match &slot.bound {
                        Ok(b) if planned.action == Action::Keep => ListenOutcome::Kept(b.local),
                        Ok(b) => ListenOutcome::Bound(b.local),
                        Err(e) => {
                            in_use |= matches!(e, ListenError::InUse { .. });
                            ListenOutcome::Failed(e.clone())
                        }
                    }
                }
            };
            out.listeners.push(report(key, route_key, outcome));
        }
        if in_use && !out.closed.is_empty() {
            self.inner.retry_soon.notify_one();
        }
        let bound = out
            .listeners
            .iter()
            .filter(|l| matches!(l.outcome, ListenOutcome::Bound(_)))
            .count();
        if bound > 0 || !out.closed.is_empty() {
            tracing::info!(
                "service proxy: {bound} listeners bound, {} closed, {} not bound, {} kept",
                out.closed.len(),
                out.failures().count(),
                out.listeners.len() - bound - out.failures().count()
            );
        }
        out
    }

    /// Retries every listener whose bind failed.
    fn rebind(&self) {
        let mut state = lock(&self.inner.state);
        if state.shut_down {
            return;
        }
        for (key, slot) in state.slots.iter_mut() {
            if slot.bound.as_ref().is_err_and(ListenError::retryable) {
                slot.start(&self.inner.ctx, *key, false);
            }
        }
    }

    /// Retries failed binds every `rebind_interval` until `shutdown` is cancelled; then
    /// closes every listener, ends every connection and session, and returns once all their
    /// tasks have finished. `apply` after that binds nothing.
    pub async fn run(&self, shutdown: CancellationToken) {
        let ctx = &self.inner.ctx;
        // `interval` refuses a zero period; a configured zero means "as often as is sane".
        let period = ctx.config.rebind_interval.max(RETRY_SOON);
        let mut retry = tokio::time::interval(period);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retry.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = ctx.shutdown.cancelled() => break,
                _ = retry.tick() => self.rebind(),
                () = self.inner.retry_soon.notified() => {
                    // Long enough for a closed listener's loop to have dropped its socket.
                    tokio::time::sleep(RETRY_SOON).await;
                    self.rebind();
                }
            }
        }
        let listeners = {
            let mut state = lock(&self.inner.state);
            state.shut_down = true;
            state.routes.clear();
            state.refused.clear();
            std::mem::take(&mut state.slots).len()
        };
        ctx.shutdown.cancel();
        ctx.tasks.close();
        tracing::debug!(
            "service proxy: shutting down {listeners} listeners, {} tasks",
            ctx.tasks.len()
        );
        ctx.tasks.wait().await;
    }

    /// Every Service port with its listeners, endpoints and counters.
    pub fn status(&self) -> ProxyStatus {
        let state = lock(&self.inner.state);
        let mut ports: BTreeMap<RouteKey, PortStatus> = BTreeMap::new();
        for (key, backends) in &state.routes {
            entry(&mut ports, key).endpoints = backends
                .endpoints()
                .iter()
                .map(|e| EndpointStatus {
                    addr: e.addr,
                    counters: e.counters.snapshot(),
                })
                .collect();
        }
        for (key, slot) in &state.slots {
            entry(&mut ports, &slot.route_key)
                .listeners
                .push(ListenerStatus {
                    addr: key.addr,
                    bound: slot.bound.as_ref().ok().map(|b| b.local),
                    error: slot.bound.as_ref().err().map(ToString::to_string),
                    counters: slot.counters.snapshot(),
                });
        }
        for (key, route, error) in &state.refused {
            entry(&mut ports, route).listeners.push(ListenerStatus {
                addr: key.addr,
                bound: None,
                error: Some(error.to_string()),
                counters: Default::default(),
            });
        }
        let mut ports: Vec<PortStatus> = ports.into_values().collect();
        for p in &mut ports {
            p.listeners.sort_by_key(|l| l.addr);
        }
        ProxyStatus { ports }
    }
}

fn entry<'a>(ports: &'a mut BTreeMap<RouteKey, PortStatus>, key: &RouteKey) -> &'a mut PortStatus {
    ports.entry(key.clone()).or_insert_with(|| PortStatus {
        service: key.service.clone(),
        port: key.port.clone(),
        protocol: key.protocol,
        listeners: Vec::new(),
        endpoints: Vec::new(),
    })
}

fn report(key: ListenKey, route: RouteKey, outcome: ListenOutcome) -> ListenerReport {
    ListenerReport {
        service: route.service,
        port: route.port,
        addr: key.addr,
        protocol: key.protocol,
        outcome,
    }
}
