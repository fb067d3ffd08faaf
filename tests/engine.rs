//! The keyed engine against real engines: a slow stop never delays healing elsewhere, a pod
//! that cannot start costs bounded Raft entries and CPU with a growing backoff, liveness
//! restarts, crash loops, pods whose holder restarts, and completed pods.

mod support;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions,
};
use serde_json::Value;

use support::apps::containers;
use support::berth::{rc_yaml, Setup};
use support::TEST_IMAGE;

fn pod(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n{spec}")
}

/// The pod as the API shows it; `null` while the commit that wants it is not accepted yet.
async fn pod_view(w: &Setup, name: &str) -> Result<Value> {
    let pods = w.berth.get("/api/v1/pods").await?;
    Ok(pods
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or(Value::Null))
}

async fn wait_pod(
    w: &Setup,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = pod_view(w, name).await?;
        if check(&p) {
            return Ok(p);
        }
        if Instant::now() > deadline {
            bail!("pod {name} never got {what}: {p}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU seconds (user + system) a process used so far.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("stat format")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn raft_index(status: &Value) -> u64 {
    status["raft"]["last_log_index"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_stopping_with_a_300_s_grace_delays_no_healing_elsewhere() -> Result<()> {
    // `sleep` as pid 1 ignores SIGTERM: only the SIGKILL after 300 s would end it.
    let slow = pod(
        "slow",
        "  terminationGracePeriodSeconds: 300\n  containers:\n  - name: main\n    image: berth-test/busybox:1\n    command: [sleep, \"3600\"]\n",
    );
    let w = Setup::start(
        "eng-d",
        &[
            ("slow.yaml", slow),
            ("web.yaml", rc_yaml("web", 2, TEST_IMAGE, "1")),
        ],
    )
    .await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    w.repo.remove("slow.yaml");
    let gone = w.repo.commit("remove the slow pod")?;
    w.berth
        .wait_for("the removal accepted", |s| s["commit"] == gone.as_str())
        .await?;
    // The slow pod is stopping now, and will be for minutes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let slow_left = containers(&docker, "").await?;
    ensure!(
        slow_left.iter().any(|c| c.pod == "slow" && c.running),
        "the slow pod is still in its grace period: {slow_left:?}"
    );

    for trial in 0..3 {
        let web = containers(&docker, "web").await?;
        let victim = web[trial % web.len()].clone();
        let started = Instant::now();
        docker
            .remove_container(
                &victim.id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await?;
        loop {
            let now = containers(&docker, "web").await?;
            if now
                .iter()
                .any(|c| c.pod == victim.pod && c.id != victim.id && c.running)
            {
                break;
            }
            // Far below the 300 s a stop that blocked healing would take; the latency itself
            // is measured in `benches/rollout.rs` (heal p50 under 0.5 s), not here.
            ensure!(
                started.elapsed() < Duration::from_secs(20),
                "{} not healed within 20 s while another pod stops slowly",
                victim.pod
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("healed {} in {:?}", victim.pod, started.elapsed());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_can_never_start_costs_bounded_entries_and_cpu_and_backs_off() -> Result<()> {
    let mut w = Setup::start("eng-e", &[("web.yaml", rc_yaml("web", 1, TEST_IMAGE, "1"))]).await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    // A container berth does not manage holds host port 18080.
    let foreign = docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name("foreign-holder")
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                cmd: Some(vec!["sleep".into(), "3600".into()]),
                exposed_ports: Some(vec!["80/tcp".into()]),
                host_config: Some(HostConfig {
                    port_bindings: Some(
                        [(
                            "80/tcp".to_string(),
                            Some(vec![PortBinding {
                                host_ip: None,
                                host_port: Some("18080".into()),
                            }]),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await?
        .id;
    docker
        .start_container(&foreign, None::<StartContainerOptions>)
        .await?;
    let blocked = pod(
        "blocked",
        "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: berth-test/busybox:1\n    command: [sleep, \"3600\"]\n    ports:\n    - {containerPort: 80, hostPort: 18080}\n",
    );
    w.repo.write("blocked.yaml", &blocked);
    let sha = w.repo.commit("a pod whose host port is taken")?;
    wait_pod(&w, "blocked", "a failure", |p| {
        p["failures"].as_u64() >= Some(1)
    })
    .await?;

    let pid = w.berth.pid().context("berth runs")?;
    let (cpu0, index0) = (cpu_seconds(pid)?, raft_index(&w.berth.status().await?));
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (cpu1, index1) = (cpu_seconds(pid)?, raft_index(&w.berth.status().await?));
    let p = pod_view(&w, "blocked").await?;
    let failures = p["failures"].as_u64().unwrap_or(0);
    eprintln!(
        "over 60 s: {:.2} s of CPU, {} Raft entries, {failures} attempts, phase {} ({})",
        cpu1 - cpu0,
        index1 - index0,
        p["phase"],
        p["reason"]
    );
    assert!(
        p["reason"].as_str().is_some_and(|r| r.contains("18080")),
        "{p}"
    );
    // 1, 2, 4, 8, 16, 32 s apart: about six attempts a minute, not sixty.
    assert!(
        (4..=9).contains(&failures),
        "{failures} attempts in about a minute"
    );
    assert!(
        index1 - index0 <= 5,
        "{} Raft entries for a pod that cannot start",
        index1 - index0
    );
    assert!(cpu1 - cpu0 < 3.0, "{:.2} s of CPU in 60 s", cpu1 - cpu0);
    assert_eq!(w.berth.status().await?["commit"], sha.as_str());

    // A down engine: no pass per second either.
    w.engine.stop().await?;
    w.berth
        .wait_for("the host not ready", |s| s["nodes_ready"] == 0)
        .await?;
    let (cpu0, index0) = (cpu_seconds(pid)?, raft_index(&w.berth.status().await?));
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (cpu1, index1) = (cpu_seconds(pid)?, raft_index(&w.berth.status().await?));
    eprintln!(
        "engine down for 20 s: {:.2} s of CPU, {} Raft entries",
        cpu1 - cpu0,
        index1 - index0
    );
    assert!(index1 - index0 <= 2, "{}", index1 - index0);
    assert!(cpu1 - cpu0 < 1.0, "{:.2} s of CPU in 20 s", cpu1 - cpu0);
    w.engine.start().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container_and_a_crash_loop_shows_its_count(
) -> Result<()> {
    // Alive for three seconds after each start, then the probe fails.
    let live = pod(
        "live",
        "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: berth-test/busybox:1\n    command: [sh, -c, 'touch /tmp/alive; sleep 3; rm /tmp/alive; exec sleep 3600']\n    livenessProbe:\n      exec: {command: [test, -f, /tmp/alive]}\n      periodSeconds: 1\n      failureThreshold: 1\n",
    );
    let crash = pod(
        "crash",
        "  containers:\n  - name: main\n    image: berth-test/busybox:1\n    command: [sh, -c, 'sleep 1; exit 3']\n",
    );
    let w = Setup::start("eng-f", &[("live.yaml", live), ("crash.yaml", crash)]).await?;
    let docker = w.engine.docker().clone();
    let first = wait_pod(&w, "live", "running", |p| p["phase"] == "Running").await?;
    let id = first["containers"][0]["id"]
        .as_str()
        .context("container id")?
        .to_string();
    let started = |docker: bollard::Docker, id: String| async move {
        docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.started_at)
    };
    let first_start = started(docker.clone(), id.clone()).await;
    let restarted = wait_pod(&w, "live", "a liveness restart", |p| {
        p["restarts"].as_u64() >= Some(1)
    })
    .await?;
    assert_eq!(
        restarted["containers"][0]["id"],
        id.as_str(),
        "the same container, restarted"
    );
    assert_ne!(started(docker.clone(), id.clone()).await, first_start);

    let crashing = wait_pod(&w, "crash", "a crash loop", |p| {
        p["phase"] == "CrashLoopBackOff" && p["restarts"].as_u64() >= Some(2)
    })
    .await?;
    assert!(
        crashing["reason"]
            .as_str()
            .is_some_and(|r| r.contains("exited with 3")),
        "{crashing}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_of_a_pod_keep_reaching_each_other_after_any_restart() -> Result<()> {
    let duo = pod(
        "duo",
        "  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: berth-test/busybox:1\n    command: [sh, -c, 'mkdir -p /www && echo duo > /www/index.html && exec httpd -f -p 8080 -h /www']\n    ports: [{containerPort: 8080}]\n  - name: side\n    image: berth-test/busybox:1\n    command: [sh, -c, 'while true; do if wget -qO- http://127.0.0.1:8080/index.html >/dev/null 2>&1; then echo ok > /tmp/s; else echo fail > /tmp/s; fi; sleep 0.2; done']\n",
    );
    let w = Setup::start("eng-g", &[("duo.yaml", duo)]).await?;
    w.berth.wait_converged(&w.first).await?;
    let docker = w.engine.docker().clone();
    let side_sees_web = |docker: bollard::Docker| async move {
        let side = containers(&docker, "")
            .await?
            .into_iter()
            .find(|c| c.pod == "duo" && c.running && c.id.len() > 1)
            .context("containers")?;
        let _ = side;
        let all = docker
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::default()
                    .filters(&[("label", vec!["io.berth.container=side"])].into())
                    .build(),
            ))
            .await?;
        let Some(id) = all.first().and_then(|c| c.id.clone()) else {
            return Ok::<bool, anyhow::Error>(false);
        };
        let exec = docker
            .create_exec(
                &id,
                bollard::exec::CreateExecOptions {
                    cmd: Some(vec!["cat", "/tmp/s"]),
                    attach_stdout: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let mut out = String::new();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, None).await?
        {
            use futures_util::StreamExt;
            while let Some(Ok(chunk)) = output.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        }
        if out.trim() != "ok" {
            eprintln!("sidecar says {out:?}");
        }
        Ok(out.trim() == "ok")
    };
    let until = |what: &'static str, docker: bollard::Docker| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if side_sees_web(docker.clone()).await? {
                return Ok::<(), anyhow::Error>(());
            }
            ensure!(
                Instant::now() < deadline,
                "the sidecar never reached the web container {what}"
            );
        }
    };
    until("at first", docker.clone()).await?;
    let kill = |id: String| {
        let docker = docker.clone();
        async move {
            docker
                .kill_container(
                    &id,
                    Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
                )
                .await
        }
    };
    let by_role = |label: &'static str| {
        let docker = docker.clone();
        async move {
            let found = docker
                .list_containers(Some(
                    bollard::query_parameters::ListContainersOptionsBuilder::default()
                        .filters(&[("label", vec![label])].into())
                        .build(),
                ))
                .await?;
            found.first().and_then(|c| c.id.clone()).context(label)
        }
    };
    // The web container crashes; Docker restarts it into the same (holder's) namespace.
    kill(by_role("io.berth.container=web").await?).await?;
    until("after the web container restarted", docker.clone()).await?;
    // The holder itself dies; Docker restarts it in a new namespace, berth restarts the apps into it.
    let holder = by_role("io.berth.role=holder").await?;
    kill(holder.clone()).await?;
    until("after the holder restarted", docker.clone()).await?;
    // The pod answers at its holder's (new) address once berth has moved the apps into it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let holder_now = docker
            .inspect_container(&holder, None::<InspectContainerOptions>)
            .await?;
        let ip = holder_now
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.values().find_map(|e| e.ip_address.clone()))
            .filter(|ip| !ip.is_empty());
        if let Some(ip) = ip {
            let answer = reqwest::Client::new()
                .get(format!("http://{ip}:8080/index.html"))
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if let Ok(r) = answer {
                assert_eq!(r.text().await?.trim(), "duo");
                break;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the pod never answered at its holder's address; holder state {:?}",
            holder_now.state
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until(
        "after the apps moved into the new namespace",
        docker.clone(),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_pod_that_exits_0_lets_its_commit_converge() -> Result<()> {
    let job = pod(
        "job",
        "  restartPolicy: Never\n  containers:\n  - name: main\n    image: berth-test/busybox:1\n    command: [sh, -c, 'echo done']\n",
    );
    let w = Setup::start("eng-h", &[("job.yaml", job)]).await?;
    // Converged may come while the pod still runs (running is what a Never pod is asked for):
    // wait for it to have exited, then the commit must be (or stay) converged.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = pod_view(&w, "job").await?;
        if p["phase"] == "Succeeded" {
            break;
        }
        ensure!(Instant::now() < deadline, "the job never succeeded: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.berth.wait_converged(&w.first).await?;
    let record = w.berth.get(&format!("/api/v1/commits/{}", w.first)).await?;
    assert_eq!(record["outcome"], "applied");
    Ok(())
}
