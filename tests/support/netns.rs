//! The network that makes a private engine look like a host on a LAN.
//!
//! berth's controller (the test process, or a `berth serve` it spawns) runs in the root
//! network namespace and must reach each engine the way it reaches a real host: container
//! addresses for probes, published ports at the host's address. Each engine leases a slot
//! `N` (0..=255), unique on the machine, which fixes all of its addresses:
//!
//! ```text
//! root namespace                                  engine namespace /run/netns/berth-test-<pid>-<n>
//!   berth-h<N>  10.213.N.1/30  ◄──── veth ────►    eth0     10.213.N.2/30   advertise_ip()
//!   (host_side_ip(): reachable from the engine       default via 10.213.N.1
//!    and its containers, e.g. a test registry)       docker0  10.214.N.1/24   dockerd --bip
//!   10.214.N.0/24 via 10.213.N.2                     containers 10.214.N.2 ... .254
//! ```
//!
//! dockerd keeps its iptables rules inside the engine's namespace, so published ports
//! answer at `10.213.N.2`. The namespace's `FORWARD` policy is `DROP`, as on a host where
//! dockerd turned forwarding on itself (a new namespace inherits the machine's
//! `ip_forward`, and dockerd sets the policy only when it was off: fixing it gives one
//! behaviour on every machine). That policy lets in only published ports; a rule in
//! `DOCKER-USER`, the chain Docker leaves to its users, also lets traffic from `eth0`
//! reach container addresses on any port, as routed networks of real hosts do.
//!
//! Every engine, and its containers, reaches every `10.213.N.1`: they all live in the
//! root namespace. One engine reaching another's `10.213.M.2` would need the root
//! namespace to forward between veths, which these helpers leave to the machine's own
//! settings (a machine running Docker drops it): tests must not count on it.
//!
//! Slots are leased with `flock` on `/run/berth-test-net/slot-<N>`, because several test
//! processes run at once. The kernel drops the lock when its process dies, even by
//! SIGKILL, so a crashed test never keeps a slot, and a reused pid cannot fool anyone.
//! The file holds `<pid> <namespace>` while leased: a marker that is not empty but free
//! to lock was left by a process that died holding it, and [`sweep_stale_slots`] removes
//! the veth and route that process left. The files are never deleted: another process
//! may have one open, and would lock a file that no longer has a name.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::cmd::{quiet, run, run_with_input};

/// Holds one lock file per slot.
const SLOT_DIR: &str = "/run/berth-test-net";
/// The engine side of every veth, inside its namespace: the name a host's NIC would have.
const ENGINE_IF: &str = "eth0";

/// Every engine's link to the root namespace lies in here (one /30 per slot); engines
/// trust registries in it over plain HTTP (`insecure-registries`).
pub const LINK_NETWORK: Subnet = Subnet::new(Ipv4Addr::new(10, 213, 0, 0), 16);
/// Every engine's Docker bridge lies in here (one /24 per slot).
pub const BRIDGE_NETWORK: Subnet = Subnet::new(Ipv4Addr::new(10, 214, 0, 0), 16);

/// An IPv4 network, `10.214.3.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// `network` must have no bits set past `prefix`.
    pub const fn new(network: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet { network, prefix }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.network) & mask
    }

    /// The `n`th address of the network: `host(1)` is a bridge's gateway.
    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One engine's slot and the veth, addresses and route that go with it. Dropping it
/// removes the veth and the route, then releases the slot.
pub struct HostLink {
    slot: u8,
    /// Locked for as long as this value lives.
    marker: File,
}

impl HostLink {
    /// Leases the lowest free slot on the machine for the namespace `netns` (named in
    /// the marker, for people looking at leftovers).
    pub fn lease(netns: &str) -> Result<HostLink> {
        fs::create_dir_all(SLOT_DIR).with_context(|| format!("creating {SLOT_DIR}"))?;
        for slot in 0..=u8::MAX {
            if let Some(mut marker) = try_lock(slot)? {
                marker.set_len(0).context("clearing a slot marker")?;
                writeln!(marker, "{} {netns}", std::process::id())
                    .context("writing a slot marker")?;
                return Ok(HostLink { slot, marker });
            }
        }
        bail!(
            "all 256 test network slots in {SLOT_DIR} are leased by live processes; \
             too many private engines at once"
        )
    }

