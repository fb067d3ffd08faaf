//! The delivery ids that recently triggered a sync, so a host's retry triggers nothing new.
//!
//! Bounded: the oldest id is forgotten first. A retry that comes after its id was forgotten
//! triggers one more sync, which is harmless (the sync fetches and finds nothing new).

use std::collections::{HashSet, VecDeque};

use super::Provider;

type Key = (Provider, String);

#[derive(Debug)]
pub(crate) struct RecentDeliveries {
    capacity: usize,
    order: VecDeque<Key>,
    seen: HashSet<Key>,
}

impl RecentDeliveries {
    pub fn new(capacity: usize) -> RecentDeliveries {
        RecentDeliveries {
            capacity,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    pub fn contains(&self, provider: Provider, id: &str) -> bool {
        self.seen.contains(&(provider, id.to_string()))
    }

    pub fn remember(&mut self, provider: Provider, id: &str) {
        if self.capacity == 0 || !self.seen.insert((provider, id.to_string())) {
            return;
        }
        self.order.push_back((provider, id.to_string()));
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_remembered_per_provider() {
        let mut r = RecentDeliveries::new(4);
        r.remember(Provider::Github, "a");
        assert!(r.contains(Provider::Github, "a"));
        assert!(!r.contains(Provider::Gitea, "a"));
    }

    #[test]
    fn the_oldest_id_is_forgotten_first() {
        let mut r = RecentDeliveries::new(2);
        for id in ["a", "b", "c"] {
            r.remember(Provider::Generic, id);
        }
        assert!(!r.contains(Provider::Generic, "a"));
        assert!(r.contains(Provider::Generic, "b"));
        assert!(r.contains(Provider::Generic, "c"));
        assert_eq!(r.order.len(), 2);
        assert_eq!(r.seen.len(), 2);
    }
}
