//! The service proxy over real TCP and UDP on loopback. Every 127.x.y.z address is local, so
//! 127.0.0.2, 127.0.0.3 ... stand for distinct cluster IPs and client addresses with no setup;
//! listeners and backends bind port 0 so tests never collide.
//!
//! Backends say who they are: an HTTP server answers its name, a TCP "tag echo" sends its name
//! on connect and then echoes, a UDP echo prefixes its name. So each test can tell which
//! endpoint the proxy chose from the client side alone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use berth::manifest::Protocol;
use berth::service::proxy::{
    CounterSnapshot, ListenError, ListenOutcome, ListenerStatus, PortSpec, PortStatus, Proxy,
    ProxyConfig, ServiceSpec,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Backends and clients

fn at(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("test address"), port)
}

/// An HTTP server on `ip` answering `name` to every request.
async fn http_backend(name: &'static str, ip: &str) -> Result<SocketAddr> {
    let listener = TcpListener::bind(at(ip, 0)).await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { name }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A TCP server on `ip` that sends `name\n` on connect, then echoes.
async fn tag_echo(name: &'static str, ip: &str) -> Result<SocketAddr> {
    let listener = TcpListener::bind(at(ip, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                s.write_all(format!("{name}\n").as_bytes()).await?;
                let (mut r, mut w) = s.split();
                tokio::io::copy(&mut r, &mut w).await?;
                anyhow::Ok(())
            });
        }
    });
    Ok(addr)
}

/// A UDP server on `ip` that answers each datagram with `name:` and the datagram.
async fn udp_echo(name: &'static str, ip: &str) -> Result<SocketAddr> {
    let socket = UdpSocket::bind(at(ip, 0)).await?;
    let addr = socket.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            socket.send_to(&reply, from).await?;
        }
        anyhow::Ok(())
    });
    Ok(addr)
}

/// An address where nothing listens: connections to it are refused.
async fn closed_port(ip: &str) -> Result<SocketAddr> {
    let listener = TcpListener::bind(at(ip, 0)).await?;
    Ok(listener.local_addr()?)
}

/// One HTTP/1.1 request on a new connection; the response body.
async fn http_get(addr: SocketAddr) -> Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    timeout(WAIT, s.read_to_string(&mut response)).await??;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP head")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("unexpected response: {head}");
    }
    Ok(body.to_string())
}

/// A connection through the proxy to a tag echo, from client address `from`.
struct Tagged {
    name: String,
    stream: BufReader<TcpStream>,
}

impl Tagged {
    async fn open(from: &str, to: SocketAddr) -> Result<Tagged> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(at(from, 0))?;
        let stream = socket.connect(to).await?;
        let mut stream = BufReader::new(stream);
        let mut name = String::new();
        timeout(WAIT, stream.read_line(&mut name)).await??;
        if name.is_empty() {
            bail!("closed before the backend's name");
        }
        Ok(Tagged {
            name: name.trim_end().to_string(),
            stream,
        })
    }

    /// Sends `text` and reads it back.
    async fn echo(&mut self, text: &str) -> Result<()> {
        self.stream.get_mut().write_all(text.as_bytes()).await?;
        let mut back = vec![0u8; text.len()];
        timeout(WAIT, self.stream.read_exact(&mut back)).await??;
        assert_eq!(String::from_utf8_lossy(&back), text);
        Ok(())
    }
}

/// The name of the backend behind a new connection from `from`.
async fn backend_of(from: &str, to: SocketAddr) -> Result<String> {
    Ok(Tagged::open(from, to).await?.name)
}

// ---------------------------------------------------------------------------------------------
// The proxy under test

struct Running {
    proxy: Proxy,
    shutdown: CancellationToken,
    run: JoinHandle<()>,
}

fn start(config: ProxyConfig) -> Running {
    let proxy = Proxy::with_config(config);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (proxy, shutdown) = (proxy.clone(), shutdown.clone());
        async move { proxy.run(shutdown).await }
    });
    Running {
        proxy,
        shutdown,
        run,
    }
}

