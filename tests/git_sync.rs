//! The Git side against real repositories made with the git CLI: a bare "remote" that a work
//! repository pushes to (like a forge), and a plain non-bare repository used directly as remote.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{ensure, Context, Result};
use berth::manifest::{read_paths, Limits};
use berth::sync::{CommitId, CommitInfo, GitSource, History, ManifestFile, SyncError, Syncer};
use tempfile::TempDir;

/// Commit times start here and advance one minute per commit, so "newest first" is unambiguous.
const EPOCH: i64 = 1_700_000_000;

/// The manifests of [`manifests_repo`] under `deploy/`, in the order `read_tree` returns them.
const DEPLOY: [&str; 3] = ["deploy/cfg.json", "deploy/db/pg.yml", "deploy/web.yaml"];

/// An upstream repository: `work` is where commits are made, `bare` is the remote berth follows.
struct Upstream {
    tmp: TempDir,
    work: PathBuf,
    bare: PathBuf,
    clock: Cell<i64>,
}

impl Upstream {
    fn new() -> Result<Upstream> {
        let tmp = TempDir::new()?;
        git(tmp.path(), &["init", "-q", "work"])?;
        git(tmp.path(), &["init", "-q", "--bare", "remote.git"])?;
        let (work, bare) = (tmp.path().join("work"), tmp.path().join("remote.git"));
        git(
            &work,
            &["remote", "add", "origin", &bare.display().to_string()],
        )?;
        let clock = Cell::new(EPOCH);
        Ok(Upstream {
            tmp,
            work,
            bare,
            clock,
        })
    }

    /// The bare remote as a `file://` URL.
    fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// A directory for one of berth's mirrors, inside this fixture's temp dir.
    fn mirror_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join("mirrors").join(name)
    }

    /// A mirror of the bare remote's `main` branch.
    fn mirror(&self) -> Result<GitSource> {
        Ok(GitSource::open_or_clone(
            &self.url(),
            "main",
            &self.mirror_dir("m"),
        )?)
    }

    fn write(&self, path: &str, content: &str) -> Result<&Self> {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().context("file has a parent")?)?;
        std::fs::write(file, content)?;
        Ok(self)
    }

    /// Stages everything and commits; returns the sha.
    fn commit(&self, message: &str) -> Result<String> {
        git(&self.work, &["add", "-A"])?;
        self.commit_staged(message)
    }

    /// Commits the index as it is, one fixture minute after the previous commit.
    fn commit_staged(&self, message: &str) -> Result<String> {
        self.clock.set(self.clock.get() + 60);
        let date = format!("{} +0000", self.clock.get());
        let out = Command::new("git")
            .current_dir(&self.work)
            .args(["commit", "-q", "--allow-empty", "-m", message])
            .envs(GIT_ENV)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    fn push(&self, force: bool) -> Result<()> {
        let force = if force { "--force" } else { "--no-force" };
        git(&self.work, &["push", "-q", force, "origin", "main"]).map(drop)
    }
}

/// Isolated from the machine's git config, with a fixed identity.
const GIT_ENV: [(&str, &str); 6] = [
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_AUTHOR_NAME", "Alice Author"),
    ("GIT_AUTHOR_EMAIL", "alice@example.com"),
    ("GIT_COMMITTER_NAME", "Carl Committer"),
    ("GIT_COMMITTER_EMAIL", "carl@example.com"),
];

/// Runs git in `dir` and returns its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .envs(GIT_ENV)
        .output()?;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// The layout most tests start from: manifests in `deploy/` (nested), plus files to ignore.
fn manifests_repo() -> Result<(Upstream, String)> {
    let up = Upstream::new()?;
    up.write("README.md", "# infra\n")?
        .write("top.yaml", "kind: Namespace\n")?
        .write("deploy/web.yaml", "kind: Deployment\n")?
        .write("deploy/db/pg.yml", "kind: StatefulSet\n")?
        .write("deploy/cfg.json", "{\"kind\":\"ConfigMap\"}\n")?
        .write("deploy/notes.md", "not a manifest\n")?
        .write("deploy/run.sh", "#!/bin/sh\n")?;
    let sha = up.commit("initial layout")?;
    up.push(false)?;
    Ok((up, sha))
}

