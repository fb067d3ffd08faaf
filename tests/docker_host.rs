//! `DockerHost` against the machine's Docker engine: pods become containers that share a
//! network namespace and `emptyDir`s, every step is idempotent, unmanaged containers stay
//! invisible, and failures say whether the engine or the request was at fault.
//!
//! Each test uses its own namespace (with the process id), so tests run in parallel and next
//! to other runs; a guard removes what a test created, also when it fails.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use berth::docker::{ContainerEvent, DockerError, DockerHost, PullSettings};
use berth::manifest::{
    Container, ContainerPort, PodSpec, Protocol, PullPolicy, RestartPolicy, Volume, VolumeMount,
    VolumeSource,
};
use berth::reconcile::{labels, DesiredPod};
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ExecConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use support::{system_engine, TEST_IMAGE};

const SYSTEM_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// Upper bound for things that normally take well under a second.
const PATIENCE: Duration = Duration::from_secs(20);

// ---- fixtures -----------------------------------------------------------------------------

/// A busybox container running `script` with `sh -c`.
fn sh(name: &str, script: &str) -> Container {
    Container {
        command: vec!["sh".into(), "-c".into()],
        args: vec![script.into()],
        ..Container::new(name, TEST_IMAGE)
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only,
    }
}

/// A pod in a namespace of its own (`<test>-<pid>`), with one grace second.
fn pod(test: &str, name: &str, containers: Vec<Container>) -> DesiredPod {
    DesiredPod {
        namespace: format!("{test}-{}", std::process::id()),
        name: name.into(),
        owner: Some("owner-rc".into()),
        node: "system".into(),
        labels: std::sync::Arc::new([("app".to_string(), name.to_string())].into()),
        spec: PodSpec {
            containers,
            volumes: vec![],
            restart_policy: RestartPolicy::Never,
            node_selector: Default::default(),
            termination_grace_period_seconds: 1,
        }
        .into(),
        spec_hash: "hash-1".into(),
        commit: "commit-1".into(),
    }
}

/// The system engine as a berth host, and a raw client for what berth does not do (exec, kill).
async fn system() -> Result<(DockerHost, Docker)> {
    let docker = system_engine().await?;
    let host = DockerHost::connect("system", SYSTEM_ENDPOINT, None)?;
    Ok((host, docker))
}

/// Removes every container and volume of a namespace when dropped, even after a panic.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Synchronous on purpose: drop cannot await, and it must also run during a panic.
        let filter = format!("label={}={}", labels::NAMESPACE, self.0);
        let script = format!(
            "docker ps -aq --filter {filter} | xargs -r docker rm -f -v; \
             docker volume ls -q --filter {filter} | xargs -r docker volume rm -f"
        );
        let _ = std::process::Command::new("sh")
            .args(["-c", &script])
            .output();
    }
}

