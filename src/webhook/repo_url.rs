//! Is the repository a payload names the one berth follows? Clone URLs compared by identity.
//!
//! A payload lists its repository under several spellings (GitHub: `clone_url`, `ssh_url`,
//! `git_url`, `html_url`; GitLab: `git_http_url`, `git_ssh_url`, `web_url`; Bitbucket Server:
//! every clone link), and `--repo` is one more. Two spellings are the same repository when
//! their host and path agree after normalising:
//!
//! - scheme, user name, password and port are dropped: the same repository is reached over
//!   https and ssh (often on another port), and payloads list both;
//! - scp-style `git@host:org/repo.git` is `ssh://git@host/org/repo.git`;
//! - host and path are compared without case (GitHub, GitLab, Gitea and Bitbucket all treat
//!   repository paths case-insensitively), and a trailing `/` and `.git` do not count.
//!
//! The rules lean towards "same": a false match costs one extra fetch of berth's own branch,
//! while a false mismatch would silently lose the fast path.

/// A repository's identity: lowercase host (empty for a local path) and lowercase path
/// without leading or trailing `/` and without `.git`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoIdentity {
    pub host: String,
    pub path: String,
}

/// `None` when nothing identifying is left (an empty string, a bare host).
pub fn identity(url: &str) -> Option<RepoIdentity> {
    let url = url.trim();
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (host, path) = if let Some((_scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        (strip_port(strip_user(authority)), path)
    } else if let Some((host, path)) = scp_like(url) {
        (host, path)
    } else {
        ("", url)
    };
    let mut path = path.trim_matches('/').to_ascii_lowercase();
    if let Some(bare) = path.strip_suffix(".git") {
        path = bare.trim_end_matches('/').to_string();
    }
    if path.is_empty() {
        return None;
    }
    Some(RepoIdentity {
        host: host.to_ascii_lowercase(),
        path,
    })
}

/// `true` when both name the same repository. Unparseable input matches nothing.
pub fn same_repository(a: &str, b: &str) -> bool {
    match (identity(a), identity(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `true` when any URL of the payload names one of the configured repositories.
pub fn any_match(payload_urls: &[String], configured: &[String]) -> bool {
    payload_urls
        .iter()
        .any(|p| configured.iter().any(|c| same_repository(p, c)))
}

fn strip_user(authority: &str) -> &str {
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

fn strip_port(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return &host[..end + 2];
    }
    host.split_once(':').map_or(host, |(h, _)| h)
}

/// Git's rule for scp-like syntax: a `:` before any `/`, and not a one-letter (Windows drive)
/// host.
fn scp_like(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    if url[..colon].contains('/') {
        return None;
    }
    let host = strip_user(&url[..colon]);
    if host.len() < 2 {
        return None;
    }
    Some((host, &url[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(host: &str, path: &str) -> Option<RepoIdentity> {
        Some(RepoIdentity {
            host: host.into(),
            path: path.into(),
        })
    }

    #[test]
    fn https_ssh_and_scp_spellings_are_one_repository() {
        let same = [
            "https://github.com/acme/shop.git",
            "https://github.com/acme/shop",
            "http://GitHub.com/acme/shop/",
            "git://github.com/acme/shop.git",
            "ssh://git@github.com/acme/shop.git",
            "ssh://git@github.com:22/acme/shop",
            "git@github.com:acme/shop.git",
            "github.com:acme/shop",
            "https://ci-bot:s3cret@github.com/acme/shop.git",
            "https://github.com/Acme/Shop.git",
        ];
        for url in same {
            assert_eq!(identity(url), id("github.com", "acme/shop"), "{url}");
        }
    }

    #[test]
    fn another_host_owner_or_name_is_another_repository() {
        let ours = "https://github.com/acme/shop.git";
        assert!(!same_repository(ours, "https://gitlab.com/acme/shop.git"));
        assert!(!same_repository(
            ours,
            "https://github.com/acme/shop-config.git"
        ));
        assert!(!same_repository(ours, "https://github.com/other/shop.git"));
        assert!(!same_repository(
            ours,
            "https://github.com/acme/shop/sub.git"
        ));
        assert!(!same_repository(ours, ""));
        assert!(!same_repository("", ""));
    }

    #[test]
    fn self_hosted_ports_and_bitbucket_server_paths() {
        assert!(same_repository(
            "ssh://git@git.example.org:2222/ops/deploy.git",
            "http://git.example.org:3000/ops/deploy"
        ));
        assert_eq!(
            identity("ssh://git@bitbucket.example.org:7999/myproject/test-repo.git"),
            id("bitbucket.example.org", "myproject/test-repo")
        );
        assert_eq!(
            identity("https://[2001:db8::1]:8443/ops/deploy.git"),
            id("[2001:db8::1]", "ops/deploy")
        );
    }

    #[test]
    fn local_paths_and_file_urls_have_no_host() {
        assert_eq!(identity("/srv/git/shop.git"), id("", "srv/git/shop"));
        assert!(same_repository("file:///srv/git/shop.git", "/srv/git/shop"));
        assert_eq!(identity("C:/git/shop"), id("", "c:/git/shop"));
        assert_eq!(identity("https://github.com/"), None);
    }

    #[test]
    fn any_url_of_the_payload_may_match_any_configured_one() {
        let payload = vec![
            "https://git.example.org/ops/deploy.git".to_string(),
            "git@git.example.org:ops/deploy.git".to_string(),
        ];
        let configured = vec!["ssh://git@git.example.org/ops/deploy.git".to_string()];
        assert!(any_match(&payload, &configured));
        assert!(!any_match(&payload, &["/srv/other".to_string()]));
        assert!(!any_match(&[], &configured));
    }
}
