//! When each host's placements last changed, so that a placement computed against an older
//! state is refused where it matters: only if a host it chose has taken pods since.
//!
//! Every filter (resources, host ports, max-per-node, conflicts) looks at one host alone, so a
//! decision stays valid while its chosen hosts are unchanged, whatever happened elsewhere; and
//! pods leaving a host only make room. Refusing any change at all would serialise every RC's
//! placements behind each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementClock {
    /// Counts every change of placements.
    pub generation: u64,
    /// The generation at which placements were last replaced wholesale (an accepted commit, a
    /// rollback, `Place`): everything computed before it is stale.
    pub replaced_at: u64,
    /// The generation at which each host last took a pod.
    pub hosts: BTreeMap<String, u64>,
}

impl PlacementClock {
    /// Pods were added on `hosts`.
    pub fn added<'a>(&mut self, hosts: impl IntoIterator<Item = &'a str>) {
        self.generation += 1;
        for h in hosts.into_iter().filter(|h| !h.is_empty()) {
            self.hosts.insert(h.to_string(), self.generation);
        }
    }

    /// Placements were replaced wholesale.
    pub fn replaced(&mut self) {
        self.generation += 1;
        self.replaced_at = self.generation;
        self.hosts.clear();
    }

    /// Is a placement onto `hosts` computed at generation `based_on` still valid?
    pub fn fresh<'a>(&self, based_on: u64, hosts: impl Iterator<Item = &'a str>) -> bool {
        self.fresh_within(based_on, None, hosts)
    }

    /// [`PlacementClock::fresh`], for a decision applied inside a batch of
    /// [`super::Command::Placements`] that began at generation `batch`: the decisions before it
    /// in the batch were computed together with it, so hosts they changed do not make it stale.
    pub fn fresh_within<'a>(
        &self,
        based_on: u64,
        batch: Option<u64>,
        mut hosts: impl Iterator<Item = &'a str>,
    ) -> bool {
        let known = |g: u64| g <= based_on || batch.is_some_and(|start| g > start);
        based_on >= self.replaced_at && hosts.all(|h| self.hosts.get(h).is_none_or(|g| known(*g)))
    }
}
