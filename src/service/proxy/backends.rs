//! The endpoints of one Service port and the choice among them: round-robin, `ClientIP`
//! affinity, and a short cooldown for endpoints that just failed.
//!
//! The endpoint list is an immutable snapshot swapped whole by `apply`: a connection takes the
//! snapshot once and tries endpoints from it, so a list changing mid-choice is never seen
//! half-made. An endpoint that stays listed keeps its counters and cooldown across swaps; one
//! that leaves is marked retired, which UDP sessions check (TCP connections to it just run on).
//!
//! Order of attempts for a new connection: the client's sticky endpoint (affinity) if it is
//! listed and not cooling down, else from the round-robin position; endpoints cooling down
//! after a failed connect go last, so a dead endpoint costs the next client one attempt every
//! `endpoint_cooldown`, not every n-th client one connect timeout. The list is sorted, so every
//! controller rotates through endpoints in the same order.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::affinity::Affinity;
use super::counters::Counters;
use super::plan::RouteKey;

/// One endpoint of one Service port.
#[derive(Debug)]
pub(super) struct Endpoint {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    retired: AtomicBool,
    /// Milliseconds after `epoch` until which this endpoint goes last; 0 when healthy.
    cooling_until: AtomicU64,
    epoch: Instant,
}

impl Endpoint {
    fn new(addr: SocketAddr, epoch: Instant) -> Endpoint {
        Endpoint {
            addr,
            counters: Arc::default(),
            retired: AtomicBool::new(false),
            cooling_until: AtomicU64::new(0),
            epoch,
        }
    }

    /// No longer listed: new UDP datagrams of its sessions go elsewhere.
    pub fn retired(&self) -> bool {
        self.retired.load(Relaxed)
    }

    /// A connect failed: count it and put this endpoint last for `cooldown`.
    pub fn failed(&self, cooldown: Duration) {
        self.counters.failed_connect();
        let until = (Instant::now() + cooldown).duration_since(self.epoch);
        self.cooling_until
            .store(until.as_millis().max(1) as u64, Relaxed);
    }

    fn cooling(&self, now: Instant) -> bool {
        now.duration_since(self.epoch).as_millis() < u128::from(self.cooling_until.load(Relaxed))
    }
}

/// The endpoints of one Service port, shared by all its listeners.
#[derive(Debug)]
pub(super) struct Backends {
    key: RouteKey,
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
    next: AtomicUsize,
    affinity: Mutex<Affinity>,
    cooldown: Duration,
    epoch: Instant,
}

impl Backends {
    pub fn new(key: RouteKey, max_affinity_clients: usize, cooldown: Duration) -> Backends {
        Backends {
            key,
            endpoints: RwLock::new(Arc::from([])),
            next: AtomicUsize::new(0),
            affinity: Mutex::new(Affinity::new(max_affinity_clients)),
            cooldown,
            epoch: Instant::now(),
        }
    }

    pub fn key(&self) -> &RouteKey {
        &self.key
    }

    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// The current endpoints, sorted by address.
    pub fn endpoints(&self) -> Arc<[Arc<Endpoint>]> {
        read(&self.endpoints).clone()
    }

    /// Swaps in a new endpoint list and affinity setting. Endpoints that stay keep their state.
    pub fn update(&self, addrs: &[SocketAddr], affinity: Option<Duration>) {
        let mut wanted = addrs.to_vec();
        wanted.sort();
        wanted.dedup();
        {
            let mut current = write(&self.endpoints);
            if current.iter().map(|e| e.addr).ne(wanted.iter().copied()) {
                let next: Arc<[Arc<Endpoint>]> = wanted
                    .iter()
                    .map(|&addr| match current.iter().find(|e| e.addr == addr) {
                        Some(kept) => kept.clone(),
                        None => Arc::new(Endpoint::new(addr, self.epoch)),
                    })
                    .collect();
                for gone in current.iter().filter(|e| !wanted.contains(&e.addr)) {
                    gone.retired.store(true, Relaxed);
                }
                *current = next;
            }
        }
        lock(&self.affinity).set_timeout(affinity);
    }

    /// The endpoints to try for a new connection from `client`, in order. Empty when none is
    /// listed.
    pub fn candidates(&self, client: IpAddr) -> Vec<Arc<Endpoint>> {
        let list = self.endpoints();
        let n = list.len();
        if n == 0 {
            return Vec::new();
        }
        let now = Instant::now();
        let sticky = {
            let mut affinity = lock(&self.affinity);
            affinity
                .lookup(client, now)
                .and_then(|addr| list.iter().position(|e| e.addr == addr && !e.cooling(now)))
        };
        let start = sticky.unwrap_or_else(|| self.next.fetch_add(1, Relaxed) % n);
        let rotated = || (0..n).map(|i| &list[(start + i) % n]);
        let mut out = Vec::with_capacity(n);
        out.extend(rotated().filter(|e| !e.cooling(now)).cloned());
        out.extend(rotated().filter(|e| e.cooling(now)).cloned());
        out
    }

