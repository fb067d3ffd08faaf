use super::*;
use crate::manifest::quantity::{Cpu, Memory};
use crate::manifest::{Container, ContainerPort, EnvVar, PodSpec, Protocol, Volume, VolumeMount};

fn container(name: &str) -> Container {
    Container::new(name, "berth-test/busybox:1")
}

fn pod(containers: Vec<Container>) -> DesiredPod {
    DesiredPod {
        namespace: "shop".into(),
        name: "web-x7k2q".into(),
        owner: Some("web".into()),
        node: "local".into(),
        labels: std::sync::Arc::new([("app".to_string(), "web".to_string())].into()),
        spec: PodSpec {
            containers,
            volumes: vec![],
            restart_policy: RestartPolicy::Always,
            node_selector: Default::default(),
            termination_grace_period_seconds: 7,
        }
        .into(),
        spec_hash: "h1".into(),
        commit: "c0ffee".into(),
    }
}

fn port(container_port: u16, host_port: Option<u16>) -> ContainerPort {
    ContainerPort {
        name: None,
        container_port,
        host_port,
        host_ip: host_port.map(|_| "127.0.0.1".to_string()),
        protocol: Protocol::Tcp,
    }
}

#[test]
fn names_follow_berth_namespace_pod_container() {
    assert_eq!(
        container_name("staging", "shop", "web-x7k2q", "nginx"),
        "staging.shop.web-x7k2q.nginx",
        "two clusters never share a name"
    );
    assert_eq!(
        container_name("berth", "shop", "web-x7k2q", "nginx"),
        "berth.shop.web-x7k2q.nginx"
    );
    assert_eq!(
        volume_name("berth", "shop", "web", "cache"),
        "berth.shop.web.cache"
    );
    assert_eq!(
        container_name("berth", "a b", "p/q", "c"),
        "berth.a-b.p-q.c"
    );
    let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
    assert_eq!(pod_hostname(&long), "a".repeat(62));
}

#[test]
fn labels_carry_ownership_and_the_pods_own_labels_but_cannot_forge_berths() {
    let mut p = pod(vec![container("app"), container("side")]);
    std::sync::Arc::make_mut(&mut p.labels).insert(labels::MANAGED.into(), "false".into());
    let id = Identity {
        cluster: "staging".into(),
        term: 7,
    };
    let got = container_labels(&p, 1, &id);
    let want: HashMap<String, String> = [
        ("app", "web"),
        (labels::MANAGED, "true"),
        (labels::NAMESPACE, "shop"),
        (labels::POD, "web-x7k2q"),
        (labels::CONTAINER, "side"),
        (labels::OWNER, "web"),
        (labels::COMMIT, "c0ffee"),
        (labels::SPEC_HASH, "h1"),
        (labels::GRACE, "7"),
        (labels::INDEX, "1"),
        (labels::CLUSTER, "staging"),
        (labels::TERM, "7"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);

    p.owner = None;
    assert!(!container_labels(&p, 0, &Identity::default()).contains_key(labels::OWNER));
}

#[test]
fn command_replaces_entrypoint_and_args_replace_cmd() {
    let mut c = container("app");
    c.command = vec!["sh".into(), "-c".into()];
    c.args = vec!["echo hi".into()];
    c.env = vec![EnvVar {
        name: "A".into(),
        value: "1=2".into(),
    }];
    c.working_dir = Some("/srv".into());
    let body = container_body(&pod(vec![c.clone()]), 0, None, &[], &Identity::default()).unwrap();
    assert_eq!(
        body.entrypoint,
        Some(vec!["sh".to_string(), "-c".to_string()])
    );
    assert_eq!(body.cmd, Some(vec!["echo hi".to_string()]));
    assert_eq!(body.env, Some(vec!["A=1=2".to_string()]));
    assert_eq!(body.working_dir.as_deref(), Some("/srv"));
    assert_eq!(body.stop_timeout, Some(7));

    c.command.clear();
    let body = container_body(&pod(vec![c]), 0, None, &[], &Identity::default()).unwrap();
    assert_eq!(body.entrypoint, None, "the image's ENTRYPOINT stays");
    assert_eq!(body.cmd, Some(vec!["echo hi".to_string()]));
}

#[test]
fn limits_become_memory_and_nano_cpus() {
    let mut c = container("app");
    c.resources.limits.memory = Some(Memory(64 * 1024 * 1024));
    c.resources.limits.cpu = Some(Cpu(250));
    c.resources.requests.memory = Some(Memory(1));
    let host = container_body(&pod(vec![c]), 0, None, &[], &Identity::default())
        .unwrap()
        .host_config
        .unwrap();
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(250_000_000));
}

#[test]
fn restart_policies_map_to_dockers() {
    let name = |p| restart_policy(p).name.unwrap();
    assert_eq!(name(RestartPolicy::Always), RestartPolicyNameEnum::ALWAYS);
    assert_eq!(
        name(RestartPolicy::OnFailure),
        RestartPolicyNameEnum::ON_FAILURE
    );
    assert_eq!(name(RestartPolicy::Never), RestartPolicyNameEnum::NO);
}

