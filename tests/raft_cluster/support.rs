//! A cluster of real `RaftNode`s on loopback for the tests: each member has its own redb data
//! directory, its own port (bound at 127.0.0.1:0 and kept across restarts) and serves
//! `raft_router` on it, as `berth serve` will.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::raft::state::CommitRecord;
use berth::raft::{
    raft_router, serve_raft, serve_raft_tls, ClusterConfig, ClusterTls, ClusterToken, Command,
    RaftNode,
};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-cluster-token-0123456789abcdef";
/// Generous bound for anything that should take about one election.
pub const WAIT: Duration = Duration::from_secs(15);

pub fn token() -> ClusterToken {
    ClusterToken::new(TOKEN).expect("token")
}

pub fn seen(sha: &str) -> Command {
    Command::Seen {
        commits: vec![CommitRecord::pending(
            sha.into(),
            vec![],
            "A <a@example.org>".into(),
            format!("commit {sha}"),
            0,
            1,
        )],
    }
}

/// The shas in a member's history, oldest first.
pub fn history(node: &RaftNode) -> Vec<String> {
    node.state()
        .read(|s| s.history.iter().map(|c| c.sha.clone()).collect())
}

/// A running member: its node and the server of its Raft routes.
pub struct Running {
    pub node: Arc<RaftNode>,
    stop_server: CancellationToken,
    server: JoinHandle<Result<(), String>>,
}

/// Serves the Raft routes of `node` on `listener` (over mutual TLS with `tls`) until `stop`.
fn serve(
    node: &RaftNode,
    listener: TcpListener,
    tls: Option<ClusterTls>,
    stop: &CancellationToken,
) -> JoinHandle<Result<(), String>> {
    let router = raft_router(node, token());
    let stop = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        match tls {
            Some(tls) => serve_raft_tls(listener, router, &tls, stop)
                .await
                .map_err(|e| e.to_string()),
            None => serve_raft(listener, router, stop)
                .await
                .map_err(|e| e.to_string()),
        }
    })
}

pub struct Member {
    pub id: u64,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    /// The peers it was (or will be) started with.
    pub peers: BTreeMap<u64, String>,
    pub running: Option<Running>,
}

pub struct Cluster {
    pub root: TempDir,
    pub members: BTreeMap<u64, Member>,
    pub snapshot_every: u64,
    pub tls: Option<ClusterTls>,
}

fn peers_of(listeners: &BTreeMap<u64, TcpListener>) -> BTreeMap<u64, String> {
    listeners
        .iter()
        .map(|(id, l)| (*id, l.local_addr().expect("addr").to_string()))
        .collect()
}

