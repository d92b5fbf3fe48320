//! [`LogStore`]: the Raft log, vote, committed and last-purged ids in sled.
//!
//! Durability: `append` calls openraft's callback only after the batch is
//! flushed, and `save_vote` returns only after the vote is flushed. A flush
//! survives a process crash (see [`super`] on power loss).

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogId, RaftLogReader};
use sled::{Batch, Transactional};

use super::codec::{
    decode, encode, flush, index_key, io_err, KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE,
};
use crate::control::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The Raft log store. Cheap to clone: clones share the database (the
/// clone handed out by `get_log_reader` reads the same log).
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("entries", &self.log.len())
            .finish()
    }
}

impl LogStore {
    pub(crate) fn new(db: sled::Db, log: sled::Tree, meta: sled::Tree) -> Self {
        LogStore { db, log, meta }
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        subject: ErrorSubject<u64>,
    ) -> Result<Option<T>, StorageError> {
        let what = String::from_utf8_lossy(key);
        let bytes = self
            .meta
            .get(key)
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Read, &what, e))?;
        match bytes {
            None => Ok(None),
            Some(b) => decode(&b)
                .map(Some)
                .map_err(|e| io_err(subject, ErrorVerb::Read, format!("decoding {what}"), e)),
        }
    }

    fn write_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        subject: ErrorSubject<u64>,
    ) -> Result<(), StorageError> {
        let what = String::from_utf8_lossy(key);
        let bytes = encode(value).map_err(|e| {
            io_err(
                subject.clone(),
                ErrorVerb::Write,
                format!("encoding {what}"),
                e,
            )
        })?;
        self.meta
            .insert(key, bytes)
            .map_err(|e| io_err(subject, ErrorVerb::Write, &what, e))?;
        Ok(())
    }

    async fn flush(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        flush(&self.db)
            .await
            .map_err(|e| io_err(subject, ErrorVerb::Write, "flushing", e))
    }

    fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry, StorageError> {
        decode(bytes).map_err(|e| {
            io_err(
                ErrorSubject::LogIndex(index),
                ErrorVerb::Read,
                format!("decoding the log entry at index {index}"),
                e,
            )
        })
    }

    fn key_index(key: &[u8]) -> Result<u64, StorageError> {
        let arr: [u8; 8] = key.try_into().map_err(|_| {
            io_err(
                ErrorSubject::Logs,
                ErrorVerb::Read,
                "log key",
                format!("{} bytes instead of 8", key.len()),
            )
        })?;
        Ok(u64::from_be_bytes(arr))
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let last = self
            .log
            .last()
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, "last entry", e))?;
        match last {
            None => Ok(None),
            Some((k, v)) => {
                let entry = Self::decode_entry(Self::key_index(&k)?, &v)?;
                Ok(Some(*entry.get_log_id()))
            }
        }
    }

    /// Keys of the entries in `range`.
    fn keys_in(
        &self,
        range: (Bound<[u8; 8]>, Bound<[u8; 8]>),
    ) -> Result<Vec<sled::IVec>, StorageError> {
        self.log
            .range(range)
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, "listing log keys", e))
    }
}

fn key_bound(b: Bound<&u64>) -> Bound<[u8; 8]> {
    match b {
        Bound::Included(i) => Bound::Included(index_key(*i)),
        Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds = (key_bound(range.start_bound()), key_bound(range.end_bound()));
        let mut entries = Vec::new();
        for item in self.log.range(bounds) {
            let (k, v) = item.map_err(|e| {
                io_err(ErrorSubject::Logs, ErrorVerb::Read, format!("{range:?}"), e)
            })?;
            entries.push(Self::decode_entry(Self::key_index(&k)?, &v)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> =
            self.read_meta(KEY_LAST_PURGED, ErrorSubject::Logs)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(KEY_VOTE, vote, ErrorSubject::Vote)?;
        self.flush(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed: openraft only uses it to re-apply faster after a
        // restart, and a lost value is recomputed from the quorum.
        self.write_meta(KEY_COMMITTED, &committed, ErrorSubject::Store)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId>>(KEY_COMMITTED, ErrorSubject::Store)?
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
        let mut batch = Batch::default();
        for entry in entries {
            let log_id = *entry.get_log_id();
            let bytes = encode(&entry)
                .map_err(|e| io_err(ErrorSubject::Log(log_id), ErrorVerb::Write, "encoding", e))?;
            batch.insert(&index_key(log_id.index), bytes);
        }
        let written = self
            .log
            .apply_batch(batch)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, "appending", e));
        let result = match written {
            Ok(()) => self.flush(ErrorSubject::Logs).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let keys = self.keys_in((Bound::Included(index_key(log_id.index)), Bound::Unbounded))?;
        let mut batch = Batch::default();
        for k in keys {
            batch.remove(k);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, "truncating", e))?;
        // Flushed so that truncated entries of an old leader cannot come
        // back after a crash and be mistaken for the new ones.
        self.flush(ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let keys = self.keys_in((Bound::Unbounded, Bound::Included(index_key(log_id.index))))?;
        let purged = encode(&log_id)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, "encoding", e))?;
        // One transaction: last_purged and the removed entries never disagree.
        (&self.log, &self.meta)
            .transaction(|(log, meta)| {
                meta.insert(KEY_LAST_PURGED, purged.clone())?;
                for k in &keys {
                    log.remove(k)?;
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                io_err(
                    ErrorSubject::Logs,
                    ErrorVerb::Delete,
                    "purging",
                    format!("{e:?}"),
                )
            })
    }
}
