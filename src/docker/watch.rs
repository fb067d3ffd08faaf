//! A cached view of each host, kept current by its event stream, so that planning reads memory
//! instead of calling every engine on every pass.
//!
//! Per host, one task: subscribe to the engine's container events, list and inspect every
//! managed container (a full look), then follow events, inspecting each container an event is
//! about; look in full again every resync period (hosts staggered) to repair anything an event
//! stream missed, inspecting then only the containers whose state changed (and every one on
//! each tenth look). Each change to a pod's containers is reported once as [`Touched::Pod`], and a
//! host going away or coming back as [`Touched::Host`]: triggers that say "look at this", never
//! state. A host whose engine does not answer is `Unknown` (never "empty"); reconnecting backs
//! off to [`retry_cap`], so a dead engine costs a call now and then, not a pass per second.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::error::DockerError;
use super::events::ContainerEvent;
use super::host::{DockerHost, NodeInfo};
use crate::clock::now_millis;
use crate::raft::state::Millis;
use crate::reconcile::ObservedContainer;

/// Longest pause between attempts to reach an engine that does not answer.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// The longest pause between attempts to reach an engine, for a node grace period of `grace`:
/// a quarter of it (1 s to [`MAX_RETRY`]). Longer, and a host that flaps could be back for
/// most of the grace period unseen, be declared `NotReady` and have its replicas moved while
/// it runs them.
pub fn retry_cap(grace: Duration) -> Duration {
    (grace / 4).clamp(Duration::from_secs(1), MAX_RETRY)
}
/// Every this many full looks at a host, one inspects every container, changed or not (see
/// `HostCache::look`).
const DEEP_LOOK_EVERY: u32 = 10;
/// Hosts whose containers are being inspected at once, over all hosts. At start-up every host
/// is looked at in full together: 5,000 hosts with 8 inspect connections each made the peak of
/// berth's memory. A host that does not answer fails its list first and holds no permit.
pub const INSPECTING_HOSTS: usize = 64;
/// Docker events that can change what the planner sees. Others (`exec_*`, `attach`, `top`,
/// `resize`, ...) are dropped before any work: health checks run `exec` every few seconds.
const RELEVANT: [&str; 11] = [
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "destroy",
    "rename",
    "health_status",
    "oom",
    "pause",
    "unpause",
];

/// Something about a host changed: look at it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// The containers of this pod (`namespace/name`) changed on some host.
    Pod(String),
    /// The host's engine went away or came back (look at every pod it holds).
    Host(String),
}

/// Whether a host's engine answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostState {
    /// Not looked at yet.
    Unseen,
    /// Answered the last full look; the cache holds all its managed containers.
    Seen,
    /// Did not answer: nothing about its containers is known.
    Unknown { reason: String },
}

/// What is known of one host.
#[derive(Debug, Clone)]
pub struct HostView {
    pub state: HostState,
    /// Managed containers by id. Shared: a full look keeps the unchanged ones without copying
    /// them (100,000 containers at 5,000 hosts, each looked at every resync).
    pub containers: BTreeMap<String, Arc<ObservedContainer>>,
    pub info: Option<NodeInfo>,
    /// The last time the engine answered a full look.
    pub last_seen: Option<Millis>,
    /// The last time the engine answered anything (a full look, an inspect after an event).
    pub last_contact: Option<Millis>,
    /// Since when the engine has not answered: set when the host is not `Seen` (from the
    /// cache's creation for a host never seen), cleared by a full look. A host is `NotReady`
    /// once this is older than the grace period, so a blip never moves anything.
    pub out_of_contact_since: Option<Millis>,
}

/// A host's readiness as placement and status see it (Kubernetes' node conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Readiness {
    /// Answered its last full look.
    Ready,
    /// Does not answer, for less than the grace period: nothing moves yet.
    Unknown,
    /// Has not answered for the grace period or longer: its RC replicas are placed elsewhere.
    NotReady,
}

