//! Docker engines: the only place berth talks to Docker.
//!
//! ```text
//! DockerHost::connect(name, endpoint, tls) ── one shared bollard client per host
//!   ├─ info()                       ─► NodeInfo (scheduler capacity)
//!   ├─ list_managed()               ─► Vec<ObservedContainer> (from io.berth.* labels)
//!   ├─ events()                     ─► ContainerEvent stream ("look again" triggers)
//!   ├─ create_pod(&DesiredPod)      ─► ids (images, emptyDir volumes, containers, start)
//!   ├─ start(ids) / remove(ids, grace) / remove_pod_volumes(ns, pod)
//!   ├─ ensure_pause_image()         ─► "berth/pause:<digest>" (pod holder, imported, never pulled)
//! create.rs: DesiredPod ─► names, labels, create bodies (pure, unit-tested)
//! pause.rs:  holder image (tar of pause_elf.rs's static binary for the engine's architecture)
//! ```
//!
//! Every effect is an idempotent step: creating a pod that exists, removing a container that is
//! gone or starting one that runs all succeed without changing anything, so the executor can
//! run a plan again after any interruption.
//!
//! A pod is mapped onto plain containers: container 0 owns the pod's network namespace (its
//! hostname and every published port), the others join it with `network_mode: container:<id>`,
//! and `emptyDir` volumes are named Docker volumes `berth.<ns>.<pod>.<volume>`. One limit of
//! Docker to know: when container 0 restarts on its own (restart policy), it gets a new network
//! namespace and the containers that joined the old one keep the old one.
//!
//! Containers and volumes berth did not label `io.berth.managed=true` are never listed,
//! replaced or removed. Errors separate an engine that did not answer
//! ([`DockerError::is_unreachable`]: the host's state is unknown, remove nothing) from an engine
//! that refused one request.

pub mod create;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod host;
mod image;
pub mod observe;
mod pause;
mod pause_elf;
mod pod;

pub use endpoint::Endpoint;
pub use error::DockerError;
pub use events::ContainerEvent;
pub use host::{DockerHost, NodeInfo, REQUEST_TIMEOUT};
pub use pause::{pause_image, PAUSE_REPOSITORY};
