//! The private engines that berth's integration tests stand on: each runs, lists, logs
//! and removes containers on its own, comes back with its containers and addresses after
//! being stopped or killed, and sits on a network where the test process reaches it like
//! a host: its containers by their addresses, its published ports at its own address. A
//! private registry with basic auth serves every engine.

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;
use futures_util::TryStreamExt;
use support::registry::{is_auth_error, pull, push};
use support::{start_engine, start_engines, start_registry, Engine, TEST_IMAGE};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

const OWNER_LABEL: &str = "berth-test.owner";
/// Where the test containers' busybox httpd listens, published.
const WEB_PORT: u16 = 8080;
/// Where it listens too, not published: only a network that routes to containers (as
/// berth's probes need) reaches it.
const UNPUBLISHED_PORT: u16 = 8081;
/// Where engines publish [`WEB_PORT`], like a pod's `hostPort: 80`.
const HOST_PORT: u16 = 80;

#[tokio::test]
async fn two_private_engines_each_run_list_log_and_remove_a_container() -> Result<()> {
    let started = Instant::now();
    let engines = start_engines(2).await?;
    eprintln!(
        "started {} private engines in {:.2?}",
        engines.len(),
        started.elapsed()
    );

    let ids = futures_util::future::try_join_all(engines.iter().map(|e| e.docker().info())).await?;
    for (engine, info) in engines.iter().zip(&ids) {
        assert_eq!(
            info.name.as_deref(),
            Some(engine.name.as_str()),
            "each engine reports its own host name"
        );
    }
    assert_ne!(ids[0].id, ids[1].id, "each engine has its own engine ID");
    assert_ne!(engines[0].socket, engines[1].socket);

    let checked = Instant::now();
    futures_util::future::try_join_all(engines.iter().map(greet_and_remove)).await?;
    eprintln!(
        "ran, read back and removed a container on each engine in {:.2?}",
        checked.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn engine_comes_back_with_its_containers_and_addresses_after_a_stop_and_after_a_kill(
) -> Result<()> {
    let mut engine = start_engine("comeback").await?;
    let docker = engine.docker().clone();
    let always = Some(RestartPolicyNameEnum::ALWAYS);
    let id = create_web(&engine, "survivor", "still-here", always).await?;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await?;
    let mut pid = running_pid(&engine, &id).await?;
    let addresses = |e: &Engine| (e.advertise_ip(), e.host_side_ip(), e.bridge_subnet());
    let before = addresses(&engine);

    for how in ["stop", "kill"] {
        let going = Instant::now();
        match how {
            "stop" => engine.stop().await?,
            _ => engine.kill().await,
        }
        eprintln!(
            "{how}: {} went away in {:.2?}",
            engine.name,
            going.elapsed()
        );
        assert!(engine.pid().is_none());
        assert!(
            engine.docker().ping().await.is_err(),
            "engine answers after {how}"
        );

        let coming = Instant::now();
        engine.start().await?;
        let restarted = running_pid(&engine, &id).await?;
        eprintln!(
            "{how}: {} back, container running, in {:.2?}",
            engine.name,
            coming.elapsed()
        );
        assert_ne!(
            restarted, pid,
            "after {how} the container runs as a new process"
        );
        pid = restarted;
        assert_eq!(
            addresses(&engine),
            before,
            "after {how} the addresses are the same"
        );
        let published = format!("http://{}:{HOST_PORT}/", engine.advertise_ip());
        assert_eq!(http_get(&published).await?, "still-here", "after {how}");
    }
    Ok(())
}

#[tokio::test]
async fn test_process_reaches_containers_of_two_engines_by_address_and_by_published_port(
) -> Result<()> {
    let engines = start_engines(2).await?;
    let (a, b) = (&engines[0], &engines[1]);
    assert_ne!(a.advertise_ip(), b.advertise_ip());
    assert_ne!(a.host_side_ip(), b.host_side_ip());
    assert!(
        !a.bridge_subnet().contains(b.bridge_subnet().network())
            && !b.bridge_subnet().contains(a.bridge_subnet().network()),
        "each engine has its own bridge: {} and {}",
        a.bridge_subnet(),
        b.bridge_subnet()
    );

    let served = Instant::now();
    futures_util::future::try_join_all(engines.iter().map(serve_and_reach)).await?;
    eprintln!(
        "reached a web container on each engine both ways in {:.2?}",
        served.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn container_reaches_a_listener_the_test_opens_on_its_engines_host_side_ip() -> Result<()> {
    let engine = start_engine("caller").await?;
    let listener = TcpListener::bind((engine.host_side_ip(), 0)).await?;
    let port = listener.local_addr()?.port();
    let script = format!(
        "echo hello-from-a-container | nc {} {port}",
        engine.host_side_ip()
    );
    let id = create_labelled(engine.docker(), &engine.name, "caller", &script, None).await?;
    engine
        .docker()
        .start_container(&id, None::<StartContainerOptions>)
        .await?;

    let (socket, peer) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .context("no connection from the container within 20 s")??;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(socket).read_line(&mut line),
    )
    .await
    .context("no line from the container within 10 s")??;
    assert_eq!(line.trim(), "hello-from-a-container");
    assert_eq!(
        peer.ip(),
        IpAddr::V4(engine.advertise_ip()),
        "containers reach out from their engine's address, as from a host behind NAT"
    );
    Ok(())
}

#[tokio::test]
async fn registry_takes_pushes_and_serves_pulls_only_with_the_right_credentials() -> Result<()> {
    let engines = start_engines(2).await?;
    let (pusher, puller) = (&engines[0], &engines[1]);
    // Declared after the engines, so dropped before them: it listens on pusher's address.
    let registry = start_registry(pusher).await?;
    let wrong = registry.credentials_with(registry.user(), "not-the-password");

    let image = registry.push_test_image(pusher).await?;
    let refused = push(pusher.docker(), &image, Some(wrong.clone()))
        .await
        .expect_err("a push with a wrong password is refused");
    assert!(is_auth_error(&refused), "push, wrong password: {refused}");

    for (how, credentials) in [("a wrong password", Some(wrong)), ("no credentials", None)] {
        let refused = pull(puller.docker(), &image, credentials)
            .await
            .expect_err("a pull without the right credentials is refused");
        eprintln!("pull with {how}: {refused}");
        assert!(is_auth_error(&refused), "pull with {how}: {refused}");
    }
    assert!(
        puller.docker().inspect_image(&image).await.is_err(),
        "nothing was pulled without the right credentials"
    );

    pull(puller.docker(), &image, Some(registry.credentials()))
        .await
        .with_context(|| format!("pulling {image}; registry log:\n{}", registry.log_tail(20)))?;
    let pulled = puller.docker().inspect_image(&image).await?;
    let pushed = pusher.docker().inspect_image(TEST_IMAGE).await?;
    assert_eq!(pulled.id, pushed.id, "the pull brings the pushed image");
    Ok(())
}

#[tokio::test]
async fn system_engine_answers_or_says_how_to_start_one() {
    match support::system_engine().await {
        Ok(docker) => assert_eq!(docker.ping().await.ok().as_deref(), Some("OK")),
        Err(error) => assert!(
            format!("{error}").contains("run `scripts/docker-engine`"),
            "{error:#}"
        ),
    }
}

/// Waits until container `id` runs (an `always` container comes back just after its
/// engine answers) and returns its pid as the host sees it.
async fn running_pid(engine: &Engine, id: &str) -> Result<i64> {
    let docker = engine.docker();
    let pid = wait_for(Duration::from_secs(20), || async {
        let state = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await?
            .state;
        Ok(state
            .filter(|s| s.running == Some(true))
            .and_then(|s| s.pid))
    })
    .await;
    pid.with_context(|| format!("{id} does not run; engine log:\n{}", engine.log_tail(20)))
}

/// Runs a container that greets, reads it back every way berth will (inspect, list by
/// label, logs, its bridge address), then removes it and checks it is gone.
async fn greet_and_remove(engine: &Engine) -> Result<()> {
    let docker = engine.docker();
    let greeting = format!("hello-from-{}", engine.name);
    let id = create_labelled(
        docker,
        &engine.name,
        "greeter",
        &format!("echo {greeting}; exec sleep 30"),
        None,
    )
    .await?;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await?;

    let inspect = docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await?;
    assert_eq!(
        inspect.state.and_then(|s| s.running),
        Some(true),
        "{} runs the greeter",
        engine.name
    );
    let bridge_ip = container_ip(docker, &id).await?;
    assert!(
        engine.bridge_subnet().contains(bridge_ip),
        "greeter on {} has an address in {}, got {bridge_ip}",
        engine.name,
        engine.bridge_subnet()
    );

    let listed = list_owned(docker, &engine.name).await?;
    assert_eq!(
        listed.len(),
        1,
        "exactly one container carries the label on {}",
        engine.name
    );
    assert_eq!(listed[0].id.as_deref(), Some(id.as_str()));
    assert_eq!(
        listed[0].names.as_deref(),
        Some(&["/greeter".to_string()][..])
    );

    // The echo runs just after start: await it rather than guess a delay.
    let logs = wait_for(Duration::from_secs(10), || async {
        let logs = read_logs(docker, &id).await?;
        Ok(logs.contains(&greeting).then_some(logs))
    })
    .await?;
    assert_eq!(logs.trim(), greeting);

    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await?;
    match docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
    {
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        other => panic!(
            "removed container on {} still inspects: {other:?}",
            engine.name
        ),
    }
    assert!(
        list_owned(docker, &engine.name).await?.is_empty(),
        "nothing left on {}",
        engine.name
    );
    Ok(())
}

/// Runs a web container on `engine` and fetches its page from the test process twice:
/// at the container's own address, on a port it does not publish, and at the port the
/// engine publishes.
async fn serve_and_reach(engine: &Engine) -> Result<()> {
    let page = format!("served-by-{}", engine.name);
    let id = create_web(engine, "web", &page, None).await?;
    engine
        .docker()
        .start_container(&id, None::<StartContainerOptions>)
        .await?;
    let ip = container_ip(engine.docker(), &id).await?;
    assert!(engine.bridge_subnet().contains(ip));
    let direct = format!("http://{ip}:{UNPUBLISHED_PORT}/");
    let published = format!("http://{}:{HOST_PORT}/", engine.advertise_ip());
    assert_eq!(http_get(&direct).await?, page, "by container address");
    assert_eq!(http_get(&published).await?, page, "by published port");
    Ok(())
}

/// Creates (does not start) a busybox httpd container serving `page` on [`WEB_PORT`],
/// published on [`HOST_PORT`] of the engine's address, and on [`UNPUBLISHED_PORT`].
async fn create_web(
    engine: &Engine,
    name: &str,
    page: &str,
    restart: Option<RestartPolicyNameEnum>,
) -> Result<String> {
    let script = format!(
        "mkdir -p /var/www && echo {page} > /var/www/index.html && \
         httpd -p {UNPUBLISHED_PORT} -h /var/www && exec httpd -f -p {WEB_PORT} -h /var/www"
    );
    let mut body = labelled(&engine.name, &script, restart);
    let port = format!("{WEB_PORT}/tcp");
    body.exposed_ports = Some(vec![port.clone()]);
    let binding = PortBinding {
        host_ip: None,
        host_port: Some(HOST_PORT.to_string()),
    };
    body.host_config
        .get_or_insert_with(HostConfig::default)
        .port_bindings = Some(HashMap::from([(port, Some(vec![binding]))]));
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    Ok(engine
        .docker()
        .create_container(Some(options), body)
        .await?
        .id)
}

/// The container's address on its engine's default bridge.
async fn container_ip(docker: &Docker, id: &str) -> Result<Ipv4Addr> {
    let inspect = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await?;
    let ip = inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut networks| networks.remove("bridge"))
        .and_then(|endpoint| endpoint.ip_address)
        .unwrap_or_default();
    ip.parse()
        .with_context(|| format!("{id} has no bridge address (got {ip:?})"))
}

/// GETs `url` until it answers 200 (the server may still be starting), for at most
/// 10 s; returns the trimmed body.
async fn http_get(url: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let fetched = wait_for(Duration::from_secs(10), || async {
        match client.get(url).send().await {
            Ok(answer) if answer.status().is_success() => Ok(Some(answer.text().await?)),
            _ => Ok(None),
        }
    })
    .await;
    Ok(fetched
        .with_context(|| format!("GET {url}"))?
        .trim()
        .to_string())
}

async fn create_labelled(
    docker: &Docker,
    owner: &str,
    name: &str,
    script: &str,
    restart: Option<RestartPolicyNameEnum>,
) -> Result<String> {
    let body = labelled(owner, script, restart);
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    Ok(docker.create_container(Some(options), body).await?.id)
}

/// A container running `script` in `sh`, labelled as `owner`'s.
fn labelled(
    owner: &str,
    script: &str,
    restart: Option<RestartPolicyNameEnum>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(TEST_IMAGE.to_string()),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        labels: Some(HashMap::from([(
            OWNER_LABEL.to_string(),
            owner.to_string(),
        )])),
        // `sh` and `sleep` as pid 1 ignore SIGTERM: 1 s instead of 10 keeps stops short.
        stop_timeout: Some(1),
        host_config: restart.map(|name| HostConfig {
            restart_policy: Some(RestartPolicy {
                name: Some(name),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn list_owned(
    docker: &Docker,
    owner: &str,
) -> Result<Vec<bollard::models::ContainerSummary>> {
    let filters = HashMap::from([("label", vec![format!("{OWNER_LABEL}={owner}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    Ok(docker.list_containers(Some(options)).await?)
}

async fn read_logs(docker: &Docker, id: &str) -> Result<String> {
    let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
    let chunks: Vec<_> = docker.logs(id, Some(options)).try_collect().await?;
    Ok(chunks.iter().map(ToString::to_string).collect())
}

/// Polls `probe` every 100 ms until it yields a value, for at most `limit`.
async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        ensure!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