fn quick() -> ProxyConfig {
    ProxyConfig {
        connect_timeout: Duration::from_millis(500),
        udp_idle_timeout: Duration::from_millis(300),
        rebind_interval: Duration::from_millis(50),
        ..ProxyConfig::default()
    }
}

fn web(listen: SocketAddr, endpoints: &[SocketAddr]) -> ServiceSpec {
    ServiceSpec::new("default/web")
        .port(PortSpec::tcp("http", [listen]).endpoints(endpoints.iter().copied()))
}

impl Running {
    /// Applies `services` and returns where `listen` got bound.
    fn apply(&self, services: &[ServiceSpec], listen: SocketAddr) -> Result<SocketAddr> {
        let report = self.proxy.apply(services);
        report
            .local_addr(listen, Protocol::Tcp)
            .or_else(|| report.local_addr(listen, Protocol::Udp))
            .with_context(|| format!("{listen} not bound: {report:?}"))
    }

    fn port(&self, service: &str, port: &str) -> Result<PortStatus> {
        self.proxy
            .status()
            .port(service, port)
            .cloned()
            .with_context(|| format!("no status for {service} port {port}"))
    }

    /// The listener `listen`'s status (`None` when it is unknown), of any Service port.
    fn listener(&self, listen: SocketAddr) -> Option<ListenerStatus> {
        let status = self.proxy.status();
        status
            .ports
            .iter()
            .find_map(|p| p.listener(listen).cloned())
    }

    /// The listener `listen`'s counters (zero when it is unknown).
    fn counters(&self, listen: SocketAddr) -> CounterSnapshot {
        self.listener(listen)
            .map(|l| l.counters)
            .unwrap_or_default()
    }

    async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        timeout(WAIT, self.run).await??;
        Ok(())
    }
}

/// Polls `check` every 20 ms until it holds, for at most [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > WAIT {
            bail!("not within {WAIT:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TCP: choosing endpoints

#[tokio::test]
async fn requests_through_a_listener_are_spread_evenly_over_three_http_backends() -> Result<()> {
    let p = start(quick());
    let backends = [
        http_backend("one", "127.0.0.1").await?,
        http_backend("two", "127.0.0.1").await?,
        http_backend("three", "127.0.0.1").await?,
    ];
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &backends)], listen)?;
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..30 {
        *seen.entry(http_get(addr).await?).or_default() += 1;
    }
    // Sequential connections, round-robin: exactly a third each.
    assert_eq!(
        seen,
        BTreeMap::from([("one".into(), 10), ("three".into(), 10), ("two".into(), 10)])
    );
    let status = p.port("default/web", "http")?;
    let listener = status.listener(listen).context("listener status")?;
    assert_eq!(listener.counters.connections, 30);
    assert!(listener.counters.bytes_to_client > 0 && listener.counters.bytes_to_endpoint > 0);
    for b in backends {
        assert_eq!(status.endpoint(b).context("endpoint")?.connections, 10);
    }
    p.stop().await
}

#[tokio::test]
async fn client_ip_affinity_keeps_a_client_on_one_backend_until_it_is_idle_for_the_timeout(
) -> Result<()> {
    let p = start(quick());
    let backends = [
        tag_echo("a", "127.0.0.1").await?,
        tag_echo("b", "127.0.0.1").await?,
        tag_echo("c", "127.0.0.1").await?,
    ];
    let listen = at("127.0.0.2", 0);
    let affinity = Duration::from_millis(400);
    let addr = p.apply(&[web(listen, &backends).affinity(affinity)], listen)?;
    let first = backend_of("127.0.0.21", addr).await?;
    for _ in 0..6 {
        assert_eq!(backend_of("127.0.0.21", addr).await?, first);
        // Another client in between moves the round-robin on, not the sticky client.
        backend_of("127.0.0.22", addr).await?;
    }
    tokio::time::sleep(affinity + Duration::from_millis(200)).await;
    // Forgotten: placed afresh by round-robin, which has moved on since its first choice.
    let after = backend_of("127.0.0.21", addr).await?;
    assert_ne!(after, first);
    p.stop().await
}

