//! How the branch head moved between two fetches: forward, back to an ancestor (a rollback by
//! reset and force-push), or onto a diverged history, each told apart so a controller can record
//! a rewind once instead of looping on "no new commit".

mod git_support;

use anyhow::Result;
use berth::sync::{GitSource, HeadMove};
use git_support::{id, Upstream};

/// A mirror of `up` fetched now.
fn fetched(up: &Upstream) -> Result<GitSource> {
    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    source.fetch()?;
    Ok(source)
}

#[test]
fn a_push_on_top_is_a_fast_forward_with_its_new_commits() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    let source = fetched(&up)?;
    let c2 = up.commit("second")?;
    up.push(false)?;
    let head = source.fetch()?;
    assert_eq!(head.to_string(), c2);

    let history = source.history_between(Some(&id(&c1)), &head, 10)?;
    assert_eq!(history.head_move, HeadMove::FastForward);
    assert!(!history.forced && history.replaced.is_none());
    assert_eq!(history.commits.len(), 1);
    assert!(source.is_fast_forward(&id(&c1), &head)?);
    Ok(())
}

#[test]
fn a_reset_to_an_ancestor_is_reported_as_a_forced_move_naming_the_replaced_head() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    let c2 = up.commit("second")?;
    let c3 = up.commit("third")?;
    up.push(false)?;
    let source = fetched(&up)?;

    up.reset_hard(&c1)?;
    up.push(true)?;
    let head = source.fetch()?;
    assert_eq!(head.to_string(), c1, "the tracking ref went back");

    let history = source.history_between(Some(&id(&c3)), &head, 10)?;
    assert_eq!(history.head_move, HeadMove::ToAncestor);
    assert!(history.forced);
    assert_eq!(history.replaced.as_deref(), Some(c3.as_str()));
    assert!(history.commits.is_empty(), "no commit is new");
    assert!(
        !source.is_fast_forward(&id(&c3), &head)?,
        "a replay of an older commit"
    );
    assert_eq!(source.head_move(&id(&c3), &id(&c2))?, HeadMove::ToAncestor);
    Ok(())
}

#[test]
fn a_rewritten_branch_is_diverged_and_lists_commits_from_the_common_ancestor() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    let c2 = up.commit("bad image")?;
    up.push(false)?;
    let source = fetched(&up)?;

    up.reset_hard(&c1)?;
    up.write("deploy/web.yaml", "kind: Pod\nimage: good\n")?;
    let c3 = up.commit("good image")?;
    up.push(true)?;
    let head = source.fetch()?;

    let history = source.history_between(Some(&id(&c2)), &head, 10)?;
    assert_eq!(history.head_move, HeadMove::Diverged);
    assert!(history.forced);
    assert_eq!(history.replaced.as_deref(), Some(c2.as_str()));
    let shas: Vec<&str> = history.commits.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, [c3.as_str()]);
    Ok(())
}

#[test]
fn an_unrelated_history_is_diverged() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    let source = fetched(&up)?;
    git_support::git(&up.work, &["checkout", "-q", "--orphan", "fresh"])?;
    let root = up.commit("a new root")?;
    git_support::git(&up.work, &["push", "-q", "--force", "origin", "fresh:main"])?;
    let head = source.fetch()?;
    assert_eq!(head.to_string(), root);
    assert_eq!(source.head_move(&id(&c1), &head)?, HeadMove::Diverged);
    Ok(())
}

#[test]
fn the_same_head_is_unchanged_and_a_first_sync_is_first() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    let source = fetched(&up)?;
    let same = source.history_between(Some(&id(&c1)), &id(&c1), 10)?;
    assert_eq!(same.head_move, HeadMove::Unchanged);
    assert!(same.commits.is_empty() && !same.forced);
    assert!(
        !source.is_fast_forward(&id(&c1), &id(&c1))?,
        "nothing new to apply"
    );
    let first = source.history_between(None, &id(&c1), 10)?;
    assert_eq!(first.head_move, HeadMove::First);
    let json = serde_json::to_string(&first.head_move)?;
    assert_eq!(json, "\"first\"");
    Ok(())
}
