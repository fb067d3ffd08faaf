//! A running Raft node: the stores in the data directory, openraft on top with the HTTP network,
//! and the few calls the rest of berth needs (propose, read the committed state, who leads, may
//! I still act as leader, grow or shrink the cluster).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::Fatal;
use openraft::metrics::WaitError;
use openraft::{BasicNode, Config};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bootstrap;
use super::cluster_config::ClusterConfig;
use super::contact::LeaderContact;
use super::db::{Stores, StoresClosed};
use super::election::{self, Standing};
use super::fencing::{self, LeaderFacts, QuorumClock};
use super::http_client::{HttpNetwork, PeerClient};
use super::log_command::LogCommand;
use super::log_store::LogStore;
use super::membership::{self, Member};
use super::node_error::RaftNodeError;
use super::partition::Partition;
use super::snapshot_trigger;
use super::state::{Command, Response};
use super::state_machine::StateHandle;
use super::types::{NodeId, Raft};

/// How long `shutdown` waits for openraft's tasks to release the database.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Raft settings of a one-member cluster with the default timing.
pub fn raft_config() -> Result<Config, RaftNodeError> {
    Ok(ClusterConfig::single(1, String::new()).raft_config()?)
}

/// See [`RaftNode::freshness`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Freshness {
    /// The leader's id, as this member knows it.
    pub leader: Option<NodeId>,
    /// This member leads and a quorum acknowledged it within the election timeout.
    pub is_leader: bool,
    pub term: u64,
    /// Index of the last entry in this member's log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to this member's state.
    pub last_applied: Option<u64>,
    /// The leader's commit index, as last heard (on the leader: its own applied index).
    pub leader_commit: Option<u64>,
    /// Committed entries this member has not applied yet, as of the last contact.
    pub behind: Option<u64>,
    /// On a follower: time since the leader's last accepted append or heartbeat.
    pub heard_from_leader_ms: Option<u64>,
    /// On the leader: time since a quorum last acknowledged it.
    pub quorum_ack_ms: Option<u64>,
    /// This member's state may be out of date: a follower that has not heard from a leader
    /// within the election timeout, or a leader without a quorum. What it serves is what it
    /// last knew.
    pub stale: bool,
}