fn id(sha: &str) -> CommitId {
    CommitId::parse(sha).expect("git printed a full sha")
}

fn paths(files: &[ManifestFile]) -> Vec<&str> {
    files.iter().map(|f| f.path.as_str()).collect()
}

fn summaries(history: &History) -> Vec<&str> {
    history.commits.iter().map(|c| c.summary.as_str()).collect()
}

/// The error opening a mirror of `remote` in `dir` must fail with.
fn open_error(remote: &str, branch: &str, dir: &Path) -> Result<SyncError> {
    let opened = GitSource::open_or_clone(remote, branch, dir);
    opened.err().context("opening was expected to fail")
}

/// The error the first fetch of a fresh mirror of `remote` must fail with.
fn fetch_error(remote: &str, branch: &str, up: &Upstream) -> Result<SyncError> {
    static MIRRORS: AtomicUsize = AtomicUsize::new(0);
    let dir = up.mirror_dir(&format!(
        "failing-{}",
        MIRRORS.fetch_add(1, Ordering::Relaxed)
    ));
    let source = GitSource::open_or_clone(remote, branch, &dir)?;
    source.fetch().err().context("fetch was expected to fail")
}

#[test]
fn first_fetch_reads_only_manifests_of_head_recursively() -> Result<()> {
    let (up, head) = manifests_repo()?;
    let source = up.mirror()?;
    assert_eq!(source.local_head()?, None, "nothing fetched yet");
    let fetched = source.fetch()?;
    assert_eq!(fetched.to_string(), head);
    assert_eq!(source.local_head()?, Some(fetched));

    let all = source.read_tree(&fetched, "", &Limits::default())?;
    assert_eq!(paths(&all), [&DEPLOY[..], &["top.yaml"]].concat());
    assert_eq!(all[0].bytes, b"{\"kind\":\"ConfigMap\"}\n");
    assert_eq!(all[2].bytes, b"kind: Deployment\n");
    assert_eq!(source.read_tree(&fetched, ".", &Limits::default())?, all);

    let deploy = source.read_tree(&fetched, "deploy", &Limits::default())?;
    assert_eq!(paths(&deploy), DEPLOY);
    assert_eq!(
        source.read_tree(&fetched, "./deploy/", &Limits::default())?,
        deploy,
        "same dir"
    );
    assert_eq!(
        paths(&source.read_tree(&fetched, "deploy/db", &Limits::default())?),
        ["deploy/db/pg.yml"]
    );
    Ok(())
}

#[test]
fn symlinks_and_submodules_are_skipped() -> Result<()> {
    let (up, first) = manifests_repo()?;
    std::os::unix::fs::symlink("web.yaml", up.work.join("deploy/link.yaml"))?;
    git(&up.work, &["add", "-A"])?;
    // A gitlink entry is what a submodule looks like in a tree; no real submodule needed.
    let gitlink = format!("160000,{first},deploy/sub.yaml");
    git(
        &up.work,
        &["update-index", "--add", "--cacheinfo", &gitlink],
    )?;
    up.commit_staged("add link and submodule")?;
    up.push(false)?;

    let tree = git(&up.work, &["ls-tree", "-r", "HEAD", "deploy"])?;
    assert!(tree.contains("120000") && tree.contains("160000"), "{tree}");
    let source = up.mirror()?;
    let head = source.fetch()?;
    assert_eq!(
        paths(&source.read_tree(&head, "deploy", &Limits::default())?),
        DEPLOY
    );
    Ok(())
}

