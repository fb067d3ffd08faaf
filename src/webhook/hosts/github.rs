//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, the event in
//! `X-GitHub-Event` (`push`, `ping`, ...), the delivery in `X-GitHub-Delivery`.
//!
//! Gitea, Forgejo and Gogs send the same push payload shape; [`push`] serves them too.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{json, urls, Event};
use crate::webhook::decide::Push;
use crate::webhook::signing::{header, verify_prefixed};
use crate::webhook::{Secret, WebhookError};

pub(crate) const SIGNATURE: &str = "X-Hub-Signature-256";
pub(crate) const EVENT: &str = "X-GitHub-Event";
pub(crate) const DELIVERY: &[&str] = &["X-GitHub-Delivery"];

pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
) -> Result<(), WebhookError> {
    verify_prefixed(headers, secret, body, SIGNATURE)
}

pub(crate) fn event(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let event = header(headers, EVENT).ok_or(WebhookError::BadHeader {
        header: EVENT,
        problem: "is missing",
    })?;
    match event {
        "ping" => Ok(Event::Ping),
        "push" => push(headers, body).map(Event::Push),
        other => Ok(Event::Other(other.to_string())),
    }
}

/// A GitHub-shaped push: `ref` and the repository's URLs.
#[derive(Debug, Deserialize)]
struct HubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    repository: Option<HubRepository>,
}

#[derive(Debug, Default, Deserialize)]
struct HubRepository {
    #[serde(default)]
    clone_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
    #[serde(default)]
    git_url: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

pub(crate) fn push(headers: &HeaderMap, body: &[u8]) -> Result<Push, WebhookError> {
    let p: HubPush = json(headers, body)?;
    let r = p.repository.unwrap_or_default();
    Ok(Push {
        refs: vec![p.git_ref],
        repository: urls([&r.clone_url, &r.ssh_url, &r.git_url, &r.html_url]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_gives_its_ref_and_every_repository_url() {
        let body = br#"{"ref":"refs/heads/main","after":"abc",
            "repository":{"clone_url":"https://github.com/acme/shop.git",
            "ssh_url":"git@github.com:acme/shop.git","html_url":"https://github.com/acme/shop"}}"#;
        let p = push(&HeaderMap::new(), body).unwrap();
        assert_eq!(p.refs, vec!["refs/heads/main"]);
        assert_eq!(p.repository.len(), 3);
    }

    #[test]
    fn a_push_without_ref_is_malformed() {
        let e = push(&HeaderMap::new(), br#"{"repository":{}}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `ref`"), "{e}");
    }
}
