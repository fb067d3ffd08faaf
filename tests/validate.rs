//! `berth validate` on real manifests (the shared corpus from kubernetes/examples) and on a tree
//! with one broken manifest per kind of problem.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth::manifest::{
    load_files, read_paths, Limits, Manifests, PortRef, Problem, ServiceType, VolumeSource,
};

/// A directory of the shared corpus of real manifests (kubernetes/examples), which lives beside
/// the checkout in `../shared/corpus`. A fresh clone has none: the corpus tests then skip with
/// a one-line note, and `tests/fixtures/apps` (berth's own) covers the same ground. With
/// `CI=true` the corpus is required: CI must not pass by skipping.
fn corpus(dir: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/kubernetes-examples");
    if root.is_dir() {
        return Some(root.join(dir));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the shared corpus is missing at {}",
        root.display()
    );
    eprintln!(
        "note: skipped: no shared corpus at {} (tests/fixtures/apps covers the same checks)",
        root.display()
    );
    None
}

/// One of berth's own application fixtures.
fn app(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apps")
        .join(dir)
}

fn load(dir: &Path) -> Result<Manifests, Vec<Problem>> {
    let limits = Limits::default();
    load_files(
        &read_paths(&[dir.to_path_buf()], &limits).expect("readable"),
        &limits,
    )
}

