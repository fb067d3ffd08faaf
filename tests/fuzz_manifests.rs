//! Fuzzing the manifest loader (issue "Hostile input", item 5). Whoever can push to the
//! manifests repository chooses the bytes `load_files` reads, so for any bytes it must return
//! `Ok` or problems that name the file: never panic, stall or take unbounded memory. The
//! properties, generators and runner are in `fuzz_support/`.
//!
//! Here: a short seeded run (the same cases every time) and a replay of every saved finding,
//! both part of `cargo test`; and the long run with fresh seeds, which `scripts/fuzz DURATION`
//! starts in a release build (ignored otherwise).

mod fuzz_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fuzz_support::check::{check, Bounds};
use fuzz_support::regressions;
use fuzz_support::run::{self, Settings, Stats};

/// The short run's fixed seed: any value works, a fixed one makes `cargo test` repeatable.
const SHORT_RUN_SEED: [u8; 32] = *b"berth fuzz: the short run's seed";

/// The bounds, from measurements on this machine (release build, thread CPU time):
///
/// - CPU: 1 MB of valid Pods loads in ~100 ms, 600 KB of list items each refused ("expected a
///   mapping") in ~170 ms. So 50 ms plus 400 ms per MiB: under half a second at the 1 MiB
///   budget, linear, and about twice the slowest honest case. A debug build is up to twenty
///   times slower.
/// - Memory: 1 MB of valid Pods peaks at ~32 bytes of heap per input byte; the worst honest
///   case is every node refused with a problem (~200 bytes per byte). Aliases may add four
///   nodes per node written, so 512 bytes per input byte, plus 4 MiB for the 10,000 alias
///   nodes always allowed.
fn settings(cases: u32) -> Settings {
    let release = Bounds {
        cpu_base: Duration::from_millis(50),
        cpu_per_mib: Duration::from_millis(400),
        memory_base: 4 << 20,
        memory_per_byte: 512,
    };
    let bounds = if cfg!(debug_assertions) {
        Bounds {
            cpu_base: release.cpu_base * 20,
            cpu_per_mib: release.cpu_per_mib * 20,
            ..release
        }
    } else {
        release
    };
    Settings {
        cases,
        max_shrink_time: Duration::from_secs(120),
        hang_after: Duration::from_secs(if cfg!(debug_assertions) { 120 } else { 30 }),
        memory_cap: 2 << 30,
        bounds,
        save: true,
        deadline: None,
    }
}

#[test]
fn generated_and_mutated_trees_load_without_panic_stall_or_blow_up() {
    let cases = std::env::var("BERTH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let settings = settings(cases);
    let stats = Stats::default();
    let started = Instant::now();
    let result = run::batch(SHORT_RUN_SEED, &settings, &stats);
    eprintln!("short run: {}", stats.summary(started.elapsed()));
    if let Err(finding) = result {
        run::report(&finding, &settings);
        panic!("fuzz finding: {}", finding.reason);
    }
}

#[test]
fn every_saved_finding_now_loads_within_the_bounds() {
    let settings = settings(1);
    let saved = regressions::load_all().expect("read tests/fuzz-regressions");
    let failures: Vec<String> = saved
        .iter()
        .filter_map(|(name, case)| {
            fuzz_support::alloc::track_this_thread();
            check(case, &settings.bounds)
                .err()
                .map(|reason| format!("{name}: {reason}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `scripts/fuzz DURATION`: fresh seeds for `BERTH_FUZZ_SECONDS`, or one batch of
/// `BERTH_FUZZ_SEED` to reproduce a finding.
#[test]
#[ignore = "the long run: scripts/fuzz DURATION"]
fn fuzz_for_a_while() {
    let env = |name: &str| std::env::var(name).ok();
    let settings = settings(
        env("BERTH_FUZZ_CASES")
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
    );
    let stats = Stats::default();
    let started = Instant::now();
    let findings = match env("BERTH_FUZZ_SEED") {
        Some(hex) => {
            let seed = run::parse_seed(&hex).expect("BERTH_FUZZ_SEED: 64 hex digits");
            let found = run::batch(seed, &settings, &stats).err();
            if let Some(f) = &found {
                run::report(f, &settings);
            }
            found.into_iter().collect()
        }
        None => {
            let seconds = env("BERTH_FUZZ_SECONDS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(60);
            run::for_a_while(Duration::from_secs(seconds), &settings, &stats)
        }
    };
    eprintln!(
        "fuzz: {}; {} finding(s); {} cases",
        stats.summary(started.elapsed()),
        findings.len(),
        stats.executions.load(Ordering::Relaxed)
    );
    assert!(
        findings.is_empty(),
        "{} finding(s), see above",
        findings.len()
    );
}
