//! The webhook receivers over real HTTP on loopback: the sample deliveries of every host in
//! webhooks/samples/, forged and oversized requests, a flood, and webhooks/post-receive run for
//! real against a bare repository.
//!
//! Signatures are computed here with `hmac` directly, not with berth's code, so a mistake in
//! berth's verification cannot hide behind the same mistake in the test.

#[path = "webhooks/support.rs"]
mod support;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use base64::Engine as _;
use berth::webhook::{self, Provider, Secret, Secrets, Trigger, WebhookConfig};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use tokio::net::TcpListener;

use support::*;

// ---------------------------------------------------------------------------------------------
// Accepted deliveries

#[tokio::test]
async fn every_hosts_signed_push_triggers_exactly_one_sync() {
    let server = Server::start(config()).await;
    for (i, name) in PUSH_SAMPLES.iter().enumerate() {
        let s = sample(name);
        let (status, body) = s.send(&server).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        assert_eq!(body["result"], "sync triggered", "{name}");
        let delivery = [
            "X-GitHub-Delivery",
            "Idempotency-Key",
            "X-Forgejo-Delivery",
            "X-Gitea-Delivery",
            "X-Request-UUID",
            "X-Request-Id",
            "X-Berth-Delivery",
        ]
        .iter()
        .find_map(|h| s.header(h))
        .map(String::from);
        assert!(delivery.is_some(), "{name} sample has a delivery id");
        assert_eq!(body["delivery"], delivery.clone().unwrap(), "{name}");
        let triggers = server.triggers.all();
        assert_eq!(triggers.len(), i + 1, "{name}");
        assert_eq!(
            triggers[i],
            Trigger {
                provider: s.provider,
                delivery
            },
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_gitlab_signing_token_signature_triggers_a_sync_while_fresh() {
    let key = [7u8; 32];
    let token = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let secrets = Secrets::new(None, [(Provider::Gitlab, Secret::new(token))]);
    let server = Server::start(WebhookConfig::new(secrets, "main")).await;
    let body = sample("gitlab-push").body;
    let signed = |id: &str, timestamp: u64| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&body);
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        vec![
            ("X-Gitlab-Event".to_string(), "Push Hook".to_string()),
            ("webhook-id".to_string(), id.to_string()),
            ("webhook-timestamp".to_string(), timestamp.to_string()),
            ("webhook-signature".to_string(), format!("v1,{signature}")),
        ]
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let (status, answer) = post(
        &server,
        Provider::Gitlab,
        &signed("msg-1", now),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["delivery"], "msg-1");

    let hour_ago = now - 3600;
    let (status, answer) = post(&server, Provider::Gitlab, &signed("msg-2", hour_ago), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("webhook-timestamp"));
    assert_eq!(server.triggers.all().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Refused deliveries

#[tokio::test]
async fn a_wrong_secret_a_missing_or_empty_signature_or_a_tampered_body_answers_401() {
    let server = Server::start(config()).await;
    for name in PUSH_SAMPLES {
        let s = sample(name);
        // Still valid JSON, so only the signature can tell.
        let tampered = [s.body.as_slice(), b" "].concat();
        let attempts: Vec<(&str, Headers, Vec<u8>)> = vec![
            (
                "wrong secret",
                s.signed_headers("not-the-secret", &s.body),
                s.body.clone(),
            ),
            (
                "missing signature",
                s.signed_headers(SECRET, &s.body)
                    .into_iter()
                    .zip(&s.headers)
                    .filter(|(_, (_, template))| !Sample::is_signature(template))
                    .map(|(h, _)| h)
                    .collect(),
                s.body.clone(),
            ),
            (
                "empty signature",
                s.headers
                    .iter()
                    .map(|(k, v)| {
                        let v = if Sample::is_signature(v) {
                            ""
                        } else {
                            v.as_str()
                        };
                        (k.clone(), v.to_string())
                    })
                    .collect(),
                s.body.clone(),
            ),
            ("tampered body", s.signed_headers(SECRET, &s.body), tampered),
        ];
        for (what, headers, body) in attempts {
            // GitLab's secret token is the secret itself, not a signature over the body: a
            // tampered body cannot be told apart (its signing token can, tested above).
            if what == "tampered body" && s.header("X-Gitlab-Token").is_some() {
                continue;
            }
            let (status, answer) = post(&server, s.provider, &headers, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}, {what}: {answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(error.contains("signature"), "{name}, {what}: {error}");
            assert!(!answer.to_string().contains(SECRET), "{name}, {what}");
        }
    }
    assert_eq!(server.triggers.all(), vec![]);
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_before_any_signature_work() {
    let server = Server::start(config()).await;
    let big = vec![b' '; 1024 * 1024 + 1];
    let s = sample("github-push").with_body(big);
    let (status, answer) = s.send(&server).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"], "body larger than 1048576 bytes");
    assert_eq!(server.triggers.all(), vec![]);
}

#[tokio::test]
async fn a_get_answers_405_and_a_provider_without_a_secret_404() {
    let secrets = Secrets::new(None, [(Provider::Github, Secret::new(SECRET))]);
    let server = Server::start(WebhookConfig::new(secrets, "main")).await;
    let response = reqwest::get(format!("{}/webhooks/github", server.url))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "webhooks are delivered with POST");
    // The other router's own fallbacks still answer for its paths.
    let response = reqwest::Client::new()
        .post(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "read-only: use GET");

    let (status, answer) = sample("gitlab-push").send(&server).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("gitlab"),
        "{answer}"
    );

    let (status, _) = sample("github-push").send(&server).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

// ---------------------------------------------------------------------------------------------
// Verified but ignored

#[tokio::test]
async fn pings_answer_200_and_trigger_nothing() {
    let server = Server::start(config()).await;
    for name in ["github-ping", "bitbucket-server-ping"] {
        let (status, answer) = sample(name).send(&server).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        assert_eq!(answer["result"], "pong", "{name}");
    }
    assert_eq!(server.triggers.all(), vec![]);
}

#[tokio::test]
async fn a_push_to_another_branch_is_ignored_with_the_reason() {
    let server = Server::start(config()).await;
    let github = sample("github-push").replace_in_body("\"refs/heads/main\"", "\"refs/heads/dev\"");
    let bitbucket =
        sample("bitbucket-cloud-push").replace_in_body("\"name\": \"main\"", "\"name\": \"dev\"");
    for s in [github, bitbucket] {
        let (status, answer) = s.send(&server).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["result"], "ignored");
        assert_eq!(
            answer["reason"],
            "push to refs/heads/dev, berth follows refs/heads/main"
        );
    }
    assert_eq!(server.triggers.all(), vec![]);
}

#[tokio::test]
async fn a_push_of_another_repository_is_ignored() {
    let server =
        Server::start(config().with_repo_urls(["https://github.com/acme/other.git"])).await;
    let (status, answer) = sample("github-push").send(&server).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains("acme/deploy") && reason.contains("not the repository berth follows"),
        "{reason}"
    );
    assert_eq!(server.triggers.all(), vec![]);
}

#[tokio::test]
async fn a_repeated_delivery_triggers_only_once() {
    let server = Server::start(config()).await;
    let s = sample("github-push");
    assert_eq!(s.send(&server).await.0, StatusCode::ACCEPTED);
    let (status, answer) = s.send(&server).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["reason"], "duplicate delivery");
    assert_eq!(server.triggers.all().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Floods

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_requests_starves_neither_other_senders_nor_other_routes() {
    let mut c = config();
    c.rate_limits = webhook::RateLimits::default();
    let server = Arc::new(Server::start(c).await);

    let flooder = reqwest::Client::new();
    let forged = sample("github-push");
    let headers = forged.signed_headers("forged", &forged.body);
    let flood = tokio::spawn({
        let server = server.clone();
        async move {
            futures_util::stream::iter(0..1000)
                .map(|_| {
                    post_from(
                        &flooder,
                        &server,
                        Provider::Github,
                        &headers,
                        forged.body.clone(),
                    )
                })
                .buffer_unordered(64)
                .map(|(status, _)| status)
                .collect::<Vec<_>>()
                .await
        }
    });

    // Meanwhile: another route answers quickly, and a signed push from another address goes in.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let legit = sample("github-push");
    let (status, answer) = post_from(
        &other,
        &server,
        Provider::Github,
        &legit.signed_headers(SECRET, &legit.body),
        legit.body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let mut probes = 0;
    while !flood.is_finished() || probes == 0 {
        let started = Instant::now();
        let health = other
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        probes += 1;
    }

    let statuses = flood.await.unwrap();
    assert_eq!(statuses.len(), 1000);
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS));
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(limited >= 900, "only {limited} of 1000 rate limited");
    assert_eq!(server.triggers.all().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Secrets stay secret

/// Current-thread runtime: the server's tasks run on this thread, under this subscriber.
#[tokio::test]
async fn secrets_appear_in_no_answer_and_no_log_line() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start(config()).await;
    let mut answers = Vec::new();
    for name in PUSH_SAMPLES {
        let s = sample(name);
        answers.push(s.send(&server).await.1);
        let wrong = s.signed_headers("wrong", &s.body);
        answers.push(post(&server, s.provider, &wrong, s.body.clone()).await.1);
        let other_branch = s.clone().replace_in_body("main", "dev");
        answers.push(other_branch.send(&server).await.1);
    }
    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("webhook: sync triggered"), "{log}");
    assert!(log.contains("webhook: refused"), "{log}");
    assert!(!log.contains(SECRET), "a log line shows the secret");
    for answer in answers {
        assert!(!answer.to_string().contains(SECRET), "{answer}");
    }
}

// ---------------------------------------------------------------------------------------------
// webhooks/post-receive, for real

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_receive_hook_sends_what_the_generic_receiver_accepts() {
    assert!(
        tools_present(),
        "bash, git, openssl, curl and od are needed: apt-get install -y git openssl curl"
    );
    let secrets = Secrets::new(None, [(Provider::Generic, Secret::new(SECRET))]);
    let server = Server::start(
        WebhookConfig::new(secrets, "main")
            .with_repo_urls(["ssh://git@git.acme.example/srv/git/deploy.git"]),
    )
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("deploy.git");
    let work = tmp.path().join("work");
    let secret_file = tmp.path().join("hook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    git(
        tmp.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    )
    .await;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/post-receive"),
        bare.join("hooks/post-receive"),
    )
    .unwrap();
    git(&bare, &["config", "berth.url", &server.url]).await;
    git(
        &bare,
        &["config", "berth.secretFile", secret_file.to_str().unwrap()],
    )
    .await;
    git(
        &bare,
        &[
            "config",
            "berth.repository",
            "git@git.acme.example:/srv/git/deploy.git",
        ],
    )
    .await;
    git(tmp.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]).await;
    std::fs::write(work.join("web.yaml"), "kind: Pod\n").unwrap();
    git(&work, &["add", "-A"]).await;
    git(&work, &["commit", "-q", "-m", "web"]).await;

    let pushed = git(&work, &["push", "origin", "HEAD:main"]).await;
    let said = String::from_utf8_lossy(&pushed.stderr);
    assert!(said.contains("berth will sync main now"), "{said}");
    let triggers = server.triggers.all();
    assert_eq!(triggers.len(), 1, "{said}");
    assert_eq!(triggers[0].provider, Provider::Generic);
    assert!(triggers[0]
        .delivery
        .as_deref()
        .unwrap()
        .starts_with("post-receive-"));

    // Another branch: the hook stays quiet.
    git(&work, &["push", "-q", "origin", "HEAD:dev"]).await;
    assert_eq!(server.triggers.all().len(), 1);

    // berth down: the push still succeeds, with a warning.
    drop(server);
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    git(&bare, &["config", "berth.url", &dead_url]).await;
    std::fs::write(work.join("web.yaml"), "kind: Pod\n# 2\n").unwrap();
    git(&work, &["commit", "-q", "-am", "web 2"]).await;
    let pushed = git(&work, &["push", "origin", "HEAD:main"]).await;
    let said = String::from_utf8_lossy(&pushed.stderr);
    assert!(
        said.contains("berth hook: warning: cannot reach berth"),
        "{said}"
    );
}
