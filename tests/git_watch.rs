//! Watching a local bare repository: a push to the branch is one signal within about a second;
//! other writes to the repository are not.

mod git_support;

use std::time::{Duration, Instant};

use anyhow::Result;
use berth::sync::{local_repository, GitSource, RefWatcher};
use git_support::{git, Upstream};

const DEBOUNCE: Duration = Duration::from_millis(150);
/// How long "no signal" is waited for.
const QUIET: Duration = Duration::from_millis(800);

/// `true` if the watcher signals within `within`.
async fn signals(watcher: &mut RefWatcher, within: Duration) -> bool {
    tokio::time::timeout(within, watcher.changed()).await == Ok(true)
}

#[tokio::test]
async fn a_push_to_the_branch_is_one_signal_within_a_second() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let repository = local_repository(&up.url()).expect("a local remote");
    let mut watcher = RefWatcher::new(&repository, "main", DEBOUNCE)?;
    assert!(!signals(&mut watcher, QUIET).await, "nothing happened yet");

    up.commit("second")?;
    up.push(false)?;
    // From the moment the push has updated the ref (git push returns after that).
    let pushed = Instant::now();
    assert!(
        signals(&mut watcher, Duration::from_secs(2)).await,
        "the push was seen"
    );
    assert!(
        pushed.elapsed() < Duration::from_secs(1),
        "{:?}",
        pushed.elapsed()
    );
    assert!(!signals(&mut watcher, QUIET).await, "one push, one signal");

    // `git pack-refs` moves the branch into packed-refs: also a change of the ref's file.
    git(&up.bare, &["pack-refs", "--all"])?;
    assert!(
        signals(&mut watcher, Duration::from_secs(2)).await,
        "packed-refs rewritten"
    );
    up.commit("third")?;
    up.push(true)?;
    assert!(
        signals(&mut watcher, Duration::from_secs(2)).await,
        "loose ref again"
    );
    Ok(())
}

#[tokio::test]
async fn other_branches_objects_and_config_do_not_signal() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let mut watcher = RefWatcher::new(&up.bare, "main", DEBOUNCE)?;

    git(&up.work, &["checkout", "-q", "-b", "feature/x"])?;
    up.commit("on a feature branch")?;
    git(&up.work, &["push", "-q", "origin", "feature/x"])?;
    git(&up.work, &["push", "-q", "origin", "HEAD:refs/tags/v1"])?;
    git(&up.bare, &["config", "receive.denyDeletes", "true"])?;
    std::fs::write(up.bare.join("description"), "infra\n")?;
    assert!(
        !signals(&mut watcher, QUIET).await,
        "none of that is the branch"
    );

    // Reading the branch (as berth's own fetch does) must not trigger the next fetch.
    let mirror = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    mirror.fetch()?;
    git(&up.bare, &["rev-parse", "refs/heads/main"])?;
    assert!(!signals(&mut watcher, QUIET).await, "reads are not changes");

    // A branch whose name extends "main" is not "main".
    git(&up.work, &["push", "-q", "origin", "HEAD:refs/heads/main2"])?;
    assert!(
        !signals(&mut watcher, QUIET).await,
        "main2 is another branch"
    );
    Ok(())
}

#[test]
fn watching_something_that_is_not_a_repository_is_an_error() -> Result<()> {
    let up = Upstream::empty()?;
    let Err(err) = RefWatcher::new(&up.tmp.path().join("nope"), "main", DEBOUNCE) else {
        panic!("not a repository, yet watched");
    };
    assert!(!err.is_transient());
    assert!(err.to_string().contains("cannot watch repository"), "{err}");
    Ok(())
}
