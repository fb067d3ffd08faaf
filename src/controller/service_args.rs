//! `berth serve`'s Service flags: the service CIDR (a cluster-wide setting), where this
//! controller listens, and how long a retired replica drains.

use std::net::IpAddr;
use std::time::Duration;

use super::config::{parse_duration, ConfigError};
use crate::service::cluster_ip::{Cidr, DEFAULT_SERVICE_CIDR};

#[derive(Debug, Clone, clap::Args, Default)]
pub struct ServiceArgs {
    /// The network cluster IPs are taken from; every controller must use the same (a
    /// cluster-wide setting) [default: 10.43.0.0/16].
    #[arg(long, env = "BERTH_SERVICE_CIDR", value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// Each Service also listens here at its own port, where that port is free; `none` turns
    /// these listeners off [default: 127.0.0.1].
    #[arg(long, env = "BERTH_SERVICE_ADDRESS", value_name = "IP|none")]
    pub service_address: Option<String>,
    /// The dummy interface holding the cluster IPs (created and removed by berth; needs
    /// CAP_NET_ADMIN); `lo` or `lo:LABEL` holds them on loopback under that label (also the
    /// fallback where the kernel has no dummy driver); `none` holds no cluster IP
    /// [default: berth0].
    #[arg(long, env = "BERTH_CLUSTER_IP_INTERFACE", value_name = "NAME|none")]
    pub cluster_ip_interface: Option<String>,
    /// Where `nodePort`s listen [default: 0.0.0.0].
    #[arg(long, env = "BERTH_NODE_PORT_ADDRESS", value_name = "IP")]
    pub node_port_address: Option<IpAddr>,
    /// How long a replica that a rollout or scale-down retires stays running after it left its
    /// Services' endpoints, so connections under way finish [default: 2s].
    #[arg(long, env = "BERTH_DRAIN_DELAY", value_name = "DURATION")]
    pub drain_delay: Option<String>,
}

/// The Service settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    pub cidr: Cidr,
    pub service_address: Option<IpAddr>,
    pub interface: Option<String>,
    pub node_port_address: IpAddr,
    pub drain_delay: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            cidr: DEFAULT_SERVICE_CIDR
                .parse()
                .expect("the default CIDR parses"),
            service_address: Some(IpAddr::from([127, 0, 0, 1])),
            interface: Some("berth0".into()),
            node_port_address: IpAddr::from([0, 0, 0, 0]),
            drain_delay: Duration::from_secs(2),
        }
    }
}

impl ServiceArgs {
    pub fn resolve(self) -> Result<ServiceSettings, ConfigError> {
        let d = ServiceSettings::default();
        let invalid = |setting, message: String| ConfigError::Invalid { setting, message };
        let cidr = match self.service_cidr {
            Some(text) => text.parse().map_err(|e: crate::service::ServiceError| {
                invalid("--service-cidr", e.to_string())
            })?,
            None => d.cidr,
        };
        let service_address = match self.service_address.as_deref() {
            None => d.service_address,
            Some("none") => None,
            Some(text) => Some(text.parse().map_err(|_| {
                invalid(
                    "--service-address",
                    format!("{text:?} is not an IP address"),
                )
            })?),
        };
        let interface = match self.cluster_ip_interface.as_deref() {
            None => d.interface,
            Some("none") => None,
            Some(name) if interface_name(name) => Some(name.to_string()),
            Some(name) => {
                return Err(invalid(
                    "--cluster-ip-interface",
                    format!(
                    "{name:?} is neither an interface name (1-15 of a-z, 0-9, -, _) nor lo:LABEL"
                ),
                ))
            }
        };
        let drain_delay = match self.drain_delay {
            Some(text) => parse_duration(&text).map_err(|m| invalid("--drain-delay", m))?,
            None => d.drain_delay,
        };
        Ok(ServiceSettings {
            cidr,
            service_address,
            interface,
            node_port_address: self.node_port_address.unwrap_or(d.node_port_address),
            drain_delay,
        })
    }
}

/// A Linux interface name (1 to 15 plain characters), or `lo:LABEL` (an address label on
/// loopback, 15 characters in all).
fn interface_name(name: &str) -> bool {
    let (base, max) = match name.strip_prefix("lo:") {
        Some(label) => (label, 12),
        None => (name, 15),
    };
    !base.is_empty()
        && base.len() <= max
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_off_switches() {
        assert_eq!(
            ServiceArgs::default().resolve().unwrap(),
            ServiceSettings::default()
        );
        let s = ServiceArgs {
            service_address: Some("none".into()),
            cluster_ip_interface: Some("none".into()),
            service_cidr: Some("10.96.0.0/12".into()),
            drain_delay: Some("500ms".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.service_address, None);
        assert_eq!(s.interface, None);
        assert_eq!(s.cidr.to_string(), "10.96.0.0/12");
        assert_eq!(s.drain_delay, Duration::from_millis(500));
        for bad in ["", "much-too-long-name", "lo:much-too-long", "a b"] {
            assert!(ServiceArgs {
                cluster_ip_interface: Some(bad.into()),
                ..Default::default()
            }
            .resolve()
            .is_err());
        }
        assert!(ServiceArgs {
            service_cidr: Some("10.96.0.1/12".into()),
            ..Default::default()
        }
        .resolve()
        .is_err());
    }
}
