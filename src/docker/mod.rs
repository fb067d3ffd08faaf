//! Docker engines: the only place berth talks to Docker.
//!
//! ```text
//! DockerHost::connect(name, endpoint, tls) ── one shared bollard client per host
//!   ├─ info()                        ─► NodeInfo (scheduler capacity)
//!   ├─ list_managed() / inspect_managed(id) ─► ObservedContainer (labels + inspected state)
//!   ├─ events()                      ─► ContainerEvent stream ("look again" triggers)
//!   ├─ ensure_image(image, policy)   ─► pulled (or present), with a stall deadline and auth
//!   ├─ create_pod(&DesiredPod)       ─► ids (emptyDir volumes, holder, containers, start)
//!   ├─ start / restart / signal / kill / remove_containers / remove_pod_volumes
//!   ├─ ensure_pause_image()          ─► "berth/pause:<digest>" (pod holder, imported, never pulled)
//! watch.rs:  HostCache: the cached view of a host, kept by its event stream and full looks
//! create.rs: DesiredPod ─► names, labels, create bodies (pure, unit-tested)
//! pause.rs:  holder image (tar of pause_elf.rs's static binary for the engine's architecture)
//! ```
//!
//! Every effect is an idempotent step: creating a pod that exists, removing a container that is
//! gone or starting one that runs all succeed without changing anything, so the engine can
//! run a step again after any interruption. No call waits out a grace period: stopping is a
//! signal now and a kill later (`lifecycle.rs`).
//!
//! A pod is mapped onto plain containers. A pod of several containers gets a holder (a tiny
//! "pause" container berth imports itself) that owns the pod's network namespace: its hostname
//! and every published port; the pod's containers join it with `network_mode: container:<id>`,
//! so the namespace outlives any of them. A pod of one container owns its namespace itself.
//! `emptyDir` volumes are named Docker volumes `berth.<ns>.<pod>.<volume>`.
//!
//! Containers and volumes berth did not label `io.berth.managed=true` are never listed,
//! replaced or removed. Errors separate an engine that did not answer
//! ([`DockerError::is_unreachable`]: the host's state is unknown, remove nothing) from an engine
//! that refused one request.

pub mod create;
pub mod endpoint;
pub mod error;
mod event_conn;
pub mod events;
mod exec;
pub mod host;
mod image;
mod lifecycle;
pub mod observe;
mod pause;
mod pause_elf;
mod pod;
pub mod watch;

pub use endpoint::Endpoint;
pub use error::DockerError;
pub use events::ContainerEvent;
pub use host::{DockerHost, NodeInfo, REQUEST_TIMEOUT};
pub use image::{registry_of, AuthFileError, PullSettings, RegistryAuth, DEFAULT_PULL_STALL};
pub use pause::{pause_image, PAUSE_REPOSITORY};
pub use watch::{HostCache, HostState, HostView, PodHosts, PodIndex, Readiness, Touched};
