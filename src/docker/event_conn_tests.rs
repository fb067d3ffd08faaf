//! The event reader against scripted engines on an in-memory pipe: framing, splits at any
//! byte, refusals and broken streams.

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

fn event(id: &str, action: &str) -> String {
    format!(
        r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"io.berth.managed":"true"}}}},"time":1}}"#
    )
}

/// A pipe whose far end answers with `response` (after reading the request), then closes.
/// Returns the near end and a handle yielding the request the engine got.
fn engine(response: Vec<u8>) -> (DuplexStream, tokio::task::JoinHandle<String>) {
    // A pipe smaller than a message, so reads split everywhere.
    let (near, mut far) = tokio::io::duplex(7);
    let engine = tokio::spawn(async move {
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            if far.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            request.push(byte[0]);
        }
        far.write_all(&response).await.unwrap();
        String::from_utf8(request).unwrap()
    });
    (near, engine)
}

fn chunked(parts: &[&str]) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for p in parts {
        out.extend_from_slice(format!("{:x};ext=1\r\n{p}\r\n", p.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    out
}

async fn actions(stream: BoxStream<'static, Result<EventMessage>>) -> Vec<Result<String>> {
    stream
        .map(|r| r.map(|m| format!("{}:{}", m.actor.unwrap().id.unwrap(), m.action.unwrap())))
        .collect()
        .await
}

/// `id:action` of every event an engine answering `response` sends, all of which must read.
async fn read_all(response: Vec<u8>) -> Vec<String> {
    let (io, _engine) = engine(response);
    let stream = open(io, "/events").await.unwrap();
    actions(stream)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn reads_chunked_events_split_anywhere_and_sends_one_get() {
    let (a, b, c) = (
        event("a", "start"),
        event("b", "die"),
        event("c", "destroy"),
    );
    // Messages across chunk boundaries, two in one chunk, a blank line between.
    let body = format!("{a}\n{b}\n\n{c}\n");
    let (first, rest) = body.split_at(10);
    let (middle, last) = rest.split_at(a.len() + 5);
    let (io, engine) = engine(chunked(&[first, middle, last]));
    let stream = open(io, "/events?filters=x").await.unwrap();
    let got: Vec<String> = actions(stream)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, ["a:start", "b:die", "c:destroy"]);
    let request = engine.await.unwrap();
    assert!(
        request.starts_with("GET /events?filters=x HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nHost: docker\r\n"), "{request}");
}

#[tokio::test]
async fn reads_a_body_ended_by_close_and_a_last_event_without_newline() {
    let response = format!(
        "HTTP/1.1 200 OK\r\n\r\n{}\n{}",
        event("a", "start"),
        event("b", "die")
    );
    assert_eq!(read_all(response.into_bytes()).await, ["a:start", "b:die"]);
}

#[tokio::test]
async fn reads_a_sized_body() {
    let body = format!("{}\n", event("a", "oom"));
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(read_all(response.into_bytes()).await, ["a:oom"]);
}

#[tokio::test]
async fn a_refusal_carries_the_engines_status_and_message() {
    let body = r#"{"message":"invalid filter 'lable'"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (io, _engine) = engine(response.into_bytes());
    match open(io, "/events").await {
        Err(BollardError::DockerResponseServerError {
            status_code,
            message,
        }) => {
            assert_eq!(
                (status_code, message.as_str()),
                (400, "invalid filter 'lable'")
            );
        }
        other => panic!("expected a server error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_stream_cut_mid_event_or_garbled_is_an_io_error() {
    // Cut inside a chunk: the engine went away.
    let mut response = chunked(&[]);
    response.truncate(response.len() - b"0\r\nX-Trailer: yes\r\n\r\n".len());
    response.extend_from_slice(b"40\r\n{\"Type\":\"cont");
    let (io, _engine) = engine(response);
    let got = actions(open(io, "/events").await.unwrap()).await;
    assert_eq!(got.len(), 1);
    assert!(
        matches!(&got[0], Err(BollardError::IOError { err }) if err.kind() == io::ErrorKind::UnexpectedEof),
        "{got:?}"
    );

    let (io, _engine) = engine(chunked(&["not json\n"]));
    let got = actions(open(io, "/events").await.unwrap()).await;
    assert!(
        matches!(&got[..], [Err(BollardError::IOError { err })] if err.to_string().contains("not JSON")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_closed_or_foreign_answer_is_an_error_before_any_event() {
    let (io, _engine) = engine(Vec::new());
    assert!(matches!(
        open(io, "/events").await,
        Err(BollardError::IOError { .. })
    ));
    let (io, _engine) = engine(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec());
    match open(io, "/events").await {
        Err(BollardError::IOError { err }) => {
            assert!(err.to_string().contains("status line"), "{err}")
        }
        other => panic!("expected an I/O error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn an_endless_event_is_refused_with_bounded_memory() {
    let mut response = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    response.extend(std::iter::repeat_n(b'x', MAX_EVENT + 4096));
    let (io, _engine) = engine(response);
    let got = actions(open(io, "/events").await.unwrap()).await;
    assert!(
        matches!(&got[..], [Err(BollardError::IOError { err })] if err.to_string().contains("longer than")),
        "{got:?}"
    );
}

#[test]
fn query_values_are_escaped() {
    assert_eq!(
        query_escape(r#"{"label":["io.berth.managed=true"]}"#),
        "%7B%22label%22%3A%5B%22io.berth.managed%3Dtrue%22%5D%7D"
    );
}
