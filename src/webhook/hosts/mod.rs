//! Each Git host's dialect: how it signs, which header names the event and the delivery, and
//! where its push payload keeps the ref and the repository.
//!
//! [`read`] fixes the order for all of them: verify the signature over the raw bytes first,
//! and only then read headers and parse the body. Nothing unverified is ever parsed.

pub(crate) mod bitbucket;
pub(crate) mod generic;
pub(crate) mod gitea;
pub(crate) mod github;
pub(crate) mod gitlab;

use std::time::SystemTime;

use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::decide::Push;
use super::signing::first_header;
use super::{Provider, Secret, WebhookError};

/// What a verified delivery is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The host checks the receiver is there.
    Ping,
    /// Refs were pushed.
    Push(Push),
    /// Any other event (issues, tags on GitLab, pull requests...), by the host's name for it.
    Other(String),
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The host's delivery id, used to drop retries.
    pub id: Option<String>,
    pub event: Event,
}

/// Longest delivery id kept: host ids are UUIDs (36) or shorter; it ends up in commit history.
const MAX_DELIVERY_ID: usize = 128;

/// Verifies `body` with `secret` the way `provider` signs, then reads the delivery.
pub(crate) fn read(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
    now: SystemTime,
) -> Result<Delivery, WebhookError> {
    match provider {
        Provider::Github => github::verify(headers, body, secret)?,
        Provider::Gitlab => gitlab::verify(headers, body, secret, now)?,
        Provider::Gitea => gitea::verify(headers, body, secret)?,
        Provider::Bitbucket => bitbucket::verify(headers, body, secret)?,
        Provider::Generic => generic::verify(headers, body, secret)?,
    }
    // Verified: from here on the headers and the body are the host's.
    let id_headers = match provider {
        Provider::Github => github::DELIVERY,
        Provider::Gitlab => gitlab::DELIVERY,
        Provider::Gitea => gitea::DELIVERY,
        Provider::Bitbucket => bitbucket::DELIVERY,
        Provider::Generic => generic::DELIVERY,
    };
    let id = delivery_id(headers, id_headers)?;
    let event = match provider {
        Provider::Github => github::event(headers, body)?,
        Provider::Gitlab => gitlab::event(headers, body)?,
        Provider::Gitea => gitea::event(headers, body)?,
        Provider::Bitbucket => bitbucket::event(headers, body)?,
        Provider::Generic => generic::event(headers, body)?,
    };
    Ok(Delivery { id, event })
}

/// The first delivery-id header present. It is recorded in commit history and echoed in the
/// answer, so only short printable ASCII is kept.
fn delivery_id(
    headers: &HeaderMap,
    names: &[&'static str],
) -> Result<Option<String>, WebhookError> {
    let Some((name, id)) = first_header(headers, names) else {
        return Ok(None);
    };
    if id.len() > MAX_DELIVERY_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookError::BadHeader {
            header: name,
            problem: "is not printable ASCII of at most 128 characters",
        });
    }
    Ok(Some(id.to_string()))
}

/// Parses a verified JSON body. A form-encoded body (GitHub and Gitea offer that content
/// type) gets a message saying which setting to change.
pub(crate) fn json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, WebhookError> {
    serde_json::from_slice(body).map_err(|e| {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            WebhookError::Malformed(
                "body is form-encoded; set the webhook's content type to application/json".into(),
            )
        } else {
            WebhookError::Malformed(format!("body is not the expected JSON: {e}"))
        }
    })
}

/// `{"href": "..."}`, Bitbucket's way of giving a link.
#[derive(Debug, Deserialize)]
pub(crate) struct Href {
    pub href: String,
}

/// Keeps the URLs that are there, in order, without blanks.
pub(crate) fn urls<'a>(candidates: impl IntoIterator<Item = &'a Option<String>>) -> Vec<String> {
    candidates
        .into_iter()
        .flatten()
        .filter(|u| !u.trim().is_empty())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn delivery_ids_are_short_printable_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(delivery_id(&h, &["X-GitHub-Delivery"]), Ok(None));
        h.insert(
            "x-github-delivery",
            HeaderValue::from_static("72d3162e-cc78"),
        );
        assert_eq!(
            delivery_id(&h, &["X-GitHub-Delivery"]),
            Ok(Some("72d3162e-cc78".into()))
        );
        h.insert("x-github-delivery", HeaderValue::from_static("two words"));
        assert!(delivery_id(&h, &["X-GitHub-Delivery"]).is_err());
        let long = "a".repeat(129);
        h.insert("x-github-delivery", HeaderValue::from_str(&long).unwrap());
        assert!(delivery_id(&h, &["X-GitHub-Delivery"]).is_err());
    }

    #[test]
    fn a_form_encoded_body_is_told_to_switch_to_json() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let e = json::<serde_json::Value>(&h, b"payload=%7B%7D").unwrap_err();
        assert!(e.to_string().contains("application/json"), "{e}");
    }
}
