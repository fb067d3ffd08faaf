//! Push webhooks from Git hosts: a verified "look at the branch now".
//!
//! (Work in progress: the settings come first.)

mod provider;
pub mod repo_url;
mod secret;
mod secrets;

pub use provider::{Provider, UnknownProvider};
pub use secret::{Secret, SecretError};
pub use secrets::{SecretFileSetting, Secrets, SecretsError, FLAG as SECRET_FILE_FLAG};
