//! Named volumes of a simulated host: a name, labels and who mounts them; no data.

use std::collections::BTreeMap;

use super::events::Event;
use super::Engine;
use crate::sim::error::Refusal;
use crate::sim::filters::Filters;
use crate::sim::time::{now, Nanos};

/// The filters `GET /volumes` accepts.
pub const FILTERS: [&str; 4] = ["label", "name", "dangling", "driver"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub created: Nanos,
}

impl Engine {
    /// Creates a volume, or returns the one of that name unchanged (Docker ignores the new
    /// labels then). An empty name gets a generated one, as an anonymous volume.
    pub fn create_volume(&mut self, name: &str, labels: BTreeMap<String, String>) -> &Volume {
        let name = if name.is_empty() {
            self.new_id()
        } else {
            name.to_string()
        };
        if !self.volumes.contains_key(&name) {
            self.volumes.insert(
                name.clone(),
                Volume {
                    name: name.clone(),
                    labels,
                    created: now(),
                },
            );
            self.events.publish(&Event {
                typ: "volume",
                action: "create".into(),
                id: &name,
                attributes: BTreeMap::from([("driver".to_string(), "local".to_string())]),
                from: None,
            });
        }
        &self.volumes[&name]
    }

    pub fn volume(&self, name: &str) -> Result<&Volume, Refusal> {
        self.volumes
            .get(name)
            .ok_or_else(|| Refusal::NoSuchVolume(name.to_string()))
    }

    /// Ids of the containers that mount volume `name`.
    fn volume_users(&self, name: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .containers
            .values()
            .filter(|c| {
                c.spec
                    .mounts
                    .iter()
                    .any(|m| m.typ == "volume" && m.source == name)
            })
            .map(|c| c.id.clone())
            .collect();
        users.sort();
        users
    }

    pub fn list_volumes(&self, filters: &Filters) -> Vec<&Volume> {
        self.volumes
            .values()
            .filter(|v| {
                filters.labels_match(|k| v.labels.get(k).map(String::as_str))
                    && filters.any("name", |n| v.name.contains(n))
                    && filters.any("driver", |d| d == "local")
                    && filters.any("dangling", |d| {
                        let dangling = self.volume_users(&v.name).is_empty();
                        matches!(d, "true" | "1") == dangling
                    })
            })
            .collect()
    }

    /// Removes a volume no container mounts.
    pub fn remove_volume(&mut self, name: &str) -> Result<(), Refusal> {
        self.volume(name)?;
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(Refusal::VolumeInUse {
                name: name.to_string(),
                users,
            });
        }
        self.volumes.remove(name);
        self.events.publish(&Event {
            typ: "volume",
            action: "destroy".into(),
            id: name,
            attributes: BTreeMap::from([("driver".to_string(), "local".to_string())]),
            from: None,
        });
        Ok(())
    }
}
