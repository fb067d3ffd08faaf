use std::process::ExitCode;

use clap::Parser;

use berth::cli::{client, serve, validate, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Validate(args) = &cli.command {
        return validate::run(args);
    }
    limit_malloc_arenas();
    // Both rustls crypto backends are compiled in (bollard's and gix's TLS), so none is chosen
    // by default: pick one before any TLS client is built (https:// Docker and Git endpoints).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Status(args) => client::status(&args).await,
            Command::Get(args) => client::get(&args).await,
            Command::Describe(args) => client::describe(&args).await,
            Command::Rollout(args) => berth::cli::rollout::run(&args).await,
            Command::Cluster(args) => berth::cli::cluster::run(&args).await,
            Command::Validate(_) => unreachable!("handled above"),
        }
    })
}

/// Caps glibc's malloc arenas at one per core (two at least), before any thread starts.
///
/// glibc gives threads up to eight arenas per core, and memory freed in one arena is not reused
/// by another. At 5,000 hosts the runtime's workers and blocking threads spread the bursts of a
/// first look over many arenas. The cap lowered the peak a little (723 to 680-688 MiB); the
/// resident size after a pass varies more from run to run than the cap moves it (BENCHMARKS.md,
/// "At c3cd2ac"). An operator's `MALLOC_ARENA_MAX` wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a tunable of glibc's allocator; called before any other
        // thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
