//! Who this member is, who the initial members are, and the Raft timing.
//!
//! Timing, as a range (the timer itself is in `election.rs`). With `election_timeout` T, after
//! the last heartbeat a follower received:
//!
//! - it refuses to vote for anyone else for T (openraft's leader lease);
//! - it stands for election after a silence drawn anew each time from `[1.05 T, 1.5 T)` (1.05–1.5
//!   s by default): with the vote round and the new leader's first quorum acknowledgement, that
//!   is the failover time after a crash;
//! - `RaftNode::is_leader` turns false on the old leader once a quorum has not acknowledged it
//!   for 3/4 T (see `fencing.rs`): a cut-off leader stops acting before any successor can be
//!   elected.
//!
//! `heartbeat` is how often a leader reminds followers it is alive; it must be well below T (at
//! most a third of it here), so one or two lost heartbeats never cost a leader its fence.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};

use super::tls::ClusterTls;
use super::token::ClusterToken;
use super::types::NodeId;

/// A leader reminds followers every 100 ms: cheap on a LAN, and detects a lost member fast.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(100);
/// The lower end of the randomised election timeout (see the module doc for what follows).
pub const DEFAULT_ELECTION_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long `RaftNode::propose` waits for a commit before giving up with a timeout.
pub const DEFAULT_PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// A snapshot every 1000 entries bounds both the log and the replay at start-up.
pub const SNAPSHOT_EVERY: u64 = 1_000;
/// A snapshot also once 64 MiB of entries were appended since the last one.
pub const SNAPSHOT_BYTES: u64 = 64 << 20;
/// Entries kept behind the snapshot, so a follower slightly behind catches up from the log
/// rather than by receiving the whole snapshot.
pub const KEEP_BEHIND_SNAPSHOT: u64 = 100;
/// Snapshots travel in chunks of this size: one chunk is in flight per follower.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 2 << 20;
/// How long one snapshot chunk may take, including installing the whole snapshot after the
/// last one (decoding and an fsync of a large state take seconds, not a heartbeat).
pub const SNAPSHOT_CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a cluster configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ClusterConfigError {
    /// This member is listed among the peers under another address than the one it advertises.
    #[error("member {id} is listed at {listed:?} but advertises {advertised:?}")]
    SelfAddressMismatch {
        id: NodeId,
        listed: String,
        advertised: String,
    },
    /// Heartbeats too slow for the election timeout: followers would stand for election while
    /// the leader is healthy.
    #[error("heartbeat {heartbeat:?} must be at most a third of the election timeout {election_timeout:?}")]
    HeartbeatTooSlow {
        heartbeat: Duration,
        election_timeout: Duration,
    },
    /// openraft refused the derived settings (a bug in berth).
    #[error("invalid raft config")]
    Raft(#[source] Box<openraft::ConfigError>),
}

/// One member's view of the cluster it belongs to.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This member's id: unique in the cluster, never reused for a different data directory.
    pub id: NodeId,
    /// The initial members (this one included, or added from `advertise_url`), by id: the
    /// `host:port` or URL the other members use to reach each. Empty: a one-member cluster.
    /// Only read when the data directory is new; afterwards the membership is in the log.
    /// A member started later to join an existing cluster (`berth cluster add`) lists at least
    /// one existing member here, so that it waits to be added instead of forming a cluster of
    /// its own.
    pub peers: BTreeMap<NodeId, String>,
    /// How the other members reach this one (`host:port` or URL).
    pub advertise_url: String,
    /// Members refuse to bootstrap with peers that report another cluster name.
    pub cluster_name: String,
    /// See the module doc.
    pub heartbeat: Duration,
    /// See the module doc: the lower end of the randomised election timeout.
    pub election_timeout: Duration,
    /// How long `RaftNode::propose` waits for its entry to commit.
    pub propose_timeout: Duration,
    /// A snapshot is built every this many entries (default [`SNAPSHOT_EVERY`]).
    pub snapshot_every: u64,
    /// ... or once this many bytes of entries were appended since the last one (default
    /// [`SNAPSHOT_BYTES`]), whichever comes first: a few large commands (whole desired states)
    /// must not grow the log unbounded while the count is far off.
    pub snapshot_bytes: u64,
    /// Sent with, and required on, every Raft request.
    pub token: ClusterToken,
    /// TLS for requests to other members; `None` sends plain HTTP.
    pub tls: Option<ClusterTls>,
}

