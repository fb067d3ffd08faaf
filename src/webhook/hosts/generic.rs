//! berth's own small format, for scripts and hosts not listed (see `webhooks/post-receive`):
//!
//! ```text
//! POST /webhooks/generic
//! X-Berth-Signature: sha256=<hex HMAC-SHA256 of the body>
//! X-Berth-Delivery: <any id, optional; repeats are dropped>
//!
//! {"ref": "refs/heads/main", "repository": "<clone URL, optional>"}
//! ```
//!
//! Other fields are allowed and ignored. Without `repository` the repository is not checked:
//! the generic secret is berth's own, shared only with the scripts that send it.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{json, Event};
use crate::webhook::decide::Push;
use crate::webhook::signing::verify_prefixed;
use crate::webhook::{Secret, WebhookError};

const SIGNATURE: &str = "X-Berth-Signature";
pub(crate) const DELIVERY: &[&str] = &["X-Berth-Delivery"];

pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
) -> Result<(), WebhookError> {
    verify_prefixed(headers, secret, body, SIGNATURE)
}

#[derive(Debug, Deserialize)]
struct GenericPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    repository: Option<String>,
}

pub(crate) fn event(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let p: GenericPush = json(headers, body)?;
    Ok(Event::Push(Push {
        refs: vec![p.git_ref],
        repository: p.repository.into_iter().filter(|r| !r.is_empty()).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_is_required_and_repository_optional() {
        assert_eq!(
            event(
                &HeaderMap::new(),
                br#"{"ref":"refs/heads/main","pusher":"ci"}"#
            ),
            Ok(Event::Push(Push {
                refs: vec!["refs/heads/main".into()],
                repository: vec![],
            }))
        );
        assert!(matches!(
            event(&HeaderMap::new(), br#"{"repository":"x"}"#),
            Err(WebhookError::Malformed(_))
        ));
    }
}
