//! What berth did with a verified delivery, and how it is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Provider;

/// The answer to a delivery whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A sync was requested (202: accepted, the sync itself happens later).
    Triggered {
        provider: Provider,
        delivery: Option<String>,
    },
    /// The host checks that the receiver answers (GitHub `ping`, Bitbucket Server
    /// `diagnostics:ping`): 200, nothing triggered.
    Ping { provider: Provider },
    /// Verified but not for berth: another branch, another repository, another event, or a
    /// delivery already seen. 200, so the host does not retry; the reason shows in its log.
    Ignored {
        provider: Provider,
        delivery: Option<String>,
        reason: String,
    },
}

impl Outcome {
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Triggered { .. } => StatusCode::ACCEPTED,
            Outcome::Ping { .. } | Outcome::Ignored { .. } => StatusCode::OK,
        }
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            Outcome::Triggered { provider, delivery } => json!({
                "status": status.as_u16(),
                "result": "sync triggered",
                "provider": provider,
                "delivery": delivery,
            }),
            Outcome::Ping { provider } => json!({
                "status": status.as_u16(),
                "result": "pong",
                "provider": provider,
                "reason": "ping answered; pushes to the followed branch will trigger a sync",
            }),
            Outcome::Ignored {
                provider,
                delivery,
                reason,
            } => json!({
                "status": status.as_u16(),
                "result": "ignored",
                "provider": provider,
                "delivery": delivery,
                "reason": reason,
            }),
        };
        (status, Json(body)).into_response()
    }
}
