//! Readiness and liveness probes, run by the leader with Kubernetes' fields and defaults.
//!
//! One task per (pod, container, kind) while the container runs: wait `initialDelaySeconds`,
//! then check every `periodSeconds` with `timeoutSeconds`; `successThreshold` successes make it
//! ready (alive), `failureThreshold` failures unready (dead). A task starts afresh whenever its
//! container is a new one or restarted (its start time changed), as a kubelet's does. A change
//! of outcome (and a new failure message) calls `notify` with the pod's key: a trigger, nothing
//! more; the pod's worker reads the outcomes.
//!
//! `exec` goes through Docker's exec API. `httpGet` and `tcpSocket` go from the controller to
//! the pod: to the address of its network namespace (the holder's, or its only container's)
//! when the engine is on this machine, else to the port published on its host (berth publishes
//! probed ports on an engine-picked port when the manifest gives no `hostPort`).
//!
//! Liveness failures restart the container with a kubelet's backoff: at once the first time,
//! then no sooner than 10 s, 20 s, ... 5 minutes after the previous restart; ten minutes without
//! one forgets the count.

mod check;

pub use check::{check, Target};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::clock::now_millis;
use crate::docker::DockerHost;
use crate::manifest::{PodSpec, PortRef, Probe, ProbeAction};
use crate::raft::state::Millis;
use crate::reconcile::{DesiredPod, ObservedContainer};

/// The kubelet's restart backoff for liveness failures.
const RESTART_BACKOFF_START: Millis = 10_000;
const RESTART_BACKOFF_CAP: Millis = 300_000;
const RESTART_BACKOFF_RESET: Millis = 600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Readiness,
    Liveness,
}

/// Where one probe stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Readiness: ready. Liveness: alive (true until proven dead).
    pub ok: bool,
    /// Since when `ok` has held (readiness).
    pub since: Option<Millis>,
    /// Whether it has been checked at least once.
    pub ran: bool,
    /// The last failure, in words (`readiness probe failed: HTTP 500`).
    pub last_failure: Option<String>,
}

struct Task {
    container: String,
    started_at: Option<Millis>,
    outcome: Arc<Mutex<Outcome>>,
    handle: JoinHandle<()>,
}

impl Drop for Task {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Restarts {
    count: u32,
    last: Millis,
}

type Notify = Arc<dyn Fn(String) + Send + Sync>;

/// Every probe of every pod this controller runs.
pub struct Probes {
    tasks: Mutex<HashMap<(String, String, Kind), Task>>,
    restarts: Mutex<HashMap<(String, String), Restarts>>,
    http: reqwest::Client,
    notify: Notify,
}

impl Probes {
    /// `notify(pod key)` is called when a probe's outcome changes.
    pub fn new(notify: impl Fn(String) + Send + Sync + 'static) -> Probes {
        Probes {
            tasks: Mutex::new(HashMap::new()),
            restarts: Mutex::new(HashMap::new()),
            // One pooled client for every HTTP probe. No redirects: a kubelet follows them only
            // to the same host, and a probe is about this container.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            notify: Arc::new(notify),
        }
    }

    /// Makes the probes of `pod` match its `current` containers on `host`: starts tasks for
    /// containers that run and have probes, restarts them for restarted containers, and stops
    /// the rest.
    pub fn sync(&self, pod: &DesiredPod, current: &[&ObservedContainer], host: &DockerHost) {
        let key = pod.key();
        let owner = current
            .iter()
            .find(|c| c.holder)
            .or_else(|| current.iter().find(|c| !c.holder))
            .copied();
        let mut tasks = self.lock_tasks();
        let mut wanted: Vec<(String, String, Kind)> = Vec::new();
        for spec in &pod.spec.containers {
            let Some(c) = current
                .iter()
                .find(|c| !c.holder && c.container == spec.name && c.running)
            else {
                continue;
            };
            for (kind, probe) in [
                (Kind::Readiness, &spec.readiness_probe),
                (Kind::Liveness, &spec.liveness_probe),
            ] {
                let Some(probe) = probe else { continue };
                let id = (key.clone(), spec.name.clone(), kind);
                wanted.push(id.clone());
                let fresh = tasks
                    .get(&id)
                    .is_some_and(|t| t.container == c.id && t.started_at == c.started_at);
                if fresh {
                    continue;
                }
                let target = Target {
                    host: host.clone(),
                    container: c.id.clone(),
                    addr: address(host, owner, &pod.spec, &probe.action),
                };
                let outcome = Arc::new(Mutex::new(Outcome {
                    ok: kind == Kind::Liveness,
                    ..Outcome::default()
                }));
                let handle = tokio::spawn(run(
                    target,
                    probe.clone(),
                    kind,
                    outcome.clone(),
                    self.http.clone(),
                    self.notify.clone(),
                    key.clone(),
                ));
                tasks.insert(
                    id,
                    Task {
                        container: c.id.clone(),
                        started_at: c.started_at,
                        outcome,
                        handle,
                    },
                );
            }
        }
        tasks.retain(|id, _| id.0 != key || wanted.contains(id));
    }

