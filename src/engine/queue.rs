//! The keyed delay queue: which key to work on next, and when.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use tokio::time::Instant;

/// Keys waiting for a time, one entry per key (the earliest requested time wins), and the keys
/// in flight, which are not handed out again until they are done.
#[derive(Debug)]
pub struct Queue<K> {
    due: HashMap<K, (Instant, u64)>,
    order: BTreeSet<(Instant, u64, K)>,
    running: HashSet<K>,
    seq: u64,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            due: HashMap::new(),
            order: BTreeSet::new(),
            running: HashSet::new(),
            seq: 0,
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Queue<K> {
    /// Asks for `key` to be worked on at `at`, or earlier if it already was.
    pub fn schedule(&mut self, key: K, at: Instant) {
        if let Some((old, seq)) = self.due.get(&key).copied() {
            if old <= at {
                return;
            }
            self.order.remove(&(old, seq, key.clone()));
        }
        self.seq += 1;
        self.due.insert(key.clone(), (at, self.seq));
        self.order.insert((at, self.seq, key));
    }

    /// The earliest time a key not in flight is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.order
            .iter()
            .find(|(_, _, k)| !self.running.contains(k))
            .map(|(at, _, _)| *at)
    }

    /// The earliest due key not in flight, marked in flight.
    pub fn pop(&mut self, now: Instant) -> Option<K> {
        let (at, seq, key) = self
            .order
            .iter()
            .take_while(|(at, _, _)| *at <= now)
            .find(|(_, _, k)| !self.running.contains(k))?
            .clone();
        self.order.remove(&(at, seq, key.clone()));
        self.due.remove(&key);
        self.running.insert(key.clone());
        Some(key)
    }

    /// `key` is no longer in flight.
    pub fn done(&mut self, key: &K) {
        self.running.remove(key);
    }

    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    pub fn waiting(&self) -> usize {
        self.due.len()
    }

    /// Is a key waiting that was due at `at` or before (not one asked for later)? The earliest
    /// comes first in `order`: O(1), as it is polled while a pass of 100,000 keys runs.
    pub fn any_due_by(&self, at: Instant) -> bool {
        self.order.first().is_some_and(|(due, _, _)| *due <= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_earliest_request_wins_and_bursts_coalesce() {
        let mut q: Queue<&str> = Queue::default();
        let now = Instant::now();
        q.schedule("a", now + Duration::from_millis(50));
        q.schedule("a", now + Duration::from_millis(10));
        q.schedule("a", now + Duration::from_millis(90));
        assert_eq!(q.waiting(), 1);
        assert_eq!(q.next_due(), Some(now + Duration::from_millis(10)));
        assert_eq!(q.pop(now), None, "not due yet");
        assert_eq!(q.pop(now + Duration::from_millis(10)), Some("a"));
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_in_flight_is_not_handed_out_again_until_done() {
        let mut q: Queue<&str> = Queue::default();
        let now = Instant::now();
        q.schedule("a", now);
        q.schedule("b", now + Duration::from_millis(1));
        assert_eq!(q.pop(now), Some("a"));
        q.schedule("a", now);
        let later = now + Duration::from_millis(5);
        assert_eq!(q.pop(later), Some("b"), "a is in flight: b goes first");
        assert_eq!(q.pop(later), None);
        assert_eq!(q.next_due(), None, "only a waits, and it is in flight");
        q.done(&"a");
        assert_eq!(q.next_due(), Some(now));
        assert_eq!(
            q.pop(later),
            Some("a"),
            "requested while in flight: it runs again"
        );
    }
}
