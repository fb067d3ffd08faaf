//! Fetching from real remotes: a real smart-HTTP Git server on loopback (`git http-backend`)
//! that behaves, hangs, trickles or asks for credentials; what a fetch costs when nothing
//! changed; and the credential rules.

mod git_support;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use berth::sync::{local_repository, Credentials, FetchSettings, GitSource, SyncError, Syncer};
use git_support::http::{GitHttpServer, Mode};
use git_support::Upstream;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(2);
const STALL: Duration = Duration::from_secs(1);
/// What a shared, loaded test machine may add to a bound before the test calls it broken
/// (loaded rounds at a load average of 15 saw 4–5 s). Still far below what an uninterrupted
/// fetch from these servers would take (minutes).
const SLACK: Duration = Duration::from_secs(6);

fn tight() -> FetchSettings {
    FetchSettings {
        deadline: DEADLINE,
        stall: STALL,
        credentials: Credentials::default(),
    }
}

/// The upstream's bare repository served over HTTP as `/remote.git`.
fn served(up: &Upstream, mode: Mode) -> Result<GitHttpServer> {
    let root = up.bare.parent().context("bare repo has a parent")?;
    GitHttpServer::start(root, mode)
}

/// Fetches once with `settings` into a fresh mirror; returns the error and how long it took.
fn failing_fetch(
    up: &Upstream,
    url: &str,
    settings: FetchSettings,
) -> Result<(SyncError, Duration)> {
    let source = GitSource::open_with(url, "main", &up.mirror_dir("failing"), settings)?;
    let started = Instant::now();
    let err = source
        .fetch()
        .err()
        .context("the fetch was expected to fail")?;
    Ok((err, started.elapsed()))
}

#[test]
fn a_normal_http_remote_is_fetched_and_an_unchanged_one_costs_no_pack_request() -> Result<()> {
    let (up, first) = Upstream::with_first_commit()?;
    let server = served(&up, Mode::Normal)?;
    let source = GitSource::open_with(
        &server.url("remote.git"),
        "main",
        &up.mirror_dir("m"),
        tight(),
    )?;
    assert_eq!(source.fetch()?.to_string(), first);
    assert_eq!(server.pack_requests(), 1, "{:?}", server.seen());

    server.forget();
    let again = source.fetch_interruptible(&Default::default())?;
    assert_eq!(again.head.to_string(), first);
    assert!(!again.moved());
    let seen = server.seen();
    assert_eq!(
        server.pack_requests(),
        0,
        "refs compared, no pack asked for: {seen:?}"
    );
    assert!(!seen.is_empty(), "the refs were listed: {seen:?}");

    up.write("deploy/web.yaml", "kind: Pod\nimage: v2\n")?;
    let second = up.commit("second")?;
    up.push(false)?;
    server.forget();
    let moved = source.fetch_interruptible(&Default::default())?;
    assert_eq!(moved.head.to_string(), second);
    assert_eq!(moved.previous.map(|p| p.to_string()), Some(first));
    assert!(moved.moved());
    assert_eq!(server.pack_requests(), 1, "{:?}", server.seen());
    Ok(())
}