    /// The engine side of the veth, `10.213.N.2`.
    pub fn advertise_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.slot, 2)
    }

    /// The root side of the veth, `10.213.N.1`.
    pub fn host_side_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.slot, 1)
    }

    /// The engine's Docker bridge, `10.214.N.0/24`.
    pub fn bridge_subnet(&self) -> Subnet {
        bridge_subnet(self.slot)
    }

    /// dockerd's `--bip` value, the bridge's own address and size: `10.214.N.1/24`.
    pub fn bip(&self) -> String {
        let bridge = self.bridge_subnet();
        format!("{}/{}", bridge.host(1), bridge.prefix())
    }

    /// Connects the namespace `netns` (already created, with nothing but `lo`) to the
    /// root namespace, and lets the root namespace reach its bridge. Run once, before
    /// dockerd's first start: everything lives in the namespaces, so it outlasts any
    /// number of dockerd restarts.
    pub fn wire(&self, netns: &str) -> Result<()> {
        let host_if = host_interface(self.slot);
        let (host_ip, engine_ip) = (self.host_side_ip(), self.advertise_ip());
        let enter = format!("--net={}", netns_path(netns).display());
        // A process that died holding this slot may have left its veth.
        quiet(Command::new("ip").args(["link", "delete", &host_if]));
        run(Command::new("ip").args([
            "link", "add", &host_if, "type", "veth", "peer", "name", ENGINE_IF, "netns", netns,
        ]))?;
        run_with_input(
            Command::new("ip").args(["-batch", "-"]),
            &format!("address add {host_ip}/30 dev {host_if}\nlink set {host_if} up\n"),
        )?;
        run_with_input(
            Command::new("nsenter").args([&enter, "ip", "-batch", "-"]),
            &format!(
                "address add {engine_ip}/30 dev {ENGINE_IF}\nlink set {ENGINE_IF} up\n\
                 route add default via {host_ip}\n"
            ),
        )?;
        // dockerd keeps the policy, DOCKER-USER and its rules when it (re)starts, and
        // adds its own RETURN after them.
        for rule in [
            vec!["-P", "FORWARD", "DROP"],
            vec!["-N", "DOCKER-USER"],
            vec![
                "-A",
                "DOCKER-USER",
                "-i",
                ENGINE_IF,
                "-o",
                "docker0",
                "-j",
                "ACCEPT",
            ],
        ] {
            run(Command::new("nsenter")
                .args([&enter, "iptables", "--wait"])
                .args(rule))?;
        }
        // Last: the gateway must be on a link that is up at both ends.
        run(Command::new("ip").args([
            "route",
            "replace",
            &self.bridge_subnet().to_string(),
            "via",
            &engine_ip.to_string(),
            "dev",
            &host_if,
        ]))?;
        Ok(())
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        unwire(self.slot);
        self.marker.set_len(0).ok();
        // Closing the marker, next, releases the lock.
    }
}

/// `/run/netns/<name>`, which `nsenter --net` and `ip` accept.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Creates the network namespace `name`, with `lo` up.
pub fn create_netns(name: &str) -> Result<()> {
    // A namespace of this name can only be a leftover of a dead process that had our pid.
    quiet(Command::new("ip").args(["netns", "delete", name]));
    run(Command::new("ip").args(["netns", "add", name]))?;
    run(Command::new("nsenter")
        .arg(format!("--net={}", netns_path(name).display()))
        .args(["ip", "link", "set", "lo", "up"]))
    .with_context(|| format!("bringing lo up in {name}"))?;
    Ok(())
}

/// Removes what processes that died holding a slot (SIGKILL, Ctrl-C) left in the root
/// namespace: their veth and route. Slots leased by live processes are left alone.
pub fn sweep_stale_slots() {
    let Ok(entries) = fs::read_dir(SLOT_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(slot) = name
            .strip_prefix("slot-")
            .and_then(|n| n.parse::<u8>().ok())
        else {
            continue;
        };
        if let Ok(Some(marker)) = try_lock(slot) {
            if marker.metadata().is_ok_and(|m| m.len() > 0) {
                unwire(slot);
                marker.set_len(0).ok();
            }
        }
    }
}

/// Locks slot `slot`'s marker without waiting; `None` when a live process holds it.
fn try_lock(slot: u8) -> Result<Option<File>> {
    let path = Path::new(SLOT_DIR).join(format!("slot-{slot}"));
    let marker = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock(2) only reads the descriptor, which `marker` keeps open throughout.
    // (std's File::try_lock would do, from Rust 1.89: past our rust-version.)
    if unsafe { libc::flock(marker.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(marker));
    }
    match std::io::Error::last_os_error() {
        error if error.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        error => Err(error).with_context(|| format!("locking {}", path.display())),
    }
}

/// Removes slot `slot`'s route and veth from the root namespace; deleting one end of a
/// veth deletes both. Best effort: either may be gone already.
fn unwire(slot: u8) {
    let host_if = host_interface(slot);
    let bridge = bridge_subnet(slot).to_string();
    quiet(Command::new("ip").args(["route", "delete", &bridge, "dev", &host_if]));
    quiet(Command::new("ip").args(["link", "delete", &host_if]));
}

/// Slot `slot`'s Docker bridge, `10.214.N.0/24`.
fn bridge_subnet(slot: u8) -> Subnet {
    Subnet::new(Ipv4Addr::new(10, 214, slot, 0), 24)
}

/// The root side of slot `slot`'s veth, `berth-h<N>`.
fn host_interface(slot: u8) -> String {
    format!("berth-h{slot}")
}
