//! Webhooks reach whichever member the Git host was told about, but only the leader syncs. A
//! follower verifies the delivery itself (every member has the webhook secrets), then passes the
//! trigger on to the leader over the members' token-guarded routes, so the push is fetched at
//! once and recorded with its provider and delivery id. If the leader cannot be reached, its
//! next poll finds the push anyway.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{error_chain, Controller};
use crate::raft::state::Trigger;
use crate::raft::wire::TRIGGER_PATH;

/// A forward that has not been answered by then is dropped (the leader's poll is the fallback).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize, Deserialize)]
struct Forwarded {
    provider: String,
    delivery: Option<String>,
    /// The member that received the delivery.
    from: u64,
}

/// The route the leader receives forwarded triggers on (mounted behind the cluster token).
pub(super) fn routes(ctl: Arc<Controller>) -> Router {
    Router::new()
        .route(TRIGGER_PATH, post(receive))
        .with_state(ctl)
}

async fn receive(State(ctl): State<Arc<Controller>>, Json(f): Json<Forwarded>) -> StatusCode {
    if !ctl.raft.is_leader() {
        // Leadership moved while the request travelled: the sender retries nowhere, and the new
        // leader's poll finds the push.
        return StatusCode::MISDIRECTED_REQUEST;
    }
    tracing::info!(provider = %f.provider, from = f.from, "webhook forwarded by a follower");
    ctl.trigger_sync(Trigger::Webhook {
        provider: f.provider,
        delivery: f.delivery,
    });
    StatusCode::ACCEPTED
}

impl Controller {
    /// Looks at the branch now: here if this member leads (or is alone), else on the leader.
    /// Returns at once: forwarding happens in [`Controller::forward_loop`].
    pub(super) fn trigger_sync(&self, trigger: Trigger) {
        if self.raft.is_leader() || self.raft.members().len() <= 1 {
            self.set_trigger(trigger);
            self.sync_now.notify_one();
            return;
        }
        *self.pending_forward.lock().expect("forward lock") = Some(trigger);
        self.forward_now.notify_one();
    }

    /// Passes webhook triggers received on this follower to the leader, one at a time; a burst
    /// of deliveries while one is in flight becomes one more forward.
    pub(super) async fn forward_loop(
        self: Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.forward_now.notified() => {}
            }
            let pending = self.pending_forward.lock().expect("forward lock").take();
            if let Some(trigger) = pending {
                self.forward(trigger).await;
            }
        }
    }

    async fn forward(&self, trigger: Trigger) {
        let Trigger::Webhook { provider, delivery } = trigger else {
            return;
        };
        let Some(leader) = self.raft.members().into_iter().find(|m| m.leader) else {
            tracing::warn!("webhook received while no leader is known: the next leader's poll will find the push");
            return;
        };
        let body = Forwarded {
            provider,
            delivery,
            from: self.raft.id(),
        };
        let sent = self
            .peers
            .request(reqwest::Method::POST, &leader.url, TRIGGER_PATH)
            .timeout(FORWARD_TIMEOUT)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {
                tracing::debug!(leader = leader.id, "webhook forwarded to the leader")
            }
            Ok(r) => tracing::warn!(
                leader = leader.id,
                status = %r.status(),
                "the leader refused a forwarded webhook; its poll will find the push"
            ),
            Err(e) => tracing::warn!(
                leader = leader.id,
                "cannot forward a webhook to the leader (its poll will find the push): {}",
                error_chain(&e)
            ),
        }
    }
}
