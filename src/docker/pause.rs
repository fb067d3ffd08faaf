//! The pod holder image: the image of the small container that owns a pod's network namespace
//! (Kubernetes calls it the "pause" container), made on each host from a binary berth carries.
//!
//! ```text
//! pause_elf::PauseArch (engine's `docker info` Architecture) ─► static ELF, a few hundred bytes
//!   ─► archive(): ustar with one file, /pause, mode 0755, owner 0:0, mtime 0
//!   ─► POST /images/create?fromSrc=-&repo=berth/pause&tag=<digest>   (docker import)
//!        changes=ENTRYPOINT ["/pause"]
//! ```
//!
//! Why import instead of pull: hosts need not reach any registry, and the holder must exist
//! before any of the pod's own images. The image is **local-only**: `berth/pause` has no
//! registry host, so a pull would ask Docker Hub for someone else's repository. Nothing in berth
//! pulls it: [`DockerHost::ensure_pause_image`] only inspects and imports, and the pod code must
//! create holders from the reference it returns, never through
//! [`DockerHost::ensure_image`](super::DockerHost::ensure_image) and its pull policies.
//!
//! The tag is a digest of everything that makes up the image (the archive for every
//! architecture, the config changes, the commit message), so a berth whose holder differs uses
//! a new tag and never an older berth's image, and the reference is the same on every host:
//! [`pause_image`] needs no engine. On each host the tag holds that host's architecture.
//!
//! The import's `changes` take, on API 1.41 (tried on Docker 20.10.24), the Dockerfile
//! instructions `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `HEALTHCHECK`, `LABEL`, `ONBUILD`, `USER`,
//! `VOLUME` and `WORKDIR`, and refuse `STOPSIGNAL` and `SHELL` ("not a valid change command").
//! Only `ENTRYPOINT` is needed: the holder ends on Docker's default stop signal, SIGTERM. No
//! `LABEL` either, as containers inherit image labels and the holder's must be berth's own.

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

use super::error::{is_not_found, DockerError};
use super::host::DockerHost;
use super::pause_elf::PauseArch;

/// Repository of berth's pod holder images. Local-only: never pulled, never pushed.
pub const PAUSE_REPOSITORY: &str = "berth/pause";

/// Where the binary lies in the image, and so the entry point.
const PATH_IN_IMAGE: &str = "pause";
const CHANGES: [&str; 1] = [r#"ENTRYPOINT ["/pause"]"#];
/// Shown by `docker history`, for an operator wondering where the image came from.
const MESSAGE: &str = "berth pod holder: imported by berth, never pulled";

/// `berth/pause:<12 hex digits>`: the pod holder image of this berth, the same on every host.
pub fn pause_image() -> String {
    format!("{PAUSE_REPOSITORY}:{}", pause_tag())
}

fn pause_tag() -> String {
    let binaries: Vec<_> = PauseArch::ALL
        .iter()
        .map(|arch| (arch.name(), arch.binary()))
        .collect();
    tag_for(&binaries)
}

impl DockerHost {
    /// Makes sure this host has the pod holder image and returns its reference
    /// ([`pause_image`]). Cheap when it is there (one inspect); otherwise imports it from the
    /// binary for the engine's architecture, at most one import at a time per `DockerHost`.
    /// An engine on an architecture berth has no binary for is
    /// [`DockerError::UnsupportedArchitecture`].
    pub async fn ensure_pause_image(&self) -> Result<String, DockerError> {
        let tag = pause_tag();
        let image = format!("{PAUSE_REPOSITORY}:{tag}");
        let docker = self.client().await?;
        if self.has_image(docker, &image).await? {
            return Ok(image);
        }
        let _importing = self.pause_import().lock().await;
        // Whoever held the lock before may just have imported it.
        if self.has_image(docker, &image).await? {
            return Ok(image);
        }
        let info = docker.info().await.map_err(|e| self.err("info", e))?;
        let architecture = info.architecture.unwrap_or_default();
        let binary = binary_for(self.name(), &architecture)?;
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(PAUSE_REPOSITORY)
            .tag(&tag)
            .changes(CHANGES.iter().map(|c| c.to_string()).collect())
            .message(MESSAGE)
            .build();
        let body = bollard::body_full(archive(PATH_IN_IMAGE, &binary).into());
        docker
            .create_image(Some(options), Some(body), None)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| self.err(format!("import image {image}"), e))?;
        tracing::info!(
            host = self.name(),
            image,
            architecture,
            "imported the pod holder image"
        );
        Ok(image)
    }

    async fn has_image(&self, docker: &Docker, image: &str) -> Result<bool, DockerError> {
        match docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.err(format!("inspect image {image}"), e)),
        }
    }
}

/// The holder binary for an engine's reported architecture.
fn binary_for(host: &str, architecture: &str) -> Result<Vec<u8>, DockerError> {
    match PauseArch::from_engine(architecture) {
        Some(arch) => Ok(arch.binary()),
        None => Err(DockerError::UnsupportedArchitecture {
            host: host.to_string(),
            architecture: architecture.to_string(),
            supported: PauseArch::ALL.map(PauseArch::name).join(", "),
        }),
    }
}

/// The first 12 hex digits of a SHA-256 over each architecture's name and archive, then the
/// changes and the message: what the image is made of, each part NUL-terminated so no two
/// different recipes hash the same bytes.
fn tag_for(binaries: &[(&str, Vec<u8>)]) -> String {
    let mut hash = Sha256::new();
    for (arch, binary) in binaries {
        hash.update(arch);
        hash.update([0]);
        hash.update(archive(PATH_IN_IMAGE, binary));
    }
    for change in CHANGES {
        hash.update(change);
        hash.update([0]);
    }
    hash.update(MESSAGE);
    hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A POSIX ustar archive of one regular file at the root: mode 0755, owner 0:0 (`root`),
/// mtime 0, so that the bytes (and the tag made from them) depend on the content alone.
/// `name` must fit the 100-byte name field; berth passes a constant.
fn archive(name: &str, content: &[u8]) -> Vec<u8> {
    fn put(header: &mut [u8; 512], at: usize, field: &[u8]) {
        header[at..at + field.len()].copy_from_slice(field);
    }
    debug_assert!(name.len() <= 100);
    let mut header = [0u8; 512];
    put(&mut header, 0, name.as_bytes()); // name[100], NUL-padded
    put(&mut header, 100, b"0000755\0"); // mode[8], octal
    put(&mut header, 108, b"0000000\0"); // uid[8]
    put(&mut header, 116, b"0000000\0"); // gid[8]
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    ); // size[12]
    put(&mut header, 136, b"00000000000\0"); // mtime[12]: the epoch
    put(&mut header, 148, b"        "); // chksum[8]: counted as spaces while summing
    header[156] = b'0'; // typeflag: regular file
    put(&mut header, 257, b"ustar\0"); // magic[6]
    put(&mut header, 263, b"00"); // version[2]
    put(&mut header, 265, b"root"); // uname[32]
    put(&mut header, 297, b"root"); // gname[32]
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());

    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    // Content padded to whole blocks, then the end-of-archive marker: two zero blocks.
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    tar
}

#[cfg(test)]
#[path = "pause_tests.rs"]
mod tests;
