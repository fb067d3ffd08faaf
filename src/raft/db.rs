//! The one redb file (`<data_dir>/raft.redb`) that holds the log, the Raft metadata and the last
//! snapshot, shared by the log store and the state machine.
//!
//! One file rather than two: redb locks its file for the whole process, a single write
//! transaction can never half-apply, and a data directory is one thing to back up.
//!
//! redb is synchronous and a durable commit waits for `fsync`. Every call runs on tokio's
//! blocking pool ([`Db::run`]) so a slow disk never stalls the Raft core or other tasks on the
//! async workers; the cost is one thread hop (microseconds) per storage call, small beside the
//! `fsync` of each append.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

use super::log_store::LogStore;
use super::state_machine::StateMachine;

/// Log entries: index → JSON of `openraft::Entry`.
pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Raft metadata, JSON values under [`VOTE`], [`COMMITTED`], [`LAST_PURGED`].
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
/// The last snapshot: JSON of its `SnapshotMeta` under [`SNAPSHOT_META`], its bytes under
/// [`SNAPSHOT_DATA`].
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

pub(crate) const VOTE: &str = "vote";
pub(crate) const COMMITTED: &str = "committed";
pub(crate) const LAST_PURGED: &str = "last_purged";
pub(crate) const SNAPSHOT_META: &str = "meta";
pub(crate) const SNAPSHOT_DATA: &str = "data";

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "raft.redb";

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed: I/O error, corrupted file, or the file is open in another process.
    #[error("raft database: {0}")]
    Db(#[source] redb::Error),
    /// A stored value could not be encoded or decoded (written by an incompatible version?).
    #[error("raft database: bad stored value")]
    Json(#[from] serde_json::Error),
    /// The stored or received snapshot was written by a newer berth in a format this one does
    /// not read. Upgrade this member.
    #[error("snapshot format {found} is newer than this berth reads (up to {supported}): written by a newer berth? upgrade this member")]
    NewerSnapshot { found: u32, supported: u32 },
    /// The snapshot's envelope is readable but the state inside is of a newer format (see
    /// `STATE_FORMAT`): decoding it would silently drop what this berth does not know.
    #[error("state format {found} is newer than this berth reads (up to {supported}): written by a newer berth? upgrade this member")]
    NewerState { found: u32, supported: u32 },
    /// The blocking task running the operation panicked or was cancelled.
    #[error("raft database: storage task failed")]
    Task(#[from] tokio::task::JoinError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// A shared handle on the open database.
///
/// Each clone carries a token of the [`StoresClosed`] tracker, so whoever opened the stores can
/// wait until openraft's tasks have let go of every handle and the file lock is released: only
/// then can the same directory be opened again in this process.
#[derive(Clone)]
pub(crate) struct Db {
    // Declared before `_open`: the database closes before the token says so.
    db: Arc<Database>,
    /// Bytes of log entries appended since the last snapshot began: what the size trigger of
    /// snapshots reads (see `snapshot_trigger.rs`).
    pub(crate) appended: Arc<AtomicU64>,
    _open: TaskTrackerToken,
}

impl Db {
    /// Runs `f` on the blocking pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await?
    }
}

/// Resolves once every handle on the database is dropped.
pub struct StoresClosed(TaskTracker);

impl StoresClosed {
    /// Waits until the database file is closed.
    pub async fn wait(self) {
        self.0.close();
        self.0.wait().await;
    }
}

/// The log store and state machine of one node, on `<data_dir>/raft.redb`.
pub struct Stores {
    pub log: LogStore,
    pub state_machine: StateMachine,
    pub closed: StoresClosed,
}

impl Stores {
    /// Opens (or creates) the database in `data_dir` and loads the last snapshot into the state
    /// machine. After a crash redb repairs the file first, which may take a moment.
    pub async fn open(data_dir: &Path) -> Result<Stores, StoreError> {
        let path: PathBuf = data_dir.join(DB_FILE);
        let database = tokio::task::spawn_blocking(move || open_database(&path)).await??;
        let tracker = TaskTracker::new();
        let db = Db {
            db: Arc::new(database),
            appended: Arc::default(),
            _open: tracker.token(),
        };
        let state_machine = StateMachine::open(db.clone()).await?;
        Ok(Stores {
            log: LogStore::new(db),
            state_machine,
            closed: StoresClosed(tracker),
        })
    }
}

/// The page cache redb keeps in memory. Its default is 1 GiB, and snapshots of a large state
/// (tens of MiB each) and the log fill it: berth's RSS grew towards it at 100,000 replicas.
/// The log is read back only by followers catching up and at start-up.
const CACHE_BYTES: usize = 32 << 20;

/// Opens the file and creates the tables, so readers never meet a missing table.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)?;
    let tx = db.begin_write()?;
    tx.open_table(LOGS)?;
    tx.open_table(META)?;
    tx.open_table(SNAPSHOT)?;
    tx.commit()?;
    // Fail now, not at the first read, if the file is unreadable.
    db.begin_read()?;
    Ok(db)
}
