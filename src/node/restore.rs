//! `topod restore FILE --data-dir DIR`: seeds a new single-node cluster
//! from a backup (`topoctl snapshot save`). The node's id, cluster id and
//! addresses come from its config (file and `TOPOD_*` variables, as for
//! `topod run`); the data dir must be new. Nothing is written unless the
//! backup reads back whole and the config is usable.

use std::path::{Path, PathBuf};

use crate::config::NodeConfig;
use crate::control::store::{seed_data_dir, Backup, BackupError, Seeded, MAX_BACKUP_BYTES};

/// Why a restore did not happen. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {bytes} bytes, larger than a backup can be ({MAX_BACKUP_BYTES})")]
    TooLarge { path: PathBuf, bytes: u64 },
    #[error("{path}: {source}")]
    Backup {
        path: PathBuf,
        #[source]
        source: BackupError,
    },
    #[error(
        "`{key}` has port 0: a restored node's addresses go into its membership, give the \
         ports it will listen on"
    )]
    PortZero { key: &'static str },
    #[error(
        "initial_voters lists other nodes ({others:?}): a restored cluster starts with this \
         node as its only voter (add the others afterwards with join and promote)"
    )]
    OtherVoters { others: Vec<u64> },
    #[error(transparent)]
    Seed(#[from] BackupError),
}

/// What was restored.
#[derive(Debug, Clone)]
pub struct Restored {
    pub backup: Backup,
    pub seeded: Seeded,
}

/// Reads and checks the backup at `file`.
pub fn read_backup(file: &Path) -> Result<Backup, RestoreError> {
    let read = |source| RestoreError::Read {
        path: file.to_path_buf(),
        source,
    };
    let bytes = std::fs::metadata(file).map_err(read)?.len();
    if bytes > MAX_BACKUP_BYTES as u64 {
        return Err(RestoreError::TooLarge {
            path: file.to_path_buf(),
            bytes,
        });
    }
    let data = std::fs::read(file).map_err(read)?;
    Backup::from_bytes(&data).map_err(|source| RestoreError::Backup {
        path: file.to_path_buf(),
        source,
    })
}

/// Restores `file` into `config.data_dir` for the node `config` describes.
pub fn restore(file: &Path, config: &NodeConfig) -> Result<Restored, RestoreError> {
    let backup = read_backup(file)?;
    for (key, addr) in [
        ("api_addr", config.advertised_api_addr()),
        ("raft_addr", config.advertised_raft_addr()),
        ("peer_addr", config.advertised_peer_addr()),
    ] {
        if addr.port() == 0 {
            return Err(RestoreError::PortZero { key });
        }
    }
    let others: Vec<u64> = config
        .initial_voters
        .iter()
        .map(|v| v.id)
        .filter(|id| *id != config.node_id)
        .collect();
    if !others.is_empty() {
        return Err(RestoreError::OtherVoters { others });
    }
    let me = config.node_addr(String::new());
    let seeded = seed_data_dir(
        &config.data_dir,
        config.storage.cache_bytes,
        &config.cluster_id,
        config.node_id,
        me,
        &backup,
    )?;
    Ok(Restored { backup, seeded })
}
