//! Gitea, Forgejo and Gogs: a bare hex HMAC-SHA256 of the body in their own header
//! (`X-Forgejo-Signature`, `X-Gitea-Signature`, `X-Gogs-Signature`). They also send the
//! GitHub headers; their own are checked first, GitHub's `X-Hub-Signature-256` only when none
//! of theirs is there (an older Gitea, or a Gitea webhook of the "GitHub" type). The first
//! header present decides: a wrong value is not retried against the next header.
//!
//! The payload has GitHub's shape (`ref`, `repository.clone_url` / `ssh_url` / `html_url`).

use axum::http::HeaderMap;

use super::{github, Event};
use crate::webhook::signing::{first_header, verify_hex, verify_prefixed};
use crate::webhook::{Secret, WebhookError};

const SIGNATURES: &[&str] = &[
    "X-Forgejo-Signature",
    "X-Gitea-Signature",
    "X-Gogs-Signature",
];
const EVENTS: &[&str] = &[
    "X-Forgejo-Event",
    "X-Gitea-Event",
    "X-Gogs-Event",
    "X-GitHub-Event",
];
pub(crate) const DELIVERY: &[&str] = &[
    "X-Forgejo-Delivery",
    "X-Gitea-Delivery",
    "X-Gogs-Delivery",
    "X-GitHub-Delivery",
];

pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
) -> Result<(), WebhookError> {
    if let Some((name, hex)) = first_header(headers, SIGNATURES) {
        return verify_hex(secret, body, hex, name);
    }
    verify_prefixed(headers, secret, body, github::SIGNATURE).map_err(|e| match e {
        WebhookError::MissingSignature { .. } => WebhookError::MissingSignature {
            header: "X-Gitea-Signature (or X-Forgejo-Signature, X-Gogs-Signature)",
        },
        other => other,
    })
}

pub(crate) fn event(headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    let (_, event) = first_header(headers, EVENTS).ok_or(WebhookError::BadHeader {
        header: "X-Gitea-Event",
        problem: "is missing (nor X-Forgejo-Event, X-Gogs-Event, X-GitHub-Event)",
    })?;
    match event {
        "push" => github::push(headers, body).map(Event::Push),
        other => Ok(Event::Other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::signing::sign_hex;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn bare_hex(secret: &str, body: &[u8]) -> String {
        sign_hex(secret.as_bytes(), body)
            .trim_start_matches("sha256=")
            .to_string()
    }

    #[test]
    fn each_relatives_own_header_verifies() {
        let s = Secret::new("k");
        for name in [
            "x-forgejo-signature",
            "x-gitea-signature",
            "x-gogs-signature",
        ] {
            let h = headers(&[(name, &bare_hex("k", b"{}"))]);
            assert_eq!(verify(&h, b"{}", &s), Ok(()), "{name}");
        }
    }

    #[test]
    fn the_own_header_wins_over_the_github_one() {
        let s = Secret::new("k");
        let h = headers(&[
            ("x-gitea-signature", &bare_hex("wrong", b"{}")),
            ("x-hub-signature-256", &sign_hex(b"k", b"{}")),
        ]);
        assert_eq!(
            verify(&h, b"{}", &s),
            Err(WebhookError::BadSignature {
                header: "X-Gitea-Signature"
            })
        );
    }

    #[test]
    fn an_empty_own_header_is_missing_and_github_s_is_then_checked() {
        let s = Secret::new("k");
        let h = headers(&[
            ("x-gitea-signature", ""),
            ("x-hub-signature-256", &sign_hex(b"k", b"{}")),
        ]);
        assert_eq!(verify(&h, b"{}", &s), Ok(()));
        let h = headers(&[("x-gitea-signature", "")]);
        assert!(matches!(
            verify(&h, b"{}", &s),
            Err(WebhookError::MissingSignature { .. })
        ));
    }
}
