//! [`StoreError`]: what can go wrong when opening the store or checking its
//! identity, outside of openraft's calls (those return openraft's
//! [`StorageError`](crate::control::types::StorageError), which is fatal to
//! the node).

use std::path::PathBuf;

/// An error of the storage module outside of openraft's storage traits.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled could not open the database (missing permissions, a lock held
    /// by another process, corrupt files). Nothing was written.
    #[error("cannot open the data dir {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    /// A read, write or flush failed. A write may or may not have reached
    /// the disk: treat the store as unusable and stop the node.
    #[error("storage IO failed while {doing}: {source}")]
    Io {
        doing: &'static str,
        #[source]
        source: sled::Error,
    },
    /// A stored value could not be decoded (corruption, or a data dir
    /// written by an incompatible version). Nothing was changed.
    #[error("stored {what} cannot be decoded: {source}")]
    Corrupt {
        what: &'static str,
        #[source]
        source: postcard::Error,
    },
    /// Stored values contradict each other (they are written together, so
    /// this is corruption). Nothing was changed.
    #[error("data dir is inconsistent: {detail}")]
    Inconsistent { detail: String },
    /// The data dir belongs to another cluster. Nothing was changed.
    #[error(
        "data dir {path} belongs to cluster {found:?}, not {expected:?}: \
         point this node at its own data dir or wipe it deliberately"
    )]
    ClusterMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// The data dir was written in a storage format this build does not
    /// read. Nothing was written.
    #[error(
        "data dir {} has storage format v{found}; this build reads v{supported} only: \
         run the topod version that wrote it, or start from an empty data dir",
        path.display()
    )]
    Format {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

impl StoreError {
    pub(crate) fn io(doing: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |source| StoreError::Io { doing, source }
    }

    pub(crate) fn corrupt(what: &'static str) -> impl FnOnce(postcard::Error) -> StoreError {
        move |source| StoreError::Corrupt { what, source }
    }
}
