//! Building answers: JSON, empty, error and streaming bodies, with the headers dockerd sends
//! on every response (`Api-Version`, `Ostype`, `Server`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body as HttpBody, Frame};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::sim::error::Refusal;

/// Every answer's body: whole or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

/// The API version the simulated engines speak, as dockerd 20.10.
pub const API_VERSION: &str = "1.41";
/// The oldest API version dockerd 20.10 accepts.
pub const MIN_API_VERSION: &str = "1.12";

fn with_headers(mut response: Response<Body>, server_version: &str) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(server) = HeaderValue::from_str(&format!("Docker/{server_version} (linux)")) {
        headers.insert("Server", server);
    }
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON answer.
pub fn json(code: u16, value: &impl Serialize, server_version: &str) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("answers serialize");
    let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *response.status_mut() = status(code);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    with_headers(response, server_version)
}

/// A plain-text answer (`/_ping`'s `OK`).
pub fn text(body: &'static str, server_version: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    with_headers(response, server_version)
}

/// An answer without a body (204, 304).
pub fn empty(code: u16, server_version: &str) -> Response<Body> {
    let mut response = Response::new(Empty::new().boxed());
    *response.status_mut() = status(code);
    with_headers(response, server_version)
}

/// Docker's error answer: `{"message": "..."}` with the refusal's status.
pub fn refusal(r: &Refusal, server_version: &str) -> Response<Body> {
    json(
        r.status(),
        &serde_json::json!({ "message": r.to_string() }),
        server_version,
    )
}

/// A streamed JSON-lines answer (events, pull and import progress), sent chunk by chunk as
/// the lines come and ended when the sender is dropped.
pub fn stream(rx: mpsc::Receiver<Bytes>, server_version: &str) -> Response<Body> {
    let mut response = Response::new(ChannelBody { rx }.boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    with_headers(response, server_version)
}

/// A body fed by a channel.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|line| line.map(|b| Ok(Frame::data(b))))
    }
}
