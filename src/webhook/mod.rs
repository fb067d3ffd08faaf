//! Push webhooks from Git hosts: a verified "look at the branch now".
//!
//! berth polls its branch every `--poll`; a webhook only makes it look sooner. The payload is
//! a hint and nothing more: no sha, ref or URL from it reaches the sync, which fetches and
//! believes the repository. So a forged, replayed or stale delivery can at worst cause one
//! extra fetch, and the rules below lean towards refusing cheaply.
//!
//! ```text
//! POST /webhooks/<provider>                  (peer address from ConnectInfo<SocketAddr>)
//!   │ a secret configured for the provider?                        no ─► 404
//!   │ limit: per source (IPv4, IPv6 /64), overall, in flight       over ─► 429 Retry-After
//!   │ body::read: raw bytes ≤ max_body_bytes, within body_timeout      ─► 413 / 408
//!   │ hosts::<provider>::verify over the raw bytes                     ─► 401
//!   │   (only now) event, delivery id, payload                         ─► 400
//!   │ ping ─► 200 · another event ─► 200 ignored
//!   │ recent: same provider + delivery id seen ─► 200 ignored "duplicate delivery"
//!   │ decide::concerns_us: refs/heads/<branch>, repo_url identity  no ─► 200 ignored + reason
//!   └ SyncTrigger::look_now(Trigger { provider, delivery })             ─► 202
//! ```
//!
//! Signing, by host (`hosts/` has one file each): GitHub `X-Hub-Signature-256: sha256=<hex>`;
//! GitLab `X-Gitlab-Token` (the secret itself) or, with a `whsec_` signing token, the Standard
//! Webhooks `webhook-signature`; Gitea/Forgejo/Gogs a bare hex HMAC in their own header
//! (GitHub's as fallback); Bitbucket `X-Hub-Signature: sha256=<hex>`; generic (scripts,
//! `webhooks/post-receive`) `X-Berth-Signature: sha256=<hex>`. Comparisons are constant-time;
//! an empty header is a missing one.
//!
//! Mounting, for the controller:
//!
//! ```ignore
//! let secrets = webhook::Secrets::from_flags(&args.webhook_secret_files)?;
//! let config = webhook::WebhookConfig::new(secrets, &config.branch).with_repo_urls([&config.repo]);
//! let app = api::router(ctl.clone()).merge(webhook::router(Arc::new(config), trigger));
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//! ```
//!
//! `trigger` is cheap and coalescing (see [`SyncTrigger`]): `look_now` may be called in
//! bursts, and debouncing is the caller's job.

mod body;
mod config;
mod decide;
mod error;
pub(crate) mod hosts;
mod http;
mod limit;
mod outcome;
mod provider;
mod receiver;
mod recent;
pub mod repo_url;
mod secret;
mod secrets;
mod signing;
mod trigger;

pub use config::WebhookConfig;
pub use error::WebhookError;
pub use hosts::gitlab::SIGNATURE_TOLERANCE as GITLAB_SIGNATURE_TOLERANCE;
pub use http::router;
pub use limit::{RateLimits, TokenBucket};
pub use outcome::Outcome;
pub use provider::{Provider, UnknownProvider};
pub use secret::{Secret, SecretError};
pub use secrets::{SecretFileSetting, Secrets, SecretsError, FLAG as SECRET_FILE_FLAG};
pub use trigger::{SyncTrigger, Trigger};
