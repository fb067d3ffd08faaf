//! Cluster IPs: one stable IPv4 address per Service, from the service CIDR or the manifest.
//!
//! Allocation is pure and deterministic so that any leader computes the same table from the
//! same input: fixed `clusterIP`s first, then the addresses Services already had (kept for as
//! long as they exist), then new ones at a hash of `namespace/name`, probing upwards on a
//! collision. The result is committed to Raft; the hash only makes a first address
//! predictable and rarely-colliding, it is never relied on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::error::ServiceError;
use crate::manifest::Service;
use crate::raft::state::object_key;

/// The default service CIDR (k3s' too): private, rarely used by hosts or Docker's bridges.
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";

/// An IPv4 network, `10.43.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.network
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// Addresses Services may get: all but the network and broadcast addresses.
    fn usable(&self) -> u64 {
        (1u64 << (32 - self.prefix)) - 2
    }

    /// The `i`-th usable address, `i < usable()`.
    fn nth(&self, i: u64) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1 + i as u32)
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u64> {
        let o = u64::from(u32::from(ip).wrapping_sub(self.network));
        (self.contains(ip) && o >= 1 && o <= self.usable()).then(|| o - 1)
    }
}

impl FromStr for Cidr {
    type Err = ServiceError;

    fn from_str(text: &str) -> Result<Cidr, ServiceError> {
        let err = |reason| ServiceError::Cidr {
            text: text.to_string(),
            reason,
        };
        let (ip, prefix) = text.split_once('/').ok_or_else(|| err("no /prefix"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| err("bad prefix"))?;
        if !(8..=30).contains(&prefix) {
            return Err(err("the prefix must be between /8 and /30"));
        }
        let cidr = Cidr { network: 0, prefix };
        let network = u32::from(ip) & cidr.mask();
        if network != u32::from(ip) {
            return Err(err("host bits are set"));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// Cluster IPs for `services`, keeping `previous` ones; errors by Service for those that get
/// none.
pub fn allocate(
    cidr: &Cidr,
    services: &[Service],
    previous: &BTreeMap<String, Ipv4Addr>,
) -> (BTreeMap<String, Ipv4Addr>, BTreeMap<String, String>) {
    let mut keyed: Vec<(String, &Service)> = services
        .iter()
        .map(|s| (object_key(&s.metadata.namespace, &s.metadata.name), s))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut taken: BTreeSet<Ipv4Addr> = BTreeSet::new();
    // Fixed addresses first: a manifest's word beats an address berth chose.
    for (key, svc) in &keyed {
        let Some(ip) = svc.cluster_ip else { continue };
        let reason = if cidr.offset(ip).is_none() {
            Some(format!("outside the service CIDR {cidr}"))
        } else if !taken.insert(ip) {
            Some("already another Service's".to_string())
        } else {
            None
        };
        match reason {
            Some(reason) => {
                errors.insert(
                    key.clone(),
                    ServiceError::ClusterIp { ip, reason }.to_string(),
                );
            }
            None => {
                out.insert(key.clone(), ip);
            }
        }
    }
    let wanting: Vec<&String> = keyed
        .iter()
        .filter(|(_, s)| s.cluster_ip.is_none())
        .map(|(k, _)| k)
        .collect();
    let mut fresh: Vec<&String> = Vec::new();
    for key in wanting {
        match previous.get(key) {
            Some(ip) if cidr.offset(*ip).is_some() && taken.insert(*ip) => {
                out.insert(key.clone(), *ip);
            }
            _ => fresh.push(key),
        }
    }
    let usable = cidr.usable();
    for key in fresh {
        let start = hash(key) % usable;
        let found = (0..usable.min(1 << 20))
            .map(|i| cidr.nth((start + i) % usable))
            .find(|ip| !taken.contains(ip));
        match found {
            Some(ip) => {
                taken.insert(ip);
                out.insert(key.clone(), ip);
            }
            None => {
                errors.insert(
                    key.clone(),
                    ServiceError::Full {
                        cidr: cidr.to_string(),
                    }
                    .to_string(),
                );
            }
        }
    }
    (out, errors)
}

/// A stable hash (FNV-1a): the same on every build and platform, unlike `DefaultHasher`.
fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testing::service;

    #[test]
    fn cidrs_parse_and_refuse_nonsense() {
        let c: Cidr = "10.43.0.0/16".parse().unwrap();
        assert!(c.contains("10.43.255.1".parse().unwrap()));
        assert!(!c.contains("10.44.0.1".parse().unwrap()));
        assert_eq!(c.to_string(), "10.43.0.0/16");
        assert!("10.43.0.1/16".parse::<Cidr>().is_err());
        assert!("10.43.0.0".parse::<Cidr>().is_err());
        assert!("10.43.0.0/31".parse::<Cidr>().is_err());
    }

    #[test]
    fn allocation_is_deterministic_stable_and_honours_fixed_addresses() {
        let cidr: Cidr = "10.43.0.0/16".parse().unwrap();
        let mut fixed = service("default", "db", &[("app", "db")], &[6379]);
        fixed.cluster_ip = Some("10.43.0.10".parse().unwrap());
        let web = service("default", "web", &[("app", "web")], &[80]);
        let (a, errors) = allocate(&cidr, &[web.clone(), fixed.clone()], &BTreeMap::new());
        assert!(errors.is_empty());
        assert_eq!(a["default/db"], "10.43.0.10".parse::<Ipv4Addr>().unwrap());
        let (b, _) = allocate(&cidr, &[fixed.clone(), web.clone()], &BTreeMap::new());
        assert_eq!(a, b, "order of manifests does not matter");
        // A new Service later keeps the others' addresses.
        let api = service("default", "api", &[("app", "api")], &[8080]);
        let (c, _) = allocate(&cidr, &[web.clone(), fixed.clone(), api], &a);
        assert_eq!(c["default/web"], a["default/web"]);
        assert_ne!(c["default/api"], c["default/web"]);
        assert!(c.values().all(|ip| cidr.contains(*ip)));
    }

    #[test]
    fn a_fixed_address_outside_the_cidr_or_taken_is_an_error() {
        let cidr: Cidr = "10.43.0.0/24".parse().unwrap();
        let mut a = service("default", "a", &[("app", "a")], &[80]);
        a.cluster_ip = Some("10.9.0.1".parse().unwrap());
        let mut b = service("default", "b", &[("app", "b")], &[80]);
        b.cluster_ip = Some("10.43.0.5".parse().unwrap());
        let mut c = b.clone();
        c.metadata.name = "c".into();
        let (ips, errors) = allocate(&cidr, &[a, b, c], &BTreeMap::new());
        assert_eq!(ips.len(), 1);
        assert!(errors["default/a"].contains("outside"));
        assert!(errors["default/c"].contains("already"));
    }

    #[test]
    fn a_full_cidr_says_so() {
        let cidr: Cidr = "10.43.0.0/30".parse().unwrap();
        let list: Vec<Service> = (0..3)
            .map(|i| service("default", &format!("s{i}"), &[("app", "x")], &[80]))
            .collect();
        let (ips, errors) = allocate(&cidr, &list, &BTreeMap::new());
        assert_eq!(ips.len(), 2);
        assert_eq!(errors.len(), 1);
    }
}
