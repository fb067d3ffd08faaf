//! The private engines that berth's integration tests stand on: each runs, lists, logs
//! and removes containers on its own, with working container networking, and comes back
//! with its containers after being stopped or killed.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;
use futures_util::TryStreamExt;
use support::{start_engine, start_engines, Engine, TEST_IMAGE};

const OWNER_LABEL: &str = "berth-test.owner";

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
async fn engine_comes_back_with_its_containers_after_a_stop_and_after_a_kill() -> Result<()> {
    let mut engine = start_engine("comeback").await?;
    let docker = engine.docker().clone();
    let always = Some(RestartPolicyNameEnum::ALWAYS);
    let id = create_labelled(&docker, &engine.name, "survivor", "exec sleep 300", always).await?;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await?;
    let mut pid = running_pid(&engine, &id).await?;

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
    }
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
    let bridge_ip = inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut networks| networks.remove("bridge"))
        .and_then(|endpoint| endpoint.ip_address)
        .unwrap_or_default();
    assert!(
        bridge_ip.starts_with("172.17."),
        "greeter on {} has a bridge address, got {bridge_ip:?}",
        engine.name
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

async fn create_labelled(
    docker: &Docker,
    owner: &str,
    name: &str,
    script: &str,
    restart: Option<RestartPolicyNameEnum>,
) -> Result<String> {
    let body = ContainerCreateBody {
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
    };
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    Ok(docker.create_container(Some(options), body).await?.id)
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