impl HostView {
    pub fn is_seen(&self) -> bool {
        self.state == HostState::Seen
    }

    /// Ready, or for how long not, against `grace` at `now`.
    pub fn readiness(&self, now: Millis, grace: Duration) -> Readiness {
        if self.is_seen() {
            return Readiness::Ready;
        }
        match self.out_of_contact_since {
            Some(t) if now.saturating_sub(t) >= grace.as_millis() as Millis => Readiness::NotReady,
            _ => Readiness::Unknown,
        }
    }

    /// The containers of one pod on this host.
    pub fn pod(&self, namespace: &str, pod: &str) -> Vec<&ObservedContainer> {
        self.containers
            .values()
            .filter(|c| c.namespace == namespace && c.pod == pod)
            .map(Arc::as_ref)
            .collect()
    }
}

/// Which hosts hold containers of each pod (`namespace/name`), over all hosts: the work on one
/// pod reads those hosts' views only, instead of every host's (5,000 hosts × 100,000 pods).
/// Updated under the host's view lock, so it never lags the views it indexes.
///
/// Each pod also carries the generation of its last change on any host (a counter over the
/// whole index): the engine compares it with the generation it last settled on, and a resync
/// skips pods whose containers have not changed since (see `controller::settled`).
#[derive(Debug, Default)]
pub struct PodIndex {
    pods: RwLock<Pods>,
}

#[derive(Debug, Default)]
struct Pods {
    by_pod: HashMap<String, PodHosts>,
    /// The last generation given out.
    generation: u64,
}

/// Where one pod's containers are, and when that last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHosts {
    /// Host names, sorted; nearly always one.
    pub hosts: Vec<String>,
    /// Raised on every change to the pod's containers on any host.
    pub generation: u64,
}

impl PodIndex {
    /// The hosts where containers of `pod` were last seen.
    pub fn hosts_of(&self, pod: &str) -> Vec<String> {
        self.get(pod).map(|p| p.hosts).unwrap_or_default()
    }

    /// Where `pod`'s containers are and their generation; `None` when no host holds any.
    pub fn get(&self, pod: &str) -> Option<PodHosts> {
        self.read(|p| p.get(pod).cloned())
    }

    /// The last generation given out: it moves on every change to any pod's containers.
    pub fn generation(&self) -> u64 {
        self.pods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Runs `f` on every pod's entry. The index is held meanwhile: keep `f` short and take
    /// no other lock in it (watchers take a host's view, then this).
    pub fn read<T>(&self, f: impl FnOnce(&HashMap<String, PodHosts>) -> T) -> T {
        f(&self
            .pods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_pod)
    }

    /// The pods (`namespace/name`) seen on some host whose key starts with `prefix`.
    pub fn pods_under(&self, prefix: &str) -> Vec<String> {
        self.read(|p| {
            p.keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect()
        })
    }

    fn set(&self, pod: &str, host: &str, present: bool) {
        let mut pods = self.pods.write().unwrap_or_else(PoisonError::into_inner);
        pods.generation += 1;
        let generation = pods.generation;
        if present {
            let entry = pods
                .by_pod
                .entry(pod.to_string())
                .or_insert_with(|| PodHosts {
                    hosts: Vec::with_capacity(1),
                    generation,
                });
            entry.generation = generation;
            if let Err(at) = entry.hosts.binary_search_by(|h| h.as_str().cmp(host)) {
                entry.hosts.insert(at, host.to_string());
            }
        } else if let Some(entry) = pods.by_pod.get_mut(pod) {
            entry.generation = generation;
            entry.hosts.retain(|h| h != host);
            if entry.hosts.is_empty() {
                pods.by_pod.remove(pod);
            }
        }
    }
}

/// The shared cache of one host: written by its watcher (and by the engine right after its own
/// steps), read by everyone else.
#[derive(Clone)]
pub struct HostCache {
    host: DockerHost,
    view: Arc<RwLock<HostView>>,
    index: Arc<PodIndex>,
    /// Shared by every host's cache: see [`INSPECTING_HOSTS`].
    inspecting: Arc<Semaphore>,
}

impl HostCache {
    pub fn new(host: DockerHost) -> HostCache {
        HostCache::indexed(host, Arc::default(), inspect_permits())
    }

