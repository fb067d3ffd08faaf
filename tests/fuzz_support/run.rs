//! Running the generators against the properties: one seeded batch (the short run in
//! `cargo test`, or a replay of a seed), or batch after batch with fresh seeds for a wall time
//! (`scripts/fuzz`).
//!
//! A failing case is shrunk by proptest to a minimal one, which is printed with the batch's
//! seed and saved under `tests/fuzz-regressions/`. A hang or a memory blow-up cannot wait for
//! a property to be checked after the load, so a watchdog thread watches the case in progress:
//! past `hang_after` of wall time, or past `memory_cap` heap bytes, it prints and saves that
//! case unshrunk and ends the process.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::alloc;
use super::case::{case, Case};
use super::check::{check, Bounds};
use super::regressions;

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Cases per seed.
    pub cases: u32,
    pub max_shrink_time: Duration,
    pub hang_after: Duration,
    pub memory_cap: usize,
    pub bounds: Bounds,
    /// Save findings under `tests/fuzz-regressions/`.
    pub save: bool,
    /// Cases after this pass unchecked, so that a long run ends on time even in the middle
    /// of a batch or of shrinking (which then keeps the smallest failure found so far).
    pub deadline: Option<Instant>,
}

/// A failure, minimised.
#[derive(Debug)]
pub struct Finding {
    pub seed: String,
    pub reason: String,
    pub input: Case,
}

/// Counts of a run, and the closest calls to the bounds.
#[derive(Debug, Default)]
pub struct Stats {
    /// Loads checked, shrinking included.
    pub executions: AtomicU64,
    pub accepted: AtomicU64,
    /// Highest CPU time and peak memory seen, in thousandths of their bounds.
    pub worst_cpu_permille: AtomicU64,
    pub worst_memory_permille: AtomicU64,
}

impl Stats {
    pub fn summary(&self, elapsed: Duration) -> String {
        let n = self.executions.load(Ordering::Relaxed);
        format!(
            "{n} executions in {:.0} s ({:.0}/s), {:.1}% accepted; closest to the bounds: CPU {:.1}%, memory {:.1}%",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64().max(1e-9),
            100.0 * self.accepted.load(Ordering::Relaxed) as f64 / n.max(1) as f64,
            self.worst_cpu_permille.load(Ordering::Relaxed) as f64 / 10.0,
            self.worst_memory_permille.load(Ordering::Relaxed) as f64 / 10.0,
        )
    }
}

/// The case being checked, and since when.
type Current = Arc<Mutex<Option<(Instant, Case)>>>;

struct Watchdog {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn start(current: Current, settings: Settings) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let live = alloc::LIVE.load(Ordering::Relaxed).max(0) as usize;
                let guard = current.lock().unwrap_or_else(|p| p.into_inner());
                let Some((since, case)) = guard.as_ref() else {
                    continue;
                };
                let (kind, what) = if since.elapsed() > settings.hang_after {
                    ("hang", format!("still running after {:?}", since.elapsed()))
                } else if live > settings.memory_cap {
                    ("memory", format!("holding {live} heap bytes"))
                } else {
                    continue;
                };
                eprintln!("\nFUZZ FINDING ({kind}): load_files is {what} on this input:\n{case:?}");
                if settings.save {
                    match regressions::save(kind, case) {
                        Ok(path) => eprintln!("saved as {}", path.display()),
                        Err(e) => eprintln!("could not save it: {e}"),
                    }
                }
                std::process::exit(2);
            }
        });
        Watchdog {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub fn hex(seed: &[u8; 32]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn parse_seed(s: &str) -> Option<[u8; 32]> {
    let mut seed = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(seed)
}

pub fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
    if read.is_err() {
        // No /dev/urandom: the clock still gives each batch its own seed.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    seed
}

/// Runs `settings.cases` cases from `seed`; a failure comes back minimised.
pub fn batch(seed: [u8; 32], settings: &Settings, stats: &Stats) -> Result<(), Finding> {
    alloc::track_this_thread();
    let current: Current = Arc::new(Mutex::new(None));
    let _watchdog = Watchdog::start(current.clone(), *settings);
    let config = Config {
        cases: settings.cases,
        max_shrink_time: settings.max_shrink_time.as_millis() as u32,
        max_shrink_iters: 100_000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let bounds = settings.bounds;
    let result = runner.run(&case(), |input| {
        if settings.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        *current.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), input.clone()));
        let outcome = check(&input, &bounds);
        *current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        stats.executions.fetch_add(1, Ordering::Relaxed);
        let outcome = outcome.map_err(TestCaseError::fail)?;
        if outcome.accepted {
            stats.accepted.fetch_add(1, Ordering::Relaxed);
        }
        let size = input.len();
        let cpu = (1000.0 * outcome.cpu.as_secs_f64() / bounds.cpu(size).as_secs_f64()) as u64;
        let memory = (1000 * outcome.peak / bounds.memory(size).max(1)) as u64;
        stats.worst_cpu_permille.fetch_max(cpu, Ordering::Relaxed);
        stats
            .worst_memory_permille
            .fetch_max(memory, Ordering::Relaxed);
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, input)) => Err(Finding {
            seed: hex(&seed),
            reason: reason.message().to_string(),
            input,
        }),
        Err(TestError::Abort(reason)) => Err(Finding {
            seed: hex(&seed),
            reason: format!("the runner gave up: {}", reason.message()),
            input: Case { files: Vec::new() },
        }),
    }
}