#[tokio::test]
async fn an_endpoint_that_refuses_connections_is_skipped_and_every_request_succeeds() -> Result<()>
{
    let p = start(quick());
    let dead = closed_port("127.0.0.1").await?;
    let live = [
        http_backend("one", "127.0.0.1").await?,
        http_backend("two", "127.0.0.1").await?,
    ];
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[dead, live[0], live[1]])], listen)?;
    for _ in 0..30 {
        let body = http_get(addr).await?;
        assert!(body == "one" || body == "two", "{body}");
    }
    let status = p.port("default/web", "http")?;
    let dead_counters = status.endpoint(dead).context("dead endpoint")?;
    assert!(dead_counters.failed_connects >= 1);
    assert_eq!(dead_counters.connections, 0);
    let listener = status.listener(listen).context("listener")?;
    assert_eq!(
        (listener.counters.connections, listener.counters.no_endpoint),
        (30, 0)
    );
    p.stop().await
}

#[tokio::test]
async fn a_service_without_endpoints_resets_its_clients_at_once_and_counts_them() -> Result<()> {
    let p = start(quick());
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[])], listen)?;
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    let mut buf = [0u8; 1];
    let read = timeout(WAIT, s.read(&mut buf)).await?;
    assert!(!matches!(read, Ok(n) if n > 0), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let status = p.port("default/web", "http")?;
    assert_eq!(
        status
            .listener(listen)
            .context("listener")?
            .counters
            .no_endpoint,
        1
    );
    p.stop().await
}

// ---------------------------------------------------------------------------------------------
// TCP: endpoint changes and established connections

#[tokio::test]
async fn a_connection_survives_an_unrelated_endpoint_change_and_the_removal_of_its_own(
) -> Result<()> {
    let p = start(quick());
    let (a, b, c) = (
        tag_echo("a", "127.0.0.1").await?,
        tag_echo("b", "127.0.0.1").await?,
        tag_echo("c", "127.0.0.1").await?,
    );
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[a])], listen)?;
    let mut conn = Tagged::open("127.0.0.1", addr).await?;
    assert_eq!(conn.name, "a");
    conn.echo("before").await?;
    p.apply(&[web(listen, &[a, b])], listen)?;
    conn.echo("after b was added").await?;
    p.apply(&[web(listen, &[c])], listen)?;
    conn.echo("after a itself was removed").await?;
    assert_eq!(backend_of("127.0.0.1", addr).await?, "c");
    conn.echo("still").await?;
    p.stop().await
}

#[tokio::test]
async fn a_new_endpoint_list_takes_effect_for_the_very_next_connection() -> Result<()> {
    let p = start(quick());
    let (a, b) = (
        tag_echo("a", "127.0.0.1").await?,
        tag_echo("b", "127.0.0.1").await?,
    );
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[a])], listen)?;
    assert_eq!(backend_of("127.0.0.1", addr).await?, "a");
    let report = p.proxy.apply(&[web(listen, &[b])]);
    assert_eq!(report.listeners.len(), 1);
    assert_eq!(
        report.listeners[0].outcome,
        ListenOutcome::Kept(addr),
        "an unchanged listener is not rebound"
    );
    assert!(report.closed.is_empty());
    assert_eq!(backend_of("127.0.0.1", addr).await?, "b");
    assert_eq!(backend_of("127.0.0.1", addr).await?, "b");
    p.stop().await
}

#[tokio::test]
async fn half_closing_the_request_side_still_delivers_the_whole_response() -> Result<()> {
    let p = start(quick());
    // Reads the request to its end, then answers how long it was.
    let server = TcpListener::bind(at("127.0.0.1", 0)).await?;
    let backend = server.local_addr()?;
    tokio::spawn(async move {
        let (mut s, _) = server.accept().await?;
        let mut request = Vec::new();
        s.read_to_end(&mut request).await?;
        s.write_all(format!("got {} bytes", request.len()).as_bytes())
            .await?;
        anyhow::Ok(())
    });
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[backend])], listen)?;
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&[7u8; 100_000]).await?;
    s.shutdown().await?;
    let mut answer = String::new();
    timeout(WAIT, s.read_to_string(&mut answer)).await??;
    assert_eq!(answer, "got 100000 bytes");
    p.stop().await
}

