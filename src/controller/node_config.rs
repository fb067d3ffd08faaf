//! Per-host settings beside `--node NAME=ENDPOINT`: labels, the address published ports are
//! reached at, and a capacity that overrides what the engine reports. From flags
//! (`--node-label NAME=KEY=VALUE`, `--node-advertise NAME=ADDR`, `--node-capacity
//! NAME=cpu=2,memory=4Gi`) or `[[nodes]]` tables in the TOML file; flags win, setting by setting.

use serde::Deserialize;

use super::config::{ConfigError, NodeConfig};
use crate::manifest::StringMap;
use crate::scheduler::Resources;

#[derive(Debug, clap::Args, Default, Clone)]
pub struct NodeArgs {
    /// A label of a host, as NAME=KEY=VALUE; repeat for several. Matched by `nodeSelector`; a
    /// Node manifest in the repository with the same key wins.
    #[arg(
        long = "node-label",
        env = "BERTH_NODE_LABELS",
        value_delimiter = ',',
        value_name = "NAME=KEY=VALUE"
    )]
    pub labels: Vec<String>,
    /// The address a host's published ports are reached at, as NAME=ADDR [default: the host of
    /// its tcp:// or https:// endpoint].
    #[arg(
        long = "node-advertise",
        env = "BERTH_NODE_ADVERTISE",
        value_delimiter = ',',
        value_name = "NAME=ADDR"
    )]
    pub advertise: Vec<String>,
    /// What a host offers to pods, as NAME=cpu=2,memory=4Gi (either part may be left out),
    /// instead of what its engine reports (NCPU, MemTotal). Separate several with ';'.
    #[arg(
        long = "node-capacity",
        env = "BERTH_NODE_CAPACITY",
        value_delimiter = ';',
        value_name = "NAME=cpu=N,memory=Q"
    )]
    pub capacity: Vec<String>,
}

/// A `[[nodes]]` table of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTable {
    pub name: String,
    pub endpoint: String,
    #[serde(default)]
    pub labels: StringMap,
    pub advertise: Option<String>,
    /// `cpu=2,memory=4Gi`.
    pub capacity: Option<String>,
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

/// Applies the `[[nodes]]` settings of the file, then the flags, to `nodes`; a flag naming a
/// host that is not configured is an error (a typo would silently do nothing).
pub fn apply(
    nodes: &mut [NodeConfig],
    tables: &[NodeTable],
    args: &NodeArgs,
) -> Result<(), ConfigError> {
    for t in tables {
        if let Some(n) = nodes.iter_mut().find(|n| n.name == t.name) {
            for (k, v) in &t.labels {
                check_label("[[nodes]] labels", k, v)?;
            }
            n.labels.extend(t.labels.clone());
            if t.advertise.is_some() {
                n.advertise = t.advertise.clone();
            }
            if let Some(c) = &t.capacity {
                check_capacity("[[nodes]] capacity", c)?;
                n.capacity = Some(c.clone());
            }
        }
    }
    for l in &args.labels {
        let (name, kv) = split(l, "--node-label", "NAME=KEY=VALUE")?;
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid("--node-label", format!("{l:?} is not NAME=KEY=VALUE")))?;
        check_label("--node-label", k, v)?;
        node(nodes, name, "--node-label")?
            .labels
            .insert(k.to_string(), v.to_string());
    }
    for a in &args.advertise {
        let (name, addr) = split(a, "--node-advertise", "NAME=ADDR")?;
        if addr.is_empty() || addr.contains('/') {
            return Err(invalid(
                "--node-advertise",
                format!("{addr:?} is not a host name or IP address"),
            ));
        }
        node(nodes, name, "--node-advertise")?.advertise = Some(addr.to_string());
    }
    for c in &args.capacity {
        let (name, cap) = split(c, "--node-capacity", "NAME=cpu=N,memory=Q")?;
        check_capacity("--node-capacity", cap)?;
        node(nodes, name, "--node-capacity")?.capacity = Some(cap.to_string());
    }
    Ok(())
}

/// The hosts of `[[nodes]]` tables, as `--node` would give them.
pub fn from_tables(tables: &[NodeTable]) -> Vec<String> {
    tables
        .iter()
        .map(|t| format!("{}={}", t.name, t.endpoint))
        .collect()
}