/// Runs `cmd` in a container and returns its output.
async fn exec(docker: &Docker, id: &str, cmd: &[&str]) -> Result<String> {
    let config = ExecConfig {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(id, config).await?;
    match docker
        .start_exec(&created.id, None::<StartExecOptions>)
        .await?
    {
        StartExecResults::Attached { output, .. } => {
            let chunks: Vec<_> = output.try_collect().await?;
            Ok(chunks
                .iter()
                .map(|c| String::from_utf8_lossy(&c.clone().into_bytes()).into_owned())
                .collect())
        }
        StartExecResults::Detached => bail!("exec detached"),
    }
}

/// Polls `check` until it returns `Some`, for at most [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn labels_of(docker: &Docker, id: &str) -> Result<HashMap<String, String>> {
    let found = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await?;
    Ok(found.config.and_then(|c| c.labels).unwrap_or_default())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

// ---- tests ------------------------------------------------------------------------------------

#[tokio::test]
async fn pod_containers_share_network_namespace_and_empty_dir() -> Result<()> {
    let (host, docker) = system().await?;
    let host_port = free_port()?;
    let mut web = sh(
        "web",
        "echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    web.volume_mounts = vec![mount("shared", "/www", false)];
    // Container 1 reaches container 0's httpd on 127.0.0.1 and writes what it got into the
    // shared volume; it also declares the published port, which container 0 must carry.
    let mut fetch = sh(
        "fetch",
        "while true; do wget -qO /data/got.tmp http://127.0.0.1:8080/index.html && mv /data/got.tmp /data/got.txt; sleep 0.2; done",
    );
    fetch.volume_mounts = vec![mount("shared", "/data", false)];
    fetch.ports = vec![ContainerPort {
        name: Some("http".into()),
        container_port: 8080,
        host_port: Some(host_port),
        host_ip: Some("127.0.0.1".into()),
        protocol: Protocol::Tcp,
    }];
    let mut p = pod("share", "duo", vec![web, fetch]);
    std::sync::Arc::make_mut(&mut p.spec).volumes = vec![Volume {
        name: "shared".into(),
        source: VolumeSource::EmptyDir,
    }];
    let _cleanup = Cleanup(p.namespace.clone());

    let ids = host.create_pod(&p, &[], 1).await?;
    assert_eq!(ids.len(), 2);

    let got = eventually("container 1 to fetch from container 0", || async {
        let out = exec(&docker, &ids[0], &["cat", "/www/got.txt"]).await?;
        Ok(out.contains("hello-from-web").then_some(out))
    })
    .await?;
    assert_eq!(got.trim(), "hello-from-web");
    assert_eq!(exec(&docker, &ids[0], &["hostname"]).await?.trim(), "duo");

    // Container 1's port is published on the pod's namespace: the test reaches container 0's httpd.
    let body = eventually("the published port to answer", || async {
        Ok(http_get(host_port)
            .await
            .ok()
            .filter(|b| b.contains("hello-from-web")))
    })
    .await?;
    assert!(body.contains("hello-from-web"));

    for (index, (id, name)) in ids.iter().zip(["web", "fetch"]).enumerate() {
        let l = labels_of(&docker, id).await?;
        let want = [
            (labels::MANAGED, "true"),
            (labels::NAMESPACE, p.namespace.as_str()),
            (labels::POD, "duo"),
            (labels::CONTAINER, name),
            (labels::OWNER, "owner-rc"),
            (labels::COMMIT, "commit-1"),
            (labels::SPEC_HASH, "hash-1"),
            (labels::GRACE, "1"),
            (labels::INDEX, &index.to_string()),
            ("app", "duo"),
        ];
        for (k, v) in want {
            assert_eq!(l.get(k).map(String::as_str), Some(v), "label {k} of {name}");
        }
    }
    let listed = host.list_managed().await?;
    let mine: Vec<_> = listed
        .iter()
        .filter(|c| c.namespace == p.namespace)
        .collect();
    assert_eq!(mine.len(), 3, "two containers and the pod's holder");
    assert!(mine.iter().all(|c| c.running && c.pod == "duo"));
    let holder = mine
        .iter()
        .find(|c| c.holder)
        .context("the holder is listed")?;
    assert!(holder.image.starts_with("berth/pause:"), "{holder:?}");
    assert!(mine
        .iter()
        .filter(|c| !c.holder)
        .all(|c| c.image == TEST_IMAGE && c.network_owner.as_deref() == Some(holder.id.as_str())));
    let holder_id = holder.id.clone();

    host.remove_containers(&ids).await?;
    host.remove_containers(&[holder_id]).await?;
    host.remove_pod_volumes(&p.namespace, &p.name).await?;
    let volume = format!("berth.{}.duo.shared", p.namespace);
    ensure!(
        docker.inspect_volume(&volume).await.is_err(),
        "volume {volume} left behind"
    );
    Ok(())
}

/// A minimal HTTP GET, to check a published port without an HTTP client dependency.
async fn http_get(port: u16) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut body)).await??;
    Ok(body)
}

