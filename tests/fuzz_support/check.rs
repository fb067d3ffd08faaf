//! The properties every input must have, whatever its bytes.
//!
//! 1. `load_files` returns: no panic (caught, with its message and place).
//! 2. Quickly: thread CPU time within [`Bounds::cpu`] of the input's size. CPU time rather than
//!    wall time, because this machine's two cores are shared and a busy neighbour must not
//!    look like a slow parser. A case over the bound is timed again and keeps its best time.
//! 3. In bounded memory: the heap's peak during the load within [`Bounds::memory`].
//! 4. Every problem names a file of the tree, has a message, and any line (and column) it
//!    gives lies within that file.
//! 5. Deterministic: a second load gives an equal result.
//! 6. An accepted tree survives the Raft log's JSON encoding unchanged, and means the same
//!    when each document is re-written as one flow-style line with every string quoted and
//!    every alias expanded: the result depends on the YAML's content, never its style.
//!    Skipped where the re-written file would break a budget the original kept (aliases can
//!    nest a tree deeper than the 64 levels, or grow it past 1 MiB, that its text shows).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use berth::manifest::limits::{DEFAULT_MAX_FILE_BYTES, MAX_DEPTH};
use berth::manifest::yaml::{self, Kind, Node, Value};
use berth::manifest::{load_files, Limits, Manifests, Problem};

use super::alloc;
use super::case::Case;
use super::panics;
use super::tree::double_quoted;

/// How long and how much memory a load may take, by input size.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub cpu_base: Duration,
    pub cpu_per_mib: Duration,
    pub memory_base: usize,
    pub memory_per_byte: usize,
}

impl Bounds {
    pub fn cpu(&self, bytes: usize) -> Duration {
        self.cpu_base + self.cpu_per_mib.mul_f64(bytes as f64 / (1 << 20) as f64)
    }

    pub fn memory(&self, bytes: usize) -> usize {
        self.memory_base + self.memory_per_byte * bytes
    }
}

/// What a passing case did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub accepted: bool,
    pub cpu: Duration,
    pub peak: usize,
}

type Loaded = Result<Manifests, Vec<Problem>>;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One load, with its CPU time and peak heap; a panic is an `Err` with its message.
fn measured(case: &Case) -> Result<(Loaded, Duration, usize), String> {
    let files = case.source_files();
    let limits = Limits::default();
    let base = alloc::start();
    let started = thread_cpu();
    let result = panics::quietly(|| catch_unwind(AssertUnwindSafe(|| load_files(&files, &limits))));
    let cpu = thread_cpu().saturating_sub(started);
    let peak = alloc::peak_since(base);
    match result {
        Ok(loaded) => Ok((loaded, cpu, peak)),
        Err(_) => Err(format!("load_files panicked: {}", panics::last())),
    }
}

pub fn check(case: &Case, bounds: &Bounds) -> Result<Outcome, String> {
    let size = case.len();
    let (first, mut cpu, peak) = measured(case)?;
    problems_are_placed(case, &first)?;
    let (second, again, _) = measured(case)?;
    if first != second {
        return Err(format!(
            "not deterministic: first load gave {first:?}, second {second:?}"
        ));
    }
    cpu = cpu.min(again);
    if cpu > bounds.cpu(size) {
        cpu = cpu.min(measured(case)?.1);
    }
    if cpu > bounds.cpu(size) {
        return Err(format!(
            "too slow: {cpu:?} of CPU for {size} bytes, over the bound of {:?}",
            bounds.cpu(size)
        ));
    }
    if peak > bounds.memory(size) {
        return Err(format!(
            "too much memory: a peak of {peak} heap bytes for {size} bytes, over the bound of {}",
            bounds.memory(size)
        ));
    }
    if let Ok(manifests) = &first {
        survives_the_raft_log(manifests)?;
        means_the_same_rewritten(case, manifests)?;
    }
    Ok(Outcome {
        accepted: first.is_ok(),
        cpu,
        peak,
    })
}

/// The lengths in bytes of the lines of `bytes`, broken at `\n` only (serde_json's count) or
/// also at a lone `\r` (YAML's). A position is within the file if it is under either.
fn line_lengths(bytes: &[u8], lone_cr_breaks: bool) -> Vec<usize> {
    let mut lengths = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                lengths.push(0);
                i += 1;
            }
            b'\n' => lengths.push(0),
            b'\r' if lone_cr_breaks => lengths.push(0),
            _ => *lengths.last_mut().expect("never empty") += 1,
        }
        i += 1;
    }
    lengths
}

