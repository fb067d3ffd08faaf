//! Benchmark: the service proxy against going direct, with `wrk` (Debian's `wrk` package).
//!
//! A small axum HTTP server (one short body, keep-alive) is the backend, on its own Tokio
//! runtime; the proxy runs on another runtime in the same process, forwarding 127.0.0.2:<port>
//! to it. For each scenario `wrk` runs once straight at the backend and once through the
//! proxy, alternating, `BENCH_ROUNDS` times (default 3) for `BENCH_SECONDS` (default 5) each
//! after a 1 s warm-up; the tables show medians over rounds, so a burst of load from something
//! else on the machine skews one round, not the result:
//!
//! - `keep-alive, 1 connection`: the added latency of one request/response through the proxy;
//! - `keep-alive, 32 connections`: throughput when the relay is the work;
//! - `new connection per request, 32`: `Connection: close`, so every request pays the proxy's
//!   accept, endpoint choice and connect as well.
//!
//! Besides wrk's requests/s and latency percentiles, CPU time per request says where the time
//! goes: wrk's (`getrusage` of reaped children), the backend's and the proxy's worker threads
//! (from /proc/self/task/*/stat, by thread name). All parts share the machine's cores, so
//! "through the proxy" also pays for the cores the proxy takes from wrk and the backend.
//!
//! Run with `cargo bench --bench proxy`; figures are recorded in BENCHMARKS.md. Knobs:
//! `BENCH_SECONDS`, `BENCH_ROUNDS`, `BENCH_PROXY_THREADS` and `BENCH_BACKEND_THREADS` (worker
//! threads of the two runtimes; default one per core).

use std::net::SocketAddr;
use std::process::Command;

use anyhow::{bail, Context, Result};
use berth::service::proxy::{PortSpec, Proxy, ServiceSpec};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const PROXY_THREAD: &str = "berth-proxy";
const BACKEND_THREAD: &str = "bench-backend";

struct Scenario {
    name: &'static str,
    connections: u32,
    close: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "keep-alive, 1 connection",
        connections: 1,
        close: false,
    },
    Scenario {
        name: "keep-alive, 32 connections",
        connections: 32,
        close: false,
    },
    Scenario {
        name: "new connection per request, 32",
        connections: 32,
        close: true,
    },
];

/// What one wrk run reports, with the CPU time each part spent during it.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// CPU seconds of wrk, of the backend's threads and of the proxy's threads.
    cpu: [f64; 3],
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and must not spend a
    // minute here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("proxy: a benchmark; run it with `cargo bench --bench proxy`");
        return Ok(());
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed: apt-get install -y wrk");
    }
    let seconds = env_count("BENCH_SECONDS")?.unwrap_or(5) as u64;
    let rounds = env_count("BENCH_ROUNDS")?.unwrap_or(3).max(1);
    let backend_rt = runtime(BACKEND_THREAD, env_count("BENCH_BACKEND_THREADS")?)?;
    let proxy_threads = env_count("BENCH_PROXY_THREADS")?;
    let proxy_rt = runtime(PROXY_THREAD, proxy_threads)?;
    let backend = backend_rt.block_on(start_backend())?;
    let proxy = Proxy::new();
    let shutdown = CancellationToken::new();
    let listen: SocketAddr = "127.0.0.2:0".parse()?;
    let service =
        ServiceSpec::new("bench/web").port(PortSpec::tcp("http", [listen]).endpoints([backend]));
    let proxied = proxy_rt.block_on(async {
        let report = proxy.apply(std::slice::from_ref(&service));
        report
            .local_addr(listen, berth::manifest::Protocol::Tcp)
            .with_context(|| format!("proxy listener not bound: {report:?}"))
    })?;
    let running = proxy_rt.spawn({
        let (proxy, shutdown) = (proxy.clone(), shutdown.clone());
        async move { proxy.run(shutdown).await }
    });

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "backend {backend}, proxy {proxied}; {cores} cores, {} proxy worker threads; \
         {rounds} rounds of {seconds} s per path and scenario, direct and proxy alternating",
        proxy_threads.unwrap_or(cores)
    );
    println!();
    println!("| scenario | path | requests/s | p50 | p99 | errors | CPU µs per request: wrk / backend / proxy |");
    println!("|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    for s in &SCENARIOS {
        let (mut direct, mut through) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            direct.push(wrk(backend, s, seconds)?);
            through.push(wrk(proxied, s, seconds)?);
        }
        let (direct, through) = (median(&direct), median(&through));
        for (path, r) in [("direct", &direct), ("proxy", &through)] {
            let per = |cpu: f64| cpu * 1e6 / r.requests.max(1) as f64;
            println!(
                "| {} | {path} | {:.0} | {:.3} ms | {:.3} ms | {} | {:.1} / {:.1} / {:.1} |",
                s.name,
                r.per_second,
                r.p50_ms,
                r.p99_ms,
                r.errors,
                per(r.cpu[0]),
                per(r.cpu[1]),
                per(r.cpu[2]),
            );
        }
        summary.push((s.name, direct, through));
    }
    println!();
    println!("| scenario | throughput, proxy / direct | added p50 | added p99 |");
    println!("|---|---|---|---|");
    for (name, direct, through) in summary {
        println!(
            "| {name} | {:.0} % | {:+.3} ms | {:+.3} ms |",
            100.0 * through.per_second / direct.per_second,
            through.p50_ms - direct.p50_ms,
            through.p99_ms - direct.p99_ms
        );
    }
    let status = proxy.status();
    if let Some(l) = status
        .port("bench/web", "http")
        .and_then(|p| p.listener(listen))
    {
        println!();
        println!(
            "proxy counters: {} connections, {} failed connects, {} without endpoint, {} MB to clients",
            l.counters.connections,
            l.counters.failed_connects,
            l.counters.no_endpoint,
            l.counters.bytes_to_client / 1_000_000
        );
    }
    shutdown.cancel();
    proxy_rt.block_on(running)?;
    Ok(())
}

