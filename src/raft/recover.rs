//! `berth cluster recover`: etcd's `--force-new-cluster` for berth. After a majority of the
//! members is lost for good, one survivor's data directory is rewritten (offline) so that it is
//! a cluster of one member that keeps its log and state; it is then started as usual and the
//! others are added back with `berth cluster add`.
//!
//! How: two entries are appended to the survivor's log, as if it had been elected in a new term
//! and proposed them:
//!
//! 1. a membership entry naming it the only voter (with the address the old membership gave it);
//! 2. [`Command::Recovered`], so the state's `recoveries` record when and from what.
//!
//! and its vote moves to that new term. openraft's effective membership is the last one in the
//! log, committed or not, so on start-up the member sees itself as the only voter, elects itself
//! and commits everything in its log. Like etcd, this commits entries that the old cluster may
//! never have committed (the survivor's log may be ahead of what a majority acknowledged), and
//! anything only the lost members had is gone: that is the price of going on without them.
//!
//! Safety: the database is opened exclusively (redb locks the file), so a running berth on the
//! same directory makes this refuse rather than race it. Nothing is removed: the old entries,
//! snapshot and state stay, so a copy of the directory taken before is the only undo needed.
//!
//! Split into a pure plan ([`plan`]: what to write, from what was read) and the redb reading and
//! writing around it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership, Vote};
use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable};

use super::db::{StoreError, DB_FILE, LOGS, META, SNAPSHOT, SNAPSHOT_META, VOTE};
use super::log_command::LogCommand;
use super::state::{Command, Millis};
use super::types::{Entry, LogId, NodeId};

/// Why a data directory could not be recovered. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{0} does not exist: is --data-dir the survivor's data directory (the one `berth serve --data-dir` used)?")]
    NoDatabase(PathBuf),
    #[error("{0} is in use by another process: stop the berth that runs on it first")]
    InUse(PathBuf),
    #[error("the data directory holds no Raft log or snapshot: there is nothing to recover")]
    Empty,
    #[error("member {id} is not in the membership this data directory last knew (members {known:?}): give the --id this directory was served with")]
    NotAMember { id: NodeId, known: Vec<NodeId> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the data directory held, as far as recovery needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub vote: Option<Vote<NodeId>>,
    /// The last entry's log id, else the snapshot's last one.
    pub last_log_id: Option<LogId>,
    /// The last membership in the log, else the snapshot's.
    pub membership: Option<Membership<NodeId, BasicNode>>,
}

/// What recovery writes and reports.
#[derive(Debug, Clone)]
pub struct Plan {
    pub vote: Vote<NodeId>,
    pub entries: Vec<Entry>,
    /// The voters of the old membership.
    pub from_members: Vec<NodeId>,
    /// The last index of the old log.
    pub last_index: u64,
    /// The address the new one-member membership gives the survivor.
    pub addr: String,
}

/// What to write so that member `id` becomes a one-member cluster, from what was `found`.
pub fn plan(found: &Found, id: NodeId, at: Millis) -> Result<Plan, RecoverError> {
    let (Some(last), Some(membership)) = (found.last_log_id, &found.membership) else {
        return Err(RecoverError::Empty);
    };
    let Some(node) = membership.get_node(&id) else {
        return Err(RecoverError::NotAMember {
            id,
            known: membership.nodes().map(|(id, _)| *id).collect(),
        });
    };
    let from_members: Vec<NodeId> = membership.voter_ids().collect();
    // A term above every term this member has seen, voted in or logged: the new entries are the
    // newest of the log whatever happened before.
    let seen = found.vote.map_or(0, |v| v.leader_id().term);
    let term = seen.max(last.leader_id.term) + 1;
    let leader = CommittedLeaderId::new(term, id);
    let only = Membership::new(
        vec![BTreeSet::from([id])],
        BTreeMap::from([(id, node.clone())]),
    );
    let entries = vec![
        Entry {
            log_id: LogId::new(leader, last.index + 1),
            payload: EntryPayload::Membership(only),
        },
        Entry {
            log_id: LogId::new(leader, last.index + 2),
            payload: EntryPayload::Normal(LogCommand::Known(Command::Recovered {
                member: id,
                from_members: from_members.clone(),
                last_index: last.index,
                at,
            })),
        },
    ];
    Ok(Plan {
        vote: Vote::new(term, id),
        entries,
        from_members,
        last_index: last.index,
        addr: node.addr.clone(),
    })
}

