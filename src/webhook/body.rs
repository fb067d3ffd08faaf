//! Reading the raw body, bounded in size and time, before anything looks at it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use futures_util::StreamExt;

use super::WebhookError;

/// The whole body, or 413 as soon as it is known to exceed `limit` (from `Content-Length`,
/// without reading, or while reading a chunked body), or 408 when it takes longer than
/// `timeout`.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, WebhookError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(WebhookError::TooLarge { limit });
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| WebhookError::BodyRead)?;
            if bytes.len() + chunk.len() > limit {
                return Err(WebhookError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| WebhookError::SlowBody(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let b = read(&HeaderMap::new(), Body::from("hello"), 5, SECOND).await;
        assert_eq!(b, Ok(b"hello".to_vec()));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_read_or_declared() {
        let b = read(&HeaderMap::new(), Body::from("hello!"), 5, SECOND).await;
        assert_eq!(b, Err(WebhookError::TooLarge { limit: 5 }));
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("6"));
        let b = read(&h, Body::empty(), 5, SECOND).await;
        assert_eq!(b, Err(WebhookError::TooLarge { limit: 5 }));
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        // A stream that never yields: the timeout is the only way out, so a short real one is
        // deterministic.
        let stream = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        let short = Duration::from_millis(20);
        let b = read(&HeaderMap::new(), Body::from_stream(stream), 5, short).await;
        assert_eq!(b, Err(WebhookError::SlowBody(short)));
    }
}
