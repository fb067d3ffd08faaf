//! Images of a simulated host: the test image every host starts with, images "pulled" from the
//! simulated registry (the same `Arc` on every host that pulls it) and images imported from a
//! tar stream (berth's pod holder). Nothing is stored of an image's content; an import keeps
//! only a digest of what was sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::events::Event;
use super::Engine;
use crate::sim::error::Refusal;
use crate::sim::time::{now, Nanos};

/// The image berth's tests run, present on every simulated host from the start.
pub const TEST_IMAGE: &str = "berth-test/busybox:1";

/// What a container created from the image inherits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<64 hex digits>`.
    pub id: String,
    pub tags: Vec<String>,
    pub created: Nanos,
    pub size: u64,
    pub comment: String,
    pub architecture: String,
    pub config: ImageConfig,
}

impl Image {
    /// An image of the simulated registry: its id depends on its name only, so it is the
    /// same on every host, as a pulled image is.
    pub fn registry(reference: &str) -> Image {
        let reference = normalise(reference);
        Image {
            id: format!("sha256:{}", hex(&Sha256::digest(reference.as_bytes()))),
            tags: vec![reference],
            created: now(),
            size: 1_983_000,
            comment: String::new(),
            architecture: "amd64".to_string(),
            config: ImageConfig {
                cmd: Some(vec!["sh".to_string()]),
                env: vec!["PATH=/bin".to_string()],
                ..ImageConfig::default()
            },
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Docker's short form of a reference: `latest` when no tag or digest is given, and no
/// `docker.io/library/` prefix.
pub fn normalise(reference: &str) -> String {
    let short = reference.strip_prefix("docker.io/").unwrap_or(reference);
    let short = short.strip_prefix("library/").unwrap_or(short);
    let last = short.rsplit('/').next().unwrap_or(short);
    if short.contains('@') || last.contains(':') {
        short.to_string()
    } else {
        format!("{short}:latest")
    }
}

/// The registry of a reference, as Docker decides it.
fn is_docker_hub(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => !(first.contains('.') || first.contains(':') || first == "localhost"),
        None => true,
    }
}

/// The answer Docker gives for a reference its registry does not have.
pub fn pull_refusal(reference: &str) -> Refusal {
    let reference = normalise(reference);
    if is_docker_hub(&reference) {
        let repository = reference
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(reference.as_str(), |(repo, _)| repo);
        Refusal::PullDenied(repository.to_string())
    } else {
        Refusal::ManifestUnknown(reference)
    }
}

impl Engine {
    /// The image a reference or (a prefix of) an id names.
    pub fn image(&self, reference: &str) -> Result<&Arc<Image>, Refusal> {
        let wanted = normalise(reference);
        let bare = reference.strip_prefix("sha256:").unwrap_or(reference);
        self.images
            .iter()
            .find(|i| i.tags.contains(&wanted))
            .or_else(|| {
                (bare.len() >= 12 || reference.starts_with("sha256:"))
                    .then(|| {
                        self.images
                            .iter()
                            .find(|i| i.id["sha256:".len()..].starts_with(bare))
                    })
                    .flatten()
            })
            .ok_or_else(|| Refusal::NoSuchImage(reference.to_string()))
    }

    /// Adds a pulled image (or moves its tags onto it) and publishes `pull`.
    pub fn add_pulled(&mut self, image: Arc<Image>) {
        let tag = image.tags.first().cloned().unwrap_or_default();
        self.tag(image);
        self.events.publish(&Event {
            typ: "image",
            action: "pull".into(),
            id: &tag,
            attributes: BTreeMap::from([("name".to_string(), tag.clone())]),
            from: None,
        });
    }

    /// Imports a tar stream as `repo:tag` with Dockerfile `changes`; returns the new id.
    pub fn import(
        &mut self,
        tar: &[u8],
        repo: &str,
        tag: &str,
        changes: &[String],
        message: &str,
    ) -> Result<String, Refusal> {
        let mut config = ImageConfig::default();
        for change in changes {
            apply_change(&mut config, change)?;
        }
        let created = now();
        let digest = Sha256::new()
            .chain_update(tar)
            .chain_update(changes.join("\n"))
            .chain_update(message)
            .chain_update(created.to_le_bytes())
            .finalize();
        let id = format!("sha256:{}", hex(&digest));
        let tags = if repo.is_empty() {
            Vec::new()
        } else {
            vec![normalise(&format!(
                "{repo}:{}",
                if tag.is_empty() { "latest" } else { tag }
            ))]
        };
        self.tag(Arc::new(Image {
            id: id.clone(),
            tags,
            created,
            size: tar.len() as u64,
            comment: message.to_string(),
            architecture: if self.info.architecture == "aarch64" {
                "arm64".into()
            } else {
                "amd64".into()
            },
            config,
        }));
        self.events.publish(&Event {
            typ: "image",
            action: "import".into(),
            id: &id,
            attributes: BTreeMap::new(),
            from: None,
        });
        Ok(id)
    }

    /// Adds `image`, taking its tags off any image that held them (an image left without
    /// tags stays, as a dangling image does).
    fn tag(&mut self, image: Arc<Image>) {
        self.images.retain(|i| i.id != image.id);
        for old in &mut self.images {
            if old.tags.iter().any(|t| image.tags.contains(t)) {
                Arc::make_mut(old).tags.retain(|t| !image.tags.contains(t));
            }
        }
        self.images.push(image);
    }
}

/// One `changes` entry of an import. Docker 20.10 takes these instructions and refuses
/// `STOPSIGNAL` and `SHELL`; only what a container inherits is kept.
fn apply_change(config: &mut ImageConfig, change: &str) -> Result<(), Refusal> {
    let (instruction, rest) = change.trim().split_once(' ').unwrap_or((change.trim(), ""));
    let words = || -> Vec<String> {
        serde_json::from_str::<Vec<String>>(rest.trim())
            .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), rest.trim().to_string()])
    };
    match instruction.to_ascii_uppercase().as_str() {
        "ENTRYPOINT" => config.entrypoint = Some(words()),
        "CMD" => config.cmd = Some(words()),
        "ENV" => config.env.push(rest.trim().replacen(' ', "=", 1)),
        "WORKDIR" => config.working_dir = rest.trim().to_string(),
        "LABEL" => {
            if let Some((k, v)) = rest.trim().split_once('=') {
                config.labels.insert(k.into(), v.trim_matches('"').into());
            }
        }
        "EXPOSE" | "HEALTHCHECK" | "ONBUILD" | "USER" | "VOLUME" => {}
        other => {
            return Err(Refusal::BadRequest(format!(
                "{other} is not a valid change command"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_and_unknown_pulls_refused_as_docker_does() {
        assert_eq!(normalise("busybox"), "busybox:latest");
        assert_eq!(normalise("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(normalise("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            pull_refusal("nosuch/image:1").to_string(),
            "pull access denied for nosuch/image, repository does not exist or may require \
             'docker login': denied: requested access to the resource is denied"
        );
        assert_eq!(pull_refusal("reg.example:5000/x:1").status(), 404);
    }
}