/// The median of each figure over rounds (requests/s, p50, p99 each on its own); requests,
/// errors and CPU are summed, so CPU per request is over all rounds.
fn median(runs: &[Run]) -> Run {
    let mid = |f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut out = Run {
        per_second: mid(|r| r.per_second),
        p50_ms: mid(|r| r.p50_ms),
        p99_ms: mid(|r| r.p99_ms),
        ..Run::default()
    };
    for r in runs {
        out.requests += r.requests;
        out.errors += r.errors;
        for i in 0..3 {
            out.cpu[i] += r.cpu[i];
        }
    }
    out
}

/// A multi-threaded runtime with `workers` threads (default: one per core), named so their
/// CPU time can be read apart.
fn runtime(name: &str, workers: Option<usize>) -> Result<Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    Ok(builder.thread_name(name).enable_all().build()?)
}

/// A count from the environment, if set.
fn env_count(name: &str) -> Result<Option<usize>> {
    match std::env::var(name) {
        Ok(s) => Ok(Some(s.parse().with_context(|| format!("{name}={s}"))?)),
        Err(_) => Ok(None),
    }
}

async fn start_backend() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { "hello from the backend\n" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// One wrk run (after a 1 s warm-up) with the CPU time of each part over it.
fn wrk(addr: SocketAddr, s: &Scenario, seconds: u64) -> Result<Run> {
    let url = format!("http://{addr}/");
    let mut args = vec![
        "-t1".to_string(),
        format!("-c{}", s.connections),
        "--latency".into(),
        "--timeout".into(),
        "5s".into(),
    ];
    if s.close {
        args.extend(["-H".into(), "Connection: close".into()]);
    }
    let run = |d: u64| -> Result<String> {
        let out = Command::new("wrk")
            .args(&args)
            .arg(format!("-d{d}s"))
            .arg(&url)
            .output()
            .context("running wrk")?;
        if !out.status.success() {
            bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    run(1)?;
    let before = cpu()?;
    let text = run(seconds)?;
    let after = cpu()?;
    let mut r = parse(&text).with_context(|| format!("reading wrk's output:\n{text}"))?;
    for i in 0..3 {
        r.cpu[i] = after[i] - before[i];
    }
    Ok(r)
}

/// CPU seconds so far of wrk (reaped children), the backend's and the proxy's threads.
fn cpu() -> Result<[f64; 3]> {
    // SAFETY: getrusage only writes the struct it is given.
    let children = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            bail!("getrusage: {}", std::io::Error::last_os_error());
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    };
    Ok([
        children,
        thread_cpu(BACKEND_THREAD)?,
        thread_cpu(PROXY_THREAD)?,
    ])
}

fn parse(text: &str) -> Result<Run> {
    let mut run = Run::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => run.per_second = n.parse()?,
            [n, "requests", "in", ..] => run.requests = n.parse()?,
            ["50%", t] => run.p50_ms = millis(t)?,
            ["99%", t] => run.p99_ms = millis(t)?,
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                for w in rest {
                    if let Ok(n) = w.trim_end_matches(',').parse::<u64>() {
                        run.errors += n;
                    }
                }
            }
            _ => {}
        }
    }
    if run.requests == 0 {
        bail!("no requests counted");
    }
    Ok(run)
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`.
fn millis(t: &str) -> Result<f64> {
    let (number, factor) = if let Some(n) = t.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e3)
    } else {
        bail!("unknown duration {t}");
    };
    Ok(number.parse::<f64>()? * factor)
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> Result<f64> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task")? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        // After "pid (comm) ": state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        ticks += field(14).unwrap_or(0) + field(15).unwrap_or(0);
    }
    // The kernel's USER_HZ is 100 on Linux.
    Ok(ticks as f64 / 100.0)
}
