//! Bitbucket Cloud and Bitbucket Server / Data Center, told apart by the event key. Both sign
//! with `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>` (note: not GitHub's `-256`
//! header name, and SHA-256 nonetheless).
//!
//! - Cloud: `X-Event-Key: repo:push`; the pushed refs are `push.changes[].new` (`type` and
//!   `name`, e.g. branch `main`; `new` is null when a branch is deleted, then `old` says
//!   which); the repository is `repository.links.html.href`. Delivery: `X-Request-UUID`,
//!   which stays the same when Bitbucket retries (`X-Attempt-Number` counts up).
//! - Server / Data Center: `X-Event-Key: repo:refs_changed`; the refs are `changes[].refId`
//!   (`refs/heads/main`); the repository is every `repository.links.clone[].href`. Its
//!   "Test connection" sends `diagnostics:ping`. Delivery: `X-Request-Id`.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{json, Event, Href};
use crate::webhook::decide::Push;
use crate::webhook::signing::{header, verify_prefixed};
use crate::webhook::{Secret, WebhookError};

const SIGNATURE: &str = "X-Hub-Signature";
const EVENT: &str = "X-Event-Key";
pub(crate) const DELIVERY: &[&str] = &["X-Request-UUID", "X-Request-Id"];

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
        "repo:push" => cloud_push(headers, body).map(Event::Push),
        "repo:refs_changed" => server_push(headers, body).map(Event::Push),
        "diagnostics:ping" => Ok(Event::Ping),
        other => Ok(Event::Other(other.to_string())),
    }
}

#[derive(Debug, Deserialize)]
struct CloudPush {
    push: CloudChanges,
    #[serde(default)]
    repository: Option<CloudRepository>,
}

#[derive(Debug, Deserialize)]
struct CloudChanges {
    changes: Vec<CloudChange>,
}

#[derive(Debug, Deserialize)]
struct CloudChange {
    #[serde(default)]
    new: Option<CloudRef>,
    #[serde(default)]
    old: Option<CloudRef>,
}

#[derive(Debug, Deserialize)]
struct CloudRef {
    #[serde(rename = "type")]
    kind: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct CloudRepository {
    #[serde(default)]
    links: Option<CloudLinks>,
}

#[derive(Debug, Deserialize)]
struct CloudLinks {
    #[serde(default)]
    html: Option<Href>,
}

fn cloud_push(headers: &HeaderMap, body: &[u8]) -> Result<Push, WebhookError> {
    let p: CloudPush = json(headers, body)?;
    let refs = p
        .push
        .changes
        .iter()
        .filter_map(|c| c.new.as_ref().or(c.old.as_ref()))
        .map(|r| match r.kind.as_str() {
            "branch" => format!("refs/heads/{}", r.name),
            "tag" => format!("refs/tags/{}", r.name),
            other => format!("{other} {}", r.name),
        })
        .collect();
    let repository = p
        .repository
        .and_then(|r| r.links)
        .and_then(|l| l.html)
        .map(|h| h.href)
        .into_iter()
        .collect();
    Ok(Push { refs, repository })
}

#[derive(Debug, Deserialize)]
struct ServerPush {
    changes: Vec<ServerChange>,
    #[serde(default)]
    repository: Option<ServerRepository>,
}

#[derive(Debug, Deserialize)]
struct ServerChange {
    #[serde(rename = "refId", default)]
    ref_id: Option<String>,
    #[serde(rename = "ref", default)]
    git_ref: Option<ServerRef>,
}

#[derive(Debug, Deserialize)]
struct ServerRef {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ServerRepository {
    #[serde(default)]
    links: Option<ServerLinks>,
}

#[derive(Debug, Deserialize)]
struct ServerLinks {
    #[serde(default)]
    clone: Vec<Href>,
}

fn server_push(headers: &HeaderMap, body: &[u8]) -> Result<Push, WebhookError> {
    let p: ServerPush = json(headers, body)?;
    let refs = p
        .changes
        .into_iter()
        .filter_map(|c| c.ref_id.or(c.git_ref.map(|r| r.id)))
        .collect();
    let repository = p
        .repository
        .and_then(|r| r.links)
        .map(|l| l.clone.into_iter().map(|h| h.href).collect())
        .unwrap_or_default();
    Ok(Push { refs, repository })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_changes_become_full_ref_names_deleted_branches_included() {
        let body = br#"{"push":{"changes":[
            {"new":{"type":"branch","name":"main"},"old":null},
            {"new":{"type":"tag","name":"v1"}},
            {"new":null,"old":{"type":"branch","name":"gone"}}]},
            "repository":{"links":{"html":{"href":"https://bitbucket.org/acme/shop"}}}}"#;
        let p = cloud_push(&HeaderMap::new(), body).unwrap();
        assert_eq!(
            p.refs,
            vec!["refs/heads/main", "refs/tags/v1", "refs/heads/gone"]
        );
        assert_eq!(p.repository, vec!["https://bitbucket.org/acme/shop"]);
    }

    #[test]
    fn server_changes_give_ref_ids_and_clone_links() {
        let body = br#"{"changes":[{"ref":{"id":"refs/heads/main"},"refId":"refs/heads/main"},
            {"ref":{"id":"refs/heads/dev"}}],
            "repository":{"links":{"clone":[{"href":"ssh://git@bb.example:7999/p/r.git","name":"ssh"}]}}}"#;
        let p = server_push(&HeaderMap::new(), body).unwrap();
        assert_eq!(p.refs, vec!["refs/heads/main", "refs/heads/dev"]);
        assert_eq!(p.repository, vec!["ssh://git@bb.example:7999/p/r.git"]);
    }
}
