//! `berth-sim-docker`: a simulated Docker engine serving thousands of hosts from one process,
//! for berth's scale benchmarks (never part of berth or its release: it is an example target
//! built from the test tree). See `sim/mod.rs` for what it simulates and `sim/control.rs` for
//! the control socket.
//!
//! ```text
//! cargo run --release --example berth-sim-docker -- --dir /tmp/sim --hosts 5000
//! berth serve --node host-0000=unix:///tmp/sim/host-0000.sock --node ...
//! curl --unix-socket /tmp/sim/control.sock -X POST http://sim/hosts/7/down
//! ```

mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use sim::engine::HostInfo;
use sim::{Sim, SimConfig};

/// A simulated Docker engine (API 1.41) for many hosts: one unix socket per host.
#[derive(Debug, Parser)]
#[command(name = "berth-sim-docker")]
struct Args {
    /// Directory for the sockets: host-0000.sock, ... and control.sock.
    #[arg(long)]
    dir: PathBuf,
    /// Number of hosts.
    #[arg(long, default_value_t = 1)]
    hosts: usize,
    /// CPUs each host reports (`NCPU`).
    #[arg(long, default_value_t = 4)]
    ncpu: u32,
    /// Memory each host reports, in MiB (`MemTotal`).
    #[arg(long, default_value_t = 8192)]
    mem_mib: u64,
    /// Architecture each host reports (`x86_64` or `aarch64`).
    #[arg(long, default_value = "x86_64")]
    architecture: String,
    /// How long a pull takes, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pull_delay_ms: u64,
    /// First delay of a restart policy's backoff, in milliseconds (Docker: 100).
    #[arg(long, default_value_t = 100)]
    restart_backoff_ms: u64,
    /// An image the simulated registry has (repeat); berth-test/busybox:1 always is.
    #[arg(long = "registry-image")]
    registry: Vec<String>,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.hosts == 0 {
        eprintln!("berth-sim-docker: --hosts must be at least 1");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Per host: its listener, a client's event stream, and a request in flight (bollard
    // keeps no idle connections to a unix socket: every request is a new connection).
    let wanted = (args.hosts as u64) * 3 + 1024;
    match raise_nofile(wanted) {
        Ok(got) if got >= wanted => {
            eprintln!("berth-sim-docker: RLIMIT_NOFILE {got} (needs {wanted})")
        }
        Ok(got) => eprintln!(
            "berth-sim-docker: RLIMIT_NOFILE is {got}, below the {wanted} that {} hosts may \
             need: connections past it will be refused",
            args.hosts
        ),
        Err(e) => eprintln!("berth-sim-docker: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(n.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth-sim-docker: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let config = SimConfig {
        info: HostInfo {
            ncpu: args.ncpu,
            mem_total: args.mem_mib << 20,
            architecture: args.architecture,
            ..HostInfo::default()
        },
        pull_delay: Duration::from_millis(args.pull_delay_ms),
        restart_base: Duration::from_millis(args.restart_backoff_ms),
        registry: args.registry,
        ..SimConfig::new(args.dir, args.hosts)
    };
    runtime.block_on(async move {
        let sim = match Sim::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("berth-sim-docker: {e}");
                return ExitCode::from(1);
            }
        };
        let last = sim.hosts().len().saturating_sub(1);
        eprintln!(
            "berth-sim-docker: {} simulated hosts on {} ... {}; control on {}; RSS {} KiB",
            sim.hosts().len(),
            sim.endpoint(0),
            sim.host(last).socket.display(),
            sim.control_socket().display(),
            sim::control::rss_kib().unwrap_or(0),
        );
        wait_for_signal().await;
        eprintln!("berth-sim-docker: stopping");
        sim.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Raises the open-file limit towards `wanted`: the hard limit too when allowed (root outside
/// a container that withholds CAP_SYS_RESOURCE), else the soft limit up to the hard one.
/// Returns the soft limit in force.
fn raise_nofile(wanted: u64) -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(limit.rlim_max);
    let target = wanted.min(ceiling);
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max.max(target),
    };
    // SAFETY: setrlimit reads the struct; failure leaves the limits unchanged.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(target);
    }
    let soft_only = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft_only) } == 0 {
        return Ok(limit.rlim_max);
    }
    Err(std::io::Error::last_os_error())
}