#[tokio::test]
async fn a_connection_silent_in_both_directions_for_the_idle_timeout_is_closed() -> Result<()> {
    let p = start(ProxyConfig {
        tcp_idle_timeout: Duration::from_millis(300),
        ..quick()
    });
    let backend = tag_echo("a", "127.0.0.1").await?;
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[backend])], listen)?;
    let mut conn = Tagged::open("127.0.0.1", addr).await?;
    // Traffic keeps it open past the timeout...
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.echo("tick").await?;
    }
    // ...silence closes it, within the timeout and a quarter.
    let silent = Instant::now();
    let mut rest = Vec::new();
    timeout(WAIT, conn.stream.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty());
    let waited = silent.elapsed();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    assert!(
        waited < Duration::from_millis(300 * 5 / 4 + 200),
        "{waited:?}"
    );
    p.stop().await
}

// ---------------------------------------------------------------------------------------------
// Listeners

#[tokio::test]
async fn two_services_on_the_same_port_of_two_cluster_ips_do_not_clash() -> Result<()> {
    let p = start(quick());
    let (master, replica) = (
        tag_echo("master", "127.0.0.1").await?,
        tag_echo("replica", "127.0.0.1").await?,
    );
    // A port number free on the first cluster IP (and, most likely, on the second).
    let port = std::net::TcpListener::bind(at("127.0.0.2", 0))?
        .local_addr()?
        .port();
    let services = [
        ServiceSpec::new("default/redis-master")
            .port(PortSpec::tcp("6379", [at("127.0.0.2", port)]).endpoints([master])),
        ServiceSpec::new("default/redis-replica")
            .port(PortSpec::tcp("6379", [at("127.0.0.3", port)]).endpoints([replica])),
    ];
    let report = p.proxy.apply(&services);
    assert_eq!(report.failures().count(), 0, "{report:?}");
    assert_eq!(
        backend_of("127.0.0.1", at("127.0.0.2", port)).await?,
        "master"
    );
    assert_eq!(
        backend_of("127.0.0.1", at("127.0.0.3", port)).await?,
        "replica"
    );
    p.stop().await
}

#[tokio::test]
async fn a_port_freed_by_closing_a_listener_is_bound_right_after_by_the_same_apply() -> Result<()> {
    let p = start(ProxyConfig {
        rebind_interval: Duration::from_secs(3600),
        ..quick()
    });
    let backend = tag_echo("a", "127.0.0.1").await?;
    // Asked for as port 0, bound on some port P; then asked for as P: another listener (by
    // what was asked), the same socket address. The old one's loop holds P until it has seen
    // its close, so the bind in that apply finds P in use; the proxy retries at once.
    let any = at("127.0.0.2", 0);
    let bound = p.apply(&[web(any, &[backend])], any)?;
    let report = p.proxy.apply(&[web(bound, &[backend])]);
    assert_eq!(report.closed, vec![(any, Protocol::Tcp)]);
    eventually("the freed port is bound again", || {
        p.listener(bound).and_then(|l| l.bound) == Some(bound)
    })
    .await?;
    assert_eq!(backend_of("127.0.0.1", bound).await?, "a");
    p.stop().await
}