impl ClusterConfig {
    /// A one-member cluster with the default timing and no token: what `RaftNode::open` runs.
    pub fn single(id: NodeId, advertise_url: String) -> ClusterConfig {
        ClusterConfig {
            id,
            peers: BTreeMap::new(),
            advertise_url,
            cluster_name: "berth".to_string(),
            heartbeat: DEFAULT_HEARTBEAT,
            election_timeout: DEFAULT_ELECTION_TIMEOUT,
            propose_timeout: DEFAULT_PROPOSE_TIMEOUT,
            snapshot_every: SNAPSHOT_EVERY,
            snapshot_bytes: SNAPSHOT_BYTES,
            token: ClusterToken::unset(),
            tls: None,
        }
    }

    /// The members of the initial cluster: `peers` plus this member, checked for consistency.
    pub fn initial_members(&self) -> Result<BTreeMap<NodeId, BasicNode>, ClusterConfigError> {
        if let Some(listed) = self.peers.get(&self.id) {
            let tls = self.tls.is_some();
            if member_url(listed, tls) != member_url(&self.advertise_url, tls) {
                return Err(ClusterConfigError::SelfAddressMismatch {
                    id: self.id,
                    listed: listed.clone(),
                    advertised: self.advertise_url.clone(),
                });
            }
        }
        let mut members: BTreeMap<NodeId, BasicNode> = self
            .peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        members
            .entry(self.id)
            .or_insert_with(|| BasicNode::new(&self.advertise_url));
        Ok(members)
    }

    /// True when the initial cluster has other members than this one.
    pub fn has_peers(&self) -> bool {
        self.peers.keys().any(|id| *id != self.id)
    }

    /// The openraft settings for this timing.
    pub fn raft_config(&self) -> Result<Config, ClusterConfigError> {
        if self.heartbeat * 3 > self.election_timeout {
            return Err(ClusterConfigError::HeartbeatTooSlow {
                heartbeat: self.heartbeat,
                election_timeout: self.election_timeout,
            });
        }
        let election_ms = millis(self.election_timeout);
        Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: millis(self.heartbeat),
            // openraft's own election timer is off (see `election.rs`); the upper end is the
            // lease a voter grants the leader it last heard from.
            election_timeout_min: election_ms
                .saturating_sub(1)
                .max(millis(self.heartbeat) + 1),
            election_timeout_max: election_ms,
            enable_elect: false,
            install_snapshot_timeout: millis(SNAPSHOT_CHUNK_TIMEOUT),
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: KEEP_BEHIND_SNAPSHOT.min(self.snapshot_every / 2),
            ..Config::default()
        }
        .validate()
        .map_err(|e| ClusterConfigError::Raft(Box::new(e)))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The base URL of a member from its address: a URL is kept (without a trailing `/`), a bare
/// `host:port` gets `https://` when the cluster uses TLS and `http://` otherwise.
pub fn member_url(addr: &str, tls: bool) -> String {
    if addr.contains("://") {
        addr.trim_end_matches('/').to_string()
    } else if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ClusterConfig {
        let mut c = ClusterConfig::single(2, "10.0.0.2:7000".into());
        c.peers = BTreeMap::from([
            (1, "10.0.0.1:7000".into()),
            (2, "10.0.0.2:7000".into()),
            (3, "10.0.0.3:7000".into()),
        ]);
        c
    }

    #[test]
    fn openraft_s_own_election_timer_is_off_and_its_lease_is_the_election_timeout() {
        let c = ClusterConfig::single(1, "a:1".into())
            .raft_config()
            .unwrap();
        assert_eq!(c.heartbeat_interval, 100);
        assert!(!c.enable_elect);
        assert_eq!(c.election_timeout_max, 1000, "the lease");
        assert!(c.election_timeout_min < c.election_timeout_max);
    }

    #[test]
    fn heartbeats_slower_than_a_third_of_the_election_timeout_are_refused() {
        let mut c = ClusterConfig::single(1, "a:1".into());
        c.heartbeat = Duration::from_millis(400);
        assert!(matches!(
            c.raft_config(),
            Err(ClusterConfigError::HeartbeatTooSlow { .. })
        ));
    }

    #[test]
    fn initial_members_include_this_member_once() {
        let members = three().initial_members().unwrap();
        assert_eq!(members.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(three().has_peers());
        assert!(!ClusterConfig::single(1, "a:1".into()).has_peers());
    }

    #[test]
    fn a_member_listed_under_another_address_is_refused() {
        let mut c = three();
        c.advertise_url = "10.0.0.9:7000".into();
        assert!(matches!(
            c.initial_members(),
            Err(ClusterConfigError::SelfAddressMismatch { id: 2, .. })
        ));
    }

    #[test]
    fn member_urls_get_a_scheme_only_when_they_have_none() {
        assert_eq!(member_url("h:1", false), "http://h:1");
        assert_eq!(member_url("h:1", true), "https://h:1");
        assert_eq!(member_url("https://h:1/", false), "https://h:1");
    }
}
