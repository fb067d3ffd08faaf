//! A lean reader of one engine's `GET /events` stream over a plain socket.
//!
//! Why not bollard for this one request: every host's event stream stays open for as long as
//! berth runs, and through hyper each open stream keeps about 34 KiB (the connection's 8 KiB
//! read buffer, its request channel, bollard's 8 KiB frame buffer, the connection task): 170 MiB
//! at 5,000 hosts. Events are rare and small, so this reader keeps the socket and a 512-byte
//! buffer, and holds a line only while one is being read. TLS endpoints still go through bollard
//! (see [`super::events`]).
//!
//! It speaks just the HTTP/1.1 Docker's events endpoint needs: one `GET`, then a `200` whose body
//! (chunked, sized or ended by close) is JSON messages separated by newlines. Errors are bollard's
//! type, so callers sort them like any other request's: a broken or garbled stream is an I/O
//! error (the engine did not answer in full), a refusal is the engine's status and message.

use std::io;

use bollard::errors::Error as BollardError;
use bollard::models::EventMessage;
use futures_util::stream::{self, BoxStream};
use futures_util::StreamExt;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};

/// The socket read buffer kept for the life of the stream.
const READ_BUFFER: usize = 512;
/// Longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 16 << 10;
/// Longest single event accepted; Docker's are about a kilobyte (labels included).
const MAX_EVENT: usize = 1 << 20;
/// How much of a refusal's body is read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

type Result<T> = std::result::Result<T, BollardError>;

/// The event messages of `GET {path_and_query}` sent over `io`, once the engine has answered
/// `200`. Bound the call with a timeout: the engine answers the head at once, then sends an
/// event whenever one happens (the stream itself has no deadline).
pub(crate) async fn open<S>(
    io: S,
    path_and_query: &str,
) -> Result<BoxStream<'static, Result<EventMessage>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = BufReader::with_capacity(READ_BUFFER, io);
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth/{}\r\n\
         Accept: application/json\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    reader.get_mut().write_all(request.as_bytes()).await?;
    reader.get_mut().flush().await?;
    let (status, framing) = read_head(&mut reader).await?;
    let mut body = Body { reader, framing };
    if status != 200 {
        let text = body.read_to_end(MAX_ERROR_BODY).await.unwrap_or_default();
        return Err(BollardError::DockerResponseServerError {
            status_code: status,
            message: error_message(&text),
        });
    }
    let lines = Lines {
        body,
        pending: Vec::new(),
    };
    // `try_unfold` keeps the read in progress inside the stream, so a caller may drop a
    // `next()` (in a `select!`) without losing half an event.
    Ok(stream::try_unfold(lines, |mut lines| async move {
        Ok(lines.next().await?.map(|event| (event, lines)))
    })
    .boxed())
}

fn invalid(what: impl Into<String>) -> BollardError {
    io::Error::new(io::ErrorKind::InvalidData, what.into()).into()
}

fn cut_short(what: &str) -> BollardError {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_string()).into()
}

/// One line (through `\n`) into `line`, at most `limit` bytes; an empty `line` means the
/// connection closed.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> Result<()> {
    line.clear();
    let n = reader.take(limit as u64).read_until(b'\n', line).await?;
    if n == limit && line.last() != Some(&b'\n') {
        return Err(invalid(format!(
            "a line of the response is longer than {limit} bytes"
        )));
    }
    Ok(())
}

/// How the body's end is known.
#[derive(Debug, PartialEq)]
enum Framing {
    /// `Transfer-Encoding: chunked`; `left` bytes remain of the current chunk.
    Chunked {
        left: u64,
    },
    /// `Content-Length`; `left` bytes remain.
    Sized {
        left: u64,
    },
    /// Neither: the body ends when the engine closes the connection.
    UntilClose,
    Done,
}

/// Reads the status line and headers: the status code and the body's framing.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<(u16, Framing)> {
    let mut line = Vec::new();
    let mut read = 0;
    let mut status = None;
    let mut chunked = false;
    let mut length = None;
    loop {
        read_line(reader, &mut line, (MAX_HEAD - read).max(1)).await?;
        if line.is_empty() {
            return Err(cut_short(
                "the engine closed the connection before its answer ended",
            ));
        }
        read += line.len();
        if read >= MAX_HEAD {
            return Err(invalid(format!(
                "the response head is longer than {MAX_HEAD} bytes"
            )));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| invalid("the response head is not UTF-8"))?
            .trim_end();
        if status.is_none() {
            status = Some(status_code(text)?);
            continue;
        }
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(invalid(format!("malformed response header '{text}'")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("bad Content-Length '{value}'")))?,
            );
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked { left: 0 },
        (false, Some(0)) => Framing::Done,
        (false, Some(left)) => Framing::Sized { left },
        (false, None) => Framing::UntilClose,
    };
    Ok((status.unwrap_or_default(), framing))
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(line: &str) -> Result<u16> {
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or_default();
    match (
        version.starts_with("HTTP/1."),
        words.next().map(str::parse::<u16>),
    ) {
        (true, Some(Ok(code))) => Ok(code),
        _ => Err(invalid(format!("not an HTTP/1.x status line: '{line}'"))),
    }
}

