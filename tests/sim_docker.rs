//! The simulated Docker engine (`tests/sim_docker/`, the `berth-sim-docker` example) against
//! the clients that drive it in benchmarks: bollard itself, version negotiation included;
//! berth's own `DockerHost` and `HostCache`; and, as a smoke run, the real `berth serve`
//! converging 500 replicas over 50 simulated hosts. Nothing here needs a real Docker engine.

#[path = "sim_docker/fixtures.rs"]
mod fixtures;
#[path = "sim_docker/sim/mod.rs"]
#[allow(dead_code)] // the example binary uses parts of the simulator these tests do not
mod sim;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use berth::docker::{DockerHost, HostCache, PullSettings, Touched};
use berth::manifest::{Container, PodSpec, PullPolicy, RestartPolicy};
use berth::reconcile::{labels, DesiredPod};
use bollard::models::{ContainerStateStatusEnum, EventMessage, HostConfig};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, EventsOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::TryStreamExt;

use fixtures::{
    body, client, control, create, eventually, kill, simulator, start, state, status_of, subscribe,
    PATIENCE, TEST_IMAGE,
};

// ---- bollard against the simulation -----------------------------------------------------------

#[tokio::test]
async fn bollard_negotiates_api_1_41_and_reads_settable_host_facts() -> Result<()> {
    let (_dir, sim) = simulator(2).await?;
    let docker = client(&sim, 1).await?;
    assert_eq!(docker.client_version().to_string(), "1.41");
    assert_eq!(docker.ping().await?, "OK");
    let version = docker.version().await?;
    assert_eq!(version.api_version.as_deref(), Some("1.41"));
    let (status, _) = control(&sim, "POST", "/hosts/host-0001/info?ncpu=16&mem_total=1024").await?;
    assert_eq!(status, 200);
    let info = docker.info().await?;
    assert_eq!((info.ncpu, info.mem_total), (Some(16), Some(1024)));
    assert_eq!(info.server_version.as_deref(), Some("20.10.24+dfsg1"));
    assert_eq!(info.architecture.as_deref(), Some("x86_64"));
    // Host 0 kept the defaults: each host has its own facts.
    assert_eq!(client(&sim, 0).await?.info().await?.ncpu, Some(4));
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn containers_are_created_started_listed_by_label_signalled_and_removed() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let docker = client(&sim, 0).await?;
    let web = create(&docker, "web", body(&[("app", "web"), ("tier", "front")])).await?;
    let err = create(&docker, "web", body(&[])).await.unwrap_err();
    ensure!(err.to_string().contains("is already in use"), "{err}");
    let stubborn = create(
        &docker,
        "stubborn",
        body(&[("app", "db"), ("sim.ignore-sigterm", "true")]),
    )
    .await?;

    start(&docker, &web).await?;
    // Starting what runs is Docker's 304, which bollard passes as success.
    start(&docker, &web).await?;
    start(&docker, "stubborn").await?;
    let found = docker
        .inspect_container("web", None::<InspectContainerOptions>)
        .await?;
    assert_eq!(found.id.as_deref(), Some(web.as_str()));
    let config = found.config.context("Config")?;
    assert_eq!(config.image.as_deref(), Some(TEST_IMAGE));
    assert_eq!(config.labels.context("labels")?["tier"], "front");
    let s = found.state.context("State")?;
    assert_eq!(
        (s.status, s.running),
        (Some(ContainerStateStatusEnum::RUNNING), Some(true))
    );
    let started_at = s.started_at.unwrap_or_default();
    assert!(started_at.starts_with("20"), "{started_at}");
    let networks = found
        .network_settings
        .and_then(|n| n.networks)
        .context("Networks")?;
    let ip = networks["bridge"].ip_address.clone().unwrap_or_default();
    assert!(ip.starts_with("127.17."), "{ip}");

    let filters = HashMap::from([("label", vec!["app=web"])]);
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?;
    let ids: Vec<_> = listed.iter().filter_map(|c| c.id.clone()).collect();
    assert_eq!(ids, vec![web.clone()]);

    kill(&docker, &web, "SIGTERM").await?;
    let s = state(&docker, &web).await?;
    assert_eq!(
        (s.status, s.exit_code),
        (Some(ContainerStateStatusEnum::EXITED), Some(143))
    );
    kill(&docker, &stubborn, "SIGTERM").await?;
    assert_eq!(
        state(&docker, &stubborn).await?.running,
        Some(true),
        "it ignores SIGTERM"
    );
    let err = docker.remove_container(&stubborn, None).await.unwrap_err();
    assert_eq!(status_of(&err), Some(409), "{err}");
    kill(&docker, &stubborn, "SIGKILL").await?;
    assert_eq!(state(&docker, &stubborn).await?.exit_code, Some(137));
    let err = kill(&docker, &stubborn, "SIGKILL").await.unwrap_err();
    assert_eq!(status_of(&err), Some(409), "{err}");
    ensure!(err.to_string().contains("is not running"), "{err}");

    let force = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    docker.remove_container(&web, Some(force.clone())).await?;
    docker
        .remove_container(&stubborn, Some(force.clone()))
        .await?;
    let err = docker
        .remove_container(&web, Some(force))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(404), "{err}");
    assert!(docker.list_containers(None).await?.is_empty());
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn joining_the_network_of_a_stopped_container_fails_as_in_docker() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let docker = client(&sim, 0).await?;
    let holder = create(&docker, "holder", body(&[])).await?;
    let mut app = body(&[]);
    app.host_config = Some(HostConfig {
        network_mode: Some(format!("container:{holder}")),
        ..Default::default()
    });
    let app = create(&docker, "app", app).await?;
    let err = start(&docker, &app).await.unwrap_err();
    assert_eq!(status_of(&err), Some(409), "{err}");
    ensure!(
        err.to_string()
            .contains("cannot join network of a non running container"),
        "{err}"
    );
    let s = state(&docker, &app).await?;
    assert_eq!(
        (s.status, s.exit_code),
        (Some(ContainerStateStatusEnum::CREATED), Some(128))
    );
    assert!(s.error.is_some_and(|e| e.contains("cannot join")));
    start(&docker, &holder).await?;
    start(&docker, &app).await?;
    let found = docker
        .inspect_container(&app, None::<InspectContainerOptions>)
        .await?;
    let networks = found
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default();
    assert!(
        networks.is_empty(),
        "a joined container has no network of its own"
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_event_stream_carries_labels_as_attributes_and_honours_filters() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let docker = client(&sim, 0).await?;
    let filters = HashMap::from([
        ("type", vec!["container".to_string()]),
        ("label", vec!["io.berth.managed=true".to_string()]),
    ]);
    let options = EventsOptionsBuilder::new().filters(&filters).build();
    let mut events = subscribe(&sim, 0, &docker, Some(options)).await?;
    let other = create(&docker, "other", body(&[("io.berth.managed", "false")])).await?;
    start(&docker, &other).await?;
    let id = create(
        &docker,
        "managed",
        body(&[("io.berth.managed", "true"), ("io.berth.pod", "web-1")]),
    )
    .await?;
    start(&docker, &id).await?;
    kill(&docker, &id, "SIGKILL").await?;
    docker
        .create_volume(bollard::models::VolumeCreateRequest::default())
        .await?;
    let mut seen: Vec<EventMessage> = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await?
            .context("the stream ended")??;
        seen.push(event);
    }
    let actions: Vec<_> = seen.iter().filter_map(|e| e.action.clone()).collect();
    assert_eq!(actions, ["create", "start", "kill", "die"]);
    let actor = seen[3].actor.clone().context("Actor")?;
    assert_eq!(actor.id.as_deref(), Some(id.as_str()));
    let attributes = actor.attributes.unwrap_or_default();
    assert_eq!(attributes["io.berth.pod"], "web-1");
    assert_eq!(attributes["name"], "managed");
    assert_eq!(attributes["exitCode"], "137");
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn volumes_list_by_label_and_stay_while_a_container_mounts_them() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let docker = client(&sim, 0).await?;
    let request = |name: &str, pod: &str| bollard::models::VolumeCreateRequest {
        name: Some(name.into()),
        labels: Some(HashMap::from([(
            "io.berth.pod".to_string(),
            pod.to_string(),
        )])),
        ..Default::default()
    };
    docker.create_volume(request("data-a", "a")).await?;
    docker.create_volume(request("data-b", "b")).await?;
    // Creating an existing volume returns it as it is.
    assert_eq!(
        docker.create_volume(request("data-a", "z")).await?.labels["io.berth.pod"],
        "a"
    );
    let filters = HashMap::from([("label", vec!["io.berth.pod=b"])]);
    let listed = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await?;
    let names: Vec<_> = listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["data-b"]);
    let mut mounting = body(&[]);
    mounting.host_config = Some(HostConfig {
        mounts: Some(vec![bollard::models::Mount {
            target: Some("/data".into()),
            source: Some("data-a".into()),
            typ: Some(bollard::models::MountType::VOLUME),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let user = create(&docker, "user", mounting).await?;
    let err = docker
        .remove_volume("data-a", None::<RemoveVolumeOptions>)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(409), "{err}");
    docker.remove_container(&user, None).await?;
    docker
        .remove_volume("data-a", None::<RemoveVolumeOptions>)
        .await?;
    let err = docker
        .remove_volume("data-a", None::<RemoveVolumeOptions>)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(404), "{err}");
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn images_import_and_pulls_succeed_only_for_the_registrys_images() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let docker = client(&sim, 0).await?;
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo("sim/imported")
        .tag("7")
        .changes(vec![r#"ENTRYPOINT ["/pause"]"#.to_string()])
        .build();
    let tar = bollard::body_full(vec![0u8; 2048].into());
    let progress: Vec<_> = docker
        .create_image(Some(options), Some(tar), None)
        .try_collect()
        .await?;
    let id = progress[0].status.clone().unwrap_or_default();
    assert!(id.starts_with("sha256:"), "{progress:?}");
    let image = docker.inspect_image("sim/imported:7").await?;
    assert_eq!(image.id.as_deref(), Some(id.as_str()));
    assert_eq!(
        image.config.and_then(|c| c.entrypoint),
        Some(vec!["/pause".to_string()])
    );

    let pull = |image: &str| {
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        docker
            .create_image(Some(options), None, None)
            .try_collect::<Vec<_>>()
    };
    let err = pull("nosuch/image:1").await.unwrap_err();
    assert_eq!(status_of(&err), Some(404), "{err}");
    ensure!(
        err.to_string()
            .contains("pull access denied for nosuch/image"),
        "{err}"
    );
    let (status, _) = control(&sim, "POST", "/registry?image=redis:7").await?;
    assert_eq!(status, 200);
    control(&sim, "POST", "/pull-delay?ms=200").await?;
    let started = Instant::now();
    pull("redis:7").await?;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(docker.inspect_image("redis:7").await.is_ok());
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_crashed_container_restarts_by_its_policy_and_counts_the_restart() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let docker = client(&sim, 0).await?;
    let mut always = body(&[]);
    always.host_config = Some(HostConfig {
        restart_policy: Some(bollard::models::RestartPolicy {
            name: Some(bollard::models::RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        }),
        ..Default::default()
    });
    let id = create(&docker, "always", always).await?;
    start(&docker, &id).await?;
    let (status, answer) = control(
        &sim,
        "POST",
        &format!("/hosts/0/containers/{id}/crash?exit_code=3"),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    let restarted = eventually("the policy restart", || async {
        let found = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await?;
        let running = found.state.and_then(|s| s.status) == Some(ContainerStateStatusEnum::RUNNING);
        Ok((running && found.restart_count == Some(1)).then_some(()))
    })
    .await;
    restarted?;
    // A kill through the API is a manual stop: no restart.
    kill(&docker, &id, "SIGKILL").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        state(&docker, &id).await?.status,
        Some(ContainerStateStatusEnum::EXITED)
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_host_taken_down_refuses_and_cuts_its_event_streams_then_answers_again() -> Result<()> {
    let (_dir, sim) = simulator(3).await?;
    let docker = client(&sim, 2).await?;
    let mut events = subscribe(&sim, 2, &docker, None).await?;
    let id = create(&docker, "c1", body(&[])).await?;
    assert!(matches!(events.recv().await, Some(Ok(_))));
    let (status, _) = control(&sim, "POST", "/hosts/2/down").await?;
    assert_eq!(status, 200);
    let ended = tokio::time::timeout(PATIENCE, events.recv()).await?;
    assert!(
        !matches!(ended, Some(Ok(_))),
        "the stream must break: {ended:?}"
    );
    let err = docker.ping().await.unwrap_err();
    ensure!(
        status_of(&err).is_none(),
        "a transport error, not an answer: {err}"
    );
    // The others still answer.
    assert_eq!(client(&sim, 1).await?.ping().await?, "OK");
    control(&sim, "POST", "/hosts/2/up").await?;
    let back = eventually("the host to answer again", || async {
        Ok(docker.ping().await.ok())
    })
    .await?;
    assert_eq!(back, "OK");
    assert_eq!(
        state(&docker, &id).await?.status,
        Some(ContainerStateStatusEnum::CREATED),
        "its table is kept"
    );
    let (_, counters) = control(&sim, "GET", "/counters?host=2").await?;
    // The ping refused while down never reached the host: only the one that answered counts.
    assert_eq!(
        counters["hosts"]["host-0002"]["GET /_ping"], 1,
        "{counters}"
    );
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_hung_host_takes_requests_and_answers_none_until_it_is_back() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let path = sim.host(0).socket.display().to_string();
    let docker = Docker::connect_with_unix(&path, 1, API_DEFAULT_VERSION)?;
    assert_eq!(docker.ping().await?, "OK");
    let (status, _) = control(&sim, "POST", "/hosts/0/down?mode=hang").await?;
    assert_eq!(status, 200);
    let err = docker.ping().await.unwrap_err();
    assert!(
        matches!(err, bollard::errors::Error::RequestTimeoutError),
        "{err}"
    );
    control(&sim, "POST", "/hosts/0/up").await?;
    assert_eq!(docker.ping().await?, "OK");
    sim.shutdown().await;
    Ok(())
}

// ---- berth's own DockerHost and HostCache against the simulation ------------------------------

fn pod(name: &str, containers: &[&str]) -> DesiredPod {
    DesiredPod {
        namespace: "sim".into(),
        name: name.into(),
        owner: Some("web".into()),
        node: "host-0000".into(),
        labels: std::sync::Arc::new([("app".to_string(), "web".to_string())].into()),
        spec: PodSpec {
            containers: containers
                .iter()
                .map(|c| Container {
                    command: vec!["sleep".into(), "3600".into()],
                    ..Container::new(c, TEST_IMAGE)
                })
                .collect(),
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 1,
        }
        .into(),
        spec_hash: "hash-1".into(),
        commit: "commit-1".into(),
    }
}

#[tokio::test]
async fn berths_docker_host_runs_a_two_container_pod_with_its_imported_holder() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let host = DockerHost::connect("host-0000", &sim.endpoint(0), None)?;
    assert_eq!(host.info().await?.cpus, 4);
    let duo = pod("duo", &["app", "sidecar"]);
    let ids = host.create_pod(&duo, &[], 1).await?;
    assert_eq!(ids.len(), 2);
    // Idempotent: the same ids, nothing new.
    assert_eq!(host.create_pod(&duo, &[], 1).await?, ids);
    let seen = host.list_managed().await?;
    assert_eq!(seen.len(), 3, "two containers and the holder: {seen:#?}");
    let holder = seen.iter().find(|c| c.holder).context("the holder")?;
    assert!(holder.image.starts_with("berth/pause:"), "{}", holder.image);
    assert!(seen.iter().all(|c| c.running && c.pod == "duo"));
    for c in seen.iter().filter(|c| !c.holder) {
        assert_eq!(c.network_owner.as_deref(), Some(holder.id.as_str()));
    }
    assert!(holder.ip.is_some());

    let signals: Vec<(String, Option<String>)> = ids.iter().map(|id| (id.clone(), None)).collect();
    host.signal(&signals).await?;
    let after = host.list_managed().await?;
    assert!(after
        .iter()
        .filter(|c| !c.holder)
        .all(|c| !c.running && c.exit_code == Some(143)));
    host.kill(std::slice::from_ref(&holder.id)).await?;
    host.kill(&ids).await?; // stopped already: nothing to do, no error
    let mut all = ids.clone();
    all.push(holder.id.clone());
    host.remove_containers(&all).await?;
    host.remove_containers(&all).await?; // gone already: still fine
    assert!(host.list_managed().await?.is_empty());
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn ensure_image_pulls_only_what_the_registry_has() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let host = DockerHost::connect("host-0000", &sim.endpoint(0), None)?;
    let settings = PullSettings::default();
    assert_eq!(
        host.ensure_image(TEST_IMAGE, PullPolicy::IfNotPresent, &settings)
            .await?,
        None
    );
    let err = host
        .ensure_image("nosuch/app:2", PullPolicy::IfNotPresent, &settings)
        .await
        .unwrap_err();
    ensure!(err.to_string().contains("pull access denied"), "{err}");
    // Always, failing, with the image present: the fallback warning.
    let warning = host
        .ensure_image(TEST_IMAGE, PullPolicy::Always, &settings)
        .await?;
    assert_eq!(
        warning, None,
        "the registry has the test image: the pull succeeds"
    );
    control(&sim, "POST", "/registry?image=shop/web:3").await?;
    host.ensure_image("shop/web:3", PullPolicy::IfNotPresent, &settings)
        .await?;
    assert!(host
        .ensure_image("shop/web:3", PullPolicy::Never, &settings)
        .await
        .is_ok());
    sim.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_host_cache_watching_the_simulation_sees_an_event_as_a_touched_pod() -> Result<()> {
    let (_dir, sim) = simulator(1).await?;
    let host = DockerHost::connect("host-0000", &sim.endpoint(0), None)?;
    let cache = HostCache::new(host.clone());
    let (tx, mut touched) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(cache.clone().watch(
        Duration::from_secs(3600),
        Duration::ZERO,
        berth::docker::watch::MAX_RETRY,
        tx,
        shutdown.clone(),
    ));
    let first = tokio::time::timeout(PATIENCE, touched.recv()).await?;
    assert_eq!(first, Some(Touched::Host("host-0000".into())));
    // A container made behind berth's back, with berth's labels: only the event tells.
    let docker = client(&sim, 0).await?;
    let id = create(
        &docker,
        "berth.sim.solo.main",
        body(&[
            (labels::MANAGED, "true"),
            (labels::NAMESPACE, "sim"),
            (labels::POD, "solo"),
        ]),
    )
    .await?;
    let pod = tokio::time::timeout(PATIENCE, touched.recv()).await?;
    assert_eq!(pod, Some(Touched::Pod("sim/solo".into())));
    assert!(cache.read(|v| v.containers.contains_key(&id)));
    start(&docker, &id).await?;
    eventually("the cache to see it running", || async {
        Ok(cache
            .read(|v| v.containers.get(&id).is_some_and(|c| c.running))
            .then_some(()))
    })
    .await?;
    shutdown.cancel();
    watcher.await?;
    sim.shutdown().await;
    Ok(())
}

// ---- the real berth serve against 50 simulated hosts ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_serve_converges_500_replicas_over_50_simulated_hosts_and_sees_one_go_and_return(
) -> Result<()> {
    let (_dir, sim) = simulator(50).await?;
    let repo = support::berth::Repo::new()?;
    repo.write("apps/web.yaml", &support::berth::rc("web", 500));
    let sha = repo.commit("500 replicas")?;
    let data = tempfile::tempdir()?;
    let nodes: Vec<String> = (0..50)
        .map(|n| format!("{}={}", sim.host(n).name, sim.endpoint(n)))
        .collect();
    let started = Instant::now();
    let mut berth = support::berth::Berth::start(repo.path(), data.path(), &nodes).await?;
    let status = berth.wait_converged(&sha).await?;
    let took = started.elapsed();
    assert_eq!(status["nodes_ready"], 50, "{status}");
    let (_, stats) = control(&sim, "GET", "/stats").await?;
    assert_eq!(stats["running"], 500, "{stats}");
    let per_host: Vec<usize> = sim
        .hosts()
        .iter()
        .map(|h| h.engine().running_count())
        .collect();
    let (_, counters) = control(&sim, "GET", "/counters").await?;
    eprintln!(
        "converged in {took:?}; replicas per host {per_host:?}; requests: {}",
        counters["total"]
    );
    // A host taken away through the control socket is seen gone, then back.
    control(&sim, "POST", "/hosts/7/down").await?;
    berth
        .wait_for("host-0007 not ready", |s| s["nodes_ready"] == 49)
        .await?;
    control(&sim, "POST", "/hosts/7/up").await?;
    berth
        .wait_for("host-0007 ready again", |s| s["nodes_ready"] == 50)
        .await?;
    berth.terminate().await?;
    if took > Duration::from_secs(45) {
        bail!("500 replicas over 50 hosts took {took:?}");
    }
    sim.shutdown().await;
    Ok(())
}

/// A resync with nothing changed works no pod in full: every pod settled on what it read, and
/// the pass compares fingerprints (`last_pass.worked` counts the keys worked: the RC and the
/// keys of pending pods and lost hosts; convergence, found in place, is not checked again). A container that disappears with no event is still found by its host's next
/// full look and healed, and the pods settle again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_with_nothing_changed_works_no_pod_and_a_silent_loss_is_still_healed() -> Result<()>
{
    let (_dir, sim) = simulator(10).await?;
    let repo = support::berth::Repo::new()?;
    repo.write("apps/web.yaml", &support::berth::rc("web", 40));
    let sha = repo.commit("40 replicas")?;
    let data = tempfile::tempdir()?;
    let nodes: Vec<String> = (0..10)
        .map(|n| format!("{}={}", sim.host(n).name, sim.endpoint(n)))
        .collect();
    let mut berth =
        support::berth::Berth::start_with(repo.path(), data.path(), &nodes, &["--resync", "1s"])
            .await?;
    berth.wait_converged(&sha).await?;
    let settled = |s: &serde_json::Value| {
        let pass = &s["last_pass"];
        pass["keys"] == 43 && pass["worked"] == 3
    };
    let status = berth.wait_for("a pass that works no pod", settled).await?;
    eprintln!("pass with nothing changed: {}", status["last_pass"]);

    let running = || -> usize { sim.hosts().iter().map(|h| h.engine().running_count()).sum() };
    assert_eq!(running(), 40);
    let gone = sim
        .host(3)
        .engine()
        .vanish_one()
        .context("host 3 holds a replica")?;
    assert_eq!(running(), 39);
    eventually("the silently lost replica is back", || {
        let back = running() == 40;
        async move { Ok(back.then_some(())) }
    })
    .await?;
    // Settled again: a later pass works no pod.
    let after = berth.status().await?["last_pass"]["at"]
        .as_u64()
        .unwrap_or(0);
    berth
        .wait_for("the pods settle again", |s| {
            settled(s) && s["last_pass"]["at"].as_u64().unwrap_or(0) > after
        })
        .await?;
    assert!(
        sim.hosts()
            .iter()
            .all(|h| h.engine().containers().all(|c| c.id != gone)),
        "the vanished container stays gone"
    );
    berth.terminate().await?;
    sim.shutdown().await;
    Ok(())
}