    /// `client` was connected to `endpoint`: stick to it (when affinity is on).
    pub fn connected(&self, client: IpAddr, endpoint: SocketAddr) {
        lock(&self.affinity).remember(client, endpoint, Instant::now());
    }

    /// A connection of `client` to `endpoint` ended: it was active until now.
    pub fn finished(&self, client: IpAddr, endpoint: SocketAddr) {
        lock(&self.affinity).touch(client, endpoint, Instant::now());
    }
}

/// Locks, ignoring poisoning: every critical section here leaves its data consistent, and a
/// panic in one connection's task must not stop the others.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Protocol;

    fn backends(endpoints: &[&str]) -> Backends {
        let key = RouteKey {
            service: "default/web".into(),
            port: "http".into(),
            protocol: Protocol::Tcp,
        };
        let b = Backends::new(key, 100, Duration::from_secs(5));
        b.update(&addrs(endpoints), None);
        b
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().expect("address")).collect()
    }

    fn first(b: &Backends, client: &str) -> SocketAddr {
        b.candidates(client.parse().expect("ip"))[0].addr
    }

    #[test]
    fn new_connections_rotate_over_every_endpoint_in_address_order() {
        let b = backends(&["10.1.0.3:80", "10.1.0.1:80", "10.1.0.2:80", "10.1.0.1:80"]);
        let firsts: Vec<SocketAddr> = (0..6).map(|_| first(&b, "10.0.0.1")).collect();
        assert_eq!(
            firsts,
            addrs(&[
                "10.1.0.1:80",
                "10.1.0.2:80",
                "10.1.0.3:80",
                "10.1.0.1:80",
                "10.1.0.2:80",
                "10.1.0.3:80"
            ])
        );
        let all = b.candidates("10.0.0.1".parse().expect("ip"));
        assert_eq!(all.len(), 3, "every endpoint is a candidate once");
    }

    #[test]
    fn an_endpoint_that_just_failed_is_tried_last() {
        let b = backends(&["10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80"]);
        b.endpoints()[0].failed(Duration::from_secs(5));
        for _ in 0..6 {
            let order = b.candidates("10.0.0.1".parse().expect("ip"));
            assert_eq!(
                order.last().map(|e| e.addr),
                Some(addrs(&["10.1.0.1:80"])[0])
            );
        }
        assert_eq!(b.endpoints()[0].counters.snapshot().failed_connects, 1);
    }

    #[test]
    fn a_sticky_client_gets_its_endpoint_and_others_keep_rotating() {
        let b = backends(&["10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80"]);
        b.update(
            &addrs(&["10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80"]),
            Some(Duration::from_secs(60)),
        );
        let client: IpAddr = "10.0.0.7".parse().expect("ip");
        let chosen = b.candidates(client)[0].addr;
        b.connected(client, chosen);
        for _ in 0..5 {
            assert_eq!(first(&b, "10.0.0.7"), chosen);
        }
        let others: Vec<SocketAddr> = (0..3).map(|_| first(&b, "10.0.0.8")).collect();
        assert_eq!(others.len(), 3);
        assert!(
            others
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 2
        );
    }

    #[test]
    fn a_removed_endpoint_is_retired_and_a_kept_one_keeps_its_counters() {
        let b = backends(&["10.1.0.1:80", "10.1.0.2:80"]);
        let old = b.endpoints();
        old[1].failed(Duration::ZERO);
        b.update(&addrs(&["10.1.0.2:80", "10.1.0.4:80"]), None);
        assert!(old[0].retired());
        assert!(!old[1].retired());
        let now = b.endpoints();
        assert_eq!(now[0].addr, old[1].addr);
        assert_eq!(now[0].counters.snapshot().failed_connects, 1);
        assert_eq!(now[1].counters.snapshot().failed_connects, 0);
    }

    #[test]
    fn a_sticky_endpoint_that_is_no_longer_listed_is_not_chosen() {
        let b = backends(&["10.1.0.1:80", "10.1.0.2:80"]);
        b.update(
            &addrs(&["10.1.0.1:80", "10.1.0.2:80"]),
            Some(Duration::from_secs(60)),
        );
        let client: IpAddr = "10.0.0.7".parse().expect("ip");
        b.connected(client, addrs(&["10.1.0.1:80"])[0]);
        b.update(&addrs(&["10.1.0.2:80"]), Some(Duration::from_secs(60)));
        assert_eq!(first(&b, "10.0.0.7"), addrs(&["10.1.0.2:80"])[0]);
    }
}
