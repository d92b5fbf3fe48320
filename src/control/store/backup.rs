//! Backups of the replicated state, and seeding a new cluster from one.
//!
//! A backup is the [`Applied`] value of one node at one applied index (a
//! committed prefix of the log: consistent by construction), wrapped in a
//! small file format so that a truncated, foreign or damaged file is
//! refused before anything is written:
//!
//! ```text
//! magic "TOPODBK1" | storage format u32 BE | payload length u64 BE |
//! payload (postcard Backup) | CRC-32 (IEEE) u32 BE of everything before
//! ```
//!
//! Backups of storage format 3 (taken before the tokens existed) are read
//! too and restore with no tokens; other formats are refused.
//!
//! [`seed_data_dir`] writes a new data dir from a backup: the state,
//! history and policy as they were, under a membership of this one node
//! (the only voter), as if the log up to the backup's index had been
//! applied and purged into a snapshot. The node then starts as a
//! single-node cluster and elects itself in the next term.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec::{
    encode, KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE, META_TREE, SM_TREE, SNAPSHOT_TREE,
    STORAGE_FORMAT,
};
use super::snapshot::{encode_snapshot, snapshot_batch};
use super::{Applied, DataDir, StoreError};
use crate::control::types::{LogId, NodeAddr, SnapshotMeta, StoredMembership, Vote};
use crate::model::NodeId;

/// First bytes of a backup file.
pub const BACKUP_MAGIC: &[u8; 8] = b"TOPODBK1";
/// Largest backup written or read: 64 MiB. Guess with a wide margin: the
/// state is a few hundred KiB with the default history retention.
pub const MAX_BACKUP_BYTES: usize = 64 << 20;
/// magic + format + length.
const HEADER_BYTES: usize = 8 + 4 + 8;
const CRC_BYTES: usize = 4;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// The cluster it was taken from.
    pub cluster_id: String,
    /// The node that served it.
    pub node_id: NodeId,
    /// Wall-clock time it was taken (Unix ms), for operators only.
    pub taken_at_ms: u64,
    /// The applied state: topology, history, policy, last applied id and
    /// membership of the source cluster.
    pub applied: Applied,
}

/// A backup of storage format 3 (before the tokens), read and converted:
/// it restores with no tokens.
#[derive(Debug, Serialize, Deserialize)]
struct BackupV3 {
    cluster_id: String,
    node_id: NodeId,
    taken_at_ms: u64,
    state: crate::model::v3::StoredState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl From<BackupV3> for Backup {
    fn from(b: BackupV3) -> Self {
        Backup {
            cluster_id: b.cluster_id,
            node_id: b.node_id,
            taken_at_ms: b.taken_at_ms,
            applied: Applied {
                state: b.state.into(),
                last_applied: b.last_applied,
                membership: b.membership,
            },
        }
    }
}

/// Why a backup could not be written, read or restored. In every case
/// nothing was written: a data dir that restore created is removed again.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a topod backup: {0}")]
    NotABackup(&'static str),
    #[error(
        "backup of storage format {found}; this build reads format {supported} \
         (restore it with the build that took it)"
    )]
    Format { found: u32, supported: u32 },
    #[error("backup is truncated or padded: the header says {declared} payload bytes, the file holds {actual}")]
    Length { declared: u64, actual: u64 },
    #[error("backup is damaged: checksum {found:08x}, expected {expected:08x}")]
    Checksum { found: u32, expected: u32 },
    #[error("backup of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("backup payload cannot be decoded: {0}")]
    Decode(postcard::Error),
    #[error("backup cannot be encoded: {0}")]
    Encode(postcard::Error),
    #[error("backup holds no applied entry: there is nothing to restore")]
    Empty,
    #[error("data dir {path} exists and is not empty: restore seeds a new data dir only")]
    DataDirNotEmpty { path: PathBuf },
    #[error("data dir {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Backup {
    /// The backup file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BackupError> {
        let payload = encode(self).map_err(BackupError::Encode)?;
        let total = HEADER_BYTES + payload.len() + CRC_BYTES;
        if total > MAX_BACKUP_BYTES {
            return Err(BackupError::TooLarge {
                bytes: total,
                limit: MAX_BACKUP_BYTES,
            });
        }
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(BACKUP_MAGIC);
        out.extend_from_slice(&STORAGE_FORMAT.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        Ok(out)
    }

    /// Reads a backup file's bytes, checking magic, format, length and
    /// checksum before decoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Backup, BackupError> {
        if bytes.len() > MAX_BACKUP_BYTES {
            return Err(BackupError::TooLarge {
                bytes: bytes.len(),
                limit: MAX_BACKUP_BYTES,
            });
        }
        if bytes.len() < HEADER_BYTES + CRC_BYTES {
            return Err(BackupError::NotABackup("shorter than its header"));
        }
        if &bytes[..8] != BACKUP_MAGIC {
            return Err(BackupError::NotABackup("no TOPODBK1 header"));
        }
        let format = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let declared = u64::from_be_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let actual = (bytes.len() - HEADER_BYTES - CRC_BYTES) as u64;
        if declared != actual {
            return Err(BackupError::Length { declared, actual });
        }
        let (body, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
        let expected = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
        let found = crc32fast::hash(body);
        if found != expected {
            return Err(BackupError::Checksum { found, expected });
        }
        let payload = &body[HEADER_BYTES..];
        let backup: Backup = match format {
            STORAGE_FORMAT => super::codec::decode(payload).map_err(BackupError::Decode)?,
            3 => super::codec::decode::<BackupV3>(payload)
                .map_err(BackupError::Decode)?
                .into(),
            _ => {
                return Err(BackupError::Format {
                    found: format,
                    supported: STORAGE_FORMAT,
                })
            }
        };
        if backup.applied.last_applied.is_none() {
            return Err(BackupError::Empty);
        }
        Ok(backup)
    }
}