#[tokio::test]
async fn a_listener_whose_port_is_taken_reports_it_the_others_work_and_it_binds_once_free(
) -> Result<()> {
    let p = start(quick());
    let backend = tag_echo("a", "127.0.0.1").await?;
    let blocker = std::net::TcpListener::bind(at("127.0.0.4", 0))?;
    let taken = blocker.local_addr()?;
    let free = at("127.0.0.5", 0);
    let spec = ServiceSpec::new("default/web")
        .port(PortSpec::tcp("http", [taken, free]).endpoints([backend]));
    let report = p.proxy.apply(std::slice::from_ref(&spec));
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].outcome,
        ListenOutcome::Failed(ListenError::InUse {
            addr: taken,
            protocol: Protocol::Tcp
        })
    );
    assert_eq!(
        p.listener(taken).and_then(|l| l.error),
        Some(format!("TCP port {} on 127.0.0.4 is in use", taken.port()))
    );
    let working = report
        .local_addr(free, Protocol::Tcp)
        .context("free bound")?;
    assert_eq!(backend_of("127.0.0.1", working).await?, "a");

    drop(blocker);
    eventually("the freed port is bound by the retry", || {
        p.listener(taken).and_then(|l| l.bound) == Some(taken)
    })
    .await?;
    assert_eq!(backend_of("127.0.0.1", taken).await?, "a");
    p.stop().await
}

#[tokio::test]
async fn a_removed_listener_stops_accepting_while_its_connections_run_on() -> Result<()> {
    let p = start(quick());
    let backend = tag_echo("a", "127.0.0.1").await?;
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[backend])], listen)?;
    let mut conn = Tagged::open("127.0.0.1", addr).await?;
    let report = p.proxy.apply(&[]);
    assert_eq!(report.closed, vec![(listen, Protocol::Tcp)]);
    eventually("the closed listener refuses connections", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    })
    .await?;
    conn.echo("still here").await?;
    p.stop().await
}

#[tokio::test]
async fn connections_beyond_the_listeners_cap_are_refused_and_counted() -> Result<()> {
    let p = start(ProxyConfig {
        max_connections: 2,
        ..quick()
    });
    let backend = tag_echo("a", "127.0.0.1").await?;
    let listen = at("127.0.0.2", 0);
    let addr = p.apply(&[web(listen, &[backend])], listen)?;
    let first = Tagged::open("127.0.0.1", addr).await?;
    let _second = Tagged::open("127.0.0.1", addr).await?;
    assert!(Tagged::open("127.0.0.1", addr).await.is_err());
    assert_eq!(p.counters(listen).over_limit, 1);
    drop(first);
    eventually("the first connection's slot is free", || {
        p.counters(listen).active == 1
    })
    .await?;
    assert_eq!(backend_of("127.0.0.1", addr).await?, "a");
    p.stop().await
}

// ---------------------------------------------------------------------------------------------
// UDP

