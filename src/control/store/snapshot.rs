//! [`SnapshotBuilder`] and the stored last snapshot.
//!
//! The state is small, so a snapshot is the postcard encoding of the whole
//! [`Applied`] value (last applied id, membership, state). The last
//! snapshot is kept in its own sled tree so that it survives a restart and
//! can be sent to a lagging follower.

use std::io::Cursor;
use std::sync::Arc;

use openraft::{ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use sled::Batch;

use super::codec::{decode, encode, flush, io_err, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META};
use super::Applied;
use crate::control::types::{Snapshot, SnapshotMeta, StorageError, TypeConfig};

/// Builds a snapshot of the state applied when it was created.
pub struct SnapshotBuilder {
    pub(crate) db: sled::Db,
    pub(crate) snapshots: sled::Tree,
    pub(crate) applied: Arc<Applied>,
}

fn snap_err(verb: ErrorVerb, context: &str, cause: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::Snapshot(None), verb, context, cause)
}

/// The snapshot's bytes: `applied`, whole.
pub(crate) fn encode_snapshot(applied: &Applied) -> Result<Vec<u8>, StorageError> {
    encode(applied).map_err(|e| snap_err(ErrorVerb::Write, "encoding the snapshot", e))
}

/// Decodes snapshot bytes; a snapshot that does not decode is an error,
/// never an empty state.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<Applied, StorageError> {
    decode(bytes).map_err(|e| snap_err(ErrorVerb::Read, "decoding the snapshot", e))
}

/// The batch that stores `meta` and `data` as the last snapshot.
pub(crate) fn snapshot_batch(meta: &SnapshotMeta, data: &[u8]) -> Result<Batch, StorageError> {
    let meta = encode(meta).map_err(|e| snap_err(ErrorVerb::Write, "encoding its meta", e))?;
    let mut batch = Batch::default();
    batch.insert(KEY_SNAPSHOT_META, meta);
    batch.insert(KEY_SNAPSHOT_DATA, data);
    Ok(batch)
}

/// Reads the stored last snapshot, if any.
pub(crate) fn read_snapshot(snapshots: &sled::Tree) -> Result<Option<Snapshot>, StorageError> {
    let read = |key: &[u8]| {
        snapshots
            .get(key)
            .map_err(|e| snap_err(ErrorVerb::Read, "reading the snapshot", e))
    };
    match (read(KEY_SNAPSHOT_META)?, read(KEY_SNAPSHOT_DATA)?) {
        (Some(meta), Some(data)) => {
            let meta: SnapshotMeta =
                decode(&meta).map_err(|e| snap_err(ErrorVerb::Read, "decoding its meta", e))?;
            Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data.to_vec())),
            }))
        }
        (None, None) => Ok(None),
        _ => Err(snap_err(
            ErrorVerb::Read,
            "reading the snapshot",
            "only one of its meta and data is stored",
        )),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data = encode_snapshot(&self.applied)?;
        let last = self.applied.last_applied;
        // Unique per build: the index names the content, the UUID tells two
        // builds at the same index apart.
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, uuid::Uuid::new_v4()),
            None => format!("none-{}", uuid::Uuid::new_v4()),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.applied.membership.clone(),
            snapshot_id,
        };
        self.snapshots
            .apply_batch(snapshot_batch(&meta, &data)?)
            .map_err(|e| snap_err(ErrorVerb::Write, "storing the snapshot", e))?;
        flush(&self.db)
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, "flushing the snapshot", e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
