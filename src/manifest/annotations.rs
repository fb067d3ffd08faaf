//! berth's own annotations (`berth.io/...`): where each goes, what it takes, and the check that
//! `berth validate` and sync run on every one.
//!
//! A typo in an annotation must not silently fall back to a default (a `max-unavailble: 100%`
//! that is ignored is a surprise outage avoided only by luck), so an unknown `berth.io/` key is
//! an error with a "did you mean", and so is a known key in the wrong place: rollout settings go
//! on the ReplicationController's own metadata, never on its pod template, whose annotations
//! are part of the pods (changing them would replace every replica).

/// `RollingUpdate` (default) or `Recreate`.
pub const UPDATE_STRATEGY: &str = "berth.io/update-strategy";
/// New replicas above the desired count during a rollout: a count or a percentage (default 1).
pub const MAX_SURGE: &str = "berth.io/max-surge";
/// Replicas that may be unavailable during a rollout: a count or a percentage (default 0).
pub const MAX_UNAVAILABLE: &str = "berth.io/max-unavailable";
/// Seconds a new replica must stay ready to count as available (default 0).
pub const MIN_READY_SECONDS: &str = "berth.io/min-ready-seconds";
/// Seconds a new replica (or a changed bare Pod) has to become ready before the rollout halts
/// and the commit fails (default 120).
pub const PROGRESS_DEADLINE_SECONDS: &str = "berth.io/progress-deadline-seconds";

/// At most this many replicas of the RC on one host (fleet's `Conflicts`, Marathon's `UNIQUE`).
pub const MAX_PER_NODE: &str = "berth.io/max-per-node";
/// A label selector (`app=db,tier!=web`): never on a host running a pod it matches (nor where a
/// pod there declares a selector matching this one).
pub const CONFLICTS: &str = "berth.io/conflicts";
/// `spread` (default: spread the RC's replicas, then least allocated) or `binpack`.
pub const PLACEMENT: &str = "berth.io/placement";
/// On a Node manifest, `"true"`: the host takes no new pods and its RC replicas move elsewhere.
pub const DRAIN: &str = "berth.io/drain";

/// Which object's metadata an annotation is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Pod,
    ReplicationController,
    Template,
    Service,
    Node,
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::Pod => "a Pod",
            Place::ReplicationController => "a ReplicationController",
            Place::Template => "a pod template",
            Place::Service => "a Service",
            Place::Node => "a Node",
        }
    }
}

/// The value an annotation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Choice(&'static [&'static str]),
    /// A count, or a percentage up to 100%.
    CountOrPercent,
    Seconds {
        min: u32,
    },
    /// A whole number, at least 1.
    Positive,
    /// A label selector (see `scheduler::Selector`).
    Selector,
}

struct Known {
    key: &'static str,
    places: &'static [Place],
    value: Value,
}

const KNOWN: &[Known] = &[
    Known {
        key: UPDATE_STRATEGY,
        places: &[Place::ReplicationController],
        value: Value::Choice(&["RollingUpdate", "Recreate"]),
    },
    Known {
        key: MAX_SURGE,
        places: &[Place::ReplicationController],
        value: Value::CountOrPercent,
    },
    Known {
        key: MAX_UNAVAILABLE,
        places: &[Place::ReplicationController],
        value: Value::CountOrPercent,
    },
    Known {
        key: MIN_READY_SECONDS,
        places: &[Place::ReplicationController],
        value: Value::Seconds { min: 0 },
    },
    Known {
        key: PROGRESS_DEADLINE_SECONDS,
        places: &[Place::ReplicationController, Place::Pod],
        value: Value::Seconds { min: 1 },
    },
    Known {
        key: MAX_PER_NODE,
        places: &[Place::ReplicationController],
        value: Value::Positive,
    },
    Known {
        key: CONFLICTS,
        places: &[Place::ReplicationController, Place::Pod],
        value: Value::Selector,
    },
    Known {
        key: PLACEMENT,
        places: &[Place::ReplicationController, Place::Pod],
        value: Value::Choice(&["spread", "binpack"]),
    },
    Known {
        key: DRAIN,
        places: &[Place::Node],
        value: Value::Choice(&["true", "false"]),
    },
];