#[tokio::test]
async fn create_pod_twice_keeps_the_same_containers_and_restarts_stopped_ones() -> Result<()> {
    let (host, docker) = system().await?;
    let p = pod("idem", "solo", vec![sh("app", "exec sleep 300")]);
    let _cleanup = Cleanup(p.namespace.clone());

    let started = Instant::now();
    let first = host.create_pod(&p, &[], 1).await?;
    let created_in = started.elapsed();
    let started = Instant::now();
    let second = host.create_pod(&p, &[], 1).await?;
    let kept_in = started.elapsed();
    eprintln!(
        "create_pod (1 container, image present): {created_in:.2?}; again (no-op): {kept_in:.2?}"
    );
    assert_eq!(first, second);

    docker
        .kill_container(
            &first[0],
            Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
        )
        .await?;
    let third = host.create_pod(&p, &[], 1).await?;
    assert_eq!(first, third, "a stopped container of the same spec is kept");
    let state = docker
        .inspect_container(&first[0], None::<InspectContainerOptions>)
        .await?
        .state;
    assert_eq!(
        state.and_then(|s| s.running),
        Some(true),
        "and started again"
    );

    host.remove_containers(&first).await?;
    Ok(())
}

#[tokio::test]
async fn create_pod_never_removes_an_older_container_in_its_way() -> Result<()> {
    let (host, docker) = system().await?;
    let mut p = pod(
        "rehash",
        "duo",
        vec![sh("a", "exec sleep 300"), sh("b", "exec sleep 300")],
    );
    let _cleanup = Cleanup(p.namespace.clone());

    let old = host.create_pod(&p, &[], 1).await?;
    p.spec_hash = "hash-2".into();
    // Stopping the old pod is a planned, graceful step of the engine, never a side effect.
    let err = host.create_pod(&p, &[], 1).await.unwrap_err();
    assert!(matches!(err, DockerError::NameInUse { .. }), "{err}");
    for id in &old {
        let running = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await?
            .state
            .and_then(|s| s.running);
        assert_eq!(running, Some(true), "{id} left running");
    }
    let stale: Vec<String> = host
        .list_managed()
        .await?
        .into_iter()
        .filter(|c| c.namespace == p.namespace)
        .map(|c| c.id)
        .collect();
    host.remove_containers(&stale).await?;
    let new = host.create_pod(&p, &[], 1).await?;
    assert!(old.iter().all(|id| !new.contains(id)), "{old:?} -> {new:?}");
    let l = labels_of(&docker, &new[1]).await?;
    assert_eq!(l.get(labels::SPEC_HASH).map(String::as_str), Some("hash-2"));
    let holder = host
        .list_managed()
        .await?
        .into_iter()
        .find(|c| c.namespace == p.namespace && c.holder)
        .context("a new holder")?;
    let joined = docker
        .inspect_container(&new[1], None::<InspectContainerOptions>)
        .await?;
    assert_eq!(
        joined.host_config.and_then(|h| h.network_mode),
        Some(format!("container:{}", holder.id)),
        "the new containers join the new holder"
    );
    host.remove_containers(&new).await?;
    host.remove_containers(&[holder.id]).await?;
    Ok(())
}

#[tokio::test]
async fn list_managed_never_lists_an_unlabelled_container() -> Result<()> {
    let (host, docker) = system().await?;
    let p = pod("unmanaged", "solo", vec![sh("app", "exec sleep 300")]);
    let _cleanup = Cleanup(p.namespace.clone());
    let ids = host.create_pod(&p, &[], 1).await?;

    // Looks like ours in every way but the managed label.
    let name = format!("berth.{}.solo.intruder", p.namespace);
    let body = ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "300".into()]),
        labels: Some(HashMap::from([
            (labels::NAMESPACE.to_string(), p.namespace.clone()),
            (labels::POD.to_string(), "solo".to_string()),
            (labels::MANAGED.to_string(), "false".to_string()),
        ])),
        ..Default::default()
    };
    let intruder = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await?
        .id;

    let listed = host.list_managed().await?;
    assert!(
        listed.iter().all(|c| c.id != intruder),
        "unmanaged container listed"
    );
    assert!(listed.iter().any(|c| c.id == ids[0]));

    // Nor does create_pod take over an unmanaged container under a berth name.
    let mut squatter = p.clone();
    std::sync::Arc::make_mut(&mut squatter.spec).containers =
        vec![sh("intruder", "exec sleep 300")];
    let err = host.create_pod(&squatter, &[], 1).await.unwrap_err();
    assert!(matches!(err, DockerError::NameTaken { .. }), "{err}");
    host.remove_containers(&ids).await?;
    Ok(())
}

