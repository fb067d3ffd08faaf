//! GitLab, which has two ways to prove a delivery is its own:
//!
//! - the secret token: GitLab sends it as is in `X-Gitlab-Token`, compared in constant time;
//! - the signing token (newer GitLab): `whsec_` followed by base64 of the key. GitLab then
//!   sends `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, one or
//!   more space-separated `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, the
//!   Standard Webhooks form.
//!
//! The configured secret chooses the scheme: one starting with `whsec_` is a signing token
//! and only a signature is accepted (a signing token must never travel, so a request that
//! merely quotes it in `X-Gitlab-Token` is refused); any other secret is a secret token. A
//! signature's timestamp must be within five minutes of this clock, which bounds replays.
//!
//! Events: `X-Gitlab-Event: Push Hook` (and `System Hook` with `event_name: push`). The
//! delivery id is `webhook-id`, else `Idempotency-Key` (both stay the same when GitLab retries
//! a delivery), else `X-Gitlab-Event-UUID`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::Mac;
use serde::Deserialize;

use super::{json, urls, Event};
use crate::webhook::decide::Push;
use crate::webhook::signing::{header, mac};
use crate::webhook::{Secret, WebhookError};

const TOKEN: &str = "X-Gitlab-Token";
const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";
const EVENT: &str = "X-Gitlab-Event";
pub(crate) const DELIVERY: &[&str] = &[ID, "Idempotency-Key", "X-Gitlab-Event-UUID"];

/// How far a signed timestamp may be from this clock, either way (Standard Webhooks' advice).
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const SIGNING_PREFIX: &[u8] = b"whsec_";

pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
    now: SystemTime,
) -> Result<(), WebhookError> {
    match secret.expose().strip_prefix(SIGNING_PREFIX) {
        Some(encoded) => {
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| WebhookError::BadSignature { header: SIGNATURE })?;
            verify_signed(headers, body, &key, now)
        }
        None => {
            let token =
                header(headers, TOKEN).ok_or(WebhookError::MissingSignature { header: TOKEN })?;
            if secret.matches(token.as_bytes()) {
                Ok(())
            } else {
                Err(WebhookError::BadSignature { header: TOKEN })
            }
        }
    }
}

/// A `whsec_` secret whose rest is not base64: refused when the settings are read.
pub(crate) fn is_malformed_signing_token(secret: &Secret) -> bool {
    secret
        .expose()
        .strip_prefix(SIGNING_PREFIX)
        .is_some_and(|encoded| STANDARD.decode(encoded).is_err())
}

fn verify_signed(
    headers: &HeaderMap,
    body: &[u8],
    key: &[u8],
    now: SystemTime,
) -> Result<(), WebhookError> {
    let missing = |header| WebhookError::MissingSignature { header };
    let signatures = header(headers, SIGNATURE).ok_or(missing(SIGNATURE))?;
    let id = header(headers, ID).ok_or(missing(ID))?;
    let timestamp = header(headers, TIMESTAMP).ok_or(missing(TIMESTAMP))?;
    let seconds: u64 = timestamp
        .parse()
        .map_err(|_| WebhookError::BadSignature { header: TIMESTAMP })?;
    let sent = UNIX_EPOCH + Duration::from_secs(seconds);
    let skew = now.duration_since(sent).unwrap_or_else(|e| e.duration());
    if skew > SIGNATURE_TOLERANCE {
        return Err(WebhookError::StaleTimestamp {
            header: TIMESTAMP,
            tolerance: SIGNATURE_TOLERANCE,
        });
    }
    let mut signed = mac(key);
    signed.update(id.as_bytes());
    signed.update(b".");
    signed.update(timestamp.as_bytes());
    signed.update(b".");
    signed.update(body);
    // Several signatures are sent while a token is being rotated; one match is enough.
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| signed.clone().verify_slice(&given).is_ok());
    if matched {
        Ok(())
    } else {
        Err(WebhookError::BadSignature { header: SIGNATURE })
    }
}

/// `webhook-signature` for `body`, as GitLab computes it.
#[cfg(test)]
fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
}

pub(crate) fn event(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let event = header(headers, EVENT).ok_or(WebhookError::BadHeader {
        header: EVENT,
        problem: "is missing",
    })?;
    match event {
        "Push Hook" => push(headers, body).map(Event::Push),
        // System hooks carry pushes of every project in the same shape.
        "System Hook" => {
            let kind: SystemHook = json(headers, body)?;
            match kind.event_name.as_deref() {
                Some("push") => push(headers, body).map(Event::Push),
                other => Ok(Event::Other(format!(
                    "System Hook {}",
                    other.unwrap_or("(no event_name)")
                ))),
            }
        }
        other => Ok(Event::Other(other.to_string())),
    }
}

