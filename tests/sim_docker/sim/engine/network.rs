//! The bridge network of a simulated host: an address per container that owns its network
//! namespace, and the host ports it publishes.
//!
//! Addresses are `127.17.x.y`, Docker's `172.17.0.0/16` moved onto loopback: a probe that
//! berth sends to a simulated container can only ever reach this machine, never the
//! network. Like real bridges, every host hands out the same range.

use std::net::Ipv4Addr;

use super::container::{PortBindings, Published};
use super::Engine;
use crate::sim::error::Refusal;

/// Docker's first ephemeral host port (`/proc/sys/net/ipv4/ip_local_port_range`).
pub const FIRST_EPHEMERAL_PORT: u16 = 32768;
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(127, 17, 0, 1);

impl Engine {
    /// A free address of the host's bridge.
    pub(super) fn allocate_ip(&mut self) -> Ipv4Addr {
        loop {
            let n = self.next_ip;
            self.next_ip = if n >= 0xfffe { 2 } else { n + 1 };
            let ip = Ipv4Addr::new(127, 17, (n >> 8) as u8, n as u8);
            if !self.containers.values().any(|c| c.run.ip == Some(ip)) {
                return ip;
            }
        }
    }

    /// The ports `c` publishes once started: each binding of its spec, an empty or zero host
    /// port taking the next free ephemeral one. Refused when another running container of
    /// the host holds a port asked for by number.
    pub(super) fn allocate_ports(
        &mut self,
        name: &str,
        bindings: &[PortBindings],
    ) -> Result<Vec<Published>, Refusal> {
        let held: Vec<u16> = self
            .containers
            .values()
            .flat_map(|o| o.run.published.iter().map(|p| p.host_port))
            .collect();
        let mut out: Vec<Published> = Vec::new();
        for (key, bindings) in bindings {
            for (host_ip, host_port) in bindings {
                let port = match host_port.parse::<u16>() {
                    Ok(p) if p != 0 => {
                        if held.contains(&p) || out.iter().any(|o| o.host_port == p) {
                            return Err(Refusal::PortAllocated {
                                name: name.to_string(),
                                ip: if host_ip.is_empty() {
                                    "0.0.0.0"
                                } else {
                                    host_ip
                                }
                                .to_string(),
                                port: p,
                            });
                        }
                        p
                    }
                    _ => self.ephemeral_port(&held, &out),
                };
                out.push(Published {
                    key: key.clone(),
                    host_ip: host_ip.clone(),
                    host_port: port,
                });
            }
        }
        Ok(out)
    }

    fn ephemeral_port(&mut self, held: &[u16], taken: &[Published]) -> u16 {
        loop {
            let p = self.next_port;
            self.next_port = if p == u16::MAX {
                FIRST_EPHEMERAL_PORT
            } else {
                p + 1
            };
            if !held.contains(&p) && !taken.iter().any(|o| o.host_port == p) {
                return p;
            }
        }
    }
}