#[tokio::test]
async fn stopping_is_a_signal_now_and_a_kill_later_each_idempotent() -> Result<()> {
    let (host, docker) = system().await?;
    // `sleep` as pid 1 ignores SIGTERM: only the SIGKILL ends it.
    let p = pod("grace", "stubborn", vec![sh("app", "exec sleep 300")]);
    let _cleanup = Cleanup(p.namespace.clone());
    let ids = host.create_pod(&p, &[], 1).await?;

    let started = Instant::now();
    let signalled: Vec<(String, Option<String>)> =
        ids.iter().map(|id| (id.clone(), None)).collect();
    host.signal(&signalled).await?;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "signal returns at once: {took:?}"
    );
    let running = |docker: Docker, id: String| async move {
        docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running)
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        running(docker.clone(), ids[0].clone()).await,
        Some(true),
        "SIGTERM ignored"
    );
    host.kill(&ids).await?;
    eventually("the kill to end it", || async {
        Ok((running(docker.clone(), ids[0].clone()).await == Some(false)).then_some(()))
    })
    .await?;
    let policy = docker
        .inspect_container(&ids[0], None::<InspectContainerOptions>)
        .await?
        .host_config
        .and_then(|h| h.restart_policy)
        .and_then(|r| r.name);
    assert_eq!(
        policy,
        Some(bollard::models::RestartPolicyNameEnum::NO),
        "Docker will not start it again"
    );
    host.kill(&ids)
        .await
        .context("killing a stopped container")?;
    host.signal(&signalled)
        .await
        .context("signalling a stopped container")?;
    host.remove_containers(&ids).await?;
    ensure!(docker
        .inspect_container(&ids[0], None::<InspectContainerOptions>)
        .await
        .is_err());
    host.remove_containers(&ids)
        .await
        .context("removing a removed container")?;
    host.remove_pod_volumes(&p.namespace, &p.name)
        .await
        .context("no volumes to remove")?;
    Ok(())
}

#[tokio::test]
async fn host_path_is_bind_mounted_and_read_only_is_honoured() -> Result<()> {
    let (host, docker) = system().await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("greeting"), "hi from the host")?;
    let mut c = sh("app", "exec sleep 300");
    c.volume_mounts = vec![mount("conf", "/conf", true)];
    let mut p = pod("hostpath", "reader", vec![c]);
    std::sync::Arc::make_mut(&mut p.spec).volumes = vec![Volume {
        name: "conf".into(),
        source: VolumeSource::HostPath {
            path: dir.path().to_string_lossy().into_owned(),
        },
    }];
    let _cleanup = Cleanup(p.namespace.clone());
    let ids = host.create_pod(&p, &[], 1).await?;

    assert_eq!(
        exec(&docker, &ids[0], &["cat", "/conf/greeting"]).await?,
        "hi from the host"
    );
    let out = exec(
        &docker,
        &ids[0],
        &["sh", "-c", "touch /conf/x 2>&1 || echo refused"],
    )
    .await?;
    assert!(out.contains("refused"), "{out}");
    host.remove_containers(&ids).await?;
    Ok(())
}

