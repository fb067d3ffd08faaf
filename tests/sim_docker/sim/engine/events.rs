//! The event bus of one host: `GET /events` subscribers and the JSON lines Docker sends them.
//!
//! Each subscriber has a bounded queue. A subscriber that falls that far behind is dropped,
//! which ends its stream: the client subscribes again and lists, as it must after any break
//! (Docker drops slow event readers too). An idle bus holds no allocation at all, so 5,000
//! hosts nobody watches cost nothing here.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use super::container::Container;
use crate::sim::filters::Filters;
use crate::sim::time::{now, Nanos};

/// Events a subscriber may have queued before it is dropped as too slow.
pub const QUEUE: usize = 4096;
/// The filters `GET /events` accepts.
pub const FILTERS: [&str; 8] = [
    "type",
    "label",
    "container",
    "event",
    "image",
    "volume",
    "network",
    "daemon",
];

struct Subscriber {
    filters: Filters,
    tx: mpsc::Sender<Bytes>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("filters", &self.filters)
            .finish()
    }
}

/// The host's event subscribers.
#[derive(Debug, Default)]
pub struct Bus {
    subscribers: Vec<Subscriber>,
}

/// One event before it is written.
pub struct Event<'a> {
    /// `container`, `image`, `volume`, ...
    pub typ: &'static str,
    pub action: String,
    pub id: &'a str,
    pub attributes: BTreeMap<String, String>,
    /// The image, for container events (Docker's deprecated `from`).
    pub from: Option<&'a str>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(rename = "Type")]
    typ: &'a str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Actor")]
    actor: Actor<'a>,
    scope: &'static str,
    time: u64,
    #[serde(rename = "timeNano")]
    time_nano: Nanos,
}

#[derive(Serialize)]
struct Actor<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Attributes")]
    attributes: &'a BTreeMap<String, String>,
}

impl Bus {
    /// A new subscriber; its events arrive on the receiver.
    pub fn subscribe(&mut self, filters: Filters) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.subscribers.retain(|s| !s.tx.is_closed());
        self.subscribers.push(Subscriber { filters, tx });
        rx
    }

    pub fn is_watched(&self) -> bool {
        !self.subscribers.is_empty()
    }

    /// A container event: its attributes are the container's labels, `image` and `name`
    /// (plus `extra`, e.g. `exitCode`), as Docker's.
    pub fn container(&mut self, c: &Container, action: &str, extra: &[(&str, String)]) {
        if !self.is_watched() {
            return;
        }
        let mut attributes = c.spec.labels.clone();
        attributes.insert("image".into(), c.image.clone());
        attributes.insert("name".into(), c.name.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.publish(&Event {
            typ: "container",
            action: action.to_string(),
            id: &c.id,
            attributes,
            from: Some(&c.image),
        });
    }

    /// Sends `event` to every subscriber whose filters it passes.
    pub fn publish(&mut self, event: &Event<'_>) {
        if !self.is_watched() {
            return;
        }
        let time_nano = now();
        let legacy = matches!(event.typ, "container" | "image");
        let wire = Wire {
            status: legacy.then_some(event.action.as_str()),
            id: legacy.then_some(event.id),
            from: event.from,
            typ: event.typ,
            action: &event.action,
            actor: Actor {
                id: event.id,
                attributes: &event.attributes,
            },
            scope: "local",
            time: time_nano / 1_000_000_000,
            time_nano,
        };
        let mut line = serde_json::to_vec(&wire).expect("event JSON");
        line.push(b'\n');
        let line = Bytes::from(line);
        self.subscribers.retain(|s| {
            if !passes(&s.filters, event) {
                return !s.tx.is_closed();
            }
            // Full or gone: drop it (a full one sees its stream end and subscribes again).
            s.tx.try_send(line.clone()).is_ok()
        });
    }
}

/// Docker's event filters: each given filter must match (values of one are alternatives);
/// labels are matched against the actor's attributes.
fn passes(filters: &Filters, event: &Event<'_>) -> bool {
    let attribute = |k: &str| event.attributes.get(k).map(String::as_str);
    let verb = event
        .action
        .split_once(':')
        .map_or(event.action.as_str(), |(v, _)| v);
    filters.any("type", |t| t == event.typ)
        && filters.labels_match(attribute)
        && filters.any("event", |e| e == event.action || e == verb)
        && filters.any("container", |c| {
            event.typ == "container" && (event.id.starts_with(c) || attribute("name") == Some(c))
        })
        && filters.any("image", |i| {
            attribute("image") == Some(i) || (event.typ == "image" && event.id == i)
        })
        && filters.any("volume", |v| event.typ == "volume" && event.id == v)
        && filters.any("network", |_| event.typ == "network")
        && filters.any("daemon", |_| event.typ == "daemon")
}