/// Rewrites `<raft_dir>/raft.redb` so that member `id` is a one-member cluster (see the module
/// documentation). `raft_dir` is the `raft` directory inside berth's data directory.
pub fn recover(raft_dir: &Path, id: NodeId, at: Millis) -> Result<Plan, RecoverError> {
    let path = raft_dir.join(DB_FILE);
    if !path.is_file() {
        return Err(RecoverError::NoDatabase(path));
    }
    let db = match Database::open(&path) {
        Ok(db) => db,
        Err(DatabaseError::DatabaseAlreadyOpen) => return Err(RecoverError::InUse(path)),
        Err(e) => return Err(StoreError::from(redb::Error::from(e)).into()),
    };
    let found = read(&db)?;
    let plan = plan(&found, id, at)?;
    write(&db, &plan)?;
    Ok(plan)
}

fn read(db: &Database) -> Result<Found, StoreError> {
    let tx = db.begin_read()?;
    let meta = tx.open_table(META)?;
    let vote = match meta.get(VOTE)? {
        Some(v) => Some(serde_json::from_slice(v.value())?),
        None => None,
    };
    let snapshot: Option<openraft::SnapshotMeta<NodeId, BasicNode>> =
        match tx.open_table(SNAPSHOT)?.get(SNAPSHOT_META)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        };
    let logs = tx.open_table(LOGS)?;
    let mut last_log_id = None;
    let mut membership = None;
    // Newest first: the last entry, then back to the last membership entry. A cluster changes
    // membership rarely, so this reads few entries past the last snapshot.
    for item in logs.iter()?.rev() {
        let (_, value) = item?;
        let entry: Entry = serde_json::from_slice(value.value())?;
        last_log_id.get_or_insert(entry.log_id);
        if let EntryPayload::Membership(m) = entry.payload {
            membership = Some(m);
            break;
        }
    }
    if let Some(s) = snapshot {
        last_log_id = last_log_id.or(s.last_log_id);
        if membership.is_none() {
            membership = Some(s.last_membership.membership().clone());
        }
    }
    Ok(Found {
        vote,
        last_log_id,
        membership,
    })
}

/// Appends the entries and moves the vote in one durable transaction: the directory is either
/// recovered or as it was.
fn write(db: &Database, plan: &Plan) -> Result<(), StoreError> {
    let vote = serde_json::to_vec(&plan.vote)?;
    let entries = plan
        .entries
        .iter()
        .map(|e| Ok((e.log_id.index, serde_json::to_vec(e)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    {
        let mut logs = tx.open_table(LOGS)?;
        for (index, bytes) in &entries {
            logs.insert(*index, bytes.as_slice())?;
        }
        tx.open_table(META)?.insert(VOTE, vote.as_slice())?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(voters: &[NodeId]) -> Membership<NodeId, BasicNode> {
        let nodes: BTreeMap<NodeId, BasicNode> = voters
            .iter()
            .map(|id| (*id, BasicNode::new(format!("10.0.0.{id}:7878"))))
            .collect();
        Membership::new(vec![voters.iter().copied().collect()], nodes)
    }

    fn found(term: u64, vote_term: u64) -> Found {
        Found {
            vote: Some(Vote::new(vote_term, 3)),
            last_log_id: Some(LogId::new(CommittedLeaderId::new(term, 1), 41)),
            membership: Some(membership(&[1, 2, 3])),
        }
    }

    #[test]
    fn the_survivor_becomes_the_only_voter_in_a_newer_term_after_its_last_entry() {
        let p = plan(&found(4, 6), 2, 99).unwrap();
        assert_eq!(p.vote, Vote::new(7, 2));
        assert_eq!(p.from_members, vec![1, 2, 3]);
        assert_eq!(p.last_index, 41);
        assert_eq!(p.addr, "10.0.0.2:7878");
        let [first, second] = &p.entries[..] else {
            panic!("two entries: {:?}", p.entries);
        };
        assert_eq!(first.log_id.index, 42);
        assert_eq!(first.log_id.leader_id, CommittedLeaderId::new(7, 2));
        let EntryPayload::Membership(m) = &first.payload else {
            panic!("a membership first");
        };
        assert_eq!(m.voter_ids().collect::<Vec<_>>(), vec![2]);
        assert_eq!(m.get_node(&2).unwrap().addr, "10.0.0.2:7878");
        assert_eq!(second.log_id.index, 43);
        assert!(matches!(
            &second.payload,
            EntryPayload::Normal(LogCommand::Known(Command::Recovered {
                member: 2,
                last_index: 41,
                at: 99,
                ..
            }))
        ));
        // The log's own term counts when the vote is older.
        assert_eq!(plan(&found(9, 6), 2, 0).unwrap().vote, Vote::new(10, 2));
    }

    #[test]
    fn a_stranger_or_an_empty_directory_is_refused() {
        assert!(matches!(
            plan(&found(1, 1), 5, 0),
            Err(RecoverError::NotAMember { id: 5, known }) if known == vec![1, 2, 3]
        ));
        let empty = Found {
            vote: None,
            last_log_id: None,
            membership: None,
        };
        assert!(matches!(plan(&empty, 1, 0), Err(RecoverError::Empty)));
    }
}
