//! [`Store`]: opens a node's sled database and splits it into the parts
//! openraft needs.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use super::codec::{LOG_TREE, META_TREE, SM_TREE, SNAPSHOT_TREE, STORAGE_FORMAT};
use super::{Applied, DataDir, LogStore, StateMachineStore, StoreError};

/// Default sled page cache: 8 MiB. Guess: the state is a few hundred KiB
/// and the log is purged after snapshots; sled's own default (1 GiB) would
/// reserve 5 GiB for five nodes on one machine.
pub const DEFAULT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A node's opened storage.
pub struct Store {
    log: LogStore,
    state_machine: StateMachineStore,
    identity: DataDir,
}

/// Opens (or creates) the sled database in `dir` with a page cache of
/// `cache_bytes` (the store's and a restore's way in).
pub(crate) fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .open()
        .map_err(|source| StoreError::Open {
            path: dir.to_path_buf(),
            source,
        })
}

impl Store {
    /// Opens (or creates) the database in `dir` with a page cache of
    /// `cache_bytes`, loads the applied state and the identity.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = open_db(dir, cache_bytes)?;
        let tree = |name: &str| db.open_tree(name).map_err(StoreError::io("opening a tree"));
        let (log, meta, sm, snapshots) = (
            tree(LOG_TREE)?,
            tree(META_TREE)?,
            tree(SM_TREE)?,
            tree(SNAPSHOT_TREE)?,
        );
        let format = super::identity::stored_format(&meta)?;
        if (1..STORAGE_FORMAT).contains(&format) {
            super::migrate::migrate(format, &db, &meta, &sm, &snapshots)?;
        }
        let identity = DataDir::open(dir, &db, meta.clone())?;
        let state_machine = StateMachineStore::open(db.clone(), sm, snapshots)?;
        Ok(Store {
            log: LogStore::new(db, log, meta),
            state_machine,
            identity,
        })
    }

    /// The data dir's identity.
    pub fn identity(&self) -> &DataDir {
        &self.identity
    }

    /// A receiver of the applied state (see [`StateMachineStore::subscribe`]).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Applied>> {
        self.state_machine.subscribe()
    }

    /// The applied state loaded at open or applied since.
    pub fn applied(&self) -> Arc<Applied> {
        self.state_machine.applied()
    }

    /// A handle on the log (clones share the database).
    pub fn log_store(&self) -> LogStore {
        self.log.clone()
    }

    /// The parts to hand to `openraft::Raft::new`, and the identity.
    pub fn into_parts(self) -> (LogStore, StateMachineStore, DataDir) {
        (self.log, self.state_machine, self.identity)
    }
}