/// A listener on the given address, retried briefly: the previous server of a restarted member
/// may still be releasing the port.
pub async fn bind(addr: SocketAddr) -> TcpListener {
    let started = Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if started.elapsed() < WAIT => {
                eprintln!("bind {addr}: {e}, retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    }
}

impl Cluster {
    /// `n` initial members with ids 1..=n, all started.
    pub async fn start(n: u64) -> Cluster {
        Cluster::start_with(n, 1_000).await
    }

    /// Like `start`, with a snapshot every `snapshot_every` entries.
    pub async fn start_with(n: u64, snapshot_every: u64) -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listeners.insert(id, listener);
        }
        let root = tempfile::tempdir().expect("tempdir");
        Cluster::run_all(root, listeners, snapshot_every, None).await
    }

    /// `n` members talking over mutual TLS with `tls`.
    pub async fn start_tls(n: u64, tls: ClusterTls) -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listeners.insert(id, listener);
        }
        let root = tempfile::tempdir().expect("tempdir");
        Cluster::run_all(root, listeners, 1_000, Some(tls)).await
    }

    /// The members of `root` (directories `m<id>`) started again at `addrs`, as after a
    /// crash of every process that ran them.
    pub async fn reopen(root: TempDir, addrs: &BTreeMap<u64, SocketAddr>) -> Cluster {
        let mut listeners = BTreeMap::new();
        for (id, addr) in addrs {
            listeners.insert(*id, bind(*addr).await);
        }
        Cluster::run_all(root, listeners, 1_000, None).await
    }

    async fn run_all(
        root: TempDir,
        listeners: BTreeMap<u64, TcpListener>,
        snapshot_every: u64,
        tls: Option<ClusterTls>,
    ) -> Cluster {
        let mut cluster = Cluster {
            root,
            members: BTreeMap::new(),
            snapshot_every,
            tls,
        };
        let peers = peers_of(&listeners);
        for (id, listener) in listeners {
            let member = cluster.member_at(id, listener.local_addr().expect("addr"), peers.clone());
            cluster.members.insert(id, member);
            cluster.run(id, listener).await;
        }
        cluster
    }

    fn member_at(&self, id: u64, addr: SocketAddr, peers: BTreeMap<u64, String>) -> Member {
        Member {
            id,
            addr,
            dir: self.root.path().join(format!("m{id}")),
            peers,
            running: None,
        }
    }

    pub fn config(&self, id: u64) -> ClusterConfig {
        let m = &self.members[&id];
        let mut config = member_config(id, m.addr, m.peers.clone(), self.snapshot_every);
        config.tls = self.tls.clone();
        config
    }

    async fn run(&mut self, id: u64, listener: TcpListener) {
        let config = self.config(id);
        let dir = self.members[&id].dir.clone();
        let node = Arc::new(
            RaftNode::open_cluster(config, &dir)
                .await
                .expect("open member"),
        );
        let stop_server = CancellationToken::new();
        let server = serve(&node, listener, self.tls.clone(), &stop_server);
        self.members.get_mut(&id).expect("member").running = Some(Running {
            node,
            stop_server,
            server,
        });
    }

    pub fn node(&self, id: u64) -> &RaftNode {
        &self.members[&id]
            .running
            .as_ref()
            .unwrap_or_else(|| panic!("member {id} is not running"))
            .node
    }

    pub fn running(&self) -> Vec<u64> {
        self.members
            .values()
            .filter(|m| m.running.is_some())
            .map(|m| m.id)
            .collect()
    }

    pub fn url(&self, id: u64) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.members[&id].addr)
    }

    /// Waits until every running member in `among` names the same leader, that leader is one
    /// of them, and it may act as leader (quorum acknowledged). Returns it.
    /// Proposes `cmd` on whichever running member leads, following its `NotLeader` answers:
    /// on a loaded machine a heartbeat can come late and another member take over mid-test.
    /// (A `NotLeader` answer means the entry was not appended: retrying never doubles it.)
    pub async fn propose_on_leader(&self, cmd: Command) -> berth::raft::state::Response {
        let started = Instant::now();
        loop {
            let running = self.running();
            let leader = running
                .iter()
                .copied()
                .find(|id| self.node(*id).is_leader());
            if let Some(id) = leader {
                match self.node(id).propose(cmd.clone()).await {
                    Ok(answer) => return answer,
                    Err(berth::raft::RaftNodeError::NotLeader { .. }) => {}
                    Err(e) => panic!("propose on member {id}: {e}"),
                }
            }
            assert!(started.elapsed() < WAIT, "no leader took the proposal");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn agreed_leader(&self, among: &[u64]) -> u64 {
        let started = Instant::now();
        loop {
            let leaders: Vec<Option<u64>> =
                among.iter().map(|id| self.node(*id).leader()).collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l))
                    && among.contains(l)
                    && self.node(*l).is_leader()
                {
                    return *l;
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "no agreed leader among {among:?} after {WAIT:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every member in `among` holds and has applied the same last log entry, so
    /// that any of them may win the next election.
    pub async fn settled(&self, among: &[u64]) {
        let started = Instant::now();
        loop {
            let logs: Vec<_> = among
                .iter()
                .map(|id| {
                    let m = self.node(*id).raft().metrics().borrow().clone();
                    (m.last_log_index, m.last_applied.map(|l| l.index))
                })
                .collect();
            if logs.windows(2).all(|w| w[0] == w[1]) && logs[0].0 == logs[0].1 {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "members {among:?} not settled: {logs:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until member `id` has applied the same history as `expected`.
    pub async fn caught_up(&self, id: u64, expected: &[String]) {
        let started = Instant::now();
        loop {
            let got = history(self.node(id));
            if got == expected {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "member {id} has {} of {} entries after {WAIT:?}",
                got.len(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops member `id` cleanly: node first (so it answers nothing more), then its server.
    pub async fn stop(&mut self, id: u64) {
        let running = self
            .members
            .get_mut(&id)
            .expect("member")
            .running
            .take()
            .expect("running");
        running.stop_server.cancel();
        let node = Arc::into_inner(running.node).expect("no other handle on the node");
        node.shutdown().await.expect("shutdown");
        match tokio::time::timeout(WAIT, running.server).await {
            Ok(served) => served.expect("server task").expect("server"),
            Err(_) => panic!("server of member {id} did not stop"),
        }
    }

    /// Starts member `id` again on its data directory and port.
    pub async fn restart(&mut self, id: u64) {
        let listener = bind(self.members[&id].addr).await;
        self.run(id, listener).await;
    }

    /// Deletes the data directory of stopped member `id`.
    pub fn wipe(&self, id: u64) {
        let dir = &self.members[&id].dir;
        assert!(self.members[&id].running.is_none());
        std::fs::remove_dir_all(dir).expect("wipe");
    }

    /// Starts a member that is not part of the initial cluster, knowing `peers`.
    pub async fn start_joiner(&mut self, id: u64, peers: &[u64]) {
        let listener = match self.members.get(&id) {
            Some(m) => bind(m.addr).await,
            None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let addr = listener.local_addr().expect("addr");
        let mut known: BTreeMap<u64, String> = peers
            .iter()
            .map(|p| (*p, self.members[p].addr.to_string()))
            .collect();
        known.insert(id, addr.to_string());
        let mut member = self.member_at(id, addr, known);
        if let Some(old) = self.members.get(&id) {
            member.dir = old.dir.clone();
        }
        self.members.insert(id, member);
        self.run(id, listener).await;
    }

    /// Stops every running member whose Raft may have stopped on its own (a fatal error), so a
    /// shutdown error is expected and ignored.
    pub async fn shutdown_stopped(self) {
        for (id, member) in self.members {
            let Some(running) = member.running else {
                continue;
            };
            running.stop_server.cancel();
            let node = Arc::into_inner(running.node).expect("no other handle on the node");
            if let Err(e) = node.shutdown().await {
                eprintln!("member {id} shut down with: {e}");
            }
            let _ = tokio::time::timeout(WAIT, running.server).await;
        }
    }

    /// Stops every running member.
    pub async fn shutdown(mut self) {
        for id in self.running() {
            self.stop(id).await;
        }
    }
}

/// The configuration every test member runs with.
pub fn member_config(
    id: u64,
    addr: SocketAddr,
    peers: BTreeMap<u64, String>,
    snapshot_every: u64,
) -> ClusterConfig {
    let mut config = ClusterConfig::single(id, addr.to_string());
    config.peers = peers;
    config.cluster_name = "test".into();
    config.token = token();
    config.snapshot_every = snapshot_every;
    config
}

/// Member `id` of a cluster, served on its own in this process until it is killed: what the
/// child processes of the `kill -9` test run.
pub async fn serve_member(id: u64, dir: &Path, peers: BTreeMap<u64, String>) -> Running {
    let addr: SocketAddr = peers[&id].parse().expect("member address");
    let listener = bind(addr).await;
    let node = Arc::new(
        RaftNode::open_cluster(member_config(id, addr, peers, 1_000), dir)
            .await
            .expect("open member"),
    );
    let stop_server = CancellationToken::new();
    let server = serve(&node, listener, None, &stop_server);
    Running {
        node,
        stop_server,
        server,
    }
}