#[test]
fn a_server_that_hangs_after_headers_is_given_up_at_the_deadline_as_transient() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let server = served(&up, Mode::HangAfterHeaders)?;
    let (err, took) = failing_fetch(&up, &server.url("remote.git"), tight())?;
    assert!(matches!(err, SyncError::DeadlineExceeded { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(took < DEADLINE + SLACK, "took {took:?}");
    assert!(
        err.to_string().contains("did not finish within 2s"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_server_that_goes_silent_during_the_pack_is_given_up_after_the_stall_timeout() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let server = served(&up, Mode::HangPackAfterHeaders)?;
    let relaxed = FetchSettings {
        deadline: Duration::from_secs(30),
        ..tight()
    };
    let (err, took) = failing_fetch(&up, &server.url("remote.git"), relaxed)?;
    assert!(matches!(err, SyncError::Stalled { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(took < STALL + SLACK, "took {took:?}");
    assert_eq!(server.pack_requests(), 1, "it got as far as the pack");
    Ok(())
}

#[test]
fn a_server_that_drips_its_ref_listing_is_cut_off_at_the_deadline() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let every = Duration::from_millis(50); // never silent for the stall timeout
    let server = served(&up, Mode::Drip { every })?;
    let (err, took) = failing_fetch(&up, &server.url("remote.git"), tight())?;
    assert!(matches!(err, SyncError::DeadlineExceeded { .. }), "{err:?}");
    assert!(took < DEADLINE + SLACK, "took {took:?}");
    assert_eq!(server.pack_requests(), 0, "still reading the ref listing");
    Ok(())
}

#[test]
fn a_server_that_drips_the_pack_is_interrupted_at_the_deadline() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    // Enough data that dripping it takes far longer than the deadline: lines that do not
    // compress (a repeated line would pack into a few hundred bytes, a few seconds of drip).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let padding: String = (0..2000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            format!("# {x:016x}\n")
        })
        .collect();
    up.write("deploy/big.yaml", &padding)?;
    up.commit("big")?;
    up.push(false)?;
    let every = Duration::from_millis(20);
    let server = served(&up, Mode::DripPack { every })?;
    let source = GitSource::open_with(
        &server.url("remote.git"),
        "main",
        &up.mirror_dir("m"),
        tight(),
    )?;
    let started = Instant::now();
    let err = source.fetch().expect_err("cannot finish in time");
    let took = started.elapsed();
    assert!(matches!(err, SyncError::DeadlineExceeded { .. }), "{err:?}");
    assert!(took < DEADLINE + SLACK, "took {took:?}");
    assert_eq!(
        source.local_head()?,
        None,
        "no ref written from a partial pack"
    );
    Ok(())
}

#[test]
fn a_server_asking_for_credentials_is_refused_at_once_as_fatal() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let server = served(
        &up,
        Mode::Basic {
            user: "x-access-token".into(),
            password: "right".into(),
        },
    )?;
    let (err, took) = failing_fetch(&up, &server.url("remote.git"), tight())?;
    assert!(matches!(err, SyncError::AccessDenied { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(took < STALL, "no waiting for a prompt: {took:?}");
    Ok(())
}

#[tokio::test]
async fn a_cancelled_fetch_returns_at_once_and_the_next_fetch_is_not_blocked_for_long() -> Result<()>
{
    let (up, _) = Upstream::with_first_commit()?;
    let server = served(&up, Mode::HangPackAfterHeaders)?;
    let relaxed = FetchSettings {
        deadline: Duration::from_secs(30),
        stall: Duration::from_secs(3),
        ..tight()
    };
    let syncer = Syncer::open_with(
        &server.url("remote.git"),
        "main",
        &up.mirror_dir("m"),
        relaxed,
    )
    .await?;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let err = syncer
        .fetch_cancellable(&cancel)
        .await
        .expect_err("cancelled");
    canceller.await?;
    assert!(matches!(err, SyncError::Cancelled { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500) + SLACK,
        "{:?}",
        started.elapsed()
    );

    // The cancelled fetch's thread winds down (its pack read gives up after the stall
    // timeout) and releases the mirror: the next fetch waits for that, then fails on its own.
    let started = Instant::now();
    let err = syncer
        .fetch()
        .await
        .expect_err("the server still hangs on the pack");
    assert!(matches!(err, SyncError::Stalled { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3) * 2 + SLACK,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(syncer.local_head().await?, None);
    Ok(())
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

#[test]
fn the_token_file_is_accepted_by_a_basic_auth_server_and_never_lands_in_the_mirror() -> Result<()> {
    let (up, first) = Upstream::with_first_commit()?;
    let token = "ghp_t0k3n-for-the-test";
    let server = served(
        &up,
        Mode::Basic {
            user: "x-access-token".into(),
            password: token.into(),
        },
    )?;
    let token_file = up.tmp.path().join("token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let settings = FetchSettings {
        credentials: Credentials {
            token_file: Some(token_file.clone()),
            ..Credentials::default()
        },
        ..tight()
    };
    let dir = up.mirror_dir("m");
    let source = GitSource::open_with(&server.url("remote.git"), "main", &dir, settings)?;
    assert_eq!(source.fetch()?.to_string(), first);
    assert!(
        server.seen().iter().all(|s| s.authorization.is_some()),
        "sent with every request"
    );

    let files = files_under(&dir)?;
    assert!(files.len() > 3, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file)?;
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(token), "token found in {}", file.display());
    }

    // A rotated token is read at the next fetch; a wrong one is refused, fatally.
    std::fs::write(&token_file, "wrong")?;
    let err = source.fetch().expect_err("wrong token");
    assert!(matches!(err, SyncError::AccessDenied { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrong"), "{err:?}");
    Ok(())
}

#[test]
fn a_redirect_is_not_followed_so_the_token_never_reaches_another_host() -> Result<()> {
    let (up, _) = Upstream::with_first_commit()?;
    let elsewhere = served(&up, Mode::Normal)?;
    let base = elsewhere.url("");
    let redirecting = served(
        &up,
        Mode::Redirect {
            base: base.trim_end_matches('/').to_owned(),
        },
    )?;
    let token_file = up.tmp.path().join("token");
    std::fs::write(&token_file, "t0k3n")?;
    let settings = FetchSettings {
        credentials: Credentials {
            token_file: Some(token_file),
            ..Credentials::default()
        },
        ..tight()
    };
    let (err, _) = failing_fetch(&up, &redirecting.url("remote.git"), settings)?;
    assert!(
        !matches!(err, SyncError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert!(
        !redirecting.seen().is_empty(),
        "the configured host was asked"
    );
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    Ok(())
}

#[test]
fn credentials_that_cannot_apply_are_refused_at_start() -> Result<()> {
    let up = Upstream::empty()?;
    let token_file = up.tmp.path().join("token");
    std::fs::write(&token_file, "t0k3n")?;
    let with = |credentials: Credentials| FetchSettings {
        credentials,
        ..FetchSettings::default()
    };
    let token = Credentials {
        token_file: Some(token_file.clone()),
        ..Credentials::default()
    };
    let key = Credentials {
        ssh_key_file: Some(token_file.clone()),
        ..Credentials::default()
    };
    let local = up.url();
    let cases = [
        (
            "http://git.example.com/infra.git",
            token.clone(),
            "--repo-token-file",
        ),
        (
            "ssh://git@git.example.com/infra.git",
            token.clone(),
            "--repo-token-file",
        ),
        (local.as_str(), token.clone(), "--repo-token-file"),
        (
            "https://git.example.com/infra.git",
            key.clone(),
            "--ssh-key-file",
        ),
    ];
    for (remote, credentials, flag) in cases {
        let err = GitSource::open_with(remote, "main", &up.mirror_dir("c"), with(credentials))
            .err()
            .context(remote.to_owned())?;
        assert!(
            matches!(err, SyncError::CredentialNotApplicable { .. }),
            "{remote}: {err:?}"
        );
        assert!(err.to_string().contains(flag), "{err}");
        assert!(!err.is_transient());
    }
    let missing = Credentials {
        ssh_key_file: Some(up.tmp.path().join("no-such-key")),
        ..Credentials::default()
    };
    let err = GitSource::open_with(
        "git@git.example.com:org/infra.git",
        "main",
        &up.mirror_dir("c"),
        with(missing),
    )
    .err()
    .context("missing key")?;
    assert!(matches!(err, SyncError::CredentialFile { .. }), "{err:?}");
    std::fs::write(&token_file, "\n")?;
    let err = GitSource::open_with(
        "https://git.example.com/infra.git",
        "main",
        &up.mirror_dir("c"),
        with(token),
    )
    .err()
    .context("empty token")?;
    assert!(matches!(err, SyncError::CredentialFile { .. }), "{err:?}");
    assert!(
        !up.mirror_dir("c").exists(),
        "nothing created for a refused configuration"
    );

    // Plain http to loopback is allowed (a local proxy, or this test's server).
    std::fs::write(&token_file, "t0k3n")?;
    let loopback = Credentials {
        token_file: Some(token_file),
        ..Credentials::default()
    };
    GitSource::open_with(
        "http://127.0.0.1:9/infra.git",
        "main",
        &up.mirror_dir("l"),
        with(loopback),
    )?;
    Ok(())
}

#[test]
fn scp_style_remotes_are_ssh_remotes_not_local_paths() -> Result<()> {
    let up = Upstream::empty()?;
    assert_eq!(local_repository("git@git.example.com:org/infra.git"), None);
    assert_eq!(
        local_repository("ssh://git@git.example.com/org/infra.git"),
        None
    );
    assert_eq!(
        local_repository("https://git.example.com/org/infra.git"),
        None
    );
    assert_eq!(
        local_repository("/srv/git/infra.git"),
        Some("/srv/git/infra.git".into())
    );
    assert_eq!(
        local_repository("file:///srv/git/infra.git"),
        Some("/srv/git/infra.git".into())
    );

    let source = GitSource::open_or_clone(
        "git@git.example.com:org/infra.git",
        "main",
        &up.mirror_dir("scp"),
    )?;
    assert_eq!(source.remote(), "git@git.example.com:org/infra.git");
    Ok(())
}
