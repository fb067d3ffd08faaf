//! The checks the hosts' schemes are made of: HMAC-SHA256 of the raw body in hex, and reading
//! headers so that an empty one counts as absent.
//!
//! Every comparison with secret-derived bytes is constant-time (`hmac`'s `verify_slice`, or
//! [`Secret::matches`]). Errors say which header was missing or wrong, never what was expected.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Secret, WebhookError};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A header's value when present, valid text and not blank. An empty signature header must
/// never reach a comparison: it is "missing", whatever the secret is.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The first of `names` that is present and not blank, with its name.
pub(crate) fn first_header<'a>(
    headers: &'a HeaderMap,
    names: &[&'static str],
) -> Option<(&'static str, &'a str)> {
    names
        .iter()
        .find_map(|n| header(headers, n).map(|v| (*n, v)))
}

/// A keyed HMAC-SHA256. Any key length is valid for HMAC, so this cannot fail.
pub(crate) fn mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

/// Checks `hex` (case-insensitive) as the HMAC-SHA256 of `body` under `secret`. `header` names
/// the header the value came from, for the error.
pub(crate) fn verify_hex(
    secret: &Secret,
    body: &[u8],
    hex: &str,
    header: &'static str,
) -> Result<(), WebhookError> {
    let given = decode_hex(hex).ok_or(WebhookError::BadSignature { header })?;
    let mut mac = mac(secret.expose());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| WebhookError::BadSignature { header })
}

/// Checks a `sha256=<hex>` header, the form of GitHub, Bitbucket and berth's generic receiver.
pub(crate) fn verify_prefixed(
    headers: &HeaderMap,
    secret: &Secret,
    body: &[u8],
    name: &'static str,
) -> Result<(), WebhookError> {
    let value = header(headers, name).ok_or(WebhookError::MissingSignature { header: name })?;
    let hex = value
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature { header: name })?;
    verify_hex(secret, body, hex, name)
}

/// The signature as `sha256=<lowercase hex>`, as hosts send it.
#[cfg(test)]
pub(crate) fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + bytes.len() * 2);
    out.push_str("sha256=");
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// GitHub's documented example of validating a delivery.
    #[test]
    fn githubs_published_example_signs_and_verifies() {
        let secret = "It's a Secret to Everybody";
        let body = b"Hello, World!";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_hex(secret.as_bytes(), body), expected);
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature-256", HeaderValue::from_static(expected));
        let s = Secret::new(secret);
        assert!(verify_prefixed(&headers, &s, body, "x-hub-signature-256").is_ok());
        assert!(verify_prefixed(&headers, &s, b"Hello, World?", "x-hub-signature-256").is_err());
    }

    #[test]
    fn hex_is_accepted_in_either_case_and_nothing_else() {
        let s = Secret::new("k");
        let good = sign_hex(b"k", b"body");
        let hex = good.trim_start_matches("sha256=");
        assert!(verify_hex(&s, b"body", hex, "h").is_ok());
        assert!(verify_hex(&s, b"body", &hex.to_uppercase(), "h").is_ok());
        for bad in ["", "zz", &hex[1..], &hex[..10]] {
            assert!(matches!(
                verify_hex(&s, b"body", bad, "h"),
                Err(WebhookError::BadSignature { header: "h" })
            ));
        }
    }

    #[test]
    fn an_empty_or_blank_header_is_missing() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static(""));
        headers.insert("x-b", HeaderValue::from_static("  "));
        headers.insert("x-c", HeaderValue::from_static("v"));
        assert_eq!(header(&headers, "x-a"), None);
        assert_eq!(header(&headers, "x-b"), None);
        assert_eq!(
            first_header(&headers, &["x-a", "x-b", "x-c"]),
            Some(("x-c", "v"))
        );
        let e = verify_prefixed(&headers, &Secret::new("k"), b"", "x-a").unwrap_err();
        assert!(matches!(
            e,
            WebhookError::MissingSignature { header: "x-a" }
        ));
    }

    #[test]
    fn a_signature_without_the_sha256_prefix_is_wrong() {
        let mut headers = HeaderMap::new();
        let hex = sign_hex(b"k", b"b")
            .trim_start_matches("sha256=")
            .to_string();
        headers.insert("x-sig", HeaderValue::from_str(&hex).unwrap());
        let e = verify_prefixed(&headers, &Secret::new("k"), b"b", "x-sig").unwrap_err();
        assert!(matches!(e, WebhookError::BadSignature { .. }));
    }
}