/// What kind of finding a reason is, for its file name.
pub fn kind(reason: &str) -> &'static str {
    if reason.starts_with("load_files panicked") {
        "panic"
    } else if reason.starts_with("too slow") {
        "slow"
    } else if reason.starts_with("too much memory") {
        "memory"
    } else {
        "property"
    }
}

/// Prints a finding and saves its input.
pub fn report(finding: &Finding, settings: &Settings) {
    eprintln!(
        "\nFUZZ FINDING ({}), seed {}:\n{}\nminimal input:\n{:?}",
        kind(&finding.reason),
        finding.seed,
        finding.reason,
        finding.input
    );
    if settings.save && !finding.input.files.is_empty() {
        match regressions::save(kind(&finding.reason), &finding.input) {
            Ok(path) => eprintln!("saved as {}", path.display()),
            Err(e) => eprintln!("could not save it: {e}"),
        }
    }
}

/// Batch after batch with fresh seeds until `duration` has passed; returns the findings.
/// Only the first of each reason is printed whole and saved (a bug is usually found many
/// times); the others print their seed and reason.
pub fn for_a_while(duration: Duration, settings: &Settings, stats: &Stats) -> Vec<Finding> {
    let started = Instant::now();
    let settings = &Settings {
        deadline: Some(started + duration),
        ..*settings
    };
    let mut last_print = Instant::now();
    let mut findings: Vec<Finding> = Vec::new();
    while started.elapsed() < duration {
        let seed = fresh_seed();
        if let Err(finding) = batch(seed, settings, stats) {
            let key = dedup_key(&finding.reason);
            if findings.iter().any(|f| dedup_key(&f.reason) == key) {
                // Most likely the same bug again; the seed replays it once that one is fixed.
                eprintln!(
                    "FUZZ FINDING again ({}), seed {}: {}",
                    kind(&finding.reason),
                    finding.seed,
                    finding.reason.lines().next().unwrap_or_default()
                );
            } else {
                report(&finding, settings);
            }
            findings.push(finding);
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "[{:>5.0} s] {}, {} finding(s)",
                started.elapsed().as_secs_f64(),
                stats.summary(started.elapsed()),
                findings.len()
            );
            last_print = Instant::now();
        }
    }
    findings
}

/// The reason without its numbers and inputs: one bug, one key.
fn dedup_key(reason: &str) -> String {
    let head: String = reason.lines().take(2).collect::<Vec<_>>().join(" ");
    let head: String = head.chars().filter(|c| !c.is_ascii_digit()).collect();
    head.chars().take(120).collect()
}