#[test]
fn a_tree_over_budget_is_refused_from_object_sizes_alone() -> Result<()> {
    let (up, _) = manifests_repo()?;
    up.write("deploy/big.yaml", &"#".repeat(3000))?;
    up.commit("a big file")?;
    up.push(false)?;
    let source = up.mirror()?;
    let head = source.fetch()?;
    let limits = Limits {
        max_file_bytes: 2000,
        max_tree_files: 3,
        max_tree_bytes: 1 << 20,
    };
    let Err(SyncError::OverBudget { problems, .. }) = source.read_tree(&head, "deploy", &limits)
    else {
        panic!("the tree is over budget");
    };
    let got: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "deploy: 4 manifest files, over the limit of 3 files per tree (max_tree_files)",
            "deploy/big.yaml: file is 2.9 KiB, over the limit of 2.0 KiB per file (max_file_size)",
        ]
    );
    Ok(())
}

#[test]
fn sync_reads_the_same_files_as_validate_reads_in_a_directory() -> Result<()> {
    let (up, _) = manifests_repo()?;
    up.write("deploy/.github/ci.yaml", "kind: Workflow\n")?
        .write("deploy/.hidden.yaml", "kind: Hidden\n")?
        .write("deploy/LOUD.YAML", "kind: Loud\n")?;
    std::os::unix::fs::symlink("web.yaml", up.work.join("deploy/link.yaml"))?;
    up.commit("tricky names")?;
    up.push(false)?;
    let source = up.mirror()?;
    let head = source.fetch()?;
    let from_git: Vec<String> = source
        .read_tree(&head, "deploy", &Limits::default())?
        .into_iter()
        .map(|f| f.path)
        .collect();
    let work = up.work.join("deploy");
    let from_disk: Vec<String> = read_paths(std::slice::from_ref(&work), &Limits::default())?
        .into_iter()
        .map(|f| {
            let relative = Path::new(&f.path)
                .strip_prefix(&work)
                .expect("under deploy");
            format!("deploy/{}", relative.display())
        })
        .collect();
    assert_eq!(from_git, from_disk);
    assert!(
        from_git.contains(&"deploy/LOUD.YAML".to_string()),
        "{from_git:?}"
    );
    Ok(())
}

#[test]
fn new_commits_are_seen_after_fetch_and_listed_newest_first() -> Result<()> {
    let (up, c1) = manifests_repo()?;
    let source = up.mirror()?;
    assert_eq!(source.fetch()?.to_string(), c1);

    up.write("deploy/web.yaml", "kind: Deployment\nreplicas: 2\n")?;
    let c2 = up.commit("scale web")?;
    up.write("deploy/web.yaml", "kind: Deployment\nreplicas: 3\n")?;
    let c3 = up.commit("scale web again")?;
    up.push(false)?;

    let head = source.fetch()?;
    assert_eq!(head.to_string(), c3);
    let web = source.read_tree(&head, "deploy", &Limits::default())?;
    assert_eq!(web[2].bytes, b"kind: Deployment\nreplicas: 3\n");

    let history = source.history_between(Some(&id(&c1)), &head, 10)?;
    assert_eq!(summaries(&history), ["scale web again", "scale web"]);
    assert_eq!(
        [&history.commits[0].sha, &history.commits[1].sha],
        [&c3, &c2]
    );
    assert!(!history.truncated && !history.forced);

    let capped = source.history_between(Some(&id(&c1)), &head, 1)?;
    assert_eq!(summaries(&capped), ["scale web again"]);
    assert!(capped.truncated);

    let same = source.history_between(Some(&head), &head, 10)?;
    assert!(same.commits.is_empty() && !same.truncated && !same.forced);

    // First sync: no walk, but it says older commits exist.
    let first_sync = source.history_between(None, &head, 10)?;
    assert_eq!(summaries(&first_sync), ["scale web again"]);
    assert!(first_sync.truncated && !first_sync.forced);
    Ok(())
}