    /// Stops every probe of a pod (it is gone, or no longer this controller's).
    pub fn forget(&self, pod: &str) {
        self.lock_tasks().retain(|(k, _, _), _| k != pod);
        self.restarts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(k, _), _| k != pod);
    }

    /// Stops every probe.
    pub fn clear(&self) {
        self.lock_tasks().clear();
    }

    /// The outcome of one probe, if the container has it and it runs.
    pub fn outcome(&self, pod: &str, container: &str, kind: Kind) -> Option<Outcome> {
        let tasks = self.lock_tasks();
        let task = tasks.get(&(pod.to_string(), container.to_string(), kind))?;
        let outcome = task
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Some(outcome)
    }

    /// Containers of `pod` whose liveness probe failed and that may be restarted now, with why;
    /// and when the next one may be, if one must wait.
    pub fn restarts_due(
        &self,
        pod: &str,
        current: &[&ObservedContainer],
        now: Millis,
    ) -> (Vec<(String, String)>, Option<Millis>) {
        let mut due = Vec::new();
        let mut wait: Option<Millis> = None;
        let restarts = self.restarts.lock().unwrap_or_else(PoisonError::into_inner);
        for c in current.iter().filter(|c| !c.holder && c.running) {
            let Some(o) = self.outcome(pod, &c.container, Kind::Liveness) else {
                continue;
            };
            if o.ok {
                continue;
            }
            let r = restarts
                .get(&(pod.to_string(), c.container.clone()))
                .copied()
                .unwrap_or_default();
            let allowed = allowed_at(r, now);
            if allowed <= now {
                let why = o
                    .last_failure
                    .unwrap_or_else(|| "liveness probe failed".into());
                due.push((c.id.clone(), why));
            } else {
                wait = Some(wait.map_or(allowed, |w| w.min(allowed)));
            }
        }
        (due, wait)
    }

