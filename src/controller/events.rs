//! Docker events as triggers: a managed container starting, dying or vanishing on any host only
//! says "reconcile soon"; the pass then reads every host afresh.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Controller;
use crate::docker::DockerHost;

/// Follows one host's event stream, resubscribing (after a pause) when the engine goes away.
pub async fn watch(ctl: Arc<Controller>, host: DockerHost, shutdown: CancellationToken) {
    loop {
        let mut events = Box::pin(host.events());
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.next() => match ev {
                    Some(Ok(ev)) => {
                        tracing::debug!(node = host.name(), action = %ev.action, pod = %ev.pod, "container event");
                        ctl.wake.notify_one();
                    }
                    Some(Err(e)) => {
                        tracing::debug!(node = host.name(), "event stream: {e}");
                        break;
                    }
                    None => break,
                }
            }
        }
        // The engine went away (or restarted): look at once, then try the stream again shortly.
        ctl.wake.notify_one();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