fn split<'a>(
    s: &'a str,
    flag: &'static str,
    form: &str,
) -> Result<(&'a str, &'a str), ConfigError> {
    s.split_once('=')
        .ok_or_else(|| invalid(flag, format!("{s:?} is not {form}")))
}

fn node<'a>(
    nodes: &'a mut [NodeConfig],
    name: &str,
    flag: &'static str,
) -> Result<&'a mut NodeConfig, ConfigError> {
    let known: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    nodes.iter_mut().find(|n| n.name == name).ok_or_else(|| {
        invalid(
            flag,
            format!(
                "no host {name:?} is configured (--node): hosts are {}",
                known.join(", ")
            ),
        )
    })
}

fn check_label(flag: &'static str, k: &str, v: &str) -> Result<(), ConfigError> {
    crate::manifest::names::label_key(k)
        .and_then(|_| crate::manifest::names::label_value(v))
        .map_err(|e| invalid(flag, format!("{k}={v}: {e}")))
}

fn check_capacity(flag: &'static str, c: &str) -> Result<(), ConfigError> {
    Resources::parse_over(c, Resources::default())
        .map(|_| ())
        .map_err(|e| invalid(flag, e))
}

/// `capacity` (`cpu=2,memory=4Gi`) over what the engine reports.
pub fn capacity_over(capacity: Option<&str>, reported: Option<Resources>) -> Option<Resources> {
    match (capacity, reported) {
        (Some(c), Some(r)) => Resources::parse_over(c, r).ok(),
        // Until the engine answers, only a capacity that names both is known.
        (Some(c), None) if c.contains("cpu=") && c.contains("memory=") => {
            Resources::parse_over(c, Resources::default()).ok()
        }
        (_, r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::ServeArgs;
    use super::*;

    fn args(nodes: &[&str], labels: &[&str], capacity: &[&str]) -> ServeArgs {
        ServeArgs {
            repo: Some("/srv/git".into()),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            node_settings: NodeArgs {
                labels: labels.iter().map(|s| s.to_string()).collect(),
                advertise: vec!["a=10.0.0.5".into()],
                capacity: capacity.iter().map(|s| s.to_string()).collect(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn flags_set_labels_advertise_and_capacity_per_host() {
        let c = args(
            &["a=tcp://10.0.0.5:2375", "b=unix:///run/b.sock"],
            &["a=disk=ssd", "a=zone=z1", "b=disk=hdd"],
            &["b=cpu=2,memory=4Gi"],
        )
        .resolve()
        .unwrap();
        assert_eq!(c.nodes[0].labels.len(), 2);
        assert_eq!(c.nodes[0].advertise.as_deref(), Some("10.0.0.5"));
        assert_eq!(c.nodes[1].labels["disk"], "hdd");
        assert_eq!(c.nodes[1].capacity.as_deref(), Some("cpu=2,memory=4Gi"));
    }

    #[test]
    fn a_flag_for_an_unknown_host_or_a_bad_value_is_named() {
        let e = args(&["a=tcp://h:1"], &["c=disk=ssd"], &[])
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--node-label: no host \"c\" is configured (--node): hosts are a"
        );
        let e = args(&["a=tcp://h:1"], &[], &["a=cpu=lots"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--node-capacity: cpu:"), "{e}");
        let e = args(&["a=tcp://h:1"], &["a=disk"], &[])
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--node-label: \"a=disk\" is not NAME=KEY=VALUE");
    }

    #[test]
    fn node_tables_sit_beside_the_string_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "repo = \"/srv/git\"\nnode = [\"a=tcp://127.0.0.1:2375\"]\n\n[[nodes]]\nname = \"b\"\nendpoint = \"unix:///run/b.sock\"\nlabels = { disk = \"ssd\" }\ncapacity = \"memory=1Gi\"\n",
        )
        .unwrap();
        let c = ServeArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c.nodes[1].labels["disk"], "ssd");
        assert_eq!(
            capacity_over(
                c.nodes[1].capacity.as_deref(),
                Some(Resources::new(4000, 1))
            ),
            Some(Resources::new(4000, 1 << 30))
        );
        assert_eq!(capacity_over(c.nodes[1].capacity.as_deref(), None), None);
    }
}