    /// A container of `pod` was restarted for its liveness probe.
    pub fn restarted(&self, pod: &str, container: &str, now: Millis) {
        let mut restarts = self.restarts.lock().unwrap_or_else(PoisonError::into_inner);
        let r = restarts
            .entry((pod.to_string(), container.to_string()))
            .or_default();
        if now.saturating_sub(r.last) > RESTART_BACKOFF_RESET {
            r.count = 0;
        }
        r.count += 1;
        r.last = now;
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, Kind), Task>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// When the next liveness restart may happen after `r`.
fn allowed_at(r: Restarts, now: Millis) -> Millis {
    if r.count == 0 || now.saturating_sub(r.last) > RESTART_BACKOFF_RESET {
        return now;
    }
    let wait = RESTART_BACKOFF_START
        .saturating_mul(1 << (r.count - 1).min(10))
        .min(RESTART_BACKOFF_CAP);
    r.last + wait
}

/// The port a probe's `port` names, in the pod's containers.
pub fn port_of(spec: &PodSpec, port: &PortRef) -> Option<u16> {
    match port {
        PortRef::Number(n) => Some(*n),
        PortRef::Name(name) => spec
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

/// Container ports the pod's probes reach over the network.
pub fn probed_ports(spec: &PodSpec) -> Vec<u16> {
    let mut ports: Vec<u16> = spec
        .containers
        .iter()
        .flat_map(|c| [&c.readiness_probe, &c.liveness_probe])
        .flatten()
        .filter_map(|p| match &p.action {
            ProbeAction::HttpGet { port, .. } | ProbeAction::TcpSocket { port, .. } => {
                port_of(spec, port)
            }
            ProbeAction::Exec { .. } => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Where the controller reaches the pod's `port`: the namespace owner's address on a local
/// engine, the published port on a remote one.
fn address(
    host: &DockerHost,
    owner: Option<&ObservedContainer>,
    spec: &PodSpec,
    action: &ProbeAction,
) -> Option<SocketAddr> {
    let port = match action {
        ProbeAction::HttpGet { port, .. } | ProbeAction::TcpSocket { port, .. } => {
            port_of(spec, port)?
        }
        ProbeAction::Exec { .. } => return None,
    };
    let owner = owner?;
    if host.is_local() {
        let ip: IpAddr = owner.ip.as_deref()?.parse().ok()?;
        return Some(SocketAddr::new(ip, port));
    }
    let published = owner
        .published
        .iter()
        .find(|(p, _, _)| *p == port)
        .map(|(_, _, h)| *h)?;
    let ip: IpAddr = host.public_host()?.parse().ok()?;
    Some(SocketAddr::new(ip, published))
}

async fn run(
    target: Target,
    probe: Probe,
    kind: Kind,
    outcome: Arc<Mutex<Outcome>>,
    http: reqwest::Client,
    notify: Notify,
    pod: String,
) {
    let word = match kind {
        Kind::Readiness => "readiness",
        Kind::Liveness => "liveness",
    };
    tokio::time::sleep(Duration::from_secs(probe.initial_delay_seconds.into())).await;
    let (mut successes, mut failures) = (0u32, 0u32);
    let timeout = Duration::from_secs(probe.timeout_seconds.max(1).into());
    loop {
        let result = check(&target, &probe.action, timeout, &http).await;
        let changed = {
            let mut o = outcome.lock().unwrap_or_else(PoisonError::into_inner);
            let before = o.clone();
            o.ran = true;
            match result {
                Ok(()) => {
                    successes += 1;
                    failures = 0;
                    let threshold = match kind {
                        Kind::Readiness => probe.success_threshold,
                        // Kubernetes requires 1 for liveness.
                        Kind::Liveness => 1,
                    };
                    if !o.ok && successes >= threshold {
                        o.ok = true;
                        o.since = Some(now_millis());
                    }
                }
                Err(why) => {
                    failures += 1;
                    successes = 0;
                    o.last_failure = Some(format!("{word} probe failed: {why}"));
                    if o.ok && failures >= probe.failure_threshold {
                        o.ok = false;
                        o.since = None;
                    }
                }
            }
            *o != before
        };
        if changed {
            notify(pod.clone());
        }
        tokio::time::sleep(Duration::from_secs(probe.period_seconds.max(1).into())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_restarts_back_off_like_a_kubelet() {
        let mut r = Restarts::default();
        assert_eq!(
            allowed_at(r, 1_000),
            1_000,
            "the first restart is immediate"
        );
        r = Restarts {
            count: 1,
            last: 1_000,
        };
        assert_eq!(allowed_at(r, 2_000), 11_000);
        r = Restarts {
            count: 3,
            last: 1_000,
        };
        assert_eq!(allowed_at(r, 2_000), 41_000);
        r = Restarts {
            count: 20,
            last: 1_000,
        };
        assert_eq!(allowed_at(r, 2_000), 301_000, "capped at five minutes");
        assert_eq!(
            allowed_at(r, 700_000),
            700_000,
            "ten quiet minutes forget the count"
        );
    }

    #[test]
    fn named_ports_resolve_in_the_pods_containers() {
        let mut c = crate::manifest::Container::new("web", "i:1");
        c.ports.push(crate::manifest::ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            host_port: None,
            host_ip: None,
            protocol: crate::manifest::Protocol::Tcp,
        });
        c.readiness_probe = Some(Probe {
            action: ProbeAction::HttpGet {
                path: "/".into(),
                port: PortRef::Name("http".into()),
                host: None,
                scheme: "HTTP".into(),
                headers: vec![],
            },
            initial_delay_seconds: 0,
            timeout_seconds: 1,
            period_seconds: 10,
            success_threshold: 1,
            failure_threshold: 3,
        });
        let spec = PodSpec {
            containers: vec![c],
            volumes: vec![],
            restart_policy: crate::manifest::RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 30,
        };
        assert_eq!(port_of(&spec, &PortRef::Name("http".into())), Some(8080));
        assert_eq!(port_of(&spec, &PortRef::Name("nope".into())), None);
        assert_eq!(probed_ports(&spec), vec![8080]);
    }
}
