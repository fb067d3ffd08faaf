//! What the receivers need to know, built by the caller from `berth serve`'s settings.

use std::time::Duration;

use super::{RateLimits, Secrets};

/// Settings of the webhook receivers.
///
/// `Debug` is safe to log: [`Secrets`] prints only `<redacted>`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The secret of each provider; a provider without one has its receiver off (404).
    pub secrets: Secrets,
    /// The branch berth follows; a push must touch `refs/heads/<branch>`.
    pub branch: String,
    /// Spellings of the configured repository (`--repo` when it is a URL, and any other clone
    /// URL of it). A push naming another repository is ignored. Empty: not checked.
    pub repo_urls: Vec<String>,
    /// Larger bodies are refused with 413 before any signature work. Default 1 MiB; the
    /// largest push payloads (GitHub caps the commits it lists at 20) stay far below.
    pub max_body_bytes: usize,
    /// A body must arrive within this time (408), so slow senders cannot hold receivers.
    /// Default 10 s.
    pub body_timeout: Duration,
    /// How many delivery ids are remembered to drop retries. Default 1,024.
    pub remembered_deliveries: usize,
    pub rate_limits: RateLimits,
}

impl WebhookConfig {
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

    /// The defaults, for `secrets` and `branch`, with no repository check.
    pub fn new(secrets: Secrets, branch: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            secrets,
            branch: branch.into(),
            repo_urls: Vec::new(),
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            body_timeout: Duration::from_secs(10),
            remembered_deliveries: 1024,
            rate_limits: RateLimits::default(),
        }
    }

    /// Also checks that a push names one of `urls`.
    pub fn with_repo_urls(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.repo_urls = urls.into_iter().map(Into::into).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{Provider, Secret};

    #[test]
    fn debug_shows_the_settings_but_no_secret() {
        let secrets = Secrets::new(
            Some(Secret::new("catch-all-value")),
            [(Provider::Github, Secret::new("gh-value"))],
        );
        let c = WebhookConfig::new(secrets, "main").with_repo_urls(["https://x.example/a.git"]);
        let shown = format!("{c:?}");
        assert!(shown.contains("branch: \"main\""), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(
            !shown.contains("catch-all-value") && !shown.contains("gh-value"),
            "{shown}"
        );
        assert_eq!(c.max_body_bytes, 1 << 20);
    }
}
