//! An RC's rollout strategy, from its `berth.io/*` annotations (validated by the manifest
//! decoder: here every value already parses).

use crate::manifest::annotations::{
    MAX_SURGE, MAX_UNAVAILABLE, MIN_READY_SECONDS, PROGRESS_DEADLINE_SECONDS, UPDATE_STRATEGY,
};
use crate::manifest::ReplicationController;

/// Kubernetes' defaults, except maxUnavailable: 0, so a rollout never dips below the desired
/// count of ready replicas.
pub const DEFAULT_MAX_SURGE: Amount = Amount::Count(1);
pub const DEFAULT_MAX_UNAVAILABLE: Amount = Amount::Count(0);
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: u32 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Start-first, in batches bounded by maxSurge and maxUnavailable.
    RollingUpdate,
    /// Stop-first on purpose: every old replica stops before any new one starts (images are
    /// pulled first all the same).
    Recreate,
}

/// A replica count or a percentage of the desired count (`2`, `25%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(u32),
    Percent(u32),
}

impl Amount {
    /// `2` or `25%`.
    pub fn parse(s: &str) -> Option<Amount> {
        match s.strip_suffix('%') {
            Some(p) => p.parse().ok().filter(|p| *p <= 100).map(Amount::Percent),
            None => s.parse().ok().map(Amount::Count),
        }
    }

    /// The count for `desired` replicas, a percentage rounded up or down as Kubernetes does
    /// (surge up, unavailable down).
    pub fn of(self, desired: u32, round_up: bool) -> u32 {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let scaled = u64::from(desired) * u64::from(p);
                let n = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                n as u32
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    pub kind: Kind,
    pub max_surge: Amount,
    pub max_unavailable: Amount,
    pub min_ready_seconds: u32,
    pub progress_deadline_seconds: u32,
}

impl Default for Strategy {
    fn default() -> Strategy {
        Strategy {
            kind: Kind::RollingUpdate,
            max_surge: DEFAULT_MAX_SURGE,
            max_unavailable: DEFAULT_MAX_UNAVAILABLE,
            min_ready_seconds: 0,
            progress_deadline_seconds: DEFAULT_PROGRESS_DEADLINE_SECONDS,
        }
    }
}

impl Strategy {
    /// The strategy of `rc`, from its metadata's annotations (never its template's).
    pub fn of(rc: &ReplicationController) -> Strategy {
        let a = &rc.metadata.annotations;
        let d = Strategy::default();
        Strategy {
            kind: match a.get(UPDATE_STRATEGY).map(String::as_str) {
                Some("Recreate") => Kind::Recreate,
                _ => Kind::RollingUpdate,
            },
            max_surge: a
                .get(MAX_SURGE)
                .and_then(|v| Amount::parse(v))
                .unwrap_or(d.max_surge),
            max_unavailable: a
                .get(MAX_UNAVAILABLE)
                .and_then(|v| Amount::parse(v))
                .unwrap_or(d.max_unavailable),
            min_ready_seconds: a
                .get(MIN_READY_SECONDS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.min_ready_seconds),
            progress_deadline_seconds: a
                .get(PROGRESS_DEADLINE_SECONDS)
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.progress_deadline_seconds),
        }
    }

    /// (maxSurge, maxUnavailable) as counts for `desired` replicas. Both zero would never move:
    /// then one may be unavailable, as Kubernetes requires.
    pub fn bounds(&self, desired: u32) -> (u32, u32) {
        let surge = self.max_surge.of(desired, true);
        let unavailable = self.max_unavailable.of(desired, false);
        if surge == 0 && unavailable == 0 {
            (0, 1)
        } else {
            (surge, unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_counts_or_percentages_rounded_as_kubernetes_does() {
        assert_eq!(Amount::parse("2"), Some(Amount::Count(2)));
        assert_eq!(Amount::parse("25%"), Some(Amount::Percent(25)));
        assert_eq!(Amount::parse("150%"), None);
        assert_eq!(Amount::parse("x"), None);
        assert_eq!(Amount::Percent(25).of(10, true), 3);
        assert_eq!(Amount::Percent(25).of(10, false), 2);
        let s = Strategy {
            max_surge: Amount::Count(0),
            max_unavailable: Amount::Percent(10),
            ..Strategy::default()
        };
        assert_eq!(s.bounds(3), (0, 1), "both zero is not allowed to stall");
        assert_eq!(Strategy::default().bounds(3), (1, 0));
    }
}
