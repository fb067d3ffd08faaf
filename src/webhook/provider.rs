//! The Git hosts berth understands, each with its own path, headers and signing scheme.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who sends a webhook. The lowercase name is the path (`/webhooks/<name>`), the serde form
/// (it is recorded in commit history) and the `PROVIDER=` prefix of `--webhook-secret-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// github.com and GitHub Enterprise Server.
    Github,
    /// gitlab.com and self-managed GitLab.
    Gitlab,
    /// Gitea, and its relatives Forgejo and Gogs, which sign the same way.
    Gitea,
    /// Bitbucket Cloud and Bitbucket Server / Data Center.
    Bitbucket,
    /// Anything else that can sign a small JSON body: scripts, `webhooks/post-receive`.
    Generic,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Provider::Github,
        Provider::Gitlab,
        Provider::Gitea,
        Provider::Bitbucket,
        Provider::Generic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Bitbucket => "bitbucket",
            Provider::Generic => "generic",
        }
    }

    /// The path this provider's receiver is served on.
    pub fn path(self) -> &'static str {
        match self {
            Provider::Github => "/webhooks/github",
            Provider::Gitlab => "/webhooks/gitlab",
            Provider::Gitea => "/webhooks/gitea",
            Provider::Bitbucket => "/webhooks/bitbucket",
            Provider::Generic => "/webhooks/generic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name was none of `github`, `gitlab`, `gitea`, `bitbucket`, `generic`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown webhook provider {0:?} (github, gitlab, gitea, bitbucket or generic)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    /// Forgejo and Gogs are accepted as names for [`Provider::Gitea`], so a setting written
    /// with the host's own name works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "github" => Ok(Provider::Github),
            "gitlab" => Ok(Provider::Gitlab),
            "gitea" | "forgejo" | "gogs" => Ok(Provider::Gitea),
            "bitbucket" => Ok(Provider::Bitbucket),
            "generic" => Ok(Provider::Generic),
            _ => Err(UnknownProvider(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>(), Ok(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
            assert_eq!(p.path(), format!("/webhooks/{p}"));
        }
    }

    #[test]
    fn forgejo_and_gogs_are_gitea() {
        assert_eq!("Forgejo".parse::<Provider>(), Ok(Provider::Gitea));
        assert_eq!("gogs".parse::<Provider>(), Ok(Provider::Gitea));
        assert!("gihub".parse::<Provider>().is_err());
    }
}