#[derive(Debug, Deserialize)]
struct SystemHook {
    #[serde(default)]
    event_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GitlabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    project: Option<Project>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Debug, Default, Deserialize)]
struct Project {
    #[serde(default)]
    git_http_url: Option<String>,
    #[serde(default)]
    git_ssh_url: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Repository {
    #[serde(default)]
    git_http_url: Option<String>,
    #[serde(default)]
    git_ssh_url: Option<String>,
    #[serde(default)]
    homepage: Option<String>,
}

fn push(headers: &HeaderMap, body: &[u8]) -> Result<Push, WebhookError> {
    let p: GitlabPush = json(headers, body)?;
    let project = p.project.unwrap_or_default();
    let repo = p.repository.unwrap_or_default();
    Ok(Push {
        refs: vec![p.git_ref],
        repository: urls([
            &project.git_http_url,
            &project.git_ssh_url,
            &project.web_url,
            &repo.git_http_url,
            &repo.git_ssh_url,
            &repo.homepage,
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn signing_secret() -> Secret {
        Secret::new(format!("whsec_{}", STANDARD.encode(KEY)))
    }

    fn signed_headers(id: &str, ts: u64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from(ts));
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(signature).unwrap(),
        );
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_secret_token_is_compared_whole() {
        let s = Secret::new("gl-token");
        let mut h = HeaderMap::new();
        assert_eq!(
            verify(&h, b"{}", &s, at(0)),
            Err(WebhookError::MissingSignature { header: TOKEN })
        );
        h.insert("x-gitlab-token", HeaderValue::from_static("gl-token"));
        assert_eq!(verify(&h, b"{}", &s, at(0)), Ok(()));
        h.insert("x-gitlab-token", HeaderValue::from_static("gl-toke"));
        assert_eq!(
            verify(&h, b"{}", &s, at(0)),
            Err(WebhookError::BadSignature { header: TOKEN })
        );
    }

    #[test]
    fn a_signing_token_accepts_a_fresh_signature_among_several() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(KEY, "msg-1", 1_700_000_000, body);
        let other = sign(b"old key", "msg-1", 1_700_000_000, body);
        let h = signed_headers("msg-1", 1_700_000_000, &format!("{other} {good}"));
        assert_eq!(
            verify(&h, body, &signing_secret(), at(1_700_000_100)),
            Ok(())
        );
    }

    #[test]
    fn a_signature_over_another_id_timestamp_or_body_is_refused() {
        let body = b"{}";
        let sig = sign(KEY, "msg-1", 1_700_000_000, body);
        let secret = signing_secret();
        let now = at(1_700_000_000);
        let bad = Err(WebhookError::BadSignature { header: SIGNATURE });
        assert_eq!(
            verify(
                &signed_headers("msg-2", 1_700_000_000, &sig),
                body,
                &secret,
                now
            ),
            bad
        );
        assert_eq!(
            verify(
                &signed_headers("msg-1", 1_700_000_001, &sig),
                body,
                &secret,
                now
            ),
            bad
        );
        assert_eq!(
            verify(
                &signed_headers("msg-1", 1_700_000_000, &sig),
                b"{ }",
                &secret,
                now
            ),
            bad
        );
    }

    #[test]
    fn an_old_or_future_timestamp_is_stale() {
        let sig = sign(KEY, "m", 1_700_000_000, b"{}");
        let h = signed_headers("m", 1_700_000_000, &sig);
        for now in [at(1_700_000_000 + 301), at(1_700_000_000 - 301)] {
            assert!(matches!(
                verify(&h, b"{}", &signing_secret(), now),
                Err(WebhookError::StaleTimestamp { .. })
            ));
        }
    }

    #[test]
    fn a_signing_token_is_never_accepted_as_a_plain_token() {
        let secret = signing_secret();
        let mut h = HeaderMap::new();
        let quoted = format!("whsec_{}", STANDARD.encode(KEY));
        h.insert("x-gitlab-token", HeaderValue::from_str(&quoted).unwrap());
        assert_eq!(
            verify(&h, b"{}", &secret, at(0)),
            Err(WebhookError::MissingSignature { header: SIGNATURE })
        );
    }

    #[test]
    fn system_hooks_count_only_for_pushes() {
        let mut h = HeaderMap::new();
        h.insert("x-gitlab-event", HeaderValue::from_static("System Hook"));
        let push = br#"{"event_name":"push","ref":"refs/heads/main"}"#;
        assert!(matches!(event(&h, push), Ok(Event::Push(_))));
        let other = br#"{"event_name":"project_create"}"#;
        assert_eq!(
            event(&h, other),
            Ok(Event::Other("System Hook project_create".into()))
        );
    }
}
