//! Runs the queue: due keys become tasks, finished tasks say when to look again.

use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::Queue;

/// When to look at a key again, besides the next trigger for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Only when something triggers it.
    Idle,
    /// At this time (a retry, a grace period ending, a deadline).
    At(Instant),
}

impl Next {
    pub fn after(d: Duration) -> Next {
        Next::At(Instant::now() + d)
    }
}

/// Does the work of one key.
pub trait Worker: Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Ord + Send + Sync + std::fmt::Debug + 'static;
    fn work(self: Arc<Self>, key: Self::Key) -> impl Future<Output = Next> + Send;
}

/// The queue and its runner, shared by whoever enqueues.
pub struct Runner<K> {
    queue: Mutex<Queue<K>>,
    wake: Notify,
}

impl<K: Clone + Eq + Hash + Ord + Send + Sync + std::fmt::Debug + 'static> Default for Runner<K> {
    fn default() -> Self {
        Runner {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        }
    }
}

/// How long shutdown waits for keys in flight before it cancels them. Steps are short and
/// idempotent: one cut off is simply done again after the restart.
const DRAIN: Duration = Duration::from_secs(5);
/// A key whose work takes this long is said in the debug log (the rest only at trace level).
const SLOW_KEY: Duration = Duration::from_millis(250);

impl<K: Clone + Eq + Hash + Ord + Send + Sync + std::fmt::Debug + 'static> Runner<K> {
    /// Asks for `key` to be looked at after `delay` (or earlier, if already asked).
    pub fn enqueue(&self, key: K, delay: Duration) {
        self.lock().schedule(key, Instant::now() + delay);
        self.wake.notify_one();
    }

    /// (keys waiting, keys in flight): for status and tests.
    pub fn load(&self) -> (usize, usize) {
        let q = self.lock();
        (q.waiting(), q.in_flight())
    }

    /// Keys due by `at` still waiting, or keys in flight: false once everything asked for by
    /// then is done (for timing a pass).
    pub fn busy_with(&self, at: Instant) -> bool {
        let q = self.lock();
        q.any_due_by(at) || q.in_flight() > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<K>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Works on due keys, at most `limit` at once, until `shutdown`; then lets keys in flight
    /// finish for a moment and cancels the rest.
    pub async fn run<W: Worker<Key = K>>(
        self: Arc<Self>,
        worker: Arc<W>,
        limit: usize,
        shutdown: CancellationToken,
    ) {
        let mut tasks: JoinSet<(K, Next)> = JoinSet::new();
        loop {
            while tasks.len() < limit {
                let Some(key) = self.lock().pop(Instant::now()) else {
                    break;
                };
                let worker = worker.clone();
                tasks.spawn(async move {
                    let started = Instant::now();
                    let next = worker.work(key.clone()).await;
                    let took = started.elapsed();
                    if took >= SLOW_KEY {
                        tracing::debug!(?key, ?took, ?next, "slow key");
                    } else {
                        tracing::trace!(?key, ?took, ?next, "key done");
                    }
                    (key, next)
                });
            }
            let next_due = if tasks.len() < limit {
                self.lock().next_due()
            } else {
                None
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = sleep_until(next_due), if next_due.is_some() => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => self.finish(done),
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while let Some(done) = tasks.join_next().await {
                self.finish(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                in_flight = tasks.len(),
                "shutdown: steps still running after {DRAIN:?} were cancelled; they are redone on the next start"
            );
            tasks.shutdown().await;
        }
    }

    fn finish(&self, done: Result<(K, Next), tokio::task::JoinError>) {
        match done {
            Ok((key, next)) => {
                let mut q = self.lock();
                q.done(&key);
                if let Next::At(at) = next {
                    q.schedule(key, at);
                }
            }
            // A panicking worker is a bug; its key is lost until the next trigger or resync.
            Err(e) if e.is_panic() => tracing::error!("engine worker panicked: {e}"),
            Err(_) => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts runs per key; key "slow" sleeps an hour; key "retry" asks to come back once.
    #[derive(Default)]
    struct Counting {
        runs: Mutex<Vec<String>>,
        retries: AtomicUsize,
    }

    impl Worker for Counting {
        type Key = String;
        async fn work(self: Arc<Self>, key: String) -> Next {
            self.runs.lock().unwrap().push(key.clone());
            match key.as_str() {
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Next::Idle
                }
                "retry" if self.retries.fetch_add(1, Ordering::SeqCst) == 0 => {
                    Next::after(Duration::from_secs(4))
                }
                _ => Next::Idle,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_key_never_holds_up_another_and_retries_come_at_their_time() {
        let runner: Arc<Runner<String>> = Arc::default();
        let worker = Arc::new(Counting::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runner.clone().run(worker.clone(), 8, shutdown.clone()));
        runner.enqueue("slow".into(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(10)).await;
        runner.enqueue("fast".into(), Duration::ZERO);
        runner.enqueue("retry".into(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            *worker.runs.lock().unwrap(),
            ["slow", "fast", "retry"],
            "fast and retry ran while slow was in flight"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            worker.runs.lock().unwrap().len(),
            3,
            "the retry waits its time"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(worker.runs.lock().unwrap().len(), 4, "and comes when due");
        // A burst of triggers for one key while it is in flight: it runs once more, not five times.
        for _ in 0..5 {
            runner.enqueue("slow".into(), Duration::ZERO);
        }
        tokio::time::sleep(Duration::from_secs(3601)).await;
        let slow_runs = worker
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|k| *k == "slow")
            .count();
        assert_eq!(slow_runs, 2);
        shutdown.cancel();
        task.await.unwrap();
    }
}
