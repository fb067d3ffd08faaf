//! What a fetch from a local-path remote costs, measured on the real `git-upload-pack`: a
//! wrapper first on `PATH` counts its runs and records the protocol each run spoke.
//!
//! Its own test binary with a single test, because it changes the process's `PATH`.

mod git_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use berth::sync::GitSource;
use git_support::Upstream;

/// (runs of upload-pack, runs that were asked for a pack) recorded so far in `log`.
fn cost(log: &Path) -> Result<(usize, usize)> {
    let mut runs = 0;
    let mut packs = 0;
    for entry in std::fs::read_dir(log)? {
        let trace = std::fs::read_to_string(entry?.path())?;
        runs += 1;
        if trace.contains("command=fetch") {
            packs += 1;
        }
    }
    Ok((runs, packs))
}

#[test]
fn a_local_remote_that_did_not_change_costs_one_ref_listing_and_no_pack() -> Result<()> {
    let (up, first) = Upstream::with_first_commit()?;
    let exec_path = Command::new("git").arg("--exec-path").output()?;
    let real = Path::new(String::from_utf8(exec_path.stdout)?.trim()).join("git-upload-pack");
    let bin = up.tmp.path().join("bin");
    let log = up.tmp.path().join("upload-pack-log");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&log)?;
    let wrapper = bin.join("git-upload-pack");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nGIT_TRACE_PACKET='{}/run.'$$ exec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    let path = std::env::var("PATH").unwrap_or_default();
    // The only test in this binary, so no other thread reads the environment meanwhile.
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));

    let source = GitSource::open_or_clone(&up.url(), "main", &up.mirror_dir("m"))?;
    assert_eq!(source.fetch()?.to_string(), first);
    assert_eq!(cost(&log)?, (1, 1), "first fetch: refs, then the pack");

    let fetched = source.fetch_interruptible(&Default::default())?;
    assert!(!fetched.moved());
    assert_eq!(
        cost(&log)?,
        (2, 1),
        "unchanged: refs listed, no pack negotiated"
    );

    up.write("deploy/web.yaml", "kind: Pod\nimage: v2\n")?;
    let second = up.commit("second")?;
    up.push(false)?;
    let fetched = source.fetch_interruptible(&Default::default())?;
    assert_eq!(fetched.head.to_string(), second);
    assert_eq!(cost(&log)?, (3, 2), "changed: fetched");
    let trace = std::fs::read_dir(&log)?.next().context("a trace")??.path();
    assert!(
        std::fs::read_to_string(trace)?.contains("ls-refs"),
        "protocol v2"
    );
    Ok(())
}