#[test]
fn the_holder_owns_hostname_and_publishes_every_containers_ports() {
    let mut app = container("app");
    app.ports = vec![port(8080, Some(18080)), port(9000, None)];
    let mut side = container("side");
    side.ports = vec![port(9090, Some(19090))];
    let p = pod(vec![app, side]);

    let holder = holder_body(&p, "berth/pause:abc", &[9000], &Identity::default());
    assert_eq!(holder.image.as_deref(), Some("berth/pause:abc"));
    assert_eq!(holder.hostname.as_deref(), Some("web-x7k2q"));
    assert_eq!(
        holder.exposed_ports,
        Some(vec![
            "8080/tcp".to_string(),
            "9000/tcp".to_string(),
            "9090/tcp".to_string()
        ])
    );
    let labels_of_holder = holder.labels.clone().unwrap();
    assert_eq!(labels_of_holder[labels::ROLE], "holder");
    assert_eq!(labels_of_holder[labels::CONTAINER], HOLDER);
    let host = holder.host_config.unwrap();
    assert_eq!(
        host.restart_policy.unwrap().name,
        Some(RestartPolicyNameEnum::ALWAYS)
    );
    let bindings = host.port_bindings.unwrap();
    assert_eq!(bindings.len(), 3);
    assert_eq!(
        bindings["9090/tcp"],
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some("19090".into())
        }])
    );
    assert_eq!(
        bindings["9000/tcp"],
        Some(vec![PortBinding {
            host_ip: None,
            host_port: Some(String::new())
        }]),
        "a probed port without a hostPort is published on a port the engine picks"
    );

    for index in [0, 1] {
        let app = container_body(&p, index, Some("abc123"), &[], &Identity::default()).unwrap();
        assert_eq!(app.hostname, None);
        assert_eq!(app.exposed_ports, None);
        let host = app.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc123"));
        assert_eq!(host.port_bindings, None);
    }
    assert!(matches!(
        container_body(&p, 1, None, &[], &Identity::default()),
        Err(DockerError::InvalidPod { .. })
    ));
}

#[test]
fn a_single_container_owns_its_namespace_and_ports() {
    let mut app = container("app");
    app.ports = vec![port(8080, Some(18080))];
    let zero = container_body(&pod(vec![app]), 0, None, &[], &Identity::default()).unwrap();
    assert_eq!(zero.hostname.as_deref(), Some("web-x7k2q"));
    let host = zero.host_config.unwrap();
    assert_eq!(host.network_mode, None);
    assert_eq!(host.port_bindings.unwrap().len(), 1);
}

#[test]
fn empty_dirs_are_named_labelled_volumes_and_host_paths_bind_mounts() {
    let mut c = container("app");
    c.volume_mounts = vec![
        VolumeMount {
            name: "cache".into(),
            mount_path: "/cache".into(),
            read_only: false,
        },
        VolumeMount {
            name: "etc".into(),
            mount_path: "/host-etc".into(),
            read_only: true,
        },
    ];
    let mut p = pod(vec![c]);
    std::sync::Arc::make_mut(&mut p.spec).volumes = vec![
        Volume {
            name: "cache".into(),
            source: VolumeSource::EmptyDir,
        },
        Volume {
            name: "etc".into(),
            source: VolumeSource::HostPath {
                path: "/etc".into(),
            },
        },
    ];

    let volumes = empty_dir_volumes(&p, &Identity::default());
    assert_eq!(volumes.len(), 1);
    assert_eq!(
        volumes[0].name.as_deref(),
        Some("berth.shop.web-x7k2q.cache")
    );
    let vl = volumes[0].labels.as_ref().unwrap();
    assert_eq!(vl[labels::MANAGED], "true");
    assert_eq!(vl[labels::POD], "web-x7k2q");

    let mounts = container_body(&p, 0, None, &[], &Identity::default())
        .unwrap()
        .host_config
        .unwrap()
        .mounts
        .unwrap();
    assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
    assert_eq!(
        mounts[0].source.as_deref(),
        Some("berth.shop.web-x7k2q.cache")
    );
    assert_eq!(mounts[0].read_only, Some(false));
    assert_eq!(mounts[1].typ, Some(MountType::BIND));
    assert_eq!(mounts[1].source.as_deref(), Some("/etc"));
    assert_eq!(mounts[1].target.as_deref(), Some("/host-etc"));
    assert_eq!(mounts[1].read_only, Some(true));

    std::sync::Arc::make_mut(&mut p.spec).volumes.clear();
    let err = container_body(&p, 0, None, &[], &Identity::default()).unwrap_err();
    assert!(err.to_string().contains("unknown volume 'cache'"), "{err}");
}
