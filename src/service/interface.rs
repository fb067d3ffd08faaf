//! Holding the cluster IPs as local addresses, so the proxy can listen on them and hosts can
//! route the service CIDR to this controller.
//!
//! berth keeps them on a dummy interface of its own (`berth0` by default): created when the
//! first cluster IP is wanted, kept in line with the committed table, removed at shutdown.
//! A dummy interface, so that berth never deletes an address it did not add and an operator
//! can see at a glance what it holds (`ip addr show berth0`). Where the kernel has no dummy
//! driver (or with `--cluster-ip-interface lo[:LABEL]`), the addresses go on `lo` under a
//! label of berth's, which serves the same two purposes. Changes go through
//! iproute2's `ip`, present on every Linux host; they need `CAP_NET_ADMIN`, and a failure is
//! reported (status, log), never fatal: the service-address listeners work without it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use tokio::process::Command;

use super::ServiceError;

/// Where the cluster IPs are held.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// A dummy interface of berth's own: every address on it is berth's.
    Dummy(String),
    /// The loopback interface, each address labelled (`lo:berth0`) so that berth lists and
    /// removes only its own. For kernels without the dummy driver (some containers).
    Lo { label: String },
}

/// The interface holding the cluster IPs.
#[derive(Debug)]
pub struct Interface {
    place: std::sync::Mutex<Place>,
    /// What it was last brought to; `None` before the first successful sync.
    held: tokio::sync::Mutex<Option<BTreeSet<Ipv4Addr>>>,
}

impl Interface {
    /// `name` is a dummy interface to create (`berth0`), or `lo` / `lo:LABEL` for labelled
    /// addresses on the loopback interface.
    pub fn new(name: &str) -> Interface {
        let place = match name.strip_prefix("lo") {
            Some("") => Place::Lo {
                label: "lo:berth".into(),
            },
            Some(rest) if rest.starts_with(':') => Place::Lo { label: name.into() },
            _ => Place::Dummy(name.into()),
        };
        Interface {
            place: std::sync::Mutex::new(place),
            held: tokio::sync::Mutex::new(None),
        }
    }

    fn place(&self) -> Place {
        self.place
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The interface (or label) the addresses are on.
    pub fn name(&self) -> String {
        match self.place() {
            Place::Dummy(name) => name,
            Place::Lo { label } => label,
        }
    }

    /// Makes the interface hold exactly `want` (as /32s). Creates it on first need.
    pub async fn sync(&self, want: &BTreeSet<Ipv4Addr>) -> Result<(), ServiceError> {
        let mut held = self.held.lock().await;
        if held.as_ref() == Some(want) || (held.is_none() && want.is_empty()) {
            return Ok(());
        }
        if held.is_none() {
            self.prepare().await?;
        }
        let now = self.addresses().await?;
        for ip in want.difference(&now) {
            self.addr("add", *ip).await?;
        }
        for ip in now.difference(want) {
            self.addr("del", *ip).await?;
        }
        *held = Some(want.clone());
        Ok(())
    }

    /// Creates the dummy interface (an interface left by a berth that was killed is adopted
    /// as it is); falls back to labelled addresses on `lo` where the kernel has no dummy
    /// driver.
    async fn prepare(&self) -> Result<(), ServiceError> {
        let Place::Dummy(name) = self.place() else {
            return Ok(());
        };
        if ip(&name, &["link", "show", "dev", &name]).await.is_err() {
            match ip(&name, &["link", "add", &name, "type", "dummy"]).await {
                Ok(_) => {}
                Err(ServiceError::Interface { message, .. })
                    if message.contains("Unknown device type") =>
                {
                    let label: String = format!("lo:{name}").chars().take(15).collect();
                    tracing::warn!(
                        "this kernel has no dummy interfaces: holding cluster IPs on lo, labelled {label}"
                    );
                    *self
                        .place
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Place::Lo { label };
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        ip(&name, &["link", "set", &name, "up"]).await?;
        Ok(())
    }

    /// Removes what berth holds: the dummy interface, or its labelled addresses on `lo`.
    pub async fn remove(&self) -> Result<(), ServiceError> {
        let mut held = self.held.lock().await;
        if held.take().is_none() {
            return Ok(());
        }
        match self.place() {
            Place::Dummy(name) => {
                ip(&name, &["link", "del", "dev", &name]).await?;
            }
            Place::Lo { .. } => {
                for a in self.addresses().await? {
                    self.addr("del", a).await?;
                }
            }
        }
        Ok(())
    }

    async fn addresses(&self) -> Result<BTreeSet<Ipv4Addr>, ServiceError> {
        let out = match self.place() {
            Place::Dummy(name) => ip(&name, &["-4", "-o", "addr", "show", "dev", &name]).await?,
            Place::Lo { label } => {
                ip(
                    &label,
                    &["-4", "-o", "addr", "show", "dev", "lo", "label", &label],
                )
                .await?
            }
        };
        Ok(parse_addresses(&out))
    }

    async fn addr(&self, verb: &str, a: Ipv4Addr) -> Result<(), ServiceError> {
        let a = format!("{a}/32");
        match self.place() {
            Place::Dummy(name) => ip(&name, &["addr", verb, &a, "dev", &name]).await?,
            Place::Lo { label } => {
                ip(&label, &["addr", verb, &a, "dev", "lo", "label", &label]).await?
            }
        };
        Ok(())
    }
}

/// Runs iproute2's `ip`; its error output becomes the error, with a hint when the cause is
/// a missing capability.
async fn ip(interface: &str, args: &[&str]) -> Result<String, ServiceError> {
    let err = |message: String| ServiceError::Interface {
        interface: interface.to_string(),
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
