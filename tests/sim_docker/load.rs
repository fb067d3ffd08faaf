//! `berth-sim-load`: load for `berth-sim-docker`, through bollard (berth's own client), to
//! measure the simulator: fill its hosts with berth-like containers, then time the two calls
//! a full look at a host makes, `GET /containers/json` and `GET /containers/{id}/json`.
//!
//! ```text
//! berth-sim-load --dir /tmp/sim --hosts 5000 populate --per-host 20
//! berth-sim-load --dir /tmp/sim --hosts 5000 bench --call inspect --seconds 10
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    StartContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{stream, StreamExt};
use tokio::sync::OnceCell;

#[derive(Debug, Parser)]
#[command(name = "berth-sim-load")]
struct Args {
    /// The simulator's socket directory.
    #[arg(long)]
    dir: PathBuf,
    /// How many of its hosts to use (host-0000 ...).
    #[arg(long)]
    hosts: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates and starts `per-host` containers with berth's labels on every host.
    Populate {
        #[arg(long, default_value_t = 20)]
        per_host: usize,
    },
    /// Calls one endpoint round-robin over the hosts for `seconds`; reports requests/s.
    Bench {
        #[arg(long, value_enum)]
        call: Call,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Containers per host that `populate` made (inspect picks among them).
        #[arg(long, default_value_t = 20)]
        per_host: usize,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Call {
    /// `GET /containers/json?all=1&filters={"label":["io.berth.managed=true"]}`.
    List,
    /// `GET /containers/{name}/json`.
    Inspect,
}

/// One lazily connected, version-negotiated client per host, as berth keeps them.
struct Clients {
    dir: PathBuf,
    hosts: Vec<OnceCell<Docker>>,
}

impl Clients {
    async fn get(&self, n: usize) -> Result<&Docker> {
        self.hosts[n]
            .get_or_try_init(|| async {
                let width = self.hosts.len().saturating_sub(1).to_string().len().max(4);
                let path = self.dir.join(format!("host-{n:0width$}.sock"));
                let docker =
                    Docker::connect_with_unix(&path.to_string_lossy(), 20, API_DEFAULT_VERSION)?;
                Ok(docker.negotiate_version().await?)
            })
            .await
    }
}

fn name(host: usize, i: usize) -> String {
    format!("berth.bench.web-{host}-{i}.main")
}

/// A container as berth creates one for an RC replica: its labels, limits and policy.
fn berth_like(host: usize, i: usize) -> ContainerCreateBody {
    let pod = format!("web-{host}-{i}");
    let labels: HashMap<String, String> = [
        ("io.berth.managed", "true"),
        ("io.berth.namespace", "bench"),
        ("io.berth.pod", pod.as_str()),
        ("io.berth.container", "main"),
        ("io.berth.owner", "web"),
        (
            "io.berth.commit",
            "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
        ),
        ("io.berth.spec-hash", "9c0d1e2f3a4b5c6d"),
        ("io.berth.grace", "30"),
        ("io.berth.index", "0"),
        ("app", "web"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ContainerCreateBody {
        image: Some("berth-test/busybox:1".into()),
        entrypoint: Some(vec!["sleep".into(), "3600".into()]),
        env: Some(vec!["VERSION=1".into()]),
        labels: Some(labels),
        hostname: Some(pod),
        stop_timeout: Some(30),
        host_config: Some(HostConfig {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            memory: Some(32 << 20),
            nano_cpus: Some(100_000_000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn populate(
    clients: &Clients,
    hosts: usize,
    per_host: usize,
    concurrency: usize,
) -> Result<()> {
    let started = Instant::now();
    let jobs = (0..per_host).flat_map(|i| (0..hosts).map(move |h| (h, i)));
    let results: Vec<Result<()>> = stream::iter(jobs)
        .map(|(h, i)| async move {
            let docker = clients.get(h).await?;
            let options = CreateContainerOptionsBuilder::new()
                .name(&name(h, i))
                .build();
            let id = docker
                .create_container(Some(options), berth_like(h, i))
                .await?
                .id;
            docker
                .start_container(&id, None::<StartContainerOptions>)
                .await?;
            Ok(())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("first failure: {e:#}");
    }
    let n = results.len();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "populate: {n} containers created and started ({failed} failed) in {secs:.1} s: {:.0} containers/s",
        n as f64 / secs
    );
    Ok(())
}

async fn bench(
    clients: &Arc<Clients>,
    hosts: usize,
    call: Call,
    seconds: u64,
    per_host: usize,
    concurrency: usize,
) -> Result<()> {
    // Connect and negotiate first, so the timing holds requests only.
    stream::iter(0..hosts)
        .map(|h| async move { clients.get(h).await.map(|_| ()) })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (clients, next) = (clients.clone(), next.clone());
            tokio::spawn(async move {
                let filters = HashMap::from([("label", vec!["io.berth.managed=true"])]);
                let mut latencies: Vec<u32> = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let h = k % hosts;
                    let docker = clients.get(h).await.expect("connected above");
                    let t = Instant::now();
                    let ok = match call {
                        Call::List => {
                            let options = ListContainersOptionsBuilder::new()
                                .all(true)
                                .filters(&filters)
                                .build();
                            docker.list_containers(Some(options)).await.is_ok()
                        }
                        Call::Inspect => {
                            let i = (k / hosts) % per_host.max(1);
                            docker
                                .inspect_container(&name(h, i), None::<InspectContainerOptions>)
                                .await
                                .is_ok()
                        }
                    };
                    latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    errors += u64::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.context("a worker panicked")?;
        latencies.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "bench {call:?}: {} requests ({errors} failed) in {secs:.1} s over {hosts} hosts, {concurrency} in flight: {:.0} requests/s; latency p50 {} us, p99 {} us",
        latencies.len(),
        latencies.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth-sim-load: {e}");
            return ExitCode::from(1);
        }
    };
    let clients = Arc::new(Clients {
        dir: args.dir.clone(),
        hosts: (0..args.hosts).map(|_| OnceCell::new()).collect(),
    });
    let outcome = runtime.block_on(async {
        match args.command {
            Command::Populate { per_host } => {
                populate(&clients, args.hosts, per_host, args.concurrency).await
            }
            Command::Bench {
                call,
                seconds,
                per_host,
            } => {
                bench(
                    &clients,
                    args.hosts,
                    call,
                    seconds,
                    per_host,
                    args.concurrency,
                )
                .await
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-sim-load: {e:#}");
            ExitCode::from(1)
        }
    }
}
