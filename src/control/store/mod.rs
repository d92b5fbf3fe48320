//! Storage of a node: the Raft log and the state machine in one sled
//! database, behind openraft's v2 storage traits.
//!
//! - [`Store`] opens the database and hands out the parts.
//! - [`LogStore`] owns the log, the vote, the committed and last purged ids
//!   (`RaftLogStorage` + `RaftLogReader`).
//! - [`StateMachineStore`] owns the applied [`Applied`] state and the last
//!   snapshot (`RaftStateMachine`); [`SnapshotBuilder`] builds snapshots.
//! - [`DataDir`] owns the data dir's identity (cluster id, node UUID).
//! - [`Backup`] is a backup file of the applied state; [`seed_data_dir`]
//!   starts a new single-node cluster's data dir from one.
//!
//! Layout: one sled `Db` with the trees `log` (big-endian u64 index →
//! postcard entry), `meta` (vote, committed, last purged, identity), `sm`
//! (state, last applied, membership: always written in one batch) and
//! `snapshot` (meta and bytes of the last snapshot).
//!
//! Durability: every write that openraft or a client is told about is
//! flushed first: log appends, votes, truncations and snapshots flush; an
//! applied state batch does not, because the entries it applies are already
//! flushed in the log and are re-applied from there after a crash (see
//! [`StateMachineStore`]). sled flushes with `sync_file_range` on Linux, which
//! survives a process crash (SIGKILL) but, unlike `fdatasync`, not
//! necessarily a power loss. Errors from openraft's traits are
//! `StorageError`s, which stop the node: a log or state that cannot be read
//! or decoded is never skipped.
//!
//! sled 0.34 is kept behind this module (its README calls it beta); the
//! page cache is capped by `cache_bytes` so that several nodes fit on one
//! machine.

// openraft's `StorageError` is large (224 bytes) and fixed by its traits;
// boxing it in our helpers would only add a conversion at every call.
#![allow(clippy::result_large_err)]

mod applied;
mod backup;
mod codec;
mod database;
mod error;
mod identity;
mod log_store;
mod migrate;
mod snapshot;
mod state_machine;

pub use applied::Applied;
pub use backup::{seed_data_dir, Backup, BackupError, Seeded, BACKUP_MAGIC, MAX_BACKUP_BYTES};
pub use codec::describe_metrics;
pub use database::{Store, DEFAULT_CACHE_BYTES};
pub use error::StoreError;
pub use identity::DataDir;
pub use log_store::LogStore;
pub use snapshot::SnapshotBuilder;
pub use state_machine::StateMachineStore;
