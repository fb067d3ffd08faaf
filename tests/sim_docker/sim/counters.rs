//! Requests per endpoint per host, for benchmarks: how many calls berth makes where. One
//! array of atomics per host (a few hundred bytes), counted before the request is answered.

use std::sync::atomic::{AtomicU64, Ordering};

/// The Docker API endpoints the simulation answers, and `Other` for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Ping,
    Version,
    Info,
    ContainerList,
    ContainerCreate,
    ContainerInspect,
    ContainerStart,
    ContainerStop,
    ContainerKill,
    ContainerRestart,
    ContainerUpdate,
    ContainerDelete,
    ImageCreate,
    ImageInspect,
    VolumeCreate,
    VolumeList,
    VolumeInspect,
    VolumeDelete,
    ExecCreate,
    ExecStart,
    ExecInspect,
    Events,
    Other,
}

impl Endpoint {
    pub const ALL: [Endpoint; 23] = [
        Endpoint::Ping,
        Endpoint::Version,
        Endpoint::Info,
        Endpoint::ContainerList,
        Endpoint::ContainerCreate,
        Endpoint::ContainerInspect,
        Endpoint::ContainerStart,
        Endpoint::ContainerStop,
        Endpoint::ContainerKill,
        Endpoint::ContainerRestart,
        Endpoint::ContainerUpdate,
        Endpoint::ContainerDelete,
        Endpoint::ImageCreate,
        Endpoint::ImageInspect,
        Endpoint::VolumeCreate,
        Endpoint::VolumeList,
        Endpoint::VolumeInspect,
        Endpoint::VolumeDelete,
        Endpoint::ExecCreate,
        Endpoint::ExecStart,
        Endpoint::ExecInspect,
        Endpoint::Events,
        Endpoint::Other,
    ];

    /// The endpoint as the API reference writes it.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Ping => "GET /_ping",
            Endpoint::Version => "GET /version",
            Endpoint::Info => "GET /info",
            Endpoint::ContainerList => "GET /containers/json",
            Endpoint::ContainerCreate => "POST /containers/create",
            Endpoint::ContainerInspect => "GET /containers/{id}/json",
            Endpoint::ContainerStart => "POST /containers/{id}/start",
            Endpoint::ContainerStop => "POST /containers/{id}/stop",
            Endpoint::ContainerKill => "POST /containers/{id}/kill",
            Endpoint::ContainerRestart => "POST /containers/{id}/restart",
            Endpoint::ContainerUpdate => "POST /containers/{id}/update",
            Endpoint::ContainerDelete => "DELETE /containers/{id}",
            Endpoint::ImageCreate => "POST /images/create",
            Endpoint::ImageInspect => "GET /images/{name}/json",
            Endpoint::VolumeCreate => "POST /volumes/create",
            Endpoint::VolumeList => "GET /volumes",
            Endpoint::VolumeInspect => "GET /volumes/{name}",
            Endpoint::VolumeDelete => "DELETE /volumes/{name}",
            Endpoint::ExecCreate => "POST /containers/{id}/exec",
            Endpoint::ExecStart => "POST /exec/{id}/start",
            Endpoint::ExecInspect => "GET /exec/{id}/json",
            Endpoint::Events => "GET /events",
            Endpoint::Other => "other",
        }
    }
}

/// One host's counts.
#[derive(Debug, Default)]
pub struct Counters([AtomicU64; Endpoint::ALL.len()]);

impl Counters {
    pub fn count(&self, endpoint: Endpoint) {
        self.0[endpoint as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, endpoint: Endpoint) -> u64 {
        self.0[endpoint as usize].load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for c in &self.0 {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The non-zero counts, by endpoint name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Endpoint::ALL
            .iter()
            .map(|e| (e.name(), self.get(*e)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}
