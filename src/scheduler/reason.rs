//! Why a host was rejected for a pod: one named reason per host, so `berth describe pod` can
//! answer "why is this replica pending?" host by host.

use std::fmt;

use serde::Serialize;

use crate::manifest::quantity::{Cpu, Memory};
use crate::manifest::Protocol;

/// The first filter a host failed for one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Reason {
    /// The host's engine does not answer (or has not yet).
    NotReady,
    /// The host's Node manifest says `spec.unschedulable: true` (or drains it).
    Unschedulable,
    /// `nodeSelector` asks for `key=want`; the host has `has` (or no such label).
    NodeSelector {
        key: String,
        want: String,
        has: Option<String>,
    },
    /// The pod's CPU (millicores) does not fit in what the host has left.
    InsufficientCpu { requests: u64, free: u64 },
    /// The pod's memory (bytes) does not fit in what the host has left.
    InsufficientMemory { requests: u64, free: u64 },
    /// A pod already on the host publishes this host port.
    HostPort {
        port: u16,
        protocol: Protocol,
        by: String,
    },
    /// `berth.io/max-per-node`: the host already runs `max` replicas of this RC.
    MaxPerNode { max: u32 },
    /// `berth.io/conflicts`: a pod on the host matches this pod's selector, or this pod
    /// matches the selector of one there.
    Conflicts { selector: String, by: String },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotReady => write!(f, "host not ready"),
            Reason::Unschedulable => write!(f, "host unschedulable"),
            Reason::NodeSelector { key, want, has } => match has {
                Some(has) => write!(f, "nodeSelector {key}={want}: host has {key}={has}"),
                None => write!(f, "nodeSelector {key}={want}: host has no label {key}"),
            },
            Reason::InsufficientCpu { requests, free } => write!(
                f,
                "insufficient cpu: requests {}, free {}",
                Cpu(*requests),
                Cpu(*free)
            ),
            Reason::InsufficientMemory { requests, free } => write!(
                f,
                "insufficient memory: requests {}, free {}",
                Memory(*requests),
                Memory(*free)
            ),
            Reason::HostPort { port, protocol, by } => match protocol {
                Protocol::Tcp => write!(f, "hostPort {port} in use by {by}"),
                Protocol::Udp => write!(f, "hostPort {port}/UDP in use by {by}"),
                Protocol::Sctp => write!(f, "hostPort {port}/SCTP in use by {by}"),
            },
            Reason::MaxPerNode { max } => {
                write!(f, "max-per-node {max}: host already runs {max} of this RC")
            }
            Reason::Conflicts { selector, by } => {
                write!(f, "conflicts {selector}: host runs {by}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_the_issue_shows_them() {
        let mem = Reason::InsufficientMemory {
            requests: 512 << 20,
            free: 200 << 20,
        };
        assert_eq!(
            mem.to_string(),
            "insufficient memory: requests 512Mi, free 200Mi"
        );
        let port = Reason::HostPort {
            port: 80,
            protocol: Protocol::Tcp,
            by: "default/web-x7k2q".into(),
        };
        assert_eq!(port.to_string(), "hostPort 80 in use by default/web-x7k2q");
        let sel = Reason::NodeSelector {
            key: "disk".into(),
            want: "ssd".into(),
            has: Some("hdd".into()),
        };
        assert_eq!(sel.to_string(), "nodeSelector disk=ssd: host has disk=hdd");
    }
}