#[test]
fn force_push_is_reported_as_forced() -> Result<()> {
    let (up, c1) = manifests_repo()?;
    up.write("deploy/web.yaml", "kind: Deployment\nimage: bad\n")?;
    let c2 = up.commit("bad image")?;
    up.push(false)?;
    let source = up.mirror()?;
    assert_eq!(source.fetch()?.to_string(), c2);

    git(&up.work, &["reset", "-q", "--hard", &c1])?;
    up.write("deploy/web.yaml", "kind: Deployment\nimage: good\n")?;
    let c3 = up.commit("good image")?;
    up.push(true)?;

    let head = source.fetch()?;
    assert_eq!(head.to_string(), c3, "the force-updated head is fetched");
    let web = &source.read_tree(&head, "deploy", &Limits::default())?[2];
    assert_eq!(web.bytes, b"kind: Deployment\nimage: good\n");

    let history = source.history_between(Some(&id(&c2)), &head, 10)?;
    assert!(history.forced, "c2 is no longer in the branch");
    assert_eq!(
        summaries(&history),
        ["good image"],
        "from the common ancestor"
    );
    let from_c1 = source.history_between(Some(&id(&c1)), &head, 10)?;
    assert!(!from_c1.forced, "c1 is still an ancestor");
    Ok(())
}

#[test]
fn commit_info_has_author_message_parents_and_time() -> Result<()> {
    let (up, c1) = manifests_repo()?;
    let message = "scale web\n\nBecause traffic doubled.\nSee ticket 42.";
    let c2 = up.commit(message)?;
    up.push(false)?;
    let source = up.mirror()?;
    let head = source.fetch()?;

    let info = source.commit_info(&head)?;
    assert_eq!(info.sha, c2);
    assert_eq!(info.parents, [c1.as_str()]);
    assert_eq!(info.author, "Alice Author <alice@example.com>");
    assert_eq!(info.message, message);
    assert_eq!(info.summary, "scale web");
    assert_eq!(info.time, EPOCH + 120, "second fixture commit");

    let root = source.commit_info(&id(&c1))?;
    assert!(root.parents.is_empty());
    assert_eq!(root.message, "initial layout");

    let json = serde_json::to_string(&info)?;
    assert_eq!(serde_json::from_str::<CommitInfo>(&json)?, info);
    Ok(())
}

#[test]
fn missing_branch_is_a_clear_fatal_error() -> Result<()> {
    let (up, _) = manifests_repo()?;
    let err = fetch_error(&up.url(), "release", &up)?;
    assert!(matches!(err, SyncError::BranchNotFound { .. }), "{err:?}");
    let expected = format!("branch 'release' not found on remote {}", up.url());
    assert_eq!(err.to_string(), expected);
    assert!(!err.is_transient());

    let empty = Upstream::new()?;
    let err = fetch_error(&empty.url(), "main", &empty)?;
    let expected = format!("branch 'main' not found on remote {}", empty.url());
    assert_eq!(err.to_string(), expected, "nothing pushed yet");
    Ok(())
}

#[test]
fn missing_subdir_is_a_clear_error_and_has_no_tree_id() -> Result<()> {
    let (up, head) = manifests_repo()?;
    let source = up.mirror()?;
    let head_id = source.fetch()?;

    let err = source
        .read_tree(&head_id, "manifests", &Limits::default())
        .expect_err("no such dir");
    let expected = format!("directory 'manifests' not found in commit {head}");
    assert_eq!(err.to_string(), expected);
    let err = source
        .read_tree(&head_id, "deploy/web.yaml", &Limits::default())
        .expect_err("a file");
    assert!(matches!(err, SyncError::SubdirNotFound { .. }), "{err:?}");
    assert_eq!(source.tree_id(&head_id, "manifests")?, None);
    Ok(())
}

#[test]
fn bad_configuration_is_rejected_before_any_io() -> Result<()> {
    let up = Upstream::new()?;
    let dir = up.mirror_dir("m");
    let err = open_error(&up.url(), "bad..name", &dir)?;
    assert!(matches!(err, SyncError::InvalidBranch { .. }), "{err:?}");
    assert!(!err.is_transient());
    let err = open_error("", "main", &dir)?;
    assert!(matches!(err, SyncError::InvalidRemote { .. }), "{err:?}");
    assert!(
        !dir.exists(),
        "nothing created for a rejected configuration"
    );
    Ok(())
}

