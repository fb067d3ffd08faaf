//! What a verified push turns into: "look at the branch now", and nothing more.

use serde::Serialize;

use super::Provider;

/// Why a sync was requested. Carries no commit, ref or repository from the payload: berth
/// fetches the branch and believes what the repository says. It is meant to be recorded with
/// the commit that the sync then finds, so an operator can tell a webhook sync from a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    /// The receiver that accepted the delivery.
    pub provider: Provider,
    /// The host's id for this delivery, when it sends one (printable ASCII, at most 128
    /// characters: anything else is refused before this is built).
    pub delivery: Option<String>,
}

/// Something that can be told to look at the branch now (in `berth serve`, the sync loop).
///
/// `look_now` is called from the HTTP handler, once per accepted delivery and possibly in
/// bursts (a push of ten branches, a host retrying, several hosts mirroring one repository).
/// It must return at once and coalesce: ring a `tokio::sync::Notify` (`notify_one` keeps one
/// permit, so a burst becomes one wake-up) or send on a bounded channel with `try_send`.
/// Debouncing and the fetch itself belong to the caller.
pub trait SyncTrigger: Send + Sync + 'static {
    fn look_now(&self, trigger: Trigger);
}

/// A `Notify` is the intended trigger; the delivery is logged by the receiver already.
impl SyncTrigger for tokio::sync::Notify {
    fn look_now(&self, _trigger: Trigger) {
        self.notify_one();
    }
}
