//! The pod holder image against the machine's Docker engine: imported once however many callers
//! race, tiny, local, and a holder made from it keeps a network namespace other containers
//! join, and stops at once with status 0.
//!
//! The tests share one image tag and remove it at the end, so they take turns ([`TURN`]); a
//! guard removes what a test created, also when it fails.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use berth::docker::{pause_image, DockerHost};
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, InspectContainerOptions,
    RemoveImageOptions, StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::TryStreamExt;
use support::{system_engine, TEST_IMAGE};
use tokio::sync::Mutex;

const SYSTEM_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// Marks the containers of this test process, for the cleanup.
const TEST_LABEL: &str = "io.berth.test";

/// Held by each test for its whole run: one test removing the image must not pull it from
/// under another.
static TURN: Mutex<()> = Mutex::const_new(());

/// The same turn across processes: concurrent runs of the suite (`scripts/loaded-rounds`)
/// share the system engine, and one run's holder container kept the other's removal of the
/// image from succeeding. An exclusive lock on a file, released when the file is dropped.
async fn engine_turn() -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("berth-tests-pause-image.lock"))?;
    // flock(2) through libc: `File::lock` is newer than the crate's MSRV.
    let file = tokio::task::spawn_blocking(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor owned by `file`, which outlives the call.
        match unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } {
            0 => Ok(file),
            _ => Err(std::io::Error::last_os_error()),
        }
    })
    .await??;
    Ok(file)
}

/// Removes this process's test containers, then the holder image, when dropped (even after a
/// panic). Synchronous on purpose: drop cannot await.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let script = format!(
            "docker ps -aq --filter label={TEST_LABEL}={} | xargs -r docker rm -f -v; \
             docker rmi {} >/dev/null 2>&1",
            label_value(),
            pause_image()
        );
        let _ = std::process::Command::new("sh")
            .args(["-c", &script])
            .output();
    }
}

fn label_value() -> String {
    format!("pause-{}", std::process::id())
}

fn labels() -> HashMap<String, String> {
    HashMap::from([(TEST_LABEL.to_string(), label_value())])
}

async fn system() -> Result<(DockerHost, Docker)> {
    let docker = system_engine().await?;
    let host = DockerHost::connect("system", SYSTEM_ENDPOINT, None)?;
    Ok((host, docker))
}

/// Docker's `since`/`until` form: seconds and nanoseconds since the epoch.
fn timestamp(at: SystemTime) -> Result<String> {
    let since = at.duration_since(UNIX_EPOCH)?;
    Ok(format!("{}.{:09}", since.as_secs(), since.subsec_nanos()))
}

/// Removes the holder image if present, so that the next ensure has to import it.
async fn remove_pause_image(docker: &Docker) -> Result<()> {
    match docker
        .remove_image(&pause_image(), None::<RemoveImageOptions>, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(e).context("removing the holder image (is a holder container left over?)"),
    }
}

/// Creates and starts a labelled container.
async fn run(docker: &Docker, name: &str, body: ContainerCreateBody) -> Result<String> {
    let body = ContainerCreateBody {
        labels: Some(labels()),
        ..body
    };
    let name = format!("berth-pause-test-{}-{name}", std::process::id());
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await?;
    docker
        .start_container(&created.id, None::<StartContainerOptions>)
        .await?;
    Ok(created.id)
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
            Ok(chunks.iter().map(|c| c.to_string()).collect())
        }
        StartExecResults::Detached => bail!("exec detached"),
    }
}

/// The running container's process id on this machine.
async fn pid_of(docker: &Docker, id: &str) -> Result<i64> {
    let found = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await?;
    let state = found.state.context("no state")?;
    ensure!(
        state.running == Some(true),
        "{id} is not running: {state:?}"
    );
    state.pid.filter(|&p| p > 0).context("no pid")
}

