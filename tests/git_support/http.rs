//! A smart-HTTP Git server on loopback: Debian's `git http-backend` (CGI) behind a small
//! threaded HTTP/1.1 server, with modes that misbehave the way real remotes do.
//!
//! Every request is recorded (method, path, whether it asked for a pack), so tests can check
//! what a fetch cost. Dropping the server stops it and joins every thread it started.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How the server answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Like a forge.
    Normal,
    /// Sends the status line and headers of every answer, then nothing, holding the connection.
    HangAfterHeaders,
    /// Answers ref listings normally; for the pack request, headers then nothing.
    HangPackAfterHeaders,
    /// Sends every answer one byte per `every`.
    Drip { every: Duration },
    /// Answers ref listings normally; drips the pack one byte per `every`.
    DripPack { every: Duration },
    /// Requires `Authorization: Basic base64(user:password)`; 401 with a Basic challenge
    /// otherwise.
    Basic { user: String, password: String },
    /// Answers every request with `302 Found` to the same path and query under `base`.
    Redirect { base: String },
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The body asked for a pack (`command=fetch`, or v1 `want` lines).
    pub wants_pack: bool,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

pub struct GitHttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    acceptor: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl GitHttpServer {
    /// Serves the repositories under `root` (URL path `/<name>` is `root/<name>`).
    pub fn start(root: &Path, mode: Mode) -> Result<GitHttpServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handlers = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            root: root.to_owned(),
            mode,
            stop: Arc::clone(&stop),
            seen: Arc::clone(&seen),
        };
        let spawned = Arc::clone(&handlers);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                let handler = std::thread::spawn(move || {
                    let _ = shared.serve(stream);
                });
                spawned.lock().expect("handlers lock").push(handler);
            }
        });
        Ok(GitHttpServer {
            addr,
            stop,
            seen,
            acceptor: Some(acceptor),
            handlers,
        })
    }

    /// `http://127.0.0.1:PORT/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    /// How many requests asked for a pack.
    pub fn pack_requests(&self) -> usize {
        self.seen().iter().filter(|s| s.wants_pack).count()
    }

    pub fn forget(&self) {
        self.seen.lock().expect("seen lock").clear();
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop to see the flag
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let handlers = std::mem::take(&mut *self.handlers.lock().expect("handlers lock"));
        for handler in handlers {
            let _ = handler.join();
        }
    }
}

#[derive(Clone)]
struct Shared {
    root: PathBuf,
    mode: Mode,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// What the CGI program answered: status line, headers, body.
struct Answer {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Shared {
    /// One request per connection (answers say `Connection: close`).
    fn serve(&self, stream: TcpStream) -> Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let request = read_request(&mut reader)?;
        let wants_pack =
            contains(&request.body, b"command=fetch") || contains(&request.body, b"want ");
        self.seen.lock().expect("seen lock").push(Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            wants_pack,
            authorization: request.header("authorization").map(str::to_owned),
        });
        let mut out = stream;

        if let Mode::Redirect { base } = &self.mode {
            let query = if request.query.is_empty() {
                String::new()
            } else {
                format!("?{}", request.query)
            };
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: {base}{}{query}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n",
                request.path
            );
            out.write_all(answer.as_bytes())?;
            return Ok(());
        }
        if let Mode::Basic { user, password } = &self.mode {
            let expected = format!("Basic {}", base64(&format!("{user}:{password}")));
            if request.header("authorization") != Some(expected.as_str()) {
                out.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
        }

        let Answer {
            status,
            headers,
            body,
        } = self.backend(&request)?;
        let mut head = format!("HTTP/1.1 {status}\r\n");
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        out.write_all(head.as_bytes())?;
        out.flush()?;

        let misbehave = match &self.mode {
            Mode::HangAfterHeaders => Some(None),
            Mode::HangPackAfterHeaders if wants_pack => Some(None),
            Mode::Drip { every } => Some(Some(*every)),
            Mode::DripPack { every } if wants_pack => Some(Some(*every)),
            _ => None,
        };
        match misbehave {
            None => out.write_all(&body)?,
            Some(None) => self.hold(),
            Some(Some(every)) => {
                for byte in &body {
                    if self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    // Fails once the client has given up and closed the connection.
                    out.write_all(std::slice::from_ref(byte))?;
                    out.flush()?;
                    std::thread::sleep(every);
                }
            }
        }
        Ok(())
    }

    /// Keeps the connection open, silent, until the server stops.
    fn hold(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `git http-backend` for the request; returns status, headers and body.
    fn backend(&self, request: &Request) -> Result<Answer> {
        let mut command = Command::new(backend_program()?);
        command
            .env_clear()
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("REQUEST_METHOD", &request.method)
            .env("PATH_INFO", &request.path)
            .env("QUERY_STRING", &request.query)
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("CONTENT_LENGTH", request.body.len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(kind) = request.header("content-type") {
            command.env("CONTENT_TYPE", kind);
        }
        if let Some(protocol) = request.header("git-protocol") {
            command.env("GIT_PROTOCOL", protocol);
        }
        let mut child = command.spawn().context("running git http-backend")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let body = request.body.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&body));
        let out = child.wait_with_output()?;
        let _ = writer.join();

        let split = out
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("CGI answer without a header end")?;
        let head = String::from_utf8_lossy(&out.stdout[..split]).to_string();
        let body = out.stdout[split + 4..].to_vec();
        let mut status = "200 OK".to_owned();
        let mut headers = Vec::new();
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("status") {
                status = value.trim().to_owned();
            } else {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

fn backend_program() -> Result<PathBuf> {
    let out = Command::new("git").arg("--exec-path").output()?;
    let dir = String::from_utf8(out.stdout)?.trim().to_owned();
    let program = Path::new(&dir).join("git-http-backend");
    if !program.exists() {
        bail!(
            "{} is missing (Debian's git package has it)",
            program.display()
        );
    }
    Ok(program)
}

fn read_request(reader: &mut impl BufRead) -> Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().context("method")?.to_owned();
    let target = parts.next().context("target")?.to_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    };
    if let Some(length) = request.header("content-length") {
        let mut body = vec![0; length.parse()?];
        reader.read_exact(&mut body)?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(reader)?;
    }
    if request
        .header("content-encoding")
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip"))
    {
        bail!("gzip request bodies are not supported by this test server");
    }
    Ok(request)
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)?;
        if size == 0 {
            line.clear();
            reader.read_line(&mut line)?;
            return Ok(body);
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk[..size]);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