/// Docker's error body is `{"message": "..."}`; anything else is shown as it is.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Refusal {
        message: String,
    }
    match serde_json::from_slice::<Refusal>(body) {
        Ok(r) => r.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

/// The response body, unframed.
struct Body<R> {
    reader: R,
    framing: Framing,
}

impl<R: AsyncBufRead + Unpin> Body<R> {
    /// Appends the next bytes of the body to `out`; `false` once the body has ended.
    async fn more(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let mut line = Vec::new();
        loop {
            let Body { reader, framing } = self;
            match framing {
                Framing::Done => return Ok(false),
                Framing::Chunked { left: 0 } => {
                    read_line(reader, &mut line, 1024).await?;
                    let text = std::str::from_utf8(&line).unwrap_or_default().trim();
                    let size = text.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| invalid(format!("bad chunk size '{text}'")))?;
                    if size == 0 {
                        // Trailers, if any, up to the empty line that ends the body.
                        loop {
                            read_line(reader, &mut line, 1024).await?;
                            if line.is_empty() || line.trim_ascii().is_empty() {
                                break;
                            }
                        }
                        *framing = Framing::Done;
                        return Ok(false);
                    }
                    *framing = Framing::Chunked { left: size };
                }
                Framing::Chunked { left } | Framing::Sized { left } => {
                    let buf = reader.fill_buf().await?;
                    if buf.is_empty() {
                        return Err(cut_short("the engine closed the event stream mid-message"));
                    }
                    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&buf[..n]);
                    reader.consume(n);
                    *left -= n as u64;
                    if *left == 0 {
                        if matches!(framing, Framing::Chunked { .. }) {
                            // The CRLF after a chunk's data.
                            read_line(reader, &mut line, 16).await?;
                            if !line.trim_ascii().is_empty() {
                                return Err(invalid("a chunk is longer than its size says"));
                            }
                        } else {
                            *framing = Framing::Done;
                        }
                    }
                    return Ok(true);
                }
                Framing::UntilClose => {
                    let buf = reader.fill_buf().await?;
                    if buf.is_empty() {
                        *framing = Framing::Done;
                        return Ok(false);
                    }
                    let n = buf.len();
                    out.extend_from_slice(buf);
                    reader.consume(n);
                    return Ok(true);
                }
            }
        }
    }

    /// The whole body, up to `limit` bytes (a refusal's message).
    async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < limit && self.more(&mut out).await? {}
        Ok(out)
    }
}

/// The body split into JSON messages at newlines.
struct Lines<R> {
    body: Body<R>,
    /// Bytes read past the last message; empty (and unallocated) between events.
    pending: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> Lines<R> {
    async fn next(&mut self) -> Result<Option<EventMessage>> {
        let mut scanned = 0;
        loop {
            if let Some(at) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + at;
                let event = parse(&self.pending[..end]);
                self.pending.drain(..=end);
                if self.pending.is_empty() {
                    // Idle streams hold no line buffer: thousands of them wait at once.
                    self.pending = Vec::new();
                }
                scanned = 0;
                match event {
                    Some(event) => return event.map(Some),
                    None => continue,
                }
            }
            scanned = self.pending.len();
            if scanned > MAX_EVENT {
                return Err(invalid(format!(
                    "an event is longer than {MAX_EVENT} bytes"
                )));
            }
            if !self.body.more(&mut self.pending).await? {
                // The body ended; a last message may lack its newline.
                let rest = std::mem::take(&mut self.pending);
                return parse(&rest).transpose();
            }
        }
    }
}

/// One message, or `None` for a blank line.
fn parse(line: &[u8]) -> Option<Result<EventMessage>> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(line).map_err(|e| invalid(format!("an event is not JSON: {e}"))))
}

/// `s` escaped for a URL query value.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "event_conn_tests.rs"]
mod tests;
