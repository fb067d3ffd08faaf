//! Bounding a fetch in time: an overall deadline, a stall timeout, and cancellation.
//!
//! gix checks one `AtomicBool` between reads of the pack, and nothing can interrupt a read that
//! is already blocked. So the bounds come in layers: the transport gives up on its own after the
//! stall timeout or, for the small ref-listing requests, at the deadline (see
//! [`super::transport`]); and a watchdog thread raises gix's interrupt flag at the deadline or as
//! soon as the caller's cancellation flag is set, which stops a pack that keeps trickling in.
//! When the fetch then fails, [`Bounds::explain`] says which bound ended it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::settings::FetchSettings;
use super::transport::mentions;
use super::SyncError;

/// How often the watchdog looks at the caller's cancellation flag: short enough that a
/// cancelled fetch stops promptly, long enough to cost nothing.
const CANCEL_POLL: Duration = Duration::from_millis(20);

/// The time limits of one fetch, fixed when it starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub deadline: Duration,
    pub stall: Duration,
    pub deadline_at: Instant,
}

impl Bounds {
    pub fn start(settings: &FetchSettings) -> Bounds {
        Bounds {
            deadline: settings.deadline,
            stall: settings.stall,
            deadline_at: Instant::now() + settings.deadline,
        }
    }

    /// Runs `fetch` with gix's interrupt flag raised at the deadline or when `cancel` is set.
    pub fn run<T>(
        &self,
        cancel: &AtomicBool,
        fetch: impl FnOnce(&AtomicBool) -> Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        let interrupt = AtomicBool::new(false);
        let deadline_at = self.deadline_at;
        std::thread::scope(|scope| {
            let (done, finished) = mpsc::channel::<()>();
            let interrupt = &interrupt;
            scope.spawn(move || loop {
                let left = deadline_at.saturating_duration_since(Instant::now());
                if left.is_zero() || cancel.load(Ordering::Relaxed) {
                    interrupt.store(true, Ordering::Relaxed);
                    return;
                }
                match finished.recv_timeout(left.min(CANCEL_POLL)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    // The fetch is over (sender dropped).
                    _ => return,
                }
            });
            let outcome = fetch(interrupt);
            drop(done);
            outcome
        })
    }

    /// Turns a failure of an interrupted or timed-out fetch into the error that says so;
    /// other errors pass through unchanged.
    pub fn explain(&self, err: SyncError, cancel: &AtomicBool) -> SyncError {
        let verdict = match &err {
            SyncError::Unreachable { source, .. } | SyncError::Fetch { source, .. } => {
                if cancel.load(Ordering::Relaxed) {
                    Verdict::Cancelled
                } else if Instant::now() >= self.deadline_at {
                    Verdict::Deadline
                } else if is_timeout(source) {
                    Verdict::Stalled
                } else {
                    return err;
                }
            }
            _ => return err,
        };
        let (remote, source) = match err {
            SyncError::Unreachable { remote, source } | SyncError::Fetch { remote, source, .. } => {
                (remote, source)
            }
            other => return other,
        };
        match verdict {
            Verdict::Cancelled => SyncError::Cancelled { remote },
            Verdict::Deadline => SyncError::DeadlineExceeded {
                remote,
                deadline: self.deadline,
                source: Some(source),
            },
            Verdict::Stalled => SyncError::Stalled {
                remote,
                stall: self.stall,
                source,
            },
        }
    }
}

/// Which bound ended a fetch.
enum Verdict {
    Cancelled,
    Deadline,
    Stalled,
}

/// `true` if the transport gave up waiting (reqwest's timeout, an I/O timeout, or ssh's
/// keep-alive giving up on a silent server).
fn is_timeout(err: &gix::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let timed_out = e
            .downcast_ref::<reqwest_git::Error>()
            .is_some_and(reqwest_git::Error::is_timeout)
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        if timed_out {
            return true;
        }
        current = e.source();
    }
    // gix keeps some causes as text only; these are the messages of reqwest and ssh.
    ["timed out", "Timeout, server"]
        .iter()
        .any(|text| mentions(err, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(deadline: Duration) -> Bounds {
        Bounds::start(&FetchSettings {
            deadline,
            ..FetchSettings::default()
        })
    }

    /// Waits (bounded) for `interrupt`, as gix would notice it between reads.
    fn wait_for(interrupt: &AtomicBool) -> Result<Duration, SyncError> {
        let started = Instant::now();
        while !interrupt.load(Ordering::Relaxed) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never interrupted"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(started.elapsed())
    }

    #[test]
    fn the_interrupt_is_raised_at_the_deadline() {
        let never = AtomicBool::new(false);
        let waited = bounds(Duration::from_millis(100))
            .run(&never, wait_for)
            .expect("waited");
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
    }

    #[test]
    fn the_interrupt_follows_the_callers_cancellation() {
        let cancel = AtomicBool::new(false);
        let waited = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                cancel.store(true, Ordering::Relaxed);
            });
            bounds(Duration::from_secs(60)).run(&cancel, wait_for)
        })
        .expect("waited");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[test]
    fn a_fetch_that_ends_first_is_not_interrupted_and_other_errors_pass_through() {
        let never = AtomicBool::new(false);
        let bounds = bounds(Duration::from_secs(60));
        assert_eq!(bounds.run(&never, |_| Ok(7)).expect("ran"), 7);
        let err = bounds.explain(
            SyncError::InvalidCommitId {
                input: "x".to_owned(),
            },
            &never,
        );
        assert!(matches!(err, SyncError::InvalidCommitId { .. }), "{err:?}");
    }
}