/// One controller's Raft: the replicated log in `<data_dir>/raft.redb` and the committed
/// [`ClusterState`](super::state::ClusterState) in memory.
///
/// Stop it with [`RaftNode::shutdown`]. Dropping it also stops Raft, but in the background: the
/// directory cannot be opened again in this process until openraft's tasks have ended.
pub struct RaftNode {
    id: NodeId,
    raft: Raft,
    state: StateHandle,
    log: LogStore,
    closed: StoresClosed,
    config: Arc<ClusterConfig>,
    partition: Partition,
    contact: LeaderContact,
    quorum: QuorumClock,
    standing: Standing,
    /// The bootstrap and quorum-watch tasks; drained by `stop` and `shutdown`.
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl RaftNode {
    /// A one-member cluster in `data_dir` (created if missing) whose member is reachable at
    /// `addr`: [`RaftNode::open_cluster`] with [`ClusterConfig::single`]. A node reopened on its
    /// directory keeps its log, vote and membership.
    pub async fn open(
        id: NodeId,
        addr: String,
        data_dir: &Path,
    ) -> Result<RaftNode, RaftNodeError> {
        RaftNode::open_cluster(ClusterConfig::single(id, addr), data_dir).await
    }

    /// Opens the stores in `data_dir` (created if missing) and starts Raft with the HTTP network.
    ///
    /// A data directory with a log or a vote rejoins its cluster as it was: `config.peers` is
    /// ignored. A new one with no peers initialises a one-member cluster at once; with peers,
    /// the lowest member forms the cluster once a majority is up (see `bootstrap.rs`), and the
    /// others wait for it. Serve [`raft_router`](super::raft_router) for this node so the
    /// others can reach it.
    ///
    /// Returns before a leader is known: see [`RaftNode::wait_leader`].
    pub async fn open_cluster(
        config: ClusterConfig,
        data_dir: &Path,
    ) -> Result<RaftNode, RaftNodeError> {
        let raft_config = Arc::new(config.raft_config()?);
        let members = config.initial_members()?;
        let client = PeerClient::new(
            config.token.clone(),
            config.tls.as_ref(),
            config.election_timeout,
        )?;
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| RaftNodeError::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let stores = Stores::open(data_dir)
            .await
            .map_err(|source| RaftNodeError::Open {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let state = stores.state_machine.state_handle();
        let partition = Partition::default();
        let network = HttpNetwork::new(config.id, client.clone(), partition.clone());
        let raft = Raft::new(
            config.id,
            raft_config,
            network,
            stores.log.clone(),
            stores.state_machine,
        )
        .await?;
        let node = RaftNode {
            id: config.id,
            raft,
            state,
            log: stores.log,
            closed: stores.closed,
            config: Arc::new(config),
            partition,
            contact: LeaderContact::default(),
            quorum: QuorumClock::new(),
            standing: Standing::default(),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        };
        node.tasks
            .spawn(fencing::watch(node.raft.clone(), node.quorum.clone()));
        node.tasks.spawn(election::run(
            node.raft.clone(),
            node.id,
            node.config.election_timeout,
            node.contact.clone(),
            node.standing.clone(),
            node.cancel.clone(),
        ));
        node.tasks.spawn(snapshot_trigger::run(
            node.raft.clone(),
            node.log.clone(),
            node.config.snapshot_bytes,
            node.cancel.clone(),
        ));
        if let Err(e) = node.start(members, client).await {
            // Release the database before reporting, so the caller may retry the open.
            let _ = node.shutdown().await;
            return Err(e);
        }
        Ok(node)
    }

    /// Initialises a new one-member cluster, or starts bootstrap, or nothing for a rejoin.
    async fn start(
        &self,
        members: std::collections::BTreeMap<NodeId, BasicNode>,
        client: PeerClient,
    ) -> Result<(), RaftNodeError> {
        if self.raft.is_initialized().await? {
            tracing::info!(
                id = self.id,
                "rejoining the raft cluster of this data directory"
            );
            return Ok(());
        }
        if !self.config.has_peers() {
            tracing::info!(id = self.id, addr = %self.config.advertise_url, "initialising a single-voter raft cluster");
            self.raft.initialize(members).await?;
            return Ok(());
        }
        let lowest = members.keys().next().copied();
        if lowest != Some(self.id) {
            tracing::info!(
                id = self.id,
                "new member: waiting for member {lowest:?} to form the cluster, or for a leader to add this one"
            );
            return Ok(());
        }
        self.tasks.spawn(bootstrap::run(
            self.raft.clone(),
            client,
            self.config.cluster_name.clone(),
            members,
            self.config.election_timeout,
            self.cancel.clone(),
        ));
        Ok(())
    }

    /// Appends `cmd` to the log and returns what `apply` answered once it is committed and
    /// applied, waiting at most the configured `propose_timeout`. Only the leader accepts
    /// writes: elsewhere this fails with [`RaftNodeError::NotLeader`].
    pub async fn propose(&self, cmd: Command) -> Result<Response, RaftNodeError> {
        self.propose_within(cmd, self.config.propose_timeout).await
    }

    /// [`RaftNode::propose`] with an explicit deadline. On [`RaftNodeError::Timeout`] the
    /// outcome is unknown: the entry may still commit (commands must tolerate a retry).
    pub async fn propose_within(
        &self,
        cmd: Command,
        deadline: Duration,
    ) -> Result<Response, RaftNodeError> {
        let write = self.raft.client_write(LogCommand::Known(cmd));
        match tokio::time::timeout(deadline, write).await {
            Ok(written) => Ok(written?.data),
            Err(_) => Err(RaftNodeError::Timeout(deadline)),
        }
    }

    /// The committed state. Cheap to clone; reads always see the latest applied entries.
    pub fn state(&self) -> StateHandle {
        self.state.clone()
    }

    /// Leader, term and quorum acknowledgement in one read. Cheap: no I/O, no await.
    pub fn leader_facts(&self) -> LeaderFacts {
        LeaderFacts::read(&self.raft, &self.quorum)
    }

    /// True while this node is the leader *and* a quorum acknowledged it within the fence
    /// (3/4 of the election timeout, see `election.rs`). A leader cut off from its peers stops
    /// being leader here before any successor can be elected, although openraft may still call
    /// it leader.
    pub fn is_leader(&self) -> bool {
        self.quorum_acked_within(election::fence(self.config.election_timeout))
    }

    /// Whether this member may stand for election (a member whose settings differ does not).
    pub fn set_standing(&self, stand: bool) {
        self.standing.set(stand);
    }

    /// True when this node is leader and a quorum acknowledged it within `max`: call before
    /// each batch of effects with a bound below the election timeout.
    pub fn quorum_acked_within(&self, max: Duration) -> bool {
        self.leader_facts().may_act(max)
    }

    /// When the leader was last heard (on a follower).
    pub fn contact(&self) -> LeaderContact {
        self.contact.clone()
    }

    /// What a status answer says about this member's Raft: who leads, how far this member
    /// applied, how far behind the leader it may be, and whether its state may be stale.
    pub fn freshness(&self) -> Freshness {
        let facts = self.leader_facts();
        let (term, last_log_index, last_applied) = self.progress();
        let t = self.config.election_timeout;
        let acting = facts.may_act(t);
        let (heard, leader_commit) = match self.contact.last() {
            Some((age, commit)) if !facts.raft_leader => (Some(age), commit),
            _ => (None, None),
        };
        let leader_commit = if facts.raft_leader {
            self.raft.metrics().borrow().last_applied.map(|l| l.index)
        } else {
            leader_commit
        };
        Freshness {
            leader: facts.leader,
            is_leader: acting,
            term,
            last_log_index,
            last_applied,
            leader_commit,
            behind: leader_commit.map(|c| c.saturating_sub(last_applied.unwrap_or(0))),
            heard_from_leader_ms: heard.map(|d| d.as_millis() as u64),
            quorum_ack_ms: facts.quorum_ack_age.map(|d| d.as_millis() as u64),
            stale: if facts.raft_leader {
                !acting
            } else {
                heard.is_none_or(|age| age > t)
            },
        }
    }

    /// The current Raft term.
    pub fn current_term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The leader this node knows of, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Waits until a leader is known and returns its id. When that is this node, also waits
    /// until its state includes every committed entry (see [`RaftNode::ensure_linearizable`])
    /// and a quorum acknowledgement is recorded (so [`RaftNode::is_leader`] is true): after a
    /// restart the last entries of the log are committed and applied again only once Raft runs,
    /// so `state()` may lag the log for a moment after `open`.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<NodeId, RaftNodeError> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| match e {
                WaitError::Timeout(..) => RaftNodeError::NoLeader(timeout),
                WaitError::ShuttingDown => Fatal::Stopped.into(),
            })?;
        let leader = metrics
            .current_leader
            .ok_or(RaftNodeError::NoLeader(timeout))?;
        if leader == self.id {
            let settled = async {
                self.ensure_linearizable().await?;
                self.quorum.acked().await;
                Ok::<_, RaftNodeError>(())
            };
            tokio::time::timeout(timeout, settled)
                .await
                .map_err(|_| RaftNodeError::NoLeader(timeout))??;
        }
        Ok(leader)
    }

