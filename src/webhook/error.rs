//! Why a delivery was refused, and the HTTP status each reason gets.
//!
//! Messages name what was wrong (which header, which limit, which field) so an operator can
//! fix the webhook from the host's delivery log alone. They never contain a secret or an
//! expected signature. All are answered as `{"status": <code>, "error": "<message>"}`.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Provider;

/// A delivery berth refuses. None of these trigger a sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No secret is configured for this provider: its receiver is off (404), never open.
    #[error(
        "webhooks from {provider} are not enabled on this berth (no --webhook-secret-file for it)"
    )]
    Disabled { provider: Provider },
    /// Too many requests from this source, or from everyone (429, with `Retry-After`).
    #[error("too many webhook requests {scope}; retry in {}s", retry_after.as_secs().max(1))]
    RateLimited {
        scope: &'static str,
        retry_after: Duration,
    },
    /// The body is larger than `max_body_bytes` (413). Checked on `Content-Length` and while
    /// reading, before any signature work.
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The body did not arrive within the configured time (408).
    #[error("body not received within {:?}", .0)]
    SlowBody(Duration),
    /// The connection failed while the body was read (400).
    #[error("body could not be read")]
    BodyRead,
    /// The signature header is absent or empty (401).
    #[error("missing signature: no {header} header")]
    MissingSignature { header: &'static str },
    /// The signature header is there but does not verify: wrong secret, tampered body, or a
    /// malformed value (401).
    #[error("bad signature in {header}")]
    BadSignature { header: &'static str },
    /// A signed timestamp too far from this machine's clock: a replay, or a clock off (401).
    #[error("{header} is more than {}s away from this server's clock", tolerance.as_secs())]
    StaleTimestamp {
        header: &'static str,
        tolerance: Duration,
    },
    /// A header the host always sends is missing or unusable (400).
    #[error("{header} header {problem}")]
    BadHeader {
        header: &'static str,
        problem: &'static str,
    },
    /// The verified body is not the payload this host sends for that event (400).
    #[error("malformed payload: {0}")]
    Malformed(String),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::Disabled { .. } => StatusCode::NOT_FOUND,
            WebhookError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebhookError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
            WebhookError::MissingSignature { .. }
            | WebhookError::BadSignature { .. }
            | WebhookError::StaleTimestamp { .. } => StatusCode::UNAUTHORIZED,
            WebhookError::BodyRead
            | WebhookError::BadHeader { .. }
            | WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(json!({"status": status.as_u16(), "error": self.to_string()})),
        )
            .into_response();
        if let WebhookError::RateLimited { retry_after, .. } = &self {
            let secs = retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        let cases = [
            (
                WebhookError::Disabled {
                    provider: Provider::Gitlab,
                },
                404,
            ),
            (
                WebhookError::RateLimited {
                    scope: "from 127.0.0.1",
                    retry_after: Duration::from_millis(300),
                },
                429,
            ),
            (WebhookError::TooLarge { limit: 10 }, 413),
            (WebhookError::SlowBody(Duration::from_secs(10)), 408),
            (
                WebhookError::MissingSignature {
                    header: "X-Hub-Signature-256",
                },
                401,
            ),
            (WebhookError::Malformed("no ref".into()), 400),
        ];
        for (e, code) in cases {
            assert_eq!(e.status().as_u16(), code, "{e}");
        }
    }

    #[test]
    fn rate_limited_answers_carry_retry_after_of_at_least_a_second() {
        let r = WebhookError::RateLimited {
            scope: "overall",
            retry_after: Duration::from_millis(300),
        }
        .into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
