//! `sessionAffinity: ClientIP`: which endpoint each client IP was last sent to, and when.
//!
//! Inactivity is measured from the client's last connection (or session) start or end, as
//! kube-proxy's `recent` lists refresh on each new connection: a client that keeps
//! reconnecting keeps its endpoint, and one silent for the timeout is placed afresh. Memory is
//! bounded by `cap`; at the cap, expired entries go first and then new clients are not
//! remembered (they are still served, by round-robin), so a flood of source addresses cannot
//! grow the table or evict clients that are still active.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

/// The remembered clients of one Service port. Pure: `now` is an input.
#[derive(Debug)]
pub(super) struct Affinity {
    timeout: Option<Duration>,
    cap: usize,
    clients: HashMap<IpAddr, Remembered>,
}

#[derive(Debug, Clone, Copy)]
struct Remembered {
    endpoint: SocketAddr,
    last: Instant,
}

impl Affinity {
    pub fn new(cap: usize) -> Affinity {
        Affinity {
            timeout: None,
            cap,
            clients: HashMap::new(),
        }
    }

    /// Turns affinity on (with this timeout) or off; off forgets every client.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        if timeout.is_none() {
            self.clients = HashMap::new();
        }
        self.timeout = timeout;
    }

    /// The endpoint `client` is stuck to, if it has been active within the timeout; refreshes
    /// its time. An expired entry is removed.
    pub fn lookup(&mut self, client: IpAddr, now: Instant) -> Option<SocketAddr> {
        let timeout = self.timeout?;
        let client = client.to_canonical();
        match self.clients.get_mut(&client) {
            Some(r) if now.saturating_duration_since(r.last) <= timeout => {
                r.last = now;
                Some(r.endpoint)
            }
            Some(_) => {
                self.clients.remove(&client);
                None
            }
            None => None,
        }
    }

    /// Sticks `client` to `endpoint` from `now` on (when affinity is on and there is room).
    pub fn remember(&mut self, client: IpAddr, endpoint: SocketAddr, now: Instant) {
        let Some(timeout) = self.timeout else { return };
        let client = client.to_canonical();
        if self.clients.len() >= self.cap && !self.clients.contains_key(&client) {
            self.clients
                .retain(|_, r| now.saturating_duration_since(r.last) <= timeout);
            if self.clients.len() >= self.cap {
                return;
            }
        }
        self.clients.insert(
            client,
            Remembered {
                endpoint,
                last: now,
            },
        );
    }

    /// Refreshes `client`'s time if it is still stuck to `endpoint` (a connection of its
    /// ended: it was active until now).
    pub fn touch(&mut self, client: IpAddr, endpoint: SocketAddr, now: Instant) {
        if let Some(r) = self.clients.get_mut(&client.to_canonical()) {
            if r.endpoint == endpoint {
                r.last = now;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn ep(s: &str) -> SocketAddr {
        s.parse().expect("endpoint")
    }

    #[test]
    fn a_client_keeps_its_endpoint_while_active_and_loses_it_after_the_timeout() {
        let t0 = Instant::now();
        let mut a = Affinity::new(10);
        a.set_timeout(Some(Duration::from_secs(10)));
        a.remember(ip("10.0.0.1"), ep("10.1.0.1:80"), t0);
        // Each lookup refreshes: 8 s apart, ten times, is never 10 s of silence.
        for i in 1..=10 {
            let now = t0 + Duration::from_secs(8 * i);
            assert_eq!(a.lookup(ip("10.0.0.1"), now), Some(ep("10.1.0.1:80")));
        }
        let later = t0 + Duration::from_secs(80 + 11);
        assert_eq!(a.lookup(ip("10.0.0.1"), later), None);
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn an_ipv4_mapped_client_is_the_same_client() {
        let t0 = Instant::now();
        let mut a = Affinity::new(10);
        a.set_timeout(Some(Duration::from_secs(10)));
        a.remember(ip("::ffff:10.0.0.1"), ep("10.1.0.1:80"), t0);
        assert_eq!(a.lookup(ip("10.0.0.1"), t0), Some(ep("10.1.0.1:80")));
    }

    #[test]
    fn at_the_cap_expired_clients_make_room_and_active_ones_are_never_evicted() {
        let t0 = Instant::now();
        let mut a = Affinity::new(2);
        a.set_timeout(Some(Duration::from_secs(10)));
        a.remember(ip("10.0.0.1"), ep("10.1.0.1:80"), t0);
        a.remember(
            ip("10.0.0.2"),
            ep("10.1.0.2:80"),
            t0 + Duration::from_secs(5),
        );
        // Full, nobody expired: the newcomer is not remembered.
        a.remember(
            ip("10.0.0.3"),
            ep("10.1.0.3:80"),
            t0 + Duration::from_secs(6),
        );
        assert_eq!(a.lookup(ip("10.0.0.3"), t0 + Duration::from_secs(6)), None);
        // 10.0.0.1 has expired by now: it makes room.
        let now = t0 + Duration::from_secs(12);
        a.remember(ip("10.0.0.3"), ep("10.1.0.3:80"), now);
        assert_eq!(a.lookup(ip("10.0.0.3"), now), Some(ep("10.1.0.3:80")));
        assert_eq!(a.lookup(ip("10.0.0.2"), now), Some(ep("10.1.0.2:80")));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn turning_affinity_off_forgets_everyone() {
        let t0 = Instant::now();
        let mut a = Affinity::new(10);
        a.set_timeout(Some(Duration::from_secs(10)));
        a.remember(ip("10.0.0.1"), ep("10.1.0.1:80"), t0);
        a.set_timeout(None);
        a.remember(ip("10.0.0.2"), ep("10.1.0.1:80"), t0);
        a.set_timeout(Some(Duration::from_secs(10)));
        assert_eq!(a.lookup(ip("10.0.0.1"), t0), None);
        assert_eq!(a.len(), 0);
    }
}
