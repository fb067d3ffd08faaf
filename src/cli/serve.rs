//! `berth serve`: run a controller until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::controller::{error_chain, Controller, ServeArgs};

pub async fn run(args: ServeArgs) -> ExitCode {
    // Everything berth writes (Raft log, snapshots, Git mirror) is for this user alone.
    // SAFETY: umask only swaps the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let config = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth serve: {e}");
            return ExitCode::from(2);
        }
    };
    super::fd_limit::raise_and_say(config.nodes.len());
    let listen = config.listen;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("berth serve: --listen {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    // Bound before Raft starts, so that members forming the cluster can reach this one.
    let raft_listener = match config.raft_listen {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("berth serve: --raft-listen {addr}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let ctl = match Controller::open(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth serve: {}", error_chain(&e));
            return ExitCode::from(1);
        }
    };
    let addr = listener
        .local_addr()
        .map_or(listen.to_string(), |a| a.to_string());
    tracing::info!("status API on http://{addr}/api/v1/status");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    match ctl.clone().run(listener, raft_listener, shutdown).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth serve: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// First SIGTERM or SIGINT: stop taking work and drain. The loops finish their current pass;
/// every Docker step is idempotent, so a pass cut short by a second signal is simply redone.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop berth with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}
