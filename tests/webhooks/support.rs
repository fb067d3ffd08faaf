//! Fixtures of tests/webhooks.rs: a server with the webhook router merged into another router,
//! a recording trigger, the sample deliveries of webhooks/samples/ signed for any secret, and
//! helpers for Git and log capture.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use berth::webhook::{self, Provider, Secret, Secrets, SyncTrigger, Trigger, WebhookConfig};
use hmac::{Hmac, Mac};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "s3cret-for-berth-tests";

/// Header name and value pairs, in the order sent.
pub type Headers = Vec<(String, String)>;

/// Every other spelling of each sample's repository, so matching goes through normalisation.
pub const SAMPLE_REPOS: &[&str] = &[
    "git@github.com:Acme/deploy.git",
    "ssh://git@gitlab.example.com/acme/deploy",
    "git@git.example.org:acme/deploy.git",
    "https://code.example.net/acme/deploy",
    "git@bitbucket.org:acme/deploy.git",
    "https://bitbucket.example.com/scm/acme/deploy.git",
    "git.acme.example:/srv/git/deploy.git",
];

pub const PUSH_SAMPLES: &[&str] = &[
    "github-push",
    "gitlab-push",
    "gitea-push",
    "forgejo-push",
    "bitbucket-cloud-push",
    "bitbucket-server-push",
    "generic-push",
];

/// Records every trigger, the way the controller's `Notify` would be rung.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Trigger>>);

impl SyncTrigger for Recorder {
    fn look_now(&self, trigger: Trigger) {
        self.0.lock().unwrap().push(trigger);
    }
}

impl Recorder {
    pub fn all(&self) -> Vec<Trigger> {
        self.0.lock().unwrap().clone()
    }
}

/// The webhook router merged into a router with its own route and fallbacks, shaped like the
/// status API's, served with the peer address.
pub struct Server {
    pub url: String,
    pub triggers: Arc<Recorder>,
    stop: CancellationToken,
}

impl Server {
    pub async fn start(config: WebhookConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let triggers = Arc::new(Recorder::default());
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no such path") })
            .method_not_allowed_fallback(|| async {
                (StatusCode::METHOD_NOT_ALLOWED, "read-only: use GET")
            })
            .merge(webhook::router(Arc::new(config), triggers.clone()));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stopped.cancelled().await })
            .await
        });
        Server {
            url,
            triggers,
            stop,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One secret for every provider, the sample repositories, and rate limits out of the way
/// (only the flood test is about them).
pub fn config() -> WebhookConfig {
    let secrets = Secrets::new(Some(Secret::new(SECRET)), []);
    let mut c = WebhookConfig::new(secrets, "main").with_repo_urls(SAMPLE_REPOS.iter().copied());
    c.rate_limits.per_source.burst = 100_000;
    c.rate_limits.overall.burst = 100_000;
    c
}

/// A delivery from webhooks/samples/: the body and the header template.
#[derive(Clone)]
pub struct Sample {
    pub provider: Provider,
    pub headers: Headers,
    pub body: Vec<u8>,
}

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/samples")
}

pub fn sample(name: &str) -> Sample {
    let dir = samples_dir();
    let body = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
    let headers = std::fs::read_to_string(dir.join(format!("{name}.headers")))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let provider = match name.split('-').next().unwrap() {
        "forgejo" => Provider::Gitea,
        host => host.parse().unwrap(),
    };
    Sample {
        provider,
        headers,
        body,
    }
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sample {
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Sample {
        self.body = body.into();
        self
    }

    pub fn replace_in_body(self, from: &str, to: &str) -> Sample {
        let text = String::from_utf8(self.body.clone()).unwrap();
        assert!(text.contains(from), "sample has no {from:?}");
        self.with_body(text.replace(from, to))
    }

    /// `true` for a template value that depends on the secret (a signature or a token).
    pub fn is_signature(value: &str) -> bool {
        value.contains("{hmac}") || value.contains("{secret}")
    }

    /// A header of the template, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Headers with the placeholders filled for `secret` over `signed_body`.
    pub fn signed_headers(&self, secret: &str, signed_body: &[u8]) -> Headers {
        let hex = hmac_hex(secret, signed_body);
        self.headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.replace("{hmac}", &hex).replace("{secret}", secret),
                )
            })
            .collect()
    }

    pub async fn send(&self, server: &Server) -> (StatusCode, Value) {
        let headers = self.signed_headers(SECRET, &self.body);
        post(server, self.provider, &headers, self.body.clone()).await
    }
}

pub async fn post_from(
    client: &reqwest::Client,
    server: &Server,
    provider: Provider,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = client.post(format!("{}{}", server.url, provider.path()));
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

pub async fn post(
    server: &Server,
    provider: Provider,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    post_from(&reqwest::Client::new(), server, provider, headers, body).await
}

/// Collects everything the `fmt` subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new("git")
        .args([
            "-c",
            "user.name=berth test",
            "-c",
            "user.email=test@berth.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn tools_present() -> bool {
    ["bash", "git", "openssl", "curl", "od"].iter().all(|t| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}
