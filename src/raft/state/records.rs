//! The history's records, capped by count and by estimated bytes.
//!
//! Why bytes as well as count: every member holds the whole state in memory, a snapshot
//! serialises it whole and a new member receives it whole. 50,000 records of a few hundred bytes
//! are a few tens of megabytes, but a record may legitimately hold a thousand plan lines (a large
//! rollout), so a count alone lets the history grow to gigabytes.
//!
//! When the estimate passes [`HISTORY_BYTES`], the plans of old commits go first (oldest first,
//! final outcomes only: a rollout still running keeps its steps), then the oldest records.
//! Plans go first because they are the bulk and the least needed later: what happened to a
//! commit (outcome, errors, times) outlives how it was carried out.
//!
//! Cost: the estimate is a running sum, adjusted by each change to one record (never a pass over
//! the whole history), and the records whose plans may be dropped are kept in an ordered set, so
//! each `apply` costs O(size of the record changed + log n). Determinism: every decision depends
//! only on the records themselves (the running sum and the set are derived from them and rebuilt
//! when a state is loaded), so every member drops the same plans and records.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::history::CommitRecord;

/// How many commits of history are kept before the oldest are dropped.
pub const HISTORY_LIMIT: usize = 50_000;

/// Estimated bytes of history kept by default (see [`CommitRecord::estimated_bytes`]); the
/// cluster-wide setting `history-size` (`berth serve --history-size`) replaces it. 64 MiB: the
/// 50,000 records of [`HISTORY_LIMIT`] at about 1 KiB each (a message, a few errors, some plan
/// lines) fit, while the state a snapshot serialises, every member holds and a joining member downloads
/// stays within a size a small controller VM handles in about a second.
pub const HISTORY_BYTES: u64 = 64 << 20;

/// The limits a history keeps to: the constants above, or the cluster's `history-size`
/// (`Settings::history_budget`), smaller in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub records: usize,
    pub bytes: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            records: HISTORY_LIMIT,
            bytes: HISTORY_BYTES,
        }
    }
}

/// The commit records, newest last, within their [`Budget`]. Read it as a `VecDeque`; change it
/// only through its methods, which keep the estimate and the budget.
///
/// Serialised as the list of records alone (the same JSON as before budgets existed).
#[derive(Debug, Clone, Default)]
pub struct History {
    records: VecDeque<CommitRecord>,
    /// Sum of every record's `estimated_bytes`.
    bytes: u64,
    /// Positions of the records whose plan may be dropped (`has_plan`). A position is the
    /// record's index plus `front`, so positions stay valid while records leave at the front.
    plans: BTreeSet<u64>,
    /// Position of `records[0]`.
    front: u64,
    budget: Budget,
}

impl History {
    /// A history of `records` (as loaded: nothing is dropped until the next change).
    pub fn from_records(records: VecDeque<CommitRecord>) -> History {
        History {
            bytes: records.iter().map(CommitRecord::estimated_bytes).sum(),
            plans: (0u64..)
                .zip(&records)
                .filter(|(_, r)| r.has_plan())
                .map(|(i, _)| i)
                .collect(),
            records,
            front: 0,
            budget: Budget::default(),
        }
    }

    /// An empty history with its own budget (tests of the budget itself).
    pub fn with_budget(budget: Budget) -> History {
        History {
            budget,
            ..History::default()
        }
    }

    /// Changes the budget; it applies from the next change.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// The estimated bytes of all records.
    pub fn estimated_bytes(&self) -> u64 {
        self.bytes
    }

    /// The newest record of `sha` (a sha seen twice has two records).
    pub fn find(&self, sha: &str) -> Option<&CommitRecord> {
        self.records.iter().rev().find(|c| c.sha == sha)
    }

    /// Appends `record` (bounded: see [`CommitRecord::bounded`]), then keeps to the budget.
    pub fn push(&mut self, record: CommitRecord) {
        let record = record.bounded();
        self.bytes += record.estimated_bytes();
        let position = self.front + self.records.len() as u64;
        if record.has_plan() {
            self.plans.insert(position);
        }
        self.records.push_back(record);
        self.keep_to_budget();
    }

    /// Runs `f` on the newest record of `sha`, then keeps to the budget. `None` when there is no
    /// such record.
    pub fn update<R>(&mut self, sha: &str, f: impl FnOnce(&mut CommitRecord) -> R) -> Option<R> {
        let index = self.records.iter().rposition(|c| c.sha == sha)?;
        let result = self.change(index, f);
        self.keep_to_budget();
        Some(result)
    }

    /// Runs `f` on the record at `index`, keeping the estimate and the plan set.
    fn change<R>(&mut self, index: usize, f: impl FnOnce(&mut CommitRecord) -> R) -> R {
        let record = &mut self.records[index];
        let before = record.estimated_bytes();
        let result = f(record);
        let after = record.estimated_bytes();
        let has_plan = record.has_plan();
        self.bytes = self.bytes - before + after;
        let position = self.front + index as u64;
        if has_plan {
            self.plans.insert(position);
        } else {
            self.plans.remove(&position);
        }
        result
    }

    fn pop_front(&mut self) {
        if let Some(r) = self.records.pop_front() {
            self.bytes -= r.estimated_bytes();
            self.plans.remove(&self.front);
            self.front += 1;
        }
    }

    /// Drops records past the count; then, over the byte budget, the plans of old commits
    /// (oldest first, final outcomes only), then the oldest records. The newest record is
    /// always kept.
    fn keep_to_budget(&mut self) {
        while self.records.len() > self.budget.records {
            self.pop_front();
        }
        let mut from = self.front;
        while self.bytes > self.budget.bytes {
            let Some(position) = self.plans.range(from..).next().copied() else {
                break;
            };
            from = position + 1;
            let index = (position - self.front) as usize;
            if self.records[index].outcome.is_final() {
                self.change(index, CommitRecord::drop_plan);
            }
        }
        while self.bytes > self.budget.bytes && self.records.len() > 1 {
            self.pop_front();
        }
    }
}

impl Deref for History {
    type Target = VecDeque<CommitRecord>;

    fn deref(&self) -> &VecDeque<CommitRecord> {
        &self.records
    }
}

impl PartialEq for History {
    /// Two histories are equal when their records are: the rest is derived from them.
    fn eq(&self, other: &History) -> bool {
        self.records == other.records
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.records.serialize(s)
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<History, D::Error> {
        VecDeque::deserialize(d).map(History::from_records)
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