// ---- tests ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_callers_import_the_holder_image_once_and_it_is_tiny_and_local() -> Result<()> {
    let _turn = TURN.lock().await;
    let _engine = engine_turn().await?;
    let _cleanup = Cleanup;
    let (host, docker) = system().await?;
    remove_pause_image(&docker).await?;
    let since = timestamp(SystemTime::now())?;

    // Clones share the host's import lock, as the executor's tasks do.
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { host.ensure_pause_image().await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await??, pause_image());
    }
    // Present now: only an inspect.
    assert_eq!(host.ensure_pause_image().await?, pause_image());

    let until = timestamp(SystemTime::now())?;
    let filters = HashMap::from([("type", vec!["image"]), ("event", vec!["import"])]);
    let options = EventsOptionsBuilder::new()
        .since(&since)
        .until(&until)
        .filters(&filters)
        .build();
    let imports: Vec<_> = docker.events(Some(options)).try_collect().await?;
    assert_eq!(imports.len(), 1, "import events: {imports:?}");

    let image = docker.inspect_image(&pause_image()).await?;
    let size = image.size.context("no size")?;
    assert!(size < 64 * 1024, "image of {size} bytes");
    let config = image.config.context("no config")?;
    assert_eq!(config.entrypoint, Some(vec!["/pause".to_string()]));
    assert_eq!(image.os.as_deref(), Some("linux"));
    // Imported, not pulled: no registry ever saw it.
    assert_eq!(image.repo_digests.unwrap_or_default(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn holder_keeps_a_network_namespace_others_join_and_stops_at_once_with_status_zero(
) -> Result<()> {
    let _turn = TURN.lock().await;
    let _engine = engine_turn().await?;
    let _cleanup = Cleanup;
    let (host, docker) = system().await?;
    let image = host.ensure_pause_image().await?;

    // Default network mode: the holder gets the bridge network and an address of its own.
    let holder = run(
        &docker,
        "holder",
        ContainerCreateBody {
            image: Some(image),
            ..Default::default()
        },
    )
    .await?;
    let holder_pid = pid_of(&docker, &holder).await?;
    // It stays up: still the same process a moment later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pid_of(&docker, &holder).await?, holder_pid);

    let app = run(
        &docker,
        "app",
        ContainerCreateBody {
            image: Some(TEST_IMAGE.to_string()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{holder}")),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;
    let app_pid = pid_of(&docker, &app).await?;

    // One network namespace, as the kernel sees it...
    let netns = |pid: i64| std::fs::read_link(format!("/proc/{pid}/ns/net"));
    assert_eq!(netns(app_pid)?, netns(holder_pid)?);
    // ...and as the app sees it: the holder's host name and the holder's address.
    let inspected = docker
        .inspect_container(&holder, None::<InspectContainerOptions>)
        .await?;
    let hostname = inspected.config.and_then(|c| c.hostname).context("name")?;
    assert_eq!(exec(&docker, &app, &["hostname"]).await?.trim(), hostname);
    let address = inspected
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get("bridge").and_then(|b| b.ip_address.clone()))
        .filter(|a| !a.is_empty())
        .context("the holder has no bridge address")?;
    let addresses = exec(&docker, &app, &["ip", "-o", "-4", "addr"]).await?;
    assert!(
        addresses.contains(&format!("inet {address}/")),
        "holder {address}, app sees: {addresses}"
    );

    // SIGTERM ends it at once, not after the 10 s timeout with SIGKILL.
    let started = Instant::now();
    docker
        .stop_container(
            &holder,
            Some(StopContainerOptionsBuilder::new().t(10).build()),
        )
        .await?;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "docker stop took {took:?}");
    let state = docker
        .inspect_container(&holder, None::<InspectContainerOptions>)
        .await?
        .state
        .context("no state")?;
    assert_eq!(state.running, Some(false));
    assert_eq!(state.exit_code, Some(0), "{state:?}");
    Ok(())
}

#[tokio::test]
async fn ensuring_the_holder_image_on_an_engine_that_is_gone_is_unreachable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let endpoint = format!("unix://{}/docker.sock", dir.path().display());
    let host = DockerHost::connect("gone", &endpoint, None)?;
    let err = host.ensure_pause_image().await.expect_err("no engine");
    assert!(err.is_unreachable(), "{err:?}");
    Ok(())
}
