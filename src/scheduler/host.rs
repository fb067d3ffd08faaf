//! A host as the scheduler sees it: whether it can take pods, its labels and its capacity.

use crate::manifest::StringMap;

use super::Resources;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// The engine answers.
    pub ready: bool,
    /// False when its Node manifest says `spec.unschedulable` or drains it: it keeps what it
    /// runs but takes nothing new.
    pub schedulable: bool,
    /// From `--node-label`, `[[nodes]]` and its Node manifest.
    pub labels: StringMap,
    /// `--node-capacity`, else what the engine reports; `None` while unknown (not yet seen),
    /// when no resource limit is applied.
    pub capacity: Option<super::Resources>,
}

impl Host {
    /// A schedulable host without labels or known capacity.
    pub fn new(name: impl Into<String>, ready: bool) -> Host {
        Host {
            name: name.into(),
            ready,
            schedulable: true,
            labels: StringMap::new(),
            capacity: None,
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Host {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn capacity(mut self, cpu_millis: u64, memory_bytes: u64) -> Host {
        self.capacity = Some(Resources::new(cpu_millis, memory_bytes));
        self
    }

    pub fn unschedulable(mut self) -> Host {
        self.schedulable = false;
        self
    }
}
