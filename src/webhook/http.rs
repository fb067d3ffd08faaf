//! The axum side: one POST route per provider, a few lines each, over [`Receiver`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::receiver::Receiver;
use super::{Outcome, Provider, SyncTrigger, WebhookConfig, WebhookError};

/// The webhook receivers: `POST /webhooks/{github,gitlab,gitea,bitbucket,generic}`.
///
/// The router has its state applied and no fallback, so it can be `merge`d into the status
/// API's router. Serve the result with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the per-source rate limit keys on
/// the peer address from `ConnectInfo`. Without it every request counts as one source
/// (0.0.0.0), so one flood would hold up every sender. Behind a reverse proxy the proxy is
/// the source; `X-Forwarded-For` is deliberately not trusted.
///
/// Other methods on these paths answer 405 with `Allow: POST`.
pub fn router(config: Arc<WebhookConfig>, trigger: Arc<dyn SyncTrigger>) -> Router {
    let enabled = config.secrets.enabled();
    tracing::debug!(?enabled, "webhook receivers");
    let receiver = Arc::new(Receiver::new(config, trigger));
    let mut router = Router::new();
    for provider in Provider::ALL {
        let route = post(move |State(rx): State<Arc<Receiver>>, request: Request| {
            receive(provider, rx, request)
        })
        .fallback(method_not_allowed);
        router = router.route(provider.path(), route);
    }
    router.with_state(receiver)
}

async fn receive(provider: Provider, rx: Arc<Receiver>, request: Request) -> Response {
    let source = source(&request);
    let result = rx.receive(provider, source, request).await;
    log(provider, source, &result);
    match result {
        Ok(outcome) => outcome.into_response(),
        Err(e) => e.into_response(),
    }
}

fn source(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// One line per delivery. Floods are refused before verification and logged at debug, so
/// they cannot fill the log; nothing logged contains a secret (errors never do).
fn log(provider: Provider, source: IpAddr, result: &Result<Outcome, WebhookError>) {
    match result {
        Ok(Outcome::Triggered { delivery, .. }) => {
            tracing::info!(%provider, %source, ?delivery, "webhook: sync triggered")
        }
        Ok(Outcome::Ping { .. }) => tracing::info!(%provider, %source, "webhook: ping"),
        Ok(Outcome::Ignored {
            delivery, reason, ..
        }) => tracing::info!(%provider, %source, ?delivery, %reason, "webhook: ignored"),
        Err(e @ (WebhookError::RateLimited { .. } | WebhookError::Disabled { .. })) => {
            tracing::debug!(%provider, %source, error = %e, "webhook: refused")
        }
        Err(e) => tracing::warn!(%provider, %source, error = %e, "webhook: refused"),
    }
}

async fn method_not_allowed() -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let body = json!({"status": status.as_u16(), "error": "webhooks are delivered with POST"});
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}
