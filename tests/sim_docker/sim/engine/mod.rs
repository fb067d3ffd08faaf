//! One simulated Docker engine: the state of one host, as plain data behind its host's lock.
//!
//! Nothing here does I/O or waits: every operation is a synchronous step on the tables
//! (containers, images, volumes, exec instances) that also publishes Docker's events. Steps
//! that take time in Docker (a stop's grace period, a restart policy's backoff, a slow pull)
//! are split by the caller ([`crate::sim::host::Host`]) into a step now and a step later, so
//! the lock is never held across a wait.
//!
//! ```text
//! container.rs  the model: Spec (create body) + Run (what happened), the simulated process
//! create.rs     create, update, remove (the table and its name index)
//! lifecycle.rs  start, signal, die, crash, restart policy
//! network.rs    bridge addresses and published ports
//! images.rs     images: preloaded, pulled from the simulated registry, imported
//! volumes.rs    named volumes
//! exec.rs       exec instances
//! events.rs     the event bus and Docker's event JSON
//! ```

pub mod container;
mod create;
pub mod events;
mod exec;
pub mod images;
mod lifecycle;
pub mod network;
pub mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use container::Container;
pub use events::Bus;
pub use images::Image;
pub use lifecycle::{parse_signal, PendingRestart};
pub use volumes::Volume;

use super::error::Refusal;

/// What `GET /info` and `GET /version` say about the host: settable per host, shared until
/// changed (most hosts of a benchmark look alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub ncpu: u32,
    pub mem_total: u64,
    /// `uname -m`: `x86_64` or `aarch64` (berth picks its pod holder binary by it).
    pub architecture: String,
    pub server_version: String,
}

impl Default for HostInfo {
    fn default() -> HostInfo {
        HostInfo {
            ncpu: 4,
            mem_total: 8 << 30,
            architecture: "x86_64".to_string(),
            server_version: "20.10.24+dfsg1".to_string(),
        }
    }
}

/// The state of one simulated host.
#[derive(Debug)]
pub struct Engine {
    pub index: u32,
    pub info: Arc<HostInfo>,
    containers: HashMap<String, Container>,
    /// Container name (without `/`) to id.
    names: HashMap<String, String>,
    images: Vec<Arc<Image>>,
    volumes: BTreeMap<String, Volume>,
    execs: exec::Execs,
    pub events: Bus,
    /// Makes ids, pids and names unique within the host.
    seq: u64,
    next_ip: u32,
    next_port: u16,
    /// The first delay of a restart policy's backoff (Docker: 100 ms).
    pub restart_base_ms: u64,
}

impl Engine {
    pub fn new(
        index: u32,
        info: Arc<HostInfo>,
        images: Vec<Arc<Image>>,
        restart_base_ms: u64,
    ) -> Engine {
        Engine {
            index,
            info,
            containers: HashMap::new(),
            names: HashMap::new(),
            images,
            volumes: BTreeMap::new(),
            execs: exec::Execs::default(),
            events: Bus::default(),
            seq: 0,
            next_ip: 2,
            next_port: network::FIRST_EPHEMERAL_PORT,
            restart_base_ms,
        }
    }

    /// A new 64-hex-digit id, as Docker's (random there, derived from a counter here).
    fn new_id(&mut self) -> String {
        self.seq += 1;
        let digest = Sha256::new()
            .chain_update(self.index.to_le_bytes())
            .chain_update(self.seq.to_le_bytes())
            .chain_update(super::time::now().to_le_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The id of the container `reference` names: a full id, a name (with or without `/`) or
    /// a unique id prefix, in Docker's order.
    pub fn resolve(&self, reference: &str) -> Result<&str, Refusal> {
        if let Some((id, _)) = self.containers.get_key_value(reference) {
            return Ok(id);
        }
        let name = reference.strip_prefix('/').unwrap_or(reference);
        if let Some(id) = self.names.get(name) {
            return Ok(id);
        }
        let mut prefixed = self
            .containers
            .keys()
            .filter(|id| !reference.is_empty() && id.starts_with(reference));
        match (prefixed.next(), prefixed.next()) {
            (Some(id), None) => Ok(id),
            _ => Err(Refusal::NoSuchContainer(reference.to_string())),
        }
    }

    pub fn container(&self, reference: &str) -> Result<&Container, Refusal> {
        let id = self.resolve(reference)?;
        Ok(&self.containers[id])
    }

    fn container_mut(&mut self, reference: &str) -> Result<&mut Container, Refusal> {
        let id = self.resolve(reference)?.to_string();
        Ok(self
            .containers
            .get_mut(&id)
            .expect("resolved id is in the table"))
    }

    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.containers.values()
    }

    /// Takes a container away without a word: no event, as if the stream had lost it. For
    /// tests of what catches a change no event reported. Returns its id, if there was one.
    #[allow(dead_code)] // tests/sim_docker.rs uses it; the example binary does not
    pub fn vanish_one(&mut self) -> Option<String> {
        let id = self.containers.keys().next()?.clone();
        let c = self.containers.remove(&id)?;
        self.names.remove(&c.name);
        self.execs.forget_container(&id);
        Some(id)
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    pub fn running_count(&self) -> usize {
        self.containers.values().filter(|c| c.is_running()).count()
    }

    pub fn images(&self) -> &[Arc<Image>] {
        &self.images
    }
}
