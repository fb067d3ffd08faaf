//! Holding the cluster IPs as local addresses, so the proxy can listen on them and hosts can
//! route the service CIDR to this controller.
//!
//! berth keeps them on a dummy interface of its own (`berth0` by default): created when the
//! first cluster IP is wanted, kept in line with the committed table, removed at shutdown.
//! A dummy interface, not `lo`, so that berth never deletes an address it did not add and an
//! operator can see at a glance what it holds (`ip addr show berth0`). Changes go through
//! iproute2's `ip`, present on every Linux host; they need `CAP_NET_ADMIN`, and a failure is
//! reported (status, log), never fatal: the service-address listeners work without it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use tokio::process::Command;

use super::ServiceError;

/// A dummy interface holding the cluster IPs.
#[derive(Debug)]
pub struct Interface {
    name: String,
    /// What it was last brought to; `None` before the first successful sync.
    held: tokio::sync::Mutex<Option<BTreeSet<Ipv4Addr>>>,
}

impl Interface {
    pub fn new(name: impl Into<String>) -> Interface {
        Interface {
            name: name.into(),
            held: tokio::sync::Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the interface hold exactly `want` (as /32s). Creates it on first need.
    pub async fn sync(&self, want: &BTreeSet<Ipv4Addr>) -> Result<(), ServiceError> {
        let mut held = self.held.lock().await;
        if held.as_ref() == Some(want) || (held.is_none() && want.is_empty()) {
            return Ok(());
        }
        if held.is_none() {
            // An interface left by a berth that was killed is adopted as it is.
            if self.ip(&["link", "show", "dev", &self.name]).await.is_err() {
                self.ip(&["link", "add", &self.name, "type", "dummy"])
                    .await?;
            }
            self.ip(&["link", "set", &self.name, "up"]).await?;
        }
        let now = self.addresses().await?;
        for ip in want.difference(&now) {
            self.ip(&["addr", "add", &format!("{ip}/32"), "dev", &self.name])
                .await?;
        }
        for ip in now.difference(want) {
            self.ip(&["addr", "del", &format!("{ip}/32"), "dev", &self.name])
                .await?;
        }
        *held = Some(want.clone());
        Ok(())
    }

    /// Removes the interface (and its addresses), if berth created or adopted it.
    pub async fn remove(&self) -> Result<(), ServiceError> {
        let mut held = self.held.lock().await;
        if held.take().is_some() {
            self.ip(&["link", "del", "dev", &self.name]).await?;
        }
        Ok(())
    }

    async fn addresses(&self) -> Result<BTreeSet<Ipv4Addr>, ServiceError> {
        let out = self
            .ip(&["-4", "-o", "addr", "show", "dev", &self.name])
            .await?;
        Ok(parse_addresses(&out))
    }

    async fn ip(&self, args: &[&str]) -> Result<String, ServiceError> {
        let err = |message: String| ServiceError::Interface {
            interface: self.name.clone(),
            message,
        };
        let out = Command::new("ip")
            .args(args)
            .output()
            .await
            .map_err(|e| err(format!("running `ip`: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let hint = if stderr.contains("Operation not permitted") {
                " (berth needs CAP_NET_ADMIN to hold cluster IPs; or run with --cluster-ip-interface none)"
            } else {
                ""
            };
            return Err(err(format!("`ip {}`: {stderr}{hint}", args.join(" "))));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The IPv4 addresses in `ip -4 -o addr show` output.
fn parse_addresses(text: &str) -> BTreeSet<Ipv4Addr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_addr_output() {
        let text = "5: berth0    inet 10.43.0.7/32 scope global berth0\\       valid_lft forever preferred_lft forever\n5: berth0    inet 10.43.1.9/32 scope global berth0\\       valid_lft forever";
        let got: Vec<Ipv4Addr> = parse_addresses(text).into_iter().collect();
        assert_eq!(
            got,
            vec![
                "10.43.0.7".parse::<Ipv4Addr>().unwrap(),
                "10.43.1.9".parse().unwrap()
            ]
        );
    }
}
