//! Compacting the mirror after force-pushes of large files: disk use goes back down, the
//! branch's history stays whole, and commits the caller still needs survive.

mod git_support;

use std::time::Duration;

use anyhow::Result;
use berth::manifest::Limits;
use berth::sync::{CompactOptions, GitSource, HeadMove, Syncer};
use git_support::{id, Upstream};

/// Pseudo-random text that zlib cannot shrink much, so each blob really costs disk.
fn noise(seed: u64, bytes: usize) -> String {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut text = String::with_capacity(bytes);
    while text.len() < bytes {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!("{:016x}", state));
    }
    text
}

#[tokio::test]
async fn force_pushed_large_blobs_are_pruned_and_the_history_stays_whole() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    let c2 = up.commit("second")?;
    up.push(false)?;
    let syncer = Syncer::open_or_clone(&up.url(), "main", &up.mirror_dir("m")).await?;
    syncer.fetch().await?;

    // Ten force-pushes, each replacing the previous one's blob (400 KB of hex, ~200 KB packed).
    let mut kept = None;
    for round in 0..10 {
        up.reset_hard(&c2)?;
        up.write("deploy/blob.yaml", &noise(round, 400_000))?;
        let sha = up.commit(&format!("big {round}"))?;
        up.push(true)?;
        syncer.fetch().await?;
        if round == 3 {
            kept = Some(sha);
        }
    }
    let kept = kept.expect("round 3 ran");
    let head = syncer.fetch().await?;

    let options = CompactOptions {
        prune_grace: Duration::ZERO,
        time_limit: Duration::from_secs(60),
        keep: vec![id(&kept)],
    };
    let compacted = syncer.compact(options).await?;
    assert!(
        compacted.bytes_before > 2_000_000,
        "ten blobs before: {compacted:?}"
    );
    assert!(
        compacted.bytes_after < 700_000,
        "the current one and the kept one after: {compacted:?}"
    );

    // The branch's history is intact, and so is the commit the caller asked to keep.
    let history = syncer.history_between(Some(&id(&c1)), &head, 100).await?;
    assert_eq!(history.head_move, HeadMove::FastForward);
    let summaries: Vec<&str> = history.commits.iter().map(|c| c.summary.as_str()).collect();
    assert_eq!(summaries, ["big 9", "second"]);
    let files = syncer
        .read_tree(
            &head,
            "deploy",
            &Limits {
                max_file_bytes: 1 << 20,
                max_tree_files: 10,
                max_tree_bytes: 1 << 22,
            },
        )
        .await?;
    assert_eq!(files.len(), 2);
    assert_eq!(syncer.commit_info(&id(&kept)).await?.summary, "big 3");
    assert_eq!(
        syncer.head_move(&id(&kept), &head).await?,
        HeadMove::Diverged
    );

    // The pins are gone: without `keep`, the next compaction prunes that commit too.
    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    let refs = git_support::git(source.dir(), &["for-each-ref"])?;
    assert!(!refs.contains("refs/berth"), "{refs}");
    syncer
        .compact(CompactOptions {
            prune_grace: Duration::ZERO,
            ..CompactOptions::default()
        })
        .await?;
    assert!(
        syncer.commit_info(&id(&kept)).await.is_err(),
        "pruned once unpinned"
    );

    // Fetching still works after compaction.
    let c3 = up.commit("after gc")?;
    up.push(false)?;
    assert_eq!(syncer.fetch().await?.to_string(), c3);
    Ok(())
}

#[test]
fn a_compaction_over_its_time_limit_is_stopped_and_leaves_a_valid_mirror() -> Result<()> {
    let (up, c1) = Upstream::with_first_commit()?;
    for round in 0..3 {
        up.write(&format!("deploy/blob{round}.yaml"), &noise(round, 300_000))?;
        up.commit(&format!("blob {round}"))?;
    }
    up.push(false)?;
    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    let head = source.fetch()?;
    let err = source
        .compact(&CompactOptions {
            time_limit: Duration::from_millis(1),
            ..CompactOptions::default()
        })
        .expect_err("no gc finishes in a millisecond");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("compacting mirror"), "{err}");
    let history = source.history_between(Some(&id(&c1)), &head, 10)?;
    assert_eq!(history.commits.len(), 3, "the mirror is still readable");
    Ok(())
}