#[tokio::test]
async fn missing_images_fail_as_image_pull_or_not_present() -> Result<()> {
    let (host, _docker) = system().await?;
    let settings = PullSettings::default();
    // A registry on a loopback port nobody listens on: the pull fails at once, locally.
    let image = format!("127.0.0.1:{}/berth-missing/nothing:1", free_port()?);

    let started = Instant::now();
    let err = host
        .ensure_image(&image, PullPolicy::IfNotPresent, &settings)
        .await
        .unwrap_err();
    eprintln!("failed pull reported in {:.2?}: {err}", started.elapsed());
    match &err {
        DockerError::ImagePull { image: i, message } => {
            assert_eq!(i, &image);
            assert!(!message.is_empty());
        }
        other => panic!("expected ImagePull, got {other:?}"),
    }
    assert!(!err.is_unreachable());

    let err = host
        .ensure_image(&image, PullPolicy::Never, &settings)
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::ImageNotPresent { .. }), "{err}");

    // `Always` with no registry falls back to the local copy, with a warning, when allowed.
    let warning = host
        .ensure_image(TEST_IMAGE, PullPolicy::Always, &settings)
        .await?;
    assert!(
        warning
            .as_deref()
            .is_some_and(|w| w.contains("using the image already on")),
        "{warning:?}"
    );
    let strict = PullSettings {
        fallback: false,
        ..PullSettings::default()
    };
    let err = host
        .ensure_image(TEST_IMAGE, PullPolicy::Always, &strict)
        .await
        .unwrap_err();
    assert!(matches!(err, DockerError::ImagePull { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_unreachable_quickly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let endpoint = format!("unix://{}/docker.sock", dir.path().display());
    let host = DockerHost::connect("gone", &endpoint, None)?;

    let started = Instant::now();
    let err = host.info().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let err = host.list_managed().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let err = host
        .create_pod(&pod("gone", "p", vec![sh("a", "true")]), &[], 1)
        .await
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let first = host
        .events()
        .next()
        .await
        .context("events of a gone engine")?;
    assert!(first.is_err_and(|e| e.is_unreachable()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A socket file that nobody serves: connection refused.
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket)?);
    let err = host.info().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");

    let err = DockerHost::connect("typo", "unix:/var/run/docker.sock", None).unwrap_err();
    assert!(
        err.to_string().contains("unix:/var/run/docker.sock"),
        "{err}"
    );
    let err = DockerHost::connect("tls", "https://127.0.0.1:2376", Some(dir.path())).unwrap_err();
    assert!(
        err.to_string().contains("ca.pem, cert.pem, key.pem"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn info_reports_version_cpus_and_memory() -> Result<()> {
    let (host, _docker) = system().await?;
    let info = host.info().await?;
    assert!(!info.version.is_empty());
    assert!(info.cpus >= 1 && info.memory_bytes > 0, "{info:?}");
    Ok(())
}

#[tokio::test]
async fn events_report_a_die_after_a_kill() -> Result<()> {
    let (host, docker) = system().await?;
    a_die_is_reported(&host, &docker, "events").await
}

/// The same over `tcp://` (berth reads event streams of unix and tcp endpoints itself): the
/// system engine behind a loopback port that forwards to its socket.
#[tokio::test]
async fn events_report_a_die_after_a_kill_over_tcp() -> Result<()> {
    let (_, docker) = system().await?;
    let socket = SYSTEM_ENDPOINT
        .strip_prefix("unix://")
        .context("the system endpoint is a unix socket")?
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let forward = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    let host = DockerHost::connect("system-tcp", &format!("tcp://127.0.0.1:{port}"), None)?;
    let result = a_die_is_reported(&host, &docker, "events-tcp").await;
    forward.abort();
    result
}

async fn a_die_is_reported(host: &DockerHost, docker: &Docker, namespace: &str) -> Result<()> {
    let p = pod(namespace, "victim", vec![sh("app", "exec sleep 300")]);
    let _cleanup = Cleanup(p.namespace.clone());
    let ids = host.create_pod(&p, &[], 1).await?;
    let id = ids[0].clone();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ContainerEvent>();
    let watcher = tokio::spawn(host.events().try_for_each(move |e| {
        let _ = tx.send(e);
        async { Ok(()) }
    }));

    // The subscription has no "ready" signal: kill, and if no `die` shows up, start and kill
    // again (a kill that raced the subscription is simply not seen).
    let mut seen = None;
    for _ in 0..10 {
        host.start(std::slice::from_ref(&id)).await?;
        docker
            .kill_container(
                &id,
                Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
            )
            .await?;
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(e) if e.id == id && e.action == "die" => { seen = Some(e); break }
                    Some(_) => continue,
                    None => bail!("event stream ended: {:?}", watcher.await),
                },
                _ = &mut deadline => break,
            }
        }
        if seen.is_some() {
            break;
        }
    }
    watcher.abort();
    let event = seen.context("no die event after docker kill")?;
    assert_eq!(
        (event.namespace.as_str(), event.pod.as_str()),
        (p.namespace.as_str(), "victim")
    );
    host.remove_containers(&ids).await?;
    Ok(())
}
