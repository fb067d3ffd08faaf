//! Hostile input: whatever a repository holds, `berth validate` (and sync, which shares the
//! loader) answers quickly, in bounded memory, with an error naming the file and the limit; and
//! nothing secret from a manifest is repeated in an error.
//!
//! The time and memory bounds are the acceptance figures, checked on the real binary
//! with `wait4`'s resource usage of that one child (peak RSS), not guessed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::manifest::{load_files, Limits, SourceFile};

/// What one `berth validate` run did.
struct Run {
    code: i32,
    stderr: String,
    elapsed: Duration,
    peak_rss_kib: i64,
}

/// Runs `berth validate <dir>` and measures the child alone: wall time, and its peak RSS from
/// `wait4` (RUSAGE_CHILDREN would mix in every other child this test process ever waited for).
// The child is reaped by `wait4` below, not by `Child::wait`, which has no resource usage.
#[allow(clippy::zombie_processes)]
fn validate(dir: &Path) -> Run {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("validate")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth validate");
    let pid = child.id() as libc::pid_t;
    let output = std::thread::spawn(move || {
        use std::io::Read;
        let mut stderr = String::new();
        let mut pipe = child.stderr.expect("piped stderr");
        pipe.read_to_string(&mut stderr).expect("read stderr");
        stderr
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let elapsed = started.elapsed();
    Run {
        code: libc::WEXITSTATUS(status),
        stderr: output.join().expect("stderr reader"),
        elapsed,
        peak_rss_kib: usage.ru_maxrss,
    }
}

fn tree(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write manifest");
    }
    dir
}

/// Nine anchors, each a list of nine aliases of the one before: under 1 KB, 9^9 nodes expanded.
fn billion_laughs() -> String {
    let mut text = String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bomb\n  annotations:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let list = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("    a{i}: &a{i} [{list}]\n"));
    }
    text
}

fn assert_quick_and_small(run: &Run) {
    assert!(
        run.elapsed < Duration::from_secs(1),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.peak_rss_kib < 100 * 1024,
        "peak RSS {} KiB",
        run.peak_rss_kib
    );
}

#[test]
fn an_alias_bomb_is_refused_within_a_second_and_100_mib() {
    let text = billion_laughs();
    assert!(text.len() < 1024, "the bomb is {} bytes", text.len());
    let dir = tree(&[("bomb.yaml", text)]);
    let run = validate(dir.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("bomb.yaml:") && run.stderr.contains("alias expansion limit"),
        "{}",
        run.stderr
    );
    assert_quick_and_small(&run);
}

#[test]
fn deep_nesting_is_refused_within_a_second_and_100_mib() {
    // Block style: each level only costs its indentation, so a file can nest thousands deep.
    let mut text = String::from("apiVersion: v1\nkind: Pod\nmetadata:\n");
    for depth in 1..1000 {
        text.push_str(&" ".repeat(depth));
        text.push_str("x:\n");
    }
    let flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let dir = tree(&[("deep.yaml", text), ("flow.yaml", flow)]);
    let run = validate(dir.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("deep.yaml:") && run.stderr.contains("nested more than 64 levels"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("flow.yaml:"), "{}", run.stderr);
    assert_quick_and_small(&run);
}

#[test]
fn an_oversize_file_is_refused_unread_within_a_second_and_100_mib() {
    // 64 MiB: read whole, it alone would be most of the memory budget.
    let dir = tempfile::tempdir().expect("temp dir");
    let big = std::fs::File::create(dir.path().join("huge.yaml")).expect("create");
    big.set_len(64 << 20).expect("sparse file");
    std::fs::write(
        dir.path().join("ok.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: 'i:1'}]\n",
    )
    .expect("write");
    let run = validate(dir.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "huge.yaml: file is 64 MiB, over the limit of 1 MiB per file (max_file_size)"
        ),
        "{}",
        run.stderr
    );
    assert_quick_and_small(&run);
}

#[test]
fn annotations_over_256_kib_are_refused() {
    let big = "x".repeat(300 << 10);
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  annotations:\n    note: \"{big}\"\nspec:\n  containers: [{{name: c, image: 'i:1'}}]\n"
    );
    let problems = load_files(
        &[SourceFile {
            path: "a.yaml".into(),
            bytes: text.into_bytes(),
        }],
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].to_string(),
        "a.yaml:6:9: metadata.annotations: annotations hold 300.0 KiB in all, over Kubernetes' limit of 256 KiB per object"
    );
}

#[test]
fn tree_budgets_are_settings_shared_with_serve_through_the_config_file() {
    let files: Vec<(String, String)> = (0..5)
        .map(|i| {
            (
                format!("p{i}.yaml"),
                format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n  containers: [{{name: c, image: 'i:1'}}]\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let dir = tree(&refs);
    let config = dir.path().join("berth.toml.conf");
    std::fs::write(&config, "repo = \"/srv/git\"\nmax_tree_files = 4\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["validate", "--config"])
        .arg(&config)
        .arg(dir.path())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("5 manifest files, over the limit of 4 files per tree (max_tree_files)"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["validate", "--max-tree-files", "5"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_env_value_is_never_repeated_in_an_error() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n    image: 'i:1'\n    env:\n    - {name: PASSWORD, value: 918273645}\n    - {name: TOKEN, value: [s3cr3t-l1st]}\n";
    let problems = load_files(
        &[SourceFile {
            path: "a.yaml".into(),
            bytes: text.as_bytes().to_vec(),
        }],
        &Limits::default(),
    )
    .unwrap_err();
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        all[0],
        "a.yaml:9:31: spec.containers[0].env[0].value: expected a string, found an integer (put the value in quotes)"
    );
    for line in &all {
        assert!(
            !line.contains("918273645") && !line.contains("s3cr3t"),
            "{line}"
        );
    }
}

#[test]
fn host_paths_outside_the_allowed_prefixes_are_refused_whatever_the_dots() {
    let mount = |path: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: [{{name: h, hostPath: {{path: '{path}'}}}}]\n  containers: [{{name: c, image: 'i:1', volumeMounts: [{{name: h, mountPath: /h}}]}}]\n"
        )
    };
    let allowed = tree(&[("ok.yaml", mount("/srv/data/app"))]);
    let escape = tree(&[("escape.yaml", mount("/srv/data/../../var/run/docker.sock"))]);
    let run = |dir: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("validate")
            .args(extra)
            .arg(dir)
            .output()
            .expect("run")
    };
    assert_eq!(
        run(allowed.path(), &["--allow-host-path", "/srv/data"])
            .status
            .code(),
        Some(0)
    );
    let out = run(escape.path(), &["--allow-host-path", "/srv/data"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("spec.volumes[0].hostPath.path")
            && err.contains("(/var/run/docker.sock) is outside the allowed host paths (/srv/data)"),
        "{err}"
    );
    assert_eq!(
        run(escape.path(), &[]).status.code(),
        Some(0),
        "allowed anywhere by default"
    );
}