fn berth(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn guestbook_is_valid_with_kubernetes_defaults() {
    let Some(dir) = corpus("web/guestbook") else {
        return;
    };
    let m = load(&dir).unwrap();
    assert_eq!(
        (
            m.replication_controllers.len(),
            m.services.len(),
            m.pods.len()
        ),
        (3, 3, 0)
    );
    let frontend = m
        .replication_controllers
        .iter()
        .find(|r| r.metadata.name == "frontend")
        .unwrap();
    // No spec.selector and no metadata.labels: the selector is the template's labels.
    assert_eq!(frontend.selector, frontend.template.labels);
    assert!(frontend.metadata.labels.is_empty());
    assert_eq!(frontend.replicas, 3);
    let svc = m
        .services
        .iter()
        .find(|s| s.metadata.name == "redis-replica")
        .unwrap();
    // No targetPort: it defaults to port.
    assert_eq!(svc.ports[0].target_port, PortRef::Number(6379));
    let frontend_svc = m
        .services
        .iter()
        .find(|s| s.metadata.name == "frontend")
        .unwrap();
    assert_eq!(frontend_svc.type_, ServiceType::NodePort);
    let (code, out, _) = berth(&["validate", dir.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (0, "6 objects in 6 files: valid"));
}

#[test]
fn guestbook_go_is_valid_with_named_target_ports() {
    let Some(dir) = corpus("web/guestbook-go") else {
        return;
    };
    let m = load(&dir).unwrap();
    assert_eq!(m.len(), 6);
    let gb = m
        .services
        .iter()
        .find(|s| s.metadata.name == "guestbook")
        .unwrap();
    assert_eq!(gb.ports[0].target_port, PortRef::Name("http-server".into()));
    // LoadBalancer is read as NodePort on Docker hosts.
    assert_eq!(gb.type_, ServiceType::NodePort);
}

#[test]
fn redis_storage_pods_share_an_empty_dir_and_cpu_is_exact() {
    let Some(dir) = corpus("_archived/storage/redis") else {
        return;
    };
    let m = load(&dir).unwrap();
    let master = &m.pods[0];
    assert_eq!(master.metadata.name, "redis-master");
    assert_eq!(master.spec.containers.len(), 2);
    assert_eq!(master.spec.volumes[0].source, VolumeSource::EmptyDir);
    assert_eq!(
        master.spec.containers[0].resources.limits.cpu.unwrap().0,
        100
    );
    // A volume with no source is an emptyDir, as in Kubernetes.
    let redis = m
        .replication_controllers
        .iter()
        .find(|r| r.metadata.name == "redis")
        .unwrap();
    assert_eq!(
        redis.template.spec.volumes[0].source,
        VolumeSource::EmptyDir
    );
    // The selector is a subset of the template's labels.
    assert_eq!(redis.selector.len(), 1);
    assert_eq!(redis.template.labels.len(), 2);
    // The bare Pod's labels match this RC's selector; it stays a Pod of its own.
    assert!(berth::manifest::selector_matches(
        &redis.selector,
        &master.metadata.labels
    ));
    assert_eq!(m.pods.len(), 1);
}

#[test]
fn meteor_json_is_valid_except_the_gce_disk_pod() {
    let Some(dir) = corpus("_archived/meteor") else {
        return;
    };
    let problems = load(&dir).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert!(p.file.ends_with("mongo-pod.json"), "{p}");
    assert_eq!(p.field, "spec.volumes[0].gcePersistentDisk");
    assert!(p.message.contains("emptyDir and hostPath"), "{p}");
    let mut files = read_paths(&[dir], &Limits::default()).unwrap();
    files.retain(|f| !f.path.ends_with("mongo-pod.json"));
    let m = load_files(&files, &Limits::default()).unwrap();
    assert_eq!(m.len(), 3);
    let meteor = m
        .services
        .iter()
        .find(|s| s.metadata.name == "meteor")
        .unwrap();
    assert_eq!(meteor.session_affinity_seconds, Some(90));
    let rc = &m.replication_controllers[0];
    assert_eq!(
        rc.template.spec.containers[0].image_pull_policy,
        berth::manifest::PullPolicy::Always
    );
}

#[test]
fn https_nginx_reports_secret_and_config_map_at_once() {
    let Some(dir) = corpus("_archived/https-nginx") else {
        return;
    };
    let (code, _, err) = berth(&["validate", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].ends_with(
        "nginx-app.yaml:32:9: spec.template.spec.volumes[0].secret: volume source \"secret\" is not available on a Docker host: berth supports emptyDir and hostPath"
    ));
    assert!(lines[1].ends_with(
        "nginx-app.yaml:35:9: spec.template.spec.volumes[1].configMap: volume source \"configMap\" is not available on a Docker host: berth supports emptyDir and hostPath"
    ));
    assert_eq!(lines[2], "2 problem(s) in 1 files: invalid");
}

#[test]
fn own_shop_app_is_valid_with_kubernetes_defaults() {
    let dir = app("shop");
    let m = load(&dir).unwrap();
    let counts = (
        m.replication_controllers.len(),
        m.services.len(),
        m.pods.len(),
    );
    assert_eq!(counts, (3, 3, 0));
    let web = m
        .replication_controllers
        .iter()
        .find(|r| r.metadata.name == "web")
        .unwrap();
    // No spec.selector and no metadata.labels: the selector is the template's labels.
    assert_eq!(web.selector, web.template.labels);
    assert!(web.metadata.labels.is_empty());
    assert_eq!(web.replicas, 3);
    let cache = m
        .services
        .iter()
        .find(|s| s.metadata.name == "cache")
        .unwrap();
    // No targetPort: it defaults to port.
    assert_eq!(cache.ports[0].target_port, PortRef::Number(6379));
    let web_svc = m
        .services
        .iter()
        .find(|s| s.metadata.name == "web")
        .unwrap();
    assert_eq!(web_svc.type_, ServiceType::NodePort);
    let (code, out, _) = berth(&["validate", dir.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (0, "6 objects in 6 files: valid"));
}

#[test]
fn own_named_ports_app_reads_load_balancer_as_node_port() {
    let m = load(&app("named-ports")).unwrap();
    assert_eq!(m.len(), 6);
    let api = m
        .services
        .iter()
        .find(|s| s.metadata.name == "api")
        .unwrap();
    assert_eq!(api.ports[0].target_port, PortRef::Name("http-api".into()));
    assert_eq!(api.type_, ServiceType::NodePort);
}

#[test]
fn own_storage_pod_shares_an_empty_dir_and_is_not_adopted() {
    let m = load(&app("storage")).unwrap();
    let primary = &m.pods[0];
    assert_eq!(primary.spec.containers.len(), 2);
    // A volume with no source is an emptyDir, as in Kubernetes.
    assert_eq!(primary.spec.volumes[0].source, VolumeSource::EmptyDir);
    assert_eq!(
        primary.spec.containers[0].resources.limits.cpu.unwrap().0,
        100
    );
    let rc = &m.replication_controllers[0];
    assert_eq!((rc.selector.len(), rc.template.labels.len()), (1, 2));
    assert!(berth::manifest::selector_matches(
        &rc.selector,
        &primary.metadata.labels
    ));
    assert_eq!(m.pods.len(), 1, "the bare Pod stays a Pod of its own");
}

#[test]
fn own_json_app_is_valid_except_the_gce_disk_pod() {
    let dir = app("json-app");
    let problems = load(&dir).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].file.ends_with("store-pod.json"),
        "{}",
        problems[0]
    );
    assert_eq!(problems[0].field, "spec.volumes[0].gcePersistentDisk");
    let mut files = read_paths(&[dir], &Limits::default()).unwrap();
    files.retain(|f| !f.path.ends_with("store-pod.json"));
    let m = load_files(&files, &Limits::default()).unwrap();
    assert_eq!(m.len(), 3);
    let notes = m
        .services
        .iter()
        .find(|s| s.metadata.name == "notes")
        .unwrap();
    assert_eq!(notes.session_affinity_seconds, Some(90));
    assert_eq!(
        m.replication_controllers[0].template.spec.containers[0].image_pull_policy,
        berth::manifest::PullPolicy::Always
    );
}

#[test]
fn own_tls_app_reports_secret_and_config_map_at_once() {
    let dir = app("tls-app");
    let (code, _, err) = berth(&["validate", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].ends_with("proxy.yaml:32:9: spec.template.spec.volumes[0].secret: volume source \"secret\" is not available on a Docker host: berth supports emptyDir and hostPath"), "{err}");
    assert!(lines[1].ends_with("proxy.yaml:35:9: spec.template.spec.volumes[1].configMap: volume source \"configMap\" is not available on a Docker host: berth supports emptyDir and hostPath"), "{err}");
    assert_eq!(lines[2], "2 problem(s) in 1 files: invalid");
}

/// One file per kind of problem; every one is found in a single run, precisely.
#[test]
fn broken_tree_yields_one_precise_error_per_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let problems = load(&dir).unwrap_err();
    let got: Vec<String> = problems
        .iter()
        .map(|p| {
            let name = Path::new(&p.file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            Problem {
                file: name,
                ..p.clone()
            }
            .to_string()
        })
        .collect();
    let expected = [
        "01-yaml-syntax.yaml:5:1: YAML syntax: while parsing a flow sequence, expected ',' or ']'",
        "02-json-syntax.json:4:1: JSON syntax: key must be a string at line 4 column 1",
        "03-missing-apiversion.yaml:1:1: apiVersion: required field is missing",
        "04-unknown-apiversion.yaml:1:13: apiVersion: unsupported apiVersion \"apps/v1\": berth reads v1 objects",
        "05-missing-kind.yaml:1:1: kind: required field is missing",
        "06-unknown-kind.yaml:2:7: kind: unsupported kind \"Deployment\": berth reads Pod, ReplicationController, Service, Node and List",
        "07-unknown-field.yaml:9:5: spec.containers[0].imagePullPolicyy: unknown field (did you mean \"imagePullPolicy\"?)",
        "08-bad-pod-name.yaml:4:9: metadata.name: \"Web_Server\" is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
        "09-bad-service-name.yaml:4:9: metadata.name: \"1cache\" is not a valid DNS-1035 label (must start with a lowercase letter)",
        "10-name-too-long.yaml:4:9: metadata.name: name is longer than 253 characters (254)",
        "11-bad-container-name.yaml:7:11: spec.containers[0].name: \"Main_1\" is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
        "12-bad-port-name.yaml:10:13: spec.containers[0].ports[0].name: \"http_port\" is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter)",
        "14-duplicate-b.yaml:1:1: metadata.name: duplicate Pod default/twice: already defined at DIR/13-duplicate-a.yaml:1",
        "15-selector-mismatch.yaml:7:3: spec.selector: selector {app=web} does not match the template's labels {app=api}",
        "16-empty-selector.yaml:7:3: spec.selector: selector must not be empty: it would select nothing",
        "17-port-out-of-range.yaml:10:22: spec.containers[0].ports[0].containerPort: 70000 is out of range 1..65535",
        "18-protocol-case.yaml:11:17: spec.containers[0].ports[0].protocol: unsupported protocol \"udp\": expected TCP, UDP or SCTP",
        "19-bad-quantity.yaml:11:17: spec.containers[0].resources.limits.memory: invalid quantity \"12x\"",
        "20-bad-quantity-dots.yaml:11:14: spec.containers[0].resources.requests.cpu: invalid quantity \"1.5.5\"",
        "21-negative-quantity.yaml:11:17: spec.containers[0].resources.requests.memory: invalid quantity \"-1Gi\": must not be negative",
        "22-missing-image.yaml:7:5: spec.containers[0].image: required field is missing",
        "23-duplicate-container.yaml:9:9: spec.containers[1].name: duplicate container name \"main\"",
        "24-hostport-clash.yaml:12:9: spec.containers[1].ports[0].hostPort: hostPort 8080 is already used by spec.containers[0].ports[0]",
        "25-mount-without-volume.yaml:10:13: spec.containers[0].volumeMounts[0].name: no volume named \"data\" in this pod's volumes",
        "26-secret-volume.yaml:11:5: spec.volumes[0].secret: volume source \"secret\" is not available on a Docker host: berth supports emptyDir and hostPath",
    ];
    let dir_text = dir.display().to_string();
    let got: Vec<String> = got.iter().map(|g| g.replace(&dir_text, "DIR")).collect();
    assert_eq!(got, expected);

    let (code, out, err) = berth(&["validate", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), expected.len() + 1);
    assert!(
        err.ends_with("25 problem(s) in 26 files: invalid\n"),
        "{err}"
    );
}

#[test]
fn example_manifests_validate_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests-example");
    let (code, out, err) = berth(&["validate", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "5 objects in 3 files: valid\n");
}

#[test]
fn unreadable_path_is_a_clear_error_with_its_own_exit_code() {
    let (code, _, err) = berth(&["validate", "/nonexistent/manifests"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /nonexistent/manifests"), "{err}");
}

#[test]
fn help_explains_the_command() {
    let (code, out, _) = berth(&["validate", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("every problem at once"), "{out}");
    let (code, out, _) = berth(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("GitOps for plain Docker hosts"), "{out}");
}