/// The problem with one annotation, if it is berth's and wrong; `None` for a good one and for
/// anybody else's annotation.
pub fn check(key: &str, value: &str, place: Place) -> Option<String> {
    if !key.starts_with("berth.io/") {
        return None;
    }
    let Some(known) = KNOWN.iter().find(|k| k.key == key) else {
        let hint = KNOWN
            .iter()
            .map(|k| (distance(k.key, key), k.key))
            .filter(|(d, _)| *d <= 4)
            .min()
            .map(|(_, k)| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        let all: Vec<&str> = KNOWN.iter().map(|k| k.key).collect();
        return Some(format!(
            "unknown berth annotation{hint}; berth knows {}",
            all.join(", ")
        ));
    };
    if !known.places.contains(&place) {
        let wanted: Vec<&str> = known.places.iter().map(|p| p.describe()).collect();
        let mut message = format!(
            "{key} goes on the metadata of {}, not of {}",
            wanted.join(" or "),
            place.describe()
        );
        if place == Place::Template {
            message.push_str(" (template annotations are part of the pods: changing them replaces every replica)");
        }
        return Some(message);
    }
    match known.value {
        Value::Choice(choices) if !choices.contains(&value) => {
            Some(format!("{value:?} is not one of {}", choices.join(", ")))
        }
        Value::CountOrPercent if crate::rollout::Amount::parse(value).is_none() => Some(format!(
            "{value:?} is neither a count (\"2\") nor a percentage up to 100% (\"25%\")"
        )),
        Value::Seconds { min } => match value.parse::<u32>() {
            Ok(n) if n >= min && n <= 86_400 => None,
            _ => Some(format!(
                "{value:?} is not a number of seconds in {min}..86400"
            )),
        },
        Value::Positive => match value.parse::<u32>() {
            Ok(n) if n >= 1 => None,
            _ => Some(format!("{value:?} is not a whole number of at least 1")),
        },
        Value::Selector => crate::scheduler::Selector::parse(value)
            .err()
            .map(|e| format!("not a label selector: {e}")),
        _ => None,
    }
}

/// Levenshtein distance (annotation keys are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_annotations_and_other_peoples_pass() {
        assert_eq!(check(MAX_SURGE, "25%", Place::ReplicationController), None);
        assert_eq!(
            check(UPDATE_STRATEGY, "Recreate", Place::ReplicationController),
            None
        );
        assert_eq!(check(PROGRESS_DEADLINE_SECONDS, "30", Place::Pod), None);
        assert_eq!(check("example.com/owner", "x", Place::Template), None);
    }

    #[test]
    fn typos_places_and_values_are_named() {
        let e = check("berth.io/max-unavailble", "1", Place::ReplicationController).unwrap();
        assert!(
            e.starts_with("unknown berth annotation (did you mean \"berth.io/max-unavailable\"?)"),
            "{e}"
        );
        let e = check(MAX_SURGE, "1", Place::Template).unwrap();
        assert!(e.starts_with("berth.io/max-surge goes on the metadata of a ReplicationController, not of a pod template"), "{e}");
        assert_eq!(
            check(UPDATE_STRATEGY, "BlueGreen", Place::ReplicationController).unwrap(),
            "\"BlueGreen\" is not one of RollingUpdate, Recreate"
        );
        assert!(check(MAX_UNAVAILABLE, "120%", Place::ReplicationController).is_some());
        assert!(check(PROGRESS_DEADLINE_SECONDS, "0", Place::ReplicationController).is_some());
        assert!(check(MIN_READY_SECONDS, "-1", Place::ReplicationController).is_some());
    }
}