/// Whether 1-based `line` and `column` lie within a file of these lines (a column may point
/// just past a line's end).
fn within(lines: &[usize], line: u32, column: Option<u32>) -> bool {
    let Some(width) = (line as usize).checked_sub(1).and_then(|i| lines.get(i)) else {
        return false;
    };
    column.is_none_or(|c| c >= 1 && c as usize <= width + 1)
}

fn problems_are_placed(case: &Case, loaded: &Loaded) -> Result<(), String> {
    let Err(problems) = loaded else {
        return Ok(());
    };
    if problems.is_empty() {
        return Err("rejected with no problem listed".into());
    }
    let lines: Vec<[Vec<usize>; 2]> = case
        .files
        .iter()
        .map(|(_, b)| [line_lengths(b, false), line_lengths(b, true)])
        .collect();
    for p in problems {
        let Some(i) = case.files.iter().position(|(path, _)| *path == p.file) else {
            return Err(format!("problem names no file of the tree: {p:?}"));
        };
        let lines = &lines[i];
        if p.message.is_empty() {
            return Err(format!("problem without a message: {p:?}"));
        }
        if p.column.is_some() && p.line.is_none() {
            return Err(format!("problem with a column but no line: {p:?}"));
        }
        let Some(line) = p.line else { continue };
        if !lines.iter().any(|l| within(l, line, p.column)) {
            return Err(format!(
                "problem placed outside its file of {} lines: {p:?}",
                lines[1].len()
            ));
        }
    }
    Ok(())
}

/// The desired state goes into the Raft log as JSON and must come back equal.
fn survives_the_raft_log(manifests: &Manifests) -> Result<(), String> {
    let json = serde_json::to_vec(manifests).map_err(|e| format!("cannot encode: {e}"))?;
    let back: Manifests = serde_json::from_slice(&json)
        .map_err(|e| format!("cannot decode what was encoded: {e}"))?;
    if &back != manifests {
        return Err(format!(
            "changed through JSON: {manifests:?} came back as {back:?}"
        ));
    }
    Ok(())
}

fn depth(n: &Node) -> usize {
    match &n.value {
        Value::Scalar(..) => 0,
        Value::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
    }
}

/// The node as one flow-style line: strings double-quoted, other scalars as written.
fn flow(n: &Node, out: &mut String) {
    match &n.value {
        Value::Scalar(s, Kind::Str) => out.push_str(&double_quoted(s)),
        Value::Scalar(_, Kind::Null) => out.push('~'),
        Value::Scalar(s, _) => out.push_str(s),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let complex = !matches!(k.value, Value::Scalar(..));
                if complex {
                    out.push_str("? ");
                }
                flow(k, out);
                out.push_str(if complex { " : " } else { ": " });
                flow(v, out);
            }
            out.push('}');
        }
    }
}

fn without_origins(mut m: Manifests) -> Manifests {
    for p in &mut m.pods {
        p.origin = Default::default();
    }
    for r in &mut m.replication_controllers {
        r.origin = Default::default();
    }
    for s in &mut m.services {
        s.origin = Default::default();
    }
    m
}

fn means_the_same_rewritten(case: &Case, manifests: &Manifests) -> Result<(), String> {
    let mut files = Vec::new();
    for (path, bytes) in &case.files {
        let text = std::str::from_utf8(bytes).map_err(|_| "accepted a file that is not UTF-8")?;
        let docs = yaml::parse(text).map_err(|e| format!("accepted, yet does not parse: {e:?}"))?;
        let mut out = String::new();
        for doc in docs.iter().flatten() {
            if depth(doc) >= MAX_DEPTH {
                return Ok(());
            }
            out.push_str("--- ");
            flow(doc, &mut out);
            out.push('\n');
        }
        if out.len() as u64 > DEFAULT_MAX_FILE_BYTES {
            return Ok(());
        }
        files.push((format!("{path}.rewritten.yaml"), out.into_bytes()));
    }
    let rewritten = Case { files };
    let (loaded, _, _) = measured(&rewritten)?;
    match loaded {
        Ok(again) if without_origins(again.clone()) == without_origins(manifests.clone()) => Ok(()),
        Ok(again) => Err(format!(
            "re-written in flow style it means something else: {manifests:?} became {again:?}; re-written: {rewritten:?}"
        )),
        Err(problems) => Err(format!(
            "accepted, but refused once re-written in flow style: {problems:?}; re-written: {rewritten:?}"
        )),
    }
}
