//! The settings that decide what runs, agreed by the whole cluster: the hosts, the failure
//! policy, the input budgets, the host paths allowed, the signature policy.
//!
//! Why replicated: each member has its own flags, and two members with different host lists
//! would place replicas differently, so a new leader would move every replica. The first leader
//! proposes its own settings; afterwards they change only by an explicit `berth cluster settings
//! adopt` (recorded here with who and when). A member whose flags disagree says so in its status
//! and does not lead (see `controller::settings`).
//!
//! Each setting is a name and a canonical text (`nodes` = `a=unix:///...,b=tcp://...`), so a
//! disagreement can be reported setting by setting, and a later berth can add settings without
//! a new command.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::records::{Budget, HISTORY_BYTES, HISTORY_LIMIT};
use super::Millis;

/// The setting of the history's byte budget, in bytes (`--history-size`). Absent means
/// [`HISTORY_BYTES`].
pub const HISTORY_SIZE: &str = "history-size";

/// Setting name to canonical value.
pub type SettingValues = BTreeMap<String, String>;

/// Changes remembered for the status API.
pub const SETTINGS_CHANGES_KEPT: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Empty until the first leader proposes its own.
    pub values: SettingValues,
    /// Newest last, at most [`SETTINGS_CHANGES_KEPT`].
    pub changes: VecDeque<SettingsChange>,
}

/// One adoption of new settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsChange {
    /// The member whose flags were adopted.
    pub by: u64,
    pub at: Millis,
    /// The names of the settings that changed (all of them at bootstrap).
    pub changed: Vec<String>,
}

impl Settings {
    /// The history's budget these settings give: `history-size` bytes, or the default when it
    /// is absent or unreadable (a value is checked where it is set, by `--history-size`).
    pub fn history_budget(&self) -> Budget {
        let bytes = self
            .values
            .get(HISTORY_SIZE)
            .and_then(|v| v.parse().ok())
            .unwrap_or(HISTORY_BYTES);
        Budget {
            records: HISTORY_LIMIT,
            bytes,
        }
    }

    /// Adopts `values` from member `by`; false (nothing recorded) when they are already the
    /// cluster's.
    pub(super) fn adopt(&mut self, values: SettingValues, by: u64, at: Millis) -> bool {
        if values == self.values {
            return false;
        }
        let changed = differing(&self.values, &values);
        self.values = values;
        self.changes.push_back(SettingsChange { by, at, changed });
        while self.changes.len() > SETTINGS_CHANGES_KEPT {
            self.changes.pop_front();
        }
        true
    }
}

/// The names of the settings whose values differ between `a` and `b` (missing on one side
/// included), sorted.
pub fn differing(a: &SettingValues, b: &SettingValues) -> Vec<String> {
    let mut names: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> SettingValues {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn differing_names_every_setting_that_changed_or_is_missing() {
        let a = values(&[("nodes", "a=x"), ("on-failure", "halt")]);
        let b = values(&[("nodes", "a=y"), ("on-failure", "halt"), ("new", "1")]);
        assert_eq!(differing(&a, &b), vec!["new", "nodes"]);
        assert!(differing(&a, &a).is_empty());
    }

    #[test]
    fn adopting_records_who_and_what_and_ignores_no_change() {
        let mut s = Settings::default();
        assert!(s.adopt(values(&[("nodes", "a=x")]), 1, 10));
        assert!(!s.adopt(values(&[("nodes", "a=x")]), 2, 20));
        assert!(s.adopt(values(&[("nodes", "a=y")]), 3, 30));
        assert_eq!(s.changes.len(), 2);
        assert_eq!(s.changes[1].by, 3);
        assert_eq!(s.changes[1].changed, vec!["nodes"]);
        for i in 0..100 {
            s.adopt(values(&[("nodes", &i.to_string())]), 1, i);
        }
        assert_eq!(s.changes.len(), SETTINGS_CHANGES_KEPT);
    }
}
