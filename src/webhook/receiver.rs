//! One delivery, from admission to trigger: the steps in the order that keeps a flood cheap
//! and never parses what has not been verified.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use axum::extract::Request;
use axum::http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::decide::{concerns_us, Ignored};
use super::hosts::{self, Event};
use super::limit::Limiter;
use super::recent::RecentDeliveries;
use super::{body, Outcome, Provider, Secret, SyncTrigger, Trigger, WebhookConfig, WebhookError};

/// The state shared by the receivers of one router.
pub(crate) struct Receiver {
    config: Arc<WebhookConfig>,
    trigger: Arc<dyn SyncTrigger>,
    limiter: Mutex<Limiter>,
    recent: Mutex<RecentDeliveries>,
    in_flight: Arc<Semaphore>,
}

impl Receiver {
    pub fn new(config: Arc<WebhookConfig>, trigger: Arc<dyn SyncTrigger>) -> Receiver {
        Receiver {
            limiter: Mutex::new(Limiter::new(config.rate_limits.clone(), Instant::now())),
            recent: Mutex::new(RecentDeliveries::new(config.remembered_deliveries)),
            in_flight: Arc::new(Semaphore::new(config.rate_limits.max_in_flight)),
            config,
            trigger,
        }
    }

    /// Admits, reads and handles one request from `source`.
    pub async fn receive(
        &self,
        provider: Provider,
        source: IpAddr,
        request: Request,
    ) -> Result<Outcome, WebhookError> {
        let (secret, _in_flight) = self.admit(provider, source)?;
        let (parts, raw) = request.into_parts();
        let c = &self.config;
        let body = body::read(&parts.headers, raw, c.max_body_bytes, c.body_timeout).await?;
        self.handle(provider, secret, &parts.headers, &body, SystemTime::now())
    }

    /// Before anything is read: is the receiver on, and is there room for this request?
    fn admit(
        &self,
        provider: Provider,
        source: IpAddr,
    ) -> Result<(&Secret, OwnedSemaphorePermit), WebhookError> {
        let secret = self
            .config
            .secrets
            .get(provider)
            .ok_or(WebhookError::Disabled { provider })?;
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(source, Instant::now())?;
        let permit =
            self.in_flight
                .clone()
                .try_acquire_owned()
                .map_err(|_| WebhookError::RateLimited {
                    scope: "in flight",
                    retry_after: std::time::Duration::from_secs(1),
                })?;
        Ok((secret, permit))
    }

    /// Verifies and decides. Synchronous and quick: a MAC, a JSON parse, a few comparisons.
    pub fn handle(
        &self,
        provider: Provider,
        secret: &Secret,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Outcome, WebhookError> {
        let delivery = hosts::read(provider, headers, body, secret, now)?;
        let ignored = |reason: String| Outcome::Ignored {
            provider,
            delivery: delivery.id.clone(),
            reason,
        };
        let push = match delivery.event {
            Event::Ping => return Ok(Outcome::Ping { provider }),
            Event::Other(event) => {
                return Ok(ignored(format!(
                    "{event:?} events do not trigger a sync; only pushes do"
                )))
            }
            Event::Push(push) => push,
        };
        // Checked and remembered under one lock, so two copies arriving together trigger once.
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = &delivery.id {
            if recent.contains(provider, id) {
                return Ok(ignored("duplicate delivery".into()));
            }
        }
        if let Err(Ignored(reason)) =
            concerns_us(&push, &self.config.branch, &self.config.repo_urls)
        {
            return Ok(ignored(reason));
        }
        if let Some(id) = &delivery.id {
            recent.remember(provider, id);
        }
        drop(recent);
        self.trigger.look_now(Trigger {
            provider,
            delivery: delivery.id.clone(),
        });
        Ok(Outcome::Triggered {
            provider,
            delivery: delivery.id,
        })
    }
}