    /// A cache that keeps `index` current and takes a permit of `inspecting` to inspect, both
    /// shared by every host's cache (see [`inspect_permits`]).
    pub fn indexed(
        host: DockerHost,
        index: Arc<PodIndex>,
        inspecting: Arc<Semaphore>,
    ) -> HostCache {
        HostCache {
            host,
            index,
            inspecting,
            view: Arc::new(RwLock::new(HostView {
                state: HostState::Unseen,
                containers: BTreeMap::new(),
                info: None,
                last_seen: None,
                last_contact: None,
                out_of_contact_since: Some(now_millis()),
            })),
        }
    }

    pub fn host(&self) -> &DockerHost {
        &self.host
    }

    /// Runs `f` on the current view. Keep it short: the watcher waits meanwhile.
    pub fn read<T>(&self, f: impl FnOnce(&HostView) -> T) -> T {
        f(&self.view.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut HostView) -> T) -> T {
        f(&mut self.view.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Inspects `ids` again and updates the cache: the engine calls it right after its own
    /// steps, so its next look does not wait for the events. Returns the pods that changed.
    pub async fn refresh(&self, ids: &[String]) -> Result<Vec<String>, DockerError> {
        let mut touched = BTreeSet::new();
        for id in ids {
            let found = self.host.inspect_managed(id).await?;
            touched.extend(self.put(id, found));
        }
        Ok(touched.into_iter().collect())
    }

    /// Records what an inspect found under `id` (an id, or a name when the id is not known
    /// yet); returns the pod touched, if the view changed.
    fn put(&self, id: &str, mut found: Option<ObservedContainer>) -> Option<String> {
        let id = found.as_ref().map_or(id, |c| c.id.as_str()).to_string();
        let id = id.as_str();
        self.write(|v| {
            let before = v.containers.get(id).cloned();
            if let (Some(f), Some(b)) = (found.as_mut(), before.as_ref()) {
                remember_exit(f, b);
            }
            if before.as_deref() == found.as_ref() {
                return None;
            }
            let pod = found
                .as_ref()
                .or(before.as_deref())
                .map(|c| format!("{}/{}", c.namespace, c.pod));
            match found {
                Some(c) => {
                    v.containers.insert(id.to_string(), Arc::new(c));
                }
                None => {
                    v.containers.remove(id);
                }
            }
            if let Some(pod) = &pod {
                self.reindex(v, pod);
            }
            pod
        })
    }

    /// A full look: list everything, inspect what is new or changed state (everything, on a
    /// `deep` look), replace the view, report what changed.
    ///
    /// Events report every change; the list is what repairs one an event stream missed. A
    /// container whose state word is the one cached is not inspected again: at 100,000
    /// containers that is 5,000 inspects a second for nothing. What only an inspect shows
    /// (a restart that left it running, its restart count) is refreshed by its event, and by
    /// the next deep look at the latest.
    async fn look(
        &self,
        touched: &UnboundedSender<Touched>,
        deep: bool,
    ) -> Result<(), DockerError> {
        let (listed, info) = tokio::join!(self.host.list_managed_states(), self.host.info());
        let (listed, info) = (listed?, info?);
        let (unchanged, to_inspect): (Vec<_>, Vec<_>) = self.read(|v| {
            listed.into_iter().partition(|(id, state)| {
                !deep && v.is_seen() && v.containers.get(id).is_some_and(|c| &c.state == state)
            })
        });
        let inspected = if to_inspect.is_empty() {
            Vec::new()
        } else {
            let _permit = self.inspecting.acquire().await;
            self.host
                .inspect_all(to_inspect.into_iter().map(|(id, _)| id).collect())
                .await?
        };
        let (pods, came_back) = self.write(|v| {
            let mut fresh: BTreeMap<String, Arc<ObservedContainer>> = inspected
                .into_iter()
                .map(|mut c| {
                    if let Some(b) = v.containers.get(&c.id) {
                        remember_exit(&mut c, b);
                    }
                    (c.id.clone(), Arc::new(c))
                })
                .collect();
            // Unchanged ones as the view has them now: an event may have refreshed one since.
            for (id, _) in &unchanged {
                if let Some(c) = v.containers.get(id) {
                    fresh.entry(id.clone()).or_insert_with(|| Arc::clone(c));
                }
            }
            let mut pods = BTreeSet::new();
            for (id, c) in &fresh {
                if v.containers.get(id) != Some(c) {
                    pods.insert(format!("{}/{}", c.namespace, c.pod));
                }
            }
            for (id, c) in &v.containers {
                if !fresh.contains_key(id) {
                    pods.insert(format!("{}/{}", c.namespace, c.pod));
                }
            }
            let came_back = !v.is_seen();
            v.containers = fresh;
            for pod in &pods {
                self.reindex(v, pod);
            }
            v.info = Some(info);
            v.state = HostState::Seen;
            v.last_seen = Some(now_millis());
            v.last_contact = v.last_seen;
            v.out_of_contact_since = None;
            (pods, came_back)
        });
        if came_back {
            tracing::info!(node = self.host.name(), "Docker host ready");
            let _ = touched.send(Touched::Host(self.host.name().to_string()));
        }
        for pod in pods {
            let _ = touched.send(Touched::Pod(pod));
        }
        Ok(())
    }

    /// Records in the shared index whether this host holds containers of `pod` (`ns/name`).
    fn reindex(&self, v: &HostView, pod: &str) {
        let present = v
            .containers
            .values()
            .any(|c| pod.split_once('/') == Some((c.namespace.as_str(), c.pod.as_str())));
        self.index.set(pod, self.host.name(), present);
    }

    fn lost(&self, reason: String, touched: &UnboundedSender<Touched>) {
        let was_seen = self.write(|v| {
            let was = v.is_seen();
            v.state = HostState::Unknown {
                reason: reason.clone(),
            };
            // Counted from the first failure noticed, not from the last answer: a quiet event
            // stream is contact too, and the last full look may be a resync period old.
            if v.out_of_contact_since.is_none() {
                v.out_of_contact_since = Some(now_millis());
            }
            was
        });
        if was_seen {
            tracing::warn!(node = self.host.name(), "Docker host not ready: {reason}");
            let _ = touched.send(Touched::Host(self.host.name().to_string()));
        }
    }

    /// Keeps this host's view current until `shutdown`. `resync` is the period of full looks;
    /// `offset` staggers hosts so their full looks do not all fall at once.
    /// `max_retry` bounds the pause between attempts to reach an engine (see [`retry_cap`]).
    pub async fn watch(
        self,
        resync: Duration,
        offset: Duration,
        max_retry: Duration,
        touched: UnboundedSender<Touched>,
        shutdown: CancellationToken,
    ) {
        // Looks and inspects are boxed: the future of this loop is kept for every host all the
        // time, and would otherwise be as large as the largest request future in it (8 KiB).
        let mut retry = Duration::from_secs(1).min(max_retry);
        let mut looks: u32;
        loop {
            // Subscribe before looking, so nothing that happens during the look is missed.
            let mut events = Events::new(self.host.events());
            // The first look after (re)connecting inspects everything: events may have been
            // missed while the stream was down.
            looks = 0;
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                looked = events.meanwhile(Box::pin(self.look(&touched, true))) => looked,
            };
            if let Err(e) = outcome {
                self.lost(crate::controller::error_chain(&e), &touched);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(max_retry);
                continue;
            }
            let connected = tokio::time::Instant::now();
            let mut next_look = connected + resync + offset;
            let reason = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(next_look) => {
                        next_look = tokio::time::Instant::now() + resync;
                        looks += 1;
                        let deep = looks % DEEP_LOOK_EVERY == 0;
                        if let Err(e) = events.meanwhile(Box::pin(self.look(&touched, deep))).await {
                            break crate::controller::error_chain(&e);
                        }
                    }
                    ev = events.next() => match ev {
                        Some(Ok(ev)) if RELEVANT.contains(&ev.action.as_str()) => {
                            match events.meanwhile(Box::pin(self.host.inspect_managed(&ev.id))).await {
                                Ok(found) => {
                                    self.write(|v| v.last_contact = Some(now_millis()));
                                    if let Some(pod) = self.put(&ev.id, found) {
                                        let _ = touched.send(Touched::Pod(pod));
                                    }
                                }
                                Err(e) if e.is_unreachable() => break crate::controller::error_chain(&e),
                                Err(e) => tracing::debug!(node = self.host.name(), "inspect after event: {e}"),
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break crate::controller::error_chain(&e),
                        None => break "event stream ended".to_string(),
                    }
                }
            };
            // The stream broke: the engine may be restarting. Look again soon; only a look
            // that fails marks the host unknown. A stream that keeps breaking backs off.
            tracing::debug!(node = self.host.name(), "event stream: {reason}");
            let pause = if connected.elapsed() < Duration::from_secs(10) {
                retry = (retry * 2).min(max_retry);
                retry
            } else {
                retry = Duration::from_secs(1);
                Duration::from_millis(200)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The permits every host's cache shares (see [`INSPECTING_HOSTS`]).
pub fn inspect_permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(INSPECTING_HOSTS))
}

/// A host's event stream, read while the watcher does other work too.
///
/// The engine holds only a short queue of events for a subscriber that does not read, then
/// drops them; so while a look or an inspect runs, the stream is read into `queue` (one
/// subscription per host, no task or channel of its own: 5,000 hosts, 5,000 streams).
struct Events {
    stream: BoxStream<'static, Result<ContainerEvent, DockerError>>,
    /// Read but not handled yet; `None` marks the end of the stream.
    queue: VecDeque<Option<Result<ContainerEvent, DockerError>>>,
    ended: bool,
}

impl Events {
    fn new(stream: BoxStream<'static, Result<ContainerEvent, DockerError>>) -> Events {
        Events {
            stream,
            queue: VecDeque::new(),
            ended: false,
        }
    }

    /// The next event, or `None` once the stream has ended. Cancel-safe.
    async fn next(&mut self) -> Option<Result<ContainerEvent, DockerError>> {
        if let Some(event) = self.queue.pop_front() {
            return event;
        }
        if self.ended {
            return std::future::pending().await;
        }
        let event = self.stream.next().await;
        self.ended = event.is_none();
        event
    }

    /// Runs `work` to its end, queueing the events that arrive meanwhile.
    async fn meanwhile<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            if self.ended {
                return work.await;
            }
            tokio::select! {
                out = &mut work => return out,
                event = self.stream.next() => {
                    self.ended = event.is_none();
                    self.queue.push_back(event);
                }
            }
        }
    }
}

/// A container running again after exiting forgets its exit code in Docker's state: keep it
/// from what was seen before, as the cause of a crash loop.
fn remember_exit(now: &mut ObservedContainer, before: &ObservedContainer) {
    if now.last_exit_code.is_none() {
        now.last_exit_code = before.exit_code.or(before.last_exit_code);
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn a_host_is_tried_again_within_a_quarter_of_the_grace_period() {
        assert_eq!(
            retry_cap(Duration::from_secs(10)),
            Duration::from_millis(2500)
        );
        assert_eq!(retry_cap(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(retry_cap(Duration::from_secs(3600)), MAX_RETRY);
    }
}
