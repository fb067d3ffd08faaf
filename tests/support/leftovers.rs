//! What a private dockerd leaves behind when it stops or dies, and how to clear it: its
//! containers, containerd shims and their sockets, bind mounts under its root, and its
//! cgroups. Processes are found through /proc by what their command lines name, never by
//! process name: other engines, and other tests' engines, run beside ours.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::cmd::{quiet, signal};

/// How long [`Leftovers::gone`] waits for killed processes to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(20);

/// Kills the containers of the engine rooted at `root`: the children of its containerd
/// shims, which name the engine's containerd socket on their command line. Killing a
/// container's init ends its whole pid namespace.
pub fn kill_containers(root: &Path) {
    let marker = format!("{}/", root.display());
    let processes = processes();
    let shims: HashSet<u32> = processes
        .iter()
        .filter(|p| p.cmdline.contains("containerd-shim") && p.cmdline.contains(&marker))
        .map(|p| p.pid)
        .collect();
    for init in processes.iter().filter(|p| shims.contains(&p.ppid)) {
        signal(init.pid, "KILL");
    }
}

/// What a dead dockerd left behind. A graceful stop leaves nothing; a SIGKILL leaves
/// containerd shims and their containers running, their sockets in /run/containerd/s,
/// and the data root bind-mounted.
pub struct Leftovers {
    root: PathBuf,
    killed: Vec<u32>,
    sockets: HashSet<String>,
    /// Bounds the wait for the killed processes to be reaped.
    deadline: Instant,
}

impl Leftovers {
    /// Kills the containers and every process naming the engine's data or exec root on its
    /// command line (shims, a stray containerd). Call only once dockerd is gone: it names
    /// them too. Only those two directories count: a client of the engine (a `berth serve`
    /// under test) names the socket beside them and must survive the engine.
    pub fn kill(root: &Path) -> Leftovers {
        kill_containers(root);
        let markers = [
            format!("{}/data", root.display()),
            format!("{}/exec", root.display()),
        ];
        let killed: Vec<u32> = processes()
            .into_iter()
            .filter(|p| markers.iter().any(|m| p.cmdline.contains(m.as_str())))
            .map(|p| p.pid)
            .collect();
        let sockets = shim_sockets(&killed);
        for pid in &killed {
            signal(*pid, "KILL");
        }
        let deadline = Instant::now() + REAP_TIMEOUT;
        Leftovers {
            root: root.to_path_buf(),
            killed,
            sockets,
            deadline,
        }
    }

    /// Whether the killed processes are gone, reaped by init (or the wait timed out).
    /// It matters: a restarted dockerd reuses a containerd whose pid file names a live
    /// process, even a dying one, and then times out waiting for it. (Some sandboxes'
    /// init reaps orphans only about once a second.)
    pub fn gone(&self) -> bool {
        Instant::now() >= self.deadline
            || !self
                .killed
                .iter()
                .any(|pid| Path::new("/proc").join(pid.to_string()).exists())
    }

    /// Removes the shims' sockets and unmounts what dockerd left mounted under its root.
    pub fn clear(self) {
        for socket in &self.sockets {
            fs::remove_file(socket).ok();
        }
        let marker = format!("{}/", self.root.display());
        let root = self.root.display().to_string();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| *point == root || point.starts_with(&marker))
            .collect();
        // Deepest first, so parents are not busy.
        mounts.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in mounts {
            quiet(Command::new("umount").args(["--lazy", point]));
        }
    }
}

/// The file in an engine's directory that names the test process owning the engine.
pub const OWNER_FILE: &str = "engine-owner";

/// Stops the engines of test processes that died without dropping them (SIGKILL,
/// Ctrl-C), and removes their directories: the `/tmp/berth-*` directories whose
/// [`OWNER_FILE`] names a dead pid. Whatever names such a directory is killed (dockerd,
/// containerd, shims, containers), then its mounts are undone.
pub fn stop_orphaned_engines() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let root = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("berth-") {
            continue;
        }
        let Ok(owner) = fs::read_to_string(root.join(OWNER_FILE)) else {
            continue;
        };
        let owner = owner.trim();
        if owner.parse::<u32>().is_err() || Path::new("/proc").join(owner).exists() {
            continue;
        }
        eprintln!("removing {} of dead test process {owner}", root.display());
        // dockerd names the data root too: it goes with the rest.
        let leftovers = Leftovers::kill(&root);
        while !leftovers.gone() {
            std::thread::sleep(Duration::from_millis(20));
        }
        leftovers.clear();
        fs::remove_dir_all(&root).ok();
    }
}

/// The sockets that killed shims would leave in containerd's shared /run/containerd/s.
/// They are found through the shims' network namespace, which is the engine's own, so
/// only this engine's sockets are listed.
fn shim_sockets(pids: &[u32]) -> HashSet<String> {
    pids.iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/net/unix")).ok())
        .flat_map(|table| {
            let paths = table
                .lines()
                .filter_map(|line| line.split_whitespace().nth(7));
            paths
                .filter(|path| path.starts_with("/run/containerd/s/"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Removes the engine's cgroup parent and the (empty) container cgroups under it, in
/// every hierarchy: cgroup v1 mounts one per controller, v2 has one at the root.
pub fn remove_cgroups(id: &str) {
    let hierarchies = fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    for parent in hierarchies
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .map(|h| h.join(id))
    {
        if let Ok(children) = fs::read_dir(&parent) {
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                fs::remove_dir(child.path()).ok();
            }
            fs::remove_dir(&parent).ok();
        }
    }
}

/// A process as /proc shows it; `cmdline` has its arguments joined by spaces.
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub cmdline: String,
}

/// Every process on the machine.
pub fn processes() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            Some(Process {
                pid,
                ppid,
                cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
            })
        })
        .collect()
}
