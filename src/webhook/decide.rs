//! Does a verified push concern berth? The branch and the repository, as a pure function.

use super::repo_url;

/// What a push payload says was pushed, reduced to what the decision needs. Built by each
/// host's reader after the signature has been checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Push {
    /// Full ref names that changed (`refs/heads/main`, `refs/tags/v1`).
    pub refs: Vec<String>,
    /// Every spelling of the repository the payload gives; empty when it names none.
    pub repository: Vec<String>,
}

/// Why a verified push does not trigger a sync; the text goes back to the host, which shows it
/// in its delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored(pub String);

/// `Ok` when the push touches `refs/heads/<branch>` of the configured repository.
/// `repo_urls` empty means "do not check the repository". A payload that names no repository
/// is accepted: only the generic receiver's may omit it, and its secret is berth's own.
pub fn concerns_us(push: &Push, branch: &str, repo_urls: &[String]) -> Result<(), Ignored> {
    if !repo_urls.is_empty()
        && !push.repository.is_empty()
        && !repo_url::any_match(&push.repository, repo_urls)
    {
        return Err(Ignored(format!(
            "push to repository {}, which is not the repository berth follows",
            push.repository[0]
        )));
    }
    let wanted = format!("refs/heads/{branch}");
    if push.refs.contains(&wanted) {
        return Ok(());
    }
    let pushed = if push.refs.is_empty() {
        "no ref".to_string()
    } else {
        push.refs.join(", ")
    };
    Err(Ignored(format!("push to {pushed}, berth follows {wanted}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(refs: &[&str], repository: &[&str]) -> Push {
        Push {
            refs: refs.iter().map(|s| s.to_string()).collect(),
            repository: repository.iter().map(|s| s.to_string()).collect(),
        }
    }

    const OURS: &str = "https://git.example.org/ops/deploy.git";

    #[test]
    fn a_push_to_the_followed_branch_of_our_repository_concerns_us() {
        let p = push(
            &["refs/heads/main"],
            &["git@git.example.org:ops/deploy.git"],
        );
        assert_eq!(concerns_us(&p, "main", &[OURS.into()]), Ok(()));
    }

    #[test]
    fn another_branch_is_ignored_with_both_names() {
        let p = push(&["refs/heads/dev"], &[OURS]);
        assert_eq!(
            concerns_us(&p, "main", &[OURS.into()]),
            Err(Ignored(
                "push to refs/heads/dev, berth follows refs/heads/main".into()
            ))
        );
        // A tag named like the branch is not the branch.
        assert!(concerns_us(&push(&["refs/tags/main"], &[]), "main", &[]).is_err());
        assert!(concerns_us(&push(&["refs/heads/main2"], &[]), "main", &[]).is_err());
    }

    #[test]
    fn one_of_several_refs_is_enough() {
        let p = push(&["refs/heads/dev", "refs/heads/prod"], &[]);
        assert_eq!(concerns_us(&p, "prod", &[]), Ok(()));
    }

    #[test]
    fn another_repository_is_ignored_even_on_the_right_branch() {
        let p = push(
            &["refs/heads/main"],
            &["https://git.example.org/ops/other.git"],
        );
        let Err(Ignored(reason)) = concerns_us(&p, "main", &[OURS.into()]) else {
            panic!("should be ignored");
        };
        assert!(reason.contains("ops/other.git"), "{reason}");
    }

    #[test]
    fn no_configured_urls_means_no_repository_check() {
        let p = push(&["refs/heads/main"], &["https://elsewhere.example/x.git"]);
        assert_eq!(concerns_us(&p, "main", &[]), Ok(()));
    }
}
