//! One simulated host: its engine state, whether its socket answers, its request counters,
//! and the steps that take time (a stop's grace period, a policy restart's backoff), which
//! wait with the engine unlocked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::counters::Counters;
use super::engine::{parse_signal, Engine, Image, PendingRestart};
use super::error::Refusal;

/// Whether a host's socket answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    /// The engine is gone: the socket refuses connections and open ones are cut, as when
    /// dockerd stops.
    Refuse,
    /// The host vanished from the network: connections are taken but nothing is answered,
    /// so clients wait out their timeouts.
    Hang,
}

/// What all simulated hosts share: the registry, knobs, and the tasks to wait for at shutdown.
#[derive(Debug)]
pub struct Shared {
    /// Pullable images by normalised reference.
    pub registry: RwLock<HashMap<String, Arc<Image>>>,
    /// How long a pull takes (before it succeeds or fails).
    pub pull_delay: RwLock<Duration>,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

/// One simulated Docker host.
#[derive(Debug)]
pub struct Host {
    /// `host-0042`.
    pub name: String,
    pub socket: PathBuf,
    engine: Mutex<Engine>,
    link: watch::Sender<Link>,
    pub counters: Counters,
    pub shared: Arc<Shared>,
}

impl Host {
    pub fn new(name: String, socket: PathBuf, engine: Engine, shared: Arc<Shared>) -> Host {
        Host {
            name,
            socket,
            engine: Mutex::new(engine),
            link: watch::Sender::new(Link::Up),
            counters: Counters::default(),
            shared,
        }
    }

    /// The engine's state. Hold it briefly: every request of the host waits meanwhile.
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn link(&self) -> Link {
        *self.link.borrow()
    }

    /// Takes the host away (`Refuse`, `Hang`) or brings it back (`Up`). Its containers stay
    /// as they are, as on a machine that is unreachable but still running.
    pub fn set_link(&self, link: Link) {
        self.link.send_replace(link);
    }

    pub fn watch_link(&self) -> watch::Receiver<Link> {
        self.link.subscribe()
    }

    /// Returns once the host answers again (at once unless it hangs).
    pub async fn answering(&self) {
        let mut rx = self.link.subscribe();
        let _ = rx.wait_for(|l| *l != Link::Hang).await;
    }

    /// The control interface's crash: the process exits by itself with `exit_code`.
    pub fn crash(self: &Arc<Self>, reference: &str, exit_code: i64) -> Result<(), Refusal> {
        let pending = self.engine().crash(reference, exit_code)?;
        if let Some(p) = pending {
            self.schedule(p);
        }
        Ok(())
    }

    /// Runs a policy restart after its backoff, unless the simulator stops first.
    fn schedule(self: &Arc<Self>, pending: PendingRestart) {
        let host = self.clone();
        let shutdown = self.shared.shutdown.clone();
        self.shared.tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(pending.delay) => host.engine().policy_restart(&pending),
            }
        });
    }

    /// Docker's stop: the stop signal, then SIGKILL after `t` seconds (the container's
    /// `StopTimeout`, else 10) if the process ignores it. `Ok(false)` when it was not
    /// running (Docker's 304).
    pub async fn stop(&self, reference: &str, t: Option<i64>) -> Result<bool, Refusal> {
        let (id, generation, grace) = {
            let mut engine = self.engine();
            let c = engine.container(reference)?;
            if !c.is_running() {
                return Ok(false);
            }
            let id = c.id.clone();
            let signal = parse_signal(c.spec.stop_signal.as_deref().unwrap_or("SIGTERM"))?;
            let grace = t.or(c.spec.stop_timeout).unwrap_or(10).max(0);
            let died = engine.signal(&id, signal)?;
            if died {
                engine.announce(&id, "stop");
                return Ok(true);
            }
            let generation = engine.container(&id)?.run.generation;
            (id, generation, grace)
        };
        tokio::time::sleep(Duration::from_secs(grace as u64)).await;
        let mut engine = self.engine();
        let still = engine
            .container(&id)
            .is_ok_and(|c| c.is_running() && c.run.generation == generation);
        if still {
            engine.signal(&id, 9)?;
        }
        engine.announce(&id, "stop");
        Ok(true)
    }

    /// Docker's restart: a stop (if running), a start, and the `restart` event.
    pub async fn restart(&self, reference: &str, t: Option<i64>) -> Result<(), Refusal> {
        let id = self.engine().resolve(reference)?.to_string();
        self.stop(&id, t).await?;
        let mut engine = self.engine();
        engine.start(&id)?;
        engine.announce(&id, "restart");
        Ok(())
    }
}
