//! Push webhooks from Git hosts: a verified "look at the branch now".
//!
//! (Work in progress: the settings, and each host's dialect; the receiver comes next.)

// Used by the receiver in the next commit.
#[allow(dead_code)]
mod decide;
mod error;
// The receiver, in the next commit, calls `hosts::read`.
#[allow(dead_code)]
pub(crate) mod hosts;
mod provider;
pub mod repo_url;
mod secret;
mod secrets;
mod signing;

pub use error::WebhookError;
pub use hosts::gitlab::SIGNATURE_TOLERANCE as GITLAB_SIGNATURE_TOLERANCE;
pub use provider::{Provider, UnknownProvider};
pub use secret::{Secret, SecretError};
pub use secrets::{SecretFileSetting, Secrets, SecretsError, FLAG as SECRET_FILE_FLAG};
