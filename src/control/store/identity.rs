//! [`DataDir`]: the identity recorded in a data dir (cluster id, node
//! UUID), so that a node never joins a cluster with another cluster's data
//! and a wiped disk is recognisable (a new UUID under a known node id).

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::codec::{KEY_CLUSTER_ID, KEY_FORMAT, KEY_NODE_UUID, STORAGE_FORMAT};
use super::StoreError;

/// The identity of a data dir, read (or created) when the store opens.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
    meta: sled::Tree,
    node_uuid: Uuid,
    fresh: bool,
}

/// Refuses a data dir written in another storage format (one without a
/// format record predates v1).
fn check_format(path: &Path, meta: &sled::Tree) -> Result<(), StoreError> {
    let found = stored_format(meta)?;
    if found != STORAGE_FORMAT {
        return Err(StoreError::Format {
            path: path.to_path_buf(),
            found,
            supported: STORAGE_FORMAT,
        });
    }
    Ok(())
}

/// The storage format recorded in `meta` (0 when none is).
pub(crate) fn stored_format(meta: &sled::Tree) -> Result<u32, StoreError> {
    let stored = meta
        .get(KEY_FORMAT)
        .map_err(StoreError::io("reading the storage format"))?;
    Ok(match stored.as_deref().map(<[u8; 4]>::try_from) {
        Some(Ok(b)) => u32::from_be_bytes(b),
        Some(Err(_)) | None => 0,
    })
}

impl DataDir {
    /// Reads the node UUID from the meta tree, or creates one (and flushes
    /// it) on a data dir that has none: that data dir is *fresh*.
    pub(crate) fn open(path: &Path, db: &sled::Db, meta: sled::Tree) -> Result<Self, StoreError> {
        let stored = meta
            .get(KEY_NODE_UUID)
            .map_err(StoreError::io("reading the node UUID"))?;
        let (node_uuid, fresh) = match stored {
            Some(bytes) => {
                let uuid = Uuid::from_slice(&bytes).map_err(|e| StoreError::Inconsistent {
                    detail: format!("stored node UUID: {e}"),
                })?;
                check_format(path, &meta)?;
                (uuid, false)
            }
            None => {
                let uuid = Uuid::new_v4();
                meta.insert(KEY_FORMAT, &STORAGE_FORMAT.to_be_bytes())
                    .map_err(StoreError::io("writing the storage format"))?;
                meta.insert(KEY_NODE_UUID, uuid.as_bytes())
                    .map_err(StoreError::io("writing the node UUID"))?;
                db.flush()
                    .map_err(StoreError::io("flushing the node UUID"))?;
                (uuid, true)
            }
        };
        Ok(DataDir {
            path: path.to_path_buf(),
            meta,
            node_uuid,
            fresh,
        })
    }

    /// This node's UUID, created with the data dir.
    pub fn node_uuid(&self) -> Uuid {
        self.node_uuid
    }

    /// Whether the data dir had no identity when it was opened (first
    /// start, or a wiped disk). A node that is a known voter must refuse to
    /// start when this is true.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// The data dir's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cluster id recorded in the data dir, if any.
    pub fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        let stored = self
            .meta
            .get(KEY_CLUSTER_ID)
            .map_err(StoreError::io("reading the cluster id"))?;
        stored
            .map(|b| {
                String::from_utf8(b.to_vec()).map_err(|e| StoreError::Inconsistent {
                    detail: format!("stored cluster id is not UTF-8: {e}"),
                })
            })
            .transpose()
    }

    /// Binds the data dir to `cluster_id` on first use (written and
    /// flushed); afterwards refuses with [`StoreError::ClusterMismatch`]
    /// when the data dir belongs to another cluster.
    pub fn check(&self, cluster_id: &str) -> Result<(), StoreError> {
        match self.cluster_id()? {
            Some(found) if found == cluster_id => Ok(()),
            Some(found) => Err(StoreError::ClusterMismatch {
                path: self.path.clone(),
                found,
                expected: cluster_id.to_string(),
            }),
            None => {
                self.meta
                    .insert(KEY_CLUSTER_ID, cluster_id.as_bytes())
                    .map_err(StoreError::io("writing the cluster id"))?;
                self.meta
                    .flush()
                    .map_err(StoreError::io("flushing the cluster id"))?;
                Ok(())
            }
        }
    }
}
