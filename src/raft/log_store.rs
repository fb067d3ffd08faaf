//! The durable Raft log: entries, vote, committed and purged log ids in `raft.redb`.
//!
//! Durability: entries, the vote, truncations and purges are committed with
//! `Durability::Immediate` (fsync) before openraft is told they are written. The committed log id
//! is saved with `Durability::None`: it becomes durable with the next append, and losing it in a
//! crash only means fewer entries are re-applied at start-up (openraft allows a stale committed
//! id; the entries themselves are durable and the leader commits them again, which
//! `RaftNode::wait_leader` waits for).
//!
//! One fsync per `append`: openraft 0.9 appends each client write on its own and waits for
//! `append` to return, so a leader commits about one write per disk flush (~5 ms here). Group
//! commit (non-durable commits, one background fsync for many) was tried and was slower: redb's
//! single write lock is held during the fsync, so the next append waited for it anyway. berth
//! proposes a handful of commands per Git commit or reconcile pass; this is ample.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::db::{Db, StoreError, COMMITTED, LAST_PURGED, LOGS, META, VOTE};
use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// The log half of the storage. Cheap to clone: clones share the database (they are the log
/// readers openraft hands to replication tasks).
#[derive(Clone)]
pub struct LogStore {
    db: Db,
}

impl LogStore {
    pub(crate) fn new(db: Db) -> LogStore {
        LogStore { db }
    }

    /// Number of entries currently kept in the log (after purges).
    pub async fn len(&self) -> Result<u64, StoreError> {
        self.db
            .run(|db| Ok(db.begin_read()?.open_table(LOGS)?.len()?))
            .await
    }

    /// Bytes of entries appended since the last snapshot began (an estimate: the JSON size).
    pub fn bytes_since_snapshot(&self) -> u64 {
        self.db.appended.load(Ordering::Relaxed)
    }

    /// True when the log holds no entry.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }

    async fn read_meta<T>(&self, key: &'static str) -> Result<Option<T>, StoreError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.db.run(move |db| read_meta(db, key)).await
    }

    async fn write_meta<T>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), StoreError>
    where
        T: Serialize,
    {
        let bytes = serde_json::to_vec(value)?;
        self.db
            .run(move |db| {
                let mut tx = db.begin_write()?;
                tx.set_durability(durability)?;
                tx.open_table(META)?.insert(key, bytes.as_slice())?;
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, StoreError> {
    let table = db.begin_read()?.open_table(META)?;
    let value = table.get(key)?;
    Ok(match value {
        Some(v) => Some(serde_json::from_slice(v.value())?),
        None => None,
    })
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

fn read_err(e: StoreError) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: StoreError) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        self.db
            .run(move |db| {
                let table = db.begin_read()?.open_table(LOGS)?;
                let mut entries = Vec::new();
                for item in table.range(bounds)? {
                    let (_, value) = item?;
                    entries.push(decode_entry(value.value())?);
                }
                Ok(entries)
            })
            .await
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.db
            .run(|db| {
                let last_purged: Option<LogId> = read_meta(db, LAST_PURGED)?;
                let table = db.begin_read()?.open_table(LOGS)?;
                let last_entry = match table.last()? {
                    Some((_, v)) => Some(decode_entry(v.value())?.log_id),
                    None => None,
                };
                Ok(LogState {
                    last_log_id: last_entry.or(last_purged),
                    last_purged_log_id: last_purged,
                })
            })
            .await
            .map_err(read_err)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote, Durability::Immediate)
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE)
            .await
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(COMMITTED, &committed, Durability::None)
            .await
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        // Stored as `Option<LogId>`: `Some(None)` is a saved "nothing committed".
        Ok(self
            .read_meta::<Option<LogId>>(COMMITTED)
            .await
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, serde_json::to_vec(&e)?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(write_err)?;
        let bytes: usize = encoded.iter().map(|(_, b)| b.len()).sum();
        self.db.appended.fetch_add(bytes as u64, Ordering::Relaxed);
        let written = self
            .db
            .run(move |db| {
                let tx = db.begin_write()?;
                {
                    let mut table = tx.open_table(LOGS)?;
                    for (index, bytes) in &encoded {
                        table.insert(*index, bytes.as_slice())?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await;
        // The callback fires only once the commit (and its fsync) returned: the entries are
        // durable when openraft counts them towards a quorum.
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let from = log_id.index;
        self.db
            .run(move |db| {
                let tx = db.begin_write()?;
                tx.open_table(LOGS)?.retain_in(from.., |_, _| false)?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let purged = serde_json::to_vec(&log_id).map_err(|e| write_err(e.into()))?;
        self.db
            .run(move |db| {
                let tx = db.begin_write()?;
                // The purged id is recorded in the same transaction as the deletion: the log
                // state is never "entries gone, purge unknown".
                tx.open_table(META)?
                    .insert(LAST_PURGED, purged.as_slice())?;
                tx.open_table(LOGS)?
                    .retain_in(..=log_id.index, |_, _| false)?;
                tx.commit()?;
                Ok(())
            })
            .await
            .map_err(write_err)
    }
}