#[test]
fn reopening_an_existing_mirror_keeps_its_state() -> Result<()> {
    let (up, c1) = manifests_repo()?;
    up.mirror()?.fetch()?;
    let reopened = up.mirror()?;
    assert_eq!(
        reopened.local_head()?,
        Some(id(&c1)),
        "known without the network"
    );
    assert_eq!(
        paths(&reopened.read_tree(&id(&c1), "deploy", &Limits::default())?),
        DEPLOY
    );

    let c2 = up.commit("empty follow-up")?;
    up.push(false)?;
    assert_eq!(reopened.fetch()?.to_string(), c2);

    let same_place = up.bare.display().to_string();
    GitSource::open_or_clone(&same_place, "main", &up.mirror_dir("m"))
        .context("a path and its file:// URL name the same remote")?;
    Ok(())
}

#[test]
fn a_mirror_refuses_another_remote_and_foreign_directories() -> Result<()> {
    let (up, _) = manifests_repo()?;
    up.mirror()?;
    let other = up.tmp.path().join("other.git").display().to_string();
    let err = open_error(&other, "main", &up.mirror_dir("m"))?;
    assert!(matches!(err, SyncError::RemoteMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&up.url()) && err.to_string().contains(&other));
    assert!(!err.is_transient());

    let foreign = up.mirror_dir("foreign");
    std::fs::create_dir_all(&foreign)?;
    std::fs::write(foreign.join("precious.txt"), "keep me")?;
    let err = open_error(&up.url(), "main", &foreign)?;
    assert!(matches!(err, SyncError::NotARepository { .. }), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("precious.txt"))?,
        "keep me"
    );

    let err = open_error(&up.url(), "main", &up.work)?;
    assert!(
        matches!(err, SyncError::NotARepository { .. }),
        "a work tree: {err:?}"
    );
    Ok(())
}

#[test]
fn tree_id_ignores_changes_outside_the_subdir() -> Result<()> {
    let (up, c1) = manifests_repo()?;
    up.write("README.md", "# infra\n\nNow with docs.\n")?;
    let c2 = up.commit("docs only")?;
    up.write("deploy/web.yaml", "kind: Deployment\nreplicas: 2\n")?;
    let c3 = up.commit("scale web")?;
    up.push(false)?;
    let source = up.mirror()?;
    source.fetch()?;

    let deploy_at = |c: &str| source.tree_id(&id(c), "deploy");
    assert!(deploy_at(&c1)?.is_some());
    assert_eq!(
        deploy_at(&c1)?,
        deploy_at(&c2)?,
        "README is outside deploy/"
    );
    assert_ne!(deploy_at(&c2)?, deploy_at(&c3)?, "web.yaml changed");
    let root_at = |c: &str| source.tree_id(&id(c), "");
    assert_ne!(root_at(&c1)?, root_at(&c2)?, "the root did change");
    Ok(())
}

#[test]
fn a_plain_work_tree_path_can_be_the_remote() -> Result<()> {
    let up = Upstream::new()?;
    up.write("apps/web.yml", "kind: Deployment\n")?;
    let c1 = up.commit("first")?;
    let remote = up.work.display().to_string();
    let source = GitSource::open_or_clone(&remote, "main", &up.mirror_dir("m"))?;
    assert_eq!(source.fetch()?.to_string(), c1);
    assert_eq!(
        paths(&source.read_tree(&id(&c1), "apps", &Limits::default())?),
        ["apps/web.yml"]
    );

    up.write("apps/db.json", "{}\n")?;
    let c2 = up.commit("second")?;
    let head = source.fetch()?;
    assert_eq!(head.to_string(), c2);
    assert_eq!(
        paths(&source.read_tree(&head, "apps", &Limits::default())?),
        ["apps/db.json", "apps/web.yml"]
    );
    let history = source.history_between(Some(&id(&c1)), &head, 5)?;
    assert_eq!(summaries(&history), ["second"]);
    Ok(())
}

