//! Growing and shrinking the cluster: what `berth cluster list|add|remove` do, on the leader.
//!
//! Adding is three steps, so a new member never weakens the quorum while it is empty: it joins
//! as a learner (it receives the log but does not vote), the leader waits until it has caught up
//! (its matched log index reaches the leader's last index at the time it was added), and only
//! then is it promoted to voter through openraft's joint consensus. If it does not catch up in
//! time it stays a learner: adding it again resumes, removing it drops it.
//!
//! Removing takes the member out of the voters and out of the cluster in one membership change.
//! A member whose data directory was lost must be removed and added again: coming back empty
//! under its old id it could vote twice in one term.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::metrics::{RaftMetrics, WaitError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use super::types::{NodeId, Raft};

/// One member as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    /// How the other members reach it.
    pub url: String,
    /// False for a learner (receives the log, does not vote).
    pub voter: bool,
    /// True for the member this node knows as leader.
    pub leader: bool,
    /// On the leader: the last log index known to be on that member.
    pub matched_index: Option<u64>,
}

/// Why a membership call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MembershipError {
    /// Membership changes go through the leader: ask it (unknown during an election).
    #[error("not the raft leader; the leader is {leader:?} at {leader_url:?}")]
    NotLeader {
        leader: Option<NodeId>,
        leader_url: Option<String>,
    },
    /// The id is already a voter.
    #[error("member {0} is already a voter")]
    AlreadyMember(NodeId),
    /// The id is not in the cluster.
    #[error("no member {0} in the cluster")]
    NotAMember(NodeId),
    /// The last voter cannot be removed: nothing would be left to decide anything.
    #[error("member {0} is the last voter and cannot be removed")]
    LastVoter(NodeId),
    /// The new member did not catch up in time; it stays a learner.
    #[error("member {id} did not catch up within {waited_ms} ms and stays a learner: add it again to resume, or remove it")]
    CatchUpTimeout { id: NodeId, waited_ms: u64 },
    /// openraft refused the change (another change is in progress, or the leader changed).
    #[error("membership change refused: {0}")]
    Refused(String),
    /// Raft on this member has stopped.
    #[error("raft stopped: {0}")]
    Stopped(String),
}

impl MembershipError {
    /// True for errors that may go away by retrying (later, or on the leader).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MembershipError::NotLeader { .. }
                | MembershipError::Refused(_)
                | MembershipError::CatchUpTimeout { .. }
        )
    }
}

impl From<RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>> for MembershipError {
    fn from(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                MembershipError::NotLeader {
                    leader: f.leader_id,
                    leader_url: f.leader_node.map(|n| n.addr),
                }
            }
            RaftError::APIError(other) => MembershipError::Refused(other.to_string()),
            RaftError::Fatal(f) => MembershipError::Stopped(f.to_string()),
        }
    }
}

type Metrics = RaftMetrics<NodeId, BasicNode>;

/// The members as this node sees them (any member can answer; only the leader knows how far
/// each has replicated).
pub fn list(raft: &Raft) -> Vec<Member> {
    members(&raft.metrics().borrow())
}

fn members(m: &Metrics) -> Vec<Member> {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            url: node.addr.clone(),
            voter: voters.contains(id),
            leader: m.current_leader == Some(*id),
            matched_index: m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).cloned().flatten())
                .map(|log_id| log_id.index),
        })
        .collect()
}

/// Fails unless this node is the leader, naming the leader to ask instead.
fn ensure_leader(m: &Metrics) -> Result<(), MembershipError> {
    if m.current_leader == Some(m.id) {
        return Ok(());
    }
    let leader_url = m.current_leader.and_then(|l| {
        m.membership_config
            .membership()
            .get_node(&l)
            .map(|n| n.addr.clone())
    });
    Err(MembershipError::NotLeader {
        leader: m.current_leader,
        leader_url,
    })
}

/// Adds member `id`, reachable at `url`: as a learner, then, once it has caught up (within
/// `catch_up`), as a voter. Returns the new membership.
pub async fn add(
    raft: &Raft,
    id: NodeId,
    url: String,
    catch_up: Duration,
) -> Result<Vec<Member>, MembershipError> {
    let is_learner = {
        let m = raft.metrics().borrow().clone();
        ensure_leader(&m)?;
        let membership = m.membership_config.membership();
        if membership.voter_ids().any(|v| v == id) {
            return Err(MembershipError::AlreadyMember(id));
        }
        membership.get_node(&id).is_some()
    };
    if !is_learner {
        tracing::info!(id, %url, "adding a learner");
        raft.add_learner(id, BasicNode::new(url), false).await?;
    }
    let target = raft.metrics().borrow().last_log_index;
    let caught_up = raft
        .wait(Some(catch_up))
        .metrics(
            |m| {
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id).cloned().flatten())
                    .map(|l| l.index);
                // Leadership lost: stop waiting, the change below reports it.
                m.current_leader != Some(m.id) || matched >= target
            },
            "the new member caught up",
        )
        .await;
    match caught_up {
        Ok(_) => {}
        Err(WaitError::Timeout(..)) => {
            return Err(MembershipError::CatchUpTimeout {
                id,
                waited_ms: u64::try_from(catch_up.as_millis()).unwrap_or(u64::MAX),
            })
        }
        Err(WaitError::ShuttingDown) => {
            return Err(MembershipError::Stopped("shutting down".into()))
        }
    }
    tracing::info!(id, "promoting the caught-up learner to voter");
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
        .await?;
    Ok(list(raft))
}

/// Removes member `id` (voter or learner) from the cluster. Returns the new membership.
pub async fn remove(raft: &Raft, id: NodeId) -> Result<Vec<Member>, MembershipError> {
    let change = {
        let m = raft.metrics().borrow().clone();
        ensure_leader(&m)?;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(MembershipError::LastVoter(id));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if membership.get_node(&id).is_some() {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return Err(MembershipError::NotAMember(id));
        }
    };
    tracing::info!(id, "removing a member");
    // `retain = false`: a removed voter does not linger as a learner.
    raft.change_membership(change, false).await?;
    Ok(list(raft))
}
