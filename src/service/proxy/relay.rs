//! Copying one TCP connection both ways, with half-close, an idle timeout and live counters.
//!
//! Not `tokio::io::copy_bidirectional`: it has no idle timeout and counts bytes only when it
//! returns, and the status API wants a long download's bytes while it runs. Each direction is
//! a plain read/write loop over its own 16 KiB buffer, so a connection's memory is fixed and a
//! slow reader stalls only its own connection (the writer waits; nothing is queued).
//!
//! Half-close: when one side ends its sending (FIN), the other side's sending is shut down
//! too and the opposite direction keeps flowing until it ends as well, so a client that sends
//! a request and then `shutdown(Write)` still gets the whole response. An error on either side
//! (a reset, say) resets both, as the connection would be without a proxy in the middle.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::counters::Meters;

/// Per direction. Large enough that bulk transfers move in few system calls, small enough
/// that `max_connections` of them are a bounded amount of memory.
const BUFFER: usize = 16 * 1024;

/// How a relayed connection ended.
#[derive(Debug)]
pub(super) enum End {
    /// Both sides finished sending.
    Closed,
    /// Nothing moved in either direction for the idle timeout.
    Idle,
    /// The proxy is shutting down.
    Shutdown,
    /// A side failed; both were reset.
    Failed(io::Error),
}

/// Relays until both directions end, an error, the idle timeout or shutdown.
pub(super) async fn relay(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    meters: &Meters,
    idle: Duration,
    shutdown: &CancellationToken,
) -> End {
    let activity = AtomicBool::new(false);
    let end = {
        let (client_read, client_write) = client.split();
        let (backend_read, backend_write) = backend.split();
        let up = pipe(client_read, backend_write, &activity, |n| {
            meters.to_endpoint(n)
        });
        let down = pipe(backend_read, client_write, &activity, |n| {
            meters.to_client(n)
        });
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => match r {
                Ok(_) => End::Closed,
                Err(e) => End::Failed(e),
            },
            () = idle_watch(&activity, idle) => End::Idle,
            () = shutdown.cancelled() => End::Shutdown,
        }
    };
    if matches!(end, End::Failed(_)) {
        let _ = client.set_zero_linger();
        let _ = backend.set_zero_linger();
    }
    end
}

async fn pipe<R, W>(
    mut from: R,
    mut to: W,
    activity: &AtomicBool,
    count: impl Fn(usize),
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            // The other side may already be gone entirely; its own direction reports that.
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        count(n);
        activity.store(true, Relaxed);
    }
}

/// Returns once nothing has set `activity` for `idle`, give or take a quarter: it wakes four
/// times per period rather than on every byte, so the data path pays one relaxed store per
/// write and no timer reset.
pub(super) async fn idle_watch(activity: &AtomicBool, idle: Duration) {
    let tick = (idle / 4).max(Duration::from_millis(1));
    let mut quiet = 0;
    loop {
        tokio::time::sleep(tick).await;
        if activity.swap(false, Relaxed) {
            quiet = 0;
        } else {
            quiet += 1;
            if quiet >= 4 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_watch_ends_after_the_idle_time_and_activity_postpones_it() {
        let activity = AtomicBool::new(false);
        let start = tokio::time::Instant::now();
        idle_watch(&activity, Duration::from_secs(40)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(40));

        let start = tokio::time::Instant::now();
        let watch = idle_watch(&activity, Duration::from_secs(40));
        let poke = async {
            tokio::time::sleep(Duration::from_secs(25)).await;
            activity.store(true, Relaxed);
            std::future::pending::<()>().await
        };
        tokio::select! { () = watch => {}, () = poke => {} }
        // Quiet from 25 s: the tick at 30 s sees the poke, four quiet ticks follow.
        assert_eq!(start.elapsed(), Duration::from_secs(70));
    }
}