/// What [`seed_data_dir`] wrote.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The UUID of the new data dir.
    pub node_uuid: uuid::Uuid,
    /// The index the new cluster starts after.
    pub index: u64,
    /// The term of that index.
    pub term: u64,
}

/// Seeds a new data dir at `dir` (absent or empty) from `backup`, for node
/// `node_id` of cluster `cluster_id` reachable at `me` (its UUID is
/// created here). Refuses a data dir that holds anything. On failure a
/// data dir it created is removed and an empty one emptied again.
pub fn seed_data_dir(
    dir: &Path,
    cache_bytes: u64,
    cluster_id: &str,
    node_id: NodeId,
    me: NodeAddr,
    backup: &Backup,
) -> Result<Seeded, BackupError> {
    let io = |source| BackupError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let existed = dir.exists();
    if existed && std::fs::read_dir(dir).map_err(io)?.next().is_some() {
        return Err(BackupError::DataDirNotEmpty {
            path: dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let seeded = write_seed(dir, cache_bytes, cluster_id, node_id, me, backup);
    if seeded.is_err() {
        let undone = if existed {
            empty_dir(dir)
        } else {
            std::fs::remove_dir_all(dir)
        };
        if let Err(e) = undone {
            tracing::error!(dir = %dir.display(), error = %e, "could not undo a failed restore");
        }
    }
    seeded
}

fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

fn write_seed(
    dir: &Path,
    cache_bytes: u64,
    cluster_id: &str,
    node_id: NodeId,
    mut me: NodeAddr,
    backup: &Backup,
) -> Result<Seeded, BackupError> {
    let source = backup.applied.last_applied.ok_or(BackupError::Empty)?;
    let db = super::database::open_db(dir, cache_bytes)?;
    let tree = |name: &str| db.open_tree(name).map_err(StoreError::io("opening a tree"));
    let (meta, sm, snapshots) = (tree(META_TREE)?, tree(SM_TREE)?, tree(SNAPSHOT_TREE)?);
    let identity = DataDir::open(dir, &db, meta.clone())?;
    identity.check(cluster_id)?;
    me.node_uuid = identity.node_uuid().to_string();

    // The last applied id is re-stamped as this node's in the backup's
    // term, with a vote for itself in that term: its first election is
    // then in the next term, above every id in the new log.
    let term = source.leader_id.term;
    let last = LogId::new(
        openraft::CommittedLeaderId::new(term, node_id),
        source.index,
    );
    let membership = openraft::Membership::new(
        vec![BTreeSet::from([node_id])],
        BTreeMap::from([(node_id, me)]),
    );
    let applied = Applied {
        state: backup.applied.state.clone(),
        last_applied: Some(last),
        membership: StoredMembership::new(Some(last), membership),
    };
    let batch = applied
        .to_batch(None)
        .map_err(StoreError::corrupt("restored state"))?;
    sm.apply_batch(batch)
        .map_err(StoreError::io("writing the restored state"))?;
    let snapshot_meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: applied.membership.clone(),
        snapshot_id: format!("{}-{}-restored", term, source.index),
    };
    let data = encode_snapshot(&applied).map_err(|e| StoreError::Inconsistent {
        detail: e.to_string(),
    })?;
    let batch = snapshot_batch(&snapshot_meta, &data).map_err(|e| StoreError::Inconsistent {
        detail: e.to_string(),
    })?;
    snapshots
        .apply_batch(batch)
        .map_err(StoreError::io("writing the restored snapshot"))?;
    let enc = |what: &'static str, v: Result<Vec<u8>, postcard::Error>| {
        v.map_err(StoreError::corrupt(what))
    };
    let vote = Vote::new(term, node_id);
    let mut batch = sled::Batch::default();
    batch.insert(KEY_VOTE, enc("vote", encode(&vote))?);
    batch.insert(KEY_COMMITTED, enc("committed id", encode(&Some(last)))?);
    batch.insert(KEY_LAST_PURGED, enc("purged id", encode(&last))?);
    meta.apply_batch(batch)
        .map_err(StoreError::io("writing the restored log state"))?;
    db.flush()
        .map_err(StoreError::io("flushing the restored data dir"))?;
    Ok(Seeded {
        node_uuid: identity.node_uuid(),
        index: source.index,
        term,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup() -> Backup {
        let last = LogId::new(openraft::CommittedLeaderId::new(4, 2), 17);
        Backup {
            cluster_id: "c".into(),
            node_id: 2,
            taken_at_ms: 1,
            applied: Applied {
                last_applied: Some(last),
                ..Applied::default()
            },
        }
    }

    #[test]
    fn a_backup_reads_back_as_written() {
        let b = backup();
        assert_eq!(
            Backup::from_bytes(&b.to_bytes().expect("encode")).expect("decode"),
            b
        );
    }

    #[test]
    fn every_damage_is_named() {
        let good = backup().to_bytes().expect("encode");
        let err = |bytes: &[u8]| Backup::from_bytes(bytes).expect_err("refused");
        assert!(matches!(err(b"short"), BackupError::NotABackup(_)));
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(err(&magic), BackupError::NotABackup(_)));
        assert!(matches!(
            err(&good[..good.len() - 1]),
            BackupError::Length { .. }
        ));
        let mut flipped = good.clone();
        flipped[HEADER_BYTES] ^= 1;
        assert!(matches!(err(&flipped), BackupError::Checksum { .. }));
        // Another storage format, with a checksum that matches it.
        let mut other = good[..good.len() - CRC_BYTES].to_vec();
        other[8..12].copy_from_slice(&(STORAGE_FORMAT + 1).to_be_bytes());
        let crc = crc32fast::hash(&other);
        other.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            err(&other),
            BackupError::Format { found, .. } if found == STORAGE_FORMAT + 1
        ));
        let mut empty = backup();
        empty.applied.last_applied = None;
        let bytes = empty.to_bytes().expect("encode");
        assert!(matches!(err(&bytes), BackupError::Empty));
    }

    #[test]
    fn a_format_3_backup_reads_back_without_tokens() {
        let b = backup();
        let s = &b.applied.state;
        let old = BackupV3 {
            cluster_id: b.cluster_id.clone(),
            node_id: b.node_id,
            taken_at_ms: b.taken_at_ms,
            state: crate::model::v3::StoredState {
                topology: s.topology,
                config: s.config.clone(),
                epoch: s.epoch,
                current_instance: s.current_instance,
                previous_config: s.previous_config.clone(),
                in_flight: s.in_flight.clone(),
                policy: s.policy.clone(),
                policy_set: s.policy_set,
                last_switch_ms: s.last_switch_ms,
                last_stamp_ms: s.last_stamp_ms,
                history: (*s.history).clone(),
                requests: s.requests.clone(),
            },
            last_applied: b.applied.last_applied,
            membership: b.applied.membership.clone(),
        };
        let payload = encode(&old).expect("encode");
        let mut bytes = BACKUP_MAGIC.to_vec();
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&payload);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        let read = Backup::from_bytes(&bytes).expect("a format-3 backup reads");
        assert_eq!(read, b, "the same backup, with no tokens");
        assert!(read.applied.state.tokens.records.is_empty());
    }

    #[test]
    fn a_seeded_data_dir_opens_with_the_state_and_a_single_voter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new");
        let me = NodeAddr {
            api_addr: "127.0.0.1:1".into(),
            raft_addr: "127.0.0.1:2".into(),
            peer_addr: "127.0.0.1:3".into(),
            node_uuid: String::new(),
        };
        let seeded = seed_data_dir(&path, 1 << 20, "new", 9, me, &backup()).expect("seeded");
        assert_eq!((seeded.index, seeded.term), (17, 4));
        let store = super::super::Store::open(&path, 1 << 20).expect("opens");
        assert!(!store.identity().is_fresh());
        assert_eq!(
            store.identity().cluster_id().expect("read"),
            Some("new".into())
        );
        let applied = store.applied();
        assert_eq!(applied.applied_index(), 17);
        assert_eq!(applied.members(), vec![9]);
        let addr = &applied
            .membership
            .membership()
            .get_node(&9)
            .expect("node 9")
            .node_uuid;
        assert_eq!(addr, &seeded.node_uuid.to_string());
    }
}