    /// On the leader: confirms leadership with a quorum and waits until every entry committed
    /// before the call is applied, so the next `state()` read is up to date. Elsewhere: fails
    /// with [`RaftNodeError::NotLeader`]. Call it before acting on the state as leader.
    pub async fn ensure_linearizable(&self) -> Result<(), RaftNodeError> {
        self.raft.ensure_linearizable().await?;
        Ok(())
    }

    /// (current term, last log index, last applied index), as openraft reports them.
    pub fn progress(&self) -> (u64, Option<u64>, Option<u64>) {
        let m = self.raft.metrics().borrow().clone();
        (
            m.current_term,
            m.last_log_index,
            m.last_applied.map(|l| l.index),
        )
    }

    /// [`RaftNode::ensure_linearizable`], giving up with [`RaftNodeError::Timeout`] after
    /// `deadline`.
    pub async fn ensure_linearizable_within(
        &self,
        deadline: Duration,
    ) -> Result<(), RaftNodeError> {
        tokio::time::timeout(deadline, self.ensure_linearizable())
            .await
            .map_err(|_| RaftNodeError::Timeout(deadline))?
    }

    /// The members as this node sees them (`berth cluster list`).
    pub fn members(&self) -> Vec<Member> {
        membership::list(&self.raft)
    }

    /// On the leader: adds member `id` reachable at `url` as a learner, waits up to `catch_up`
    /// for it to catch up, then makes it a voter (`berth cluster add`).
    pub async fn add_member(
        &self,
        id: NodeId,
        url: String,
        catch_up: Duration,
    ) -> Result<Vec<Member>, RaftNodeError> {
        Ok(membership::add(&self.raft, id, url, catch_up).await?)
    }

    /// On the leader: removes member `id` from the cluster (`berth cluster remove`).
    pub async fn remove_member(&self, id: NodeId) -> Result<Vec<Member>, RaftNodeError> {
        Ok(membership::remove(&self.raft, id).await?)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The cluster name this node was started with.
    pub fn cluster_name(&self) -> &str {
        &self.config.cluster_name
    }

    /// The settings this node was started with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The switch that cuts this node off the Raft network (tests and failure drills).
    pub fn partition(&self) -> Partition {
        self.partition.clone()
    }

    /// The openraft handle, for the RPC handlers of the network and for membership changes.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Number of entries kept in the log: bounded by the snapshot policy, not by history.
    pub async fn log_len(&self) -> Result<u64, RaftNodeError> {
        self.log.len().await.map_err(RaftNodeError::Store)
    }

    /// Stops openraft's tasks and this node's own and waits for them, for a caller that shares
    /// the node (the controller holds it in an `Arc`): without it, the core task outlives the
    /// handle at process exit and logs an error about its closed metrics channel. Idempotent.
    pub async fn stop(&self) -> Result<(), RaftNodeError> {
        self.cancel.cancel();
        let stopped = self.raft.shutdown().await;
        self.tasks.close();
        self.tasks.wait().await;
        stopped.map_err(RaftNodeError::Shutdown)
    }

    /// Stops Raft and waits until the database file is closed, so the directory can be opened
    /// again at once (in this process or another).
    pub async fn shutdown(self) -> Result<(), RaftNodeError> {
        let stopped = self.stop().await;
        let RaftNode {
            raft, log, closed, ..
        } = self;
        drop(log);
        drop(raft);
        stopped?;
        // openraft's state machine worker and snapshot task end shortly after the core does;
        // they hold the database until then.
        tokio::time::timeout(CLOSE_TIMEOUT, closed.wait())
            .await
            .map_err(|_| RaftNodeError::StillOpen(CLOSE_TIMEOUT))
    }
}
