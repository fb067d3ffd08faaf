//! The Raft state machine: [`ClusterState`] in memory, rebuilt at start-up from the last snapshot
//! plus the committed log entries after it.
//!
//! Only committed entries reach [`RaftStateMachine::apply`], so everything berth reads through
//! [`StateHandle`] is committed state. The state itself is never written to disk entry by entry:
//! snapshots (every `SnapshotPolicy` entries, see `cluster_config.rs`) are the durable copy, and
//! the log after the snapshot is re-applied when the node opens.
//!
//! Versions: a snapshot is an envelope carrying [`SNAPSHOT_FORMAT`], and the state inside it
//! carries its own `format` ([`STATE_FORMAT`]); a snapshot with either newer than this berth's is
//! refused with an error naming both formats rather than decoded by guesswork (serde would
//! otherwise drop the fields it does not know). States written before the state had a format
//! read as 0, and every older form loads: see `state/mod.rs`. A log entry whose
//! command this berth cannot decode ([`LogCommand::Unknown`]) stops `apply` at that entry, with
//! an error naming its index: openraft then stops this member, which must be upgraded. Nothing
//! after it is applied, so the state never reflects a misread command.
//!
//! Snapshot bytes: built (serialised) and installed (decoded) on the blocking pool, never on
//! the async workers; the bytes exist once per side (the leader's stored copy, which openraft
//! sends in chunks, and the follower's reassembled copy), never cloned.

use std::io::Cursor;
use std::sync::{Arc, PoisonError, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::db::{Db, StoreError, SNAPSHOT, SNAPSHOT_DATA, SNAPSHOT_META};
use super::log_command::LogCommand;
use super::state::{ClusterState, Response, STATE_FORMAT};
use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

type Membership = StoredMembership<NodeId, BasicNode>;
type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Read access to the committed [`ClusterState`], shared with the state machine.
///
/// A std `RwLock`: readers hold it only inside [`StateHandle::read`], never across an `.await`,
/// and the only writer is `apply`, which holds it for one batch of entries.
#[derive(Clone, Default)]
pub struct StateHandle(Arc<RwLock<ClusterState>>);

impl StateHandle {
    /// Runs `f` on the current state. Keep `f` short: `apply` waits while it runs.
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        // Only a panic inside `ClusterState::apply` can poison the lock. Readers then see the
        // state as that panic left it rather than panicking in turn; Raft itself has stopped
        // applying by then, so nothing builds on it.
        f(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A copy of the current state.
    pub fn cloned(&self) -> ClusterState {
        self.read(ClusterState::clone)
    }

    fn replace(&self, state: ClusterState) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// The snapshot format this berth writes and the newest it reads. Bump it when the envelope or
/// the JSON of `ClusterState` changes in a way an older berth would misread.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Snapshots written before the envelope had a format are format 1.
fn first_format() -> u32 {
    1
}

/// What a snapshot holds (serialised as JSON): the envelope and the state.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    #[serde(default = "first_format")]
    format: u32,
    last_applied: Option<LogId>,
    last_membership: Membership,
    state: ClusterState,
}

/// Only the format of a snapshot, to name it when the whole does not decode.
#[derive(Deserialize)]
struct FormatOnly {
    #[serde(default = "first_format")]
    format: u32,
}

/// Decodes a snapshot, refusing one of a newer format by name.
fn decode_snapshot(data: &[u8]) -> Result<SnapshotBody, StoreError> {
    let newer = |found| StoreError::NewerSnapshot {
        found,
        supported: SNAPSHOT_FORMAT,
    };
    match serde_json::from_slice::<SnapshotBody>(data) {
        Ok(body) if body.format > SNAPSHOT_FORMAT => Err(newer(body.format)),
        Ok(body) if body.state.format > STATE_FORMAT => Err(StoreError::NewerState {
            found: body.state.format,
            supported: STATE_FORMAT,
        }),
        Ok(body) => Ok(body),
        Err(e) => match serde_json::from_slice::<FormatOnly>(data) {
            Ok(f) if f.format > SNAPSHOT_FORMAT => Err(newer(f.format)),
            _ => Err(e.into()),
        },
    }
}

/// The state machine half of the storage.
pub struct StateMachine {
    db: Db,
    state: StateHandle,
    last_applied: Option<LogId>,
    last_membership: Membership,
}

impl StateMachine {
    /// Loads the last snapshot, if any.
    pub(crate) async fn open(db: Db) -> Result<StateMachine, StoreError> {
        let stored = db.run(read_snapshot).await?;
        let mut sm = StateMachine {
            db,
            state: StateHandle::default(),
            last_applied: None,
            last_membership: Membership::default(),
        };
        if let Some((meta, data)) = stored {
            let body = tokio::task::spawn_blocking(move || decode_snapshot(&data)).await??;
            sm.state.replace(body.state);
            sm.last_applied = meta.last_log_id;
            sm.last_membership = meta.last_membership;
        }
        Ok(sm)
    }

    /// The handle the rest of berth reads the committed state through.
    pub fn state_handle(&self) -> StateHandle {
        self.state.clone()
    }
}

fn read_snapshot(db: &Database) -> Result<Option<(Meta, Vec<u8>)>, StoreError> {
    let table = db.begin_read()?.open_table(SNAPSHOT)?;
    let (Some(meta), Some(data)) = (table.get(SNAPSHOT_META)?, table.get(SNAPSHOT_DATA)?) else {
        return Ok(None);
    };
    Ok(Some((
        serde_json::from_slice(meta.value())?,
        data.value().to_vec(),
    )))
}

/// Stores a snapshot durably, unless a newer one is already stored (a snapshot built from an
/// older state may finish after one received from the leader was installed).
fn write_snapshot(db: &Database, meta: &Meta, data: &[u8]) -> Result<(), StoreError> {
    let meta_bytes = serde_json::to_vec(meta)?;
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(SNAPSHOT)?;
        let stored: Option<Meta> = match table.get(SNAPSHOT_META)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        };
        if stored.is_some_and(|s| s.last_log_id > meta.last_log_id) {
            return Ok(());
        }
        table.insert(SNAPSHOT_META, meta_bytes.as_slice())?;
        table.insert(SNAPSHOT_DATA, data)?;
    }
    tx.commit()?;
    Ok(())
}