async fn udp_round_trip(client: &UdpSocket, text: &str) -> Result<String> {
    client.send(text.as_bytes()).await?;
    let mut buf = vec![0u8; 65_536];
    let n = timeout(WAIT, client.recv(&mut buf)).await??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn dns(listen: SocketAddr, endpoints: &[SocketAddr]) -> ServiceSpec {
    ServiceSpec::new("kube-system/dns")
        .port(PortSpec::udp("dns", [listen]).endpoints(endpoints.iter().copied()))
}

#[tokio::test]
async fn udp_datagrams_round_trip_and_an_idle_session_expires() -> Result<()> {
    let p = start(quick());
    let backend = udp_echo("x", "127.0.0.1").await?;
    let listen = at("127.0.0.6", 0);
    let addr = p.apply(&[dns(listen, &[backend])], listen)?;
    // A connected client socket accepts replies only from the address it sent to.
    let client = UdpSocket::bind(at("127.0.0.1", 0)).await?;
    client.connect(addr).await?;
    assert_eq!(udp_round_trip(&client, "ping").await?, "x:ping");
    assert_eq!(udp_round_trip(&client, "again").await?, "x:again");
    assert_eq!(
        (p.counters(listen).connections, p.counters(listen).active),
        (1, 1)
    );
    assert_eq!(p.counters(listen).bytes_to_endpoint, 9);
    eventually("the idle session expires", || {
        p.counters(listen).active == 0
    })
    .await?;
    assert_eq!(udp_round_trip(&client, "later").await?, "x:later");
    assert_eq!(
        p.counters(listen).connections,
        2,
        "a new session after expiry"
    );
    p.stop().await
}

#[tokio::test]
async fn a_udp_client_moves_to_a_listed_endpoint_as_soon_as_its_own_is_removed() -> Result<()> {
    let p = start(ProxyConfig {
        udp_idle_timeout: Duration::from_secs(30),
        ..quick()
    });
    let (x, y) = (
        udp_echo("x", "127.0.0.1").await?,
        udp_echo("y", "127.0.0.1").await?,
    );
    let listen = at("127.0.0.6", 0);
    let addr = p.apply(&[dns(listen, &[x])], listen)?;
    let client = UdpSocket::bind(at("127.0.0.1", 0)).await?;
    client.connect(addr).await?;
    assert_eq!(udp_round_trip(&client, "q").await?, "x:q");
    p.apply(&[dns(listen, &[y])], listen)?;
    assert_eq!(udp_round_trip(&client, "q").await?, "y:q");
    p.stop().await
}

#[tokio::test]
async fn udp_sessions_beyond_the_cap_are_dropped_until_one_expires() -> Result<()> {
    let p = start(ProxyConfig {
        max_udp_sessions: 1,
        ..quick()
    });
    let backend = udp_echo("x", "127.0.0.1").await?;
    let listen = at("127.0.0.6", 0);
    let addr = p.apply(&[dns(listen, &[backend])], listen)?;
    let (first, second) = (
        UdpSocket::bind(at("127.0.0.31", 0)).await?,
        UdpSocket::bind(at("127.0.0.32", 0)).await?,
    );
    first.connect(addr).await?;
    second.connect(addr).await?;
    assert_eq!(udp_round_trip(&first, "1").await?, "x:1");
    second.send(b"2").await?;
    eventually("the second client's datagram is refused", || {
        p.counters(listen).over_limit == 1
    })
    .await?;
    eventually("the first session expires", || {
        p.counters(listen).active == 0
    })
    .await?;
    assert_eq!(udp_round_trip(&second, "2").await?, "x:2");
    p.stop().await
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test]
async fn shutdown_closes_every_listener_ends_connections_and_waits_for_all_tasks() -> Result<()> {
    let p = start(quick());
    let (tcp_backend, udp_backend) = (
        tag_echo("a", "127.0.0.1").await?,
        udp_echo("x", "127.0.0.1").await?,
    );
    let (tcp_listen, udp_listen) = (at("127.0.0.2", 0), at("127.0.0.6", 0));
    let services = [
        web(tcp_listen, &[tcp_backend]),
        dns(udp_listen, &[udp_backend]),
    ];
    let report = p.proxy.apply(&services);
    let tcp_addr = report
        .local_addr(tcp_listen, Protocol::Tcp)
        .context("TCP bound")?;
    let udp_addr = report
        .local_addr(udp_listen, Protocol::Udp)
        .context("UDP bound")?;
    let mut conn = Tagged::open("127.0.0.1", tcp_addr).await?;
    let client = UdpSocket::bind(at("127.0.0.1", 0)).await?;
    client.connect(udp_addr).await?;
    assert_eq!(udp_round_trip(&client, "ping").await?, "x:ping");

    let proxy = p.proxy.clone();
    p.stop().await?;
    // The relayed connection was ended: the client sees its end at once.
    let mut rest = Vec::new();
    let ended = timeout(WAIT, conn.stream.read_to_end(&mut rest)).await?;
    assert!(ended.is_err() || rest.is_empty(), "{ended:?}");
    assert!(TcpStream::connect(tcp_addr).await.is_err());
    // Both ports are free again: nothing of the proxy holds them.
    drop(std::net::TcpListener::bind(tcp_addr)?);
    drop(std::net::UdpSocket::bind(udp_addr)?);
    let report = proxy.apply(&services);
    assert!(report
        .listeners
        .iter()
        .all(|l| l.outcome == ListenOutcome::Failed(ListenError::ShutDown)));
    Ok(())
}
