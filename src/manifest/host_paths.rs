//! Which host directories a manifest may mount (`hostPath`), the same in `berth validate` and
//! sync.
//!
//! Whoever writes a manifest with a `hostPath` volume reads and writes that path of the Docker
//! host as root: `/` or `/var/run/docker.sock` hands over the host. By default any path is
//! allowed, as in Kubernetes; `--allow-host-path PREFIX` (repeatable) restricts mounts to those
//! directories. Paths are compared after lexical normalisation (`.` and `..` resolved, repeated
//! slashes collapsed), component by component, so `/srv/data/../../etc` is `/etc` and `/srv/data2`
//! is not under `/srv/data`. Symbolic links on the host cannot be resolved from the controller:
//! an allowed directory must not contain links out of it that its writers control.

use super::error::Problem;
use super::model::{Manifests, PodSpec, VolumeSource};

/// The allowed prefixes; `None` allows every absolute path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPathPolicy {
    allowed: Option<Vec<String>>,
}

impl HostPathPolicy {
    /// Every path allowed (the default).
    pub fn anywhere() -> HostPathPolicy {
        HostPathPolicy { allowed: None }
    }

    /// The policy as one line: `anywhere`, or the allowed directories joined by `:`.
    pub fn describe(&self) -> String {
        match &self.allowed {
            None => "anywhere".to_string(),
            Some(dirs) => dirs.join(":"),
        }
    }

    /// Only paths under these directories. Each must be absolute.
    pub fn only(prefixes: &[String]) -> Result<HostPathPolicy, String> {
        let mut allowed = Vec::new();
        for p in prefixes {
            let n = normalize(p).ok_or_else(|| format!("{p:?} is not an absolute path"))?;
            allowed.push(n);
        }
        Ok(HostPathPolicy {
            allowed: Some(allowed),
        })
    }

    /// A problem for every `hostPath` volume outside the allowed directories, naming the
    /// object's file and line and the volume's field.
    pub fn check(&self, manifests: &Manifests) -> Vec<Problem> {
        let Some(allowed) = &self.allowed else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let mut check_spec = |spec: &PodSpec, origin: &super::model::Origin, prefix: &str| {
            for (i, v) in spec.volumes.iter().enumerate() {
                let VolumeSource::HostPath { path } = &v.source else {
                    continue;
                };
                let field = format!("{prefix}volumes[{i}].hostPath.path");
                let pos = Some(super::yaml::Pos {
                    line: origin.line,
                    col: 1,
                });
                match normalize(path) {
                    Some(n) if allowed.iter().any(|a| under(&n, a)) => {}
                    Some(n) => problems.push(Problem::new(
                        &origin.file,
                        pos,
                        field,
                        format!(
                            "hostPath {path:?} ({n}) is outside the allowed host paths ({}): --allow-host-path",
                            allowed.join(", ")
                        ),
                    )),
                    None => problems.push(Problem::new(
                        &origin.file,
                        pos,
                        field,
                        format!("hostPath {path:?} must be an absolute path"),
                    )),
                }
            }
        };
        for pod in &manifests.pods {
            check_spec(&pod.spec, &pod.origin, "spec.");
        }
        for rc in &manifests.replication_controllers {
            check_spec(&rc.template.spec, &rc.origin, "spec.template.spec.");
        }
        problems
    }
}

/// `/a/./b//c/../d` → `/a/b/d`; `None` for a relative path. `..` above the root stays at the
/// root, as the kernel resolves it.
pub fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Is `path` the directory `prefix` or inside it (both normalised)?
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load_files, Limits, SourceFile};

    fn pod_mounting(path: &str) -> Manifests {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: [{{name: h, hostPath: {{path: '{path}'}}}}]\n  containers: [{{name: c, image: 'i:1'}}]\n"
        );
        load_files(
            &[SourceFile {
                path: "p.yaml".into(),
                bytes: text.into_bytes(),
            }],
            &Limits::default(),
        )
        .unwrap()
    }

    #[test]
    fn paths_are_normalised_before_the_check() {
        assert_eq!(
            normalize("/srv//data/./x/../y").as_deref(),
            Some("/srv/data/y")
        );
        assert_eq!(normalize("/../../etc").as_deref(), Some("/etc"));
        assert_eq!(normalize("srv/data"), None);
        assert!(under("/srv/data/a", "/srv/data"));
        assert!(under("/srv/data", "/srv/data"));
        assert!(!under("/srv/data2", "/srv/data"));
    }

    #[test]
    fn mounts_outside_the_allowed_prefixes_are_refused_and_dotdot_cannot_escape() {
        let policy = HostPathPolicy::only(&["/srv/data".into()]).unwrap();
        assert!(policy.check(&pod_mounting("/srv/data/app")).is_empty());
        let problems = policy.check(&pod_mounting("/srv/data/../../etc"));
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "p.yaml:1:1: spec.volumes[0].hostPath.path: hostPath \"/srv/data/../../etc\" (/etc) is outside the allowed host paths (/srv/data): --allow-host-path"
        );
        assert!(HostPathPolicy::anywhere()
            .check(&pod_mounting("/"))
            .is_empty());
        assert!(HostPathPolicy::only(&["relative".into()]).is_err());
    }
}