fn snapshot_id(last: Option<LogId>) -> String {
    // Snapshots with the same last log id hold the same state (`apply` is deterministic and the
    // JSON of `ClusterState` is stable), so the log id alone identifies one.
    match last {
        Some(id) => format!(
            "{}-{}-{}",
            id.leader_id.term, id.leader_id.node_id, id.index
        ),
        None => "empty".to_string(),
    }
}

fn snapshot_err(e: StoreError) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

/// A copy of the state taken between two applies, serialised and stored off the apply path.
pub struct SnapshotBuilder {
    db: Db,
    body: Arc<SnapshotBody>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let meta = Meta {
            last_log_id: self.body.last_applied,
            last_membership: self.body.last_membership.clone(),
            snapshot_id: snapshot_id(self.body.last_applied),
        };
        let body = self.body.clone();
        let m = meta.clone();
        // Serialised on the blocking pool (a large state takes a while) and durable before
        // openraft learns of it: openraft purges the log up to it next.
        let data = self
            .db
            .run(move |db| {
                let data = serde_json::to_vec(&*body)?;
                write_snapshot(db, &m, &data)?;
                Ok(data)
            })
            .await
            .map_err(snapshot_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// The error that stops `apply` at an entry this berth cannot decode.
fn unknown_command(log_id: LogId, error: &str) -> StorageError {
    tracing::error!(
        index = log_id.index,
        term = log_id.leader_id.term,
        %error,
        "raft log entry {} holds a command this berth cannot decode: written by a newer berth? \
         Stopping here without applying it; upgrade this member",
        log_id.index
    );
    let why = UnknownCommand {
        index: log_id.index,
        error: error.to_string(),
    };
    StorageIOError::apply(log_id, AnyError::new(&why)).into()
}

/// A log entry whose command this berth cannot decode.
#[derive(Debug, thiserror::Error)]
#[error("log entry {index} holds a command this berth cannot decode (written by a newer berth?): {error}")]
pub struct UnknownCommand {
    pub index: u64,
    pub error: String,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // One write lock per batch: readers see whole batches, never half of one.
        let mut state = self.state.0.write().unwrap_or_else(PoisonError::into_inner);
        let mut responses = Vec::new();
        for entry in entries {
            let response = match entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(LogCommand::Known(cmd)) => state.apply(cmd),
                EntryPayload::Normal(LogCommand::Unknown { error, .. }) => {
                    return Err(unknown_command(entry.log_id, &error));
                }
                EntryPayload::Membership(m) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::default()
                }
            };
            self.last_applied = Some(entry.log_id);
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // The entries appended so far are covered by this snapshot, or will be by the next one
        // the entry count triggers: the size trigger counts afresh.
        self.db
            .appended
            .store(0, std::sync::atomic::Ordering::Relaxed);
        SnapshotBuilder {
            db: self.db.clone(),
            body: Arc::new(SnapshotBody {
                format: SNAPSHOT_FORMAT,
                last_applied: self.last_applied,
                last_membership: self.last_membership.clone(),
                state: self.state.cloned(),
            }),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let m = meta.clone();
        // Decoded and stored on the blocking pool, from the one reassembled copy of the bytes.
        let body = self
            .db
            .run(move |db| {
                let body = decode_snapshot(&data)?;
                write_snapshot(db, &m, &data)?;
                Ok(body)
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, snapshot = %meta.snapshot_id, "cannot install the snapshot received from the leader");
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        self.state.replace(body.state);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = self
            .db
            .run(read_snapshot)
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(format: Option<u32>) -> serde_json::Value {
        let mut v = serde_json::to_value(SnapshotBody {
            format: SNAPSHOT_FORMAT,
            last_applied: None,
            last_membership: Membership::default(),
            state: ClusterState::default(),
        })
        .unwrap();
        match format {
            Some(f) => v["format"] = f.into(),
            None => drop(v.as_object_mut().unwrap().remove("format")),
        }
        v
    }

    #[test]
    fn a_snapshot_from_before_the_format_field_reads_as_format_one() {
        let data = serde_json::to_vec(&body_json(None)).unwrap();
        assert_eq!(decode_snapshot(&data).unwrap().format, 1);
    }

    #[test]
    fn a_snapshot_of_a_newer_format_is_refused_by_name() {
        let data = serde_json::to_vec(&body_json(Some(SNAPSHOT_FORMAT + 1))).unwrap();
        let err = decode_snapshot(&data).err().expect("refused");
        assert!(matches!(err, StoreError::NewerSnapshot { found, supported }
            if found == SNAPSHOT_FORMAT + 1 && supported == SNAPSHOT_FORMAT));
        assert!(err.to_string().contains("newer berth"), "{err}");
    }

    #[test]
    fn a_newer_snapshot_that_no_longer_decodes_still_names_its_format() {
        let mut v = body_json(Some(SNAPSHOT_FORMAT + 1));
        v["state"] = serde_json::json!("reshaped beyond recognition");
        let data = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            decode_snapshot(&data),
            Err(StoreError::NewerSnapshot { .. })
        ));
    }

    #[test]
    fn a_state_of_a_newer_format_is_refused_by_name() {
        let mut v = body_json(Some(SNAPSHOT_FORMAT));
        v["state"]["format"] = serde_json::json!(STATE_FORMAT + 1);
        let data = serde_json::to_vec(&v).unwrap();
        let err = decode_snapshot(&data).err().expect("refused");
        assert!(matches!(err, StoreError::NewerState { found, supported }
            if found == STATE_FORMAT + 1 && supported == STATE_FORMAT));
        assert!(err.to_string().contains("upgrade this member"), "{err}");
        // This berth's own format, and the formats before it, load.
        for format in 0..=STATE_FORMAT {
            v["state"]["format"] = serde_json::json!(format);
            let data = serde_json::to_vec(&v).unwrap();
            decode_snapshot(&data).expect("loads");
        }
    }
}