#[tokio::test]
async fn syncer_does_the_same_from_async_code_and_serializes_fetches() -> Result<()> {
    let (up, c1) = manifests_repo()?;
    let syncer = Syncer::open_or_clone(&up.url(), "main", &up.mirror_dir("m")).await?;
    assert_eq!(syncer.local_head().await?, None);
    assert_eq!(syncer.fetch().await?.to_string(), c1);

    up.write("deploy/web.yaml", "kind: Deployment\nreplicas: 2\n")?;
    let c2 = up.commit("scale web")?;
    up.push(false)?;
    // Spawned, so this also checks the futures are `Send` for a multi-threaded runtime.
    let other = syncer.clone();
    let background = tokio::spawn(async move { other.fetch().await });
    let (a, b) = (syncer.fetch().await, background.await?);
    assert_eq!([a?.to_string(), b?.to_string()], [c2.as_str(), c2.as_str()]);

    let (old, head) = (id(&c1), id(&c2));
    let files = syncer
        .read_tree(&head, "deploy", &Limits::default())
        .await?;
    assert_eq!(files[2].bytes, b"kind: Deployment\nreplicas: 2\n");
    let spawned = syncer.clone();
    let history = tokio::spawn(async move {
        let old = old;
        spawned.history_between(Some(&old), &head, 10).await
    });
    let history = history.await??;
    assert_eq!(summaries(&history), ["scale web"]);
    assert_eq!(syncer.commit_info(&head).await?.parents, [c1.as_str()]);
    let (old_tree, new_tree) = (
        syncer.tree_id(&old, "deploy"),
        syncer.tree_id(&head, "deploy"),
    );
    assert_ne!(old_tree.await?, new_tree.await?);

    let err = syncer
        .read_tree(&head, "nope", &Limits::default())
        .await
        .expect_err("missing dir");
    assert!(matches!(err, SyncError::SubdirNotFound { .. }), "{err:?}");
    Ok(())
}

/// A one-trick HTTP server answering every request with `status`; stopped and joined on drop.
struct HttpStub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpStub {
    fn answering(status: &'static str) -> Result<HttpStub> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Ok(HttpStub {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    fn url(&self) -> String {
        format!("http://{}/infra.git", self.addr)
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop to see the flag
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn unreachable_remotes_are_transient_and_named() -> Result<()> {
    let up = Upstream::new()?;
    let missing = up.tmp.path().join("missing.git").display().to_string();
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let down = HttpStub::answering("503 Service Unavailable")?;
    for remote in [missing, format!("http://{closed}/infra.git"), down.url()] {
        let err = fetch_error(&remote, "main", &up)?;
        assert!(matches!(err, SyncError::Unreachable { .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("cannot reach remote {remote}"));
        assert!(err.is_transient(), "{remote}");
    }
    Ok(())
}

#[test]
fn refusing_remotes_are_fatal_and_passwords_stay_out_of_messages() -> Result<()> {
    let up = Upstream::new()?;
    // Must fail, not prompt for a username on the terminal.
    let locked = HttpStub::answering("401 Unauthorized")?;
    let err = fetch_error(&locked.url(), "main", &up)?;
    assert!(matches!(err, SyncError::AccessDenied { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("access to remote {} denied", locked.url())
    );
    assert!(!err.is_transient());

    // A secret in the URL is refused before anything is created, pointing to the flags.
    for scheme in ["http", "https"] {
        let with_password = format!("{scheme}://bot:s3cret@{}/infra.git", locked.addr);
        let dir = up.mirror_dir("pw");
        let err = open_error(&with_password, "main", &dir)?;
        assert!(matches!(err, SyncError::SecretInUrl { .. }), "{err:?}");
        assert!(!err.is_transient());
        let message = err.to_string();
        assert!(message.contains("--repo-token-file"), "{message}");
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
        assert!(!dir.exists(), "nothing created");
    }
    Ok(())
}
