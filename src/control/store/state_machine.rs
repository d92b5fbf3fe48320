//! [`StateMachineStore`]: applies committed entries to the topology state,
//! persists it in sled and publishes it on a watch channel.
//!
//! Each `apply` call computes the new [`Applied`] value in memory, then
//! writes state, last applied id and membership in one sled batch and
//! flushes: a crash either keeps the whole batch or none of it, so a
//! restarted node never applies a switch twice. `apply` never waits on
//! anything but the disk; the executor reads the latest published value.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend};
use sled::Transactional;
use tokio::sync::watch;

use super::codec::{flush, io_err, METRIC_APPLY_SECONDS, METRIC_PROPOSALS_APPLIED};
use super::snapshot::{decode_snapshot, read_snapshot, snapshot_batch};
use super::{Applied, SnapshotBuilder, StoreError};
use crate::control::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::model::CommandResponse;

/// The sled-backed state machine. Not `Clone`: exactly one instance
/// applies entries. Take receivers with [`StateMachineStore::subscribe`]
/// before handing it to openraft.
pub struct StateMachineStore {
    db: sled::Db,
    sm: sled::Tree,
    snapshots: sled::Tree,
    current: Arc<Applied>,
    tx: watch::Sender<Arc<Applied>>,
}

impl std::fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("last_applied", &self.current.last_applied)
            .finish()
    }
}

fn sm_err(verb: ErrorVerb, context: &str, cause: impl std::fmt::Display) -> StorageError {
    io_err(ErrorSubject::StateMachine, verb, context, cause)
}

impl StateMachineStore {
    /// Loads the persisted applied state (the default state on a fresh
    /// data dir) so a restarted node resumes where it stopped.
    pub(crate) fn open(
        db: sled::Db,
        sm: sled::Tree,
        snapshots: sled::Tree,
    ) -> Result<Self, StoreError> {
        let current = Arc::new(Applied::load(&sm)?);
        let (tx, _rx) = watch::channel(current.clone());
        Ok(StateMachineStore {
            db,
            sm,
            snapshots,
            current,
            tx,
        })
    }

    /// A receiver of the applied state; it sees the latest value at once
    /// and every later publication (intermediate values may be skipped).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Applied>> {
        self.tx.subscribe()
    }

    /// The applied state as of now.
    pub fn applied(&self) -> Arc<Applied> {
        self.current.clone()
    }

    /// Writes `next` in one batch, flushes, and only then makes it current
    /// and publishes it.
    async fn commit(&mut self, next: Applied) -> Result<(), StorageError> {
        let batch = next
            .to_batch()
            .map_err(|e| sm_err(ErrorVerb::Write, "encoding the state", e))?;
        self.sm
            .apply_batch(batch)
            .map_err(|e| sm_err(ErrorVerb::Write, "writing the state", e))?;
        flush(&self.db)
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, "flushing the state", e))?;
        self.publish(next);
        Ok(())
    }

    fn publish(&mut self, next: Applied) {
        self.current = Arc::new(next);
        self.tx.send_replace(self.current.clone());
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.current.last_applied, self.current.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let start = Instant::now();
        let mut next = (*self.current).clone();
        let mut responses = Vec::new();
        let mut app_entries = 0u64;
        for entry in entries {
            if matches!(entry.payload, EntryPayload::Normal(_)) {
                app_entries += 1;
            }
            responses.push(next.apply_entry(&entry)?);
        }
        if responses.is_empty() {
            return Ok(responses);
        }
        self.commit(next).await?;
        metrics::histogram!(METRIC_APPLY_SECONDS).record(start.elapsed().as_secs_f64());
        metrics::counter!(METRIC_PROPOSALS_APPLIED).increment(app_entries);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snapshots: self.snapshots.clone(),
            applied: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let applied = decode_snapshot(&data)?;
        if applied.last_applied != meta.last_log_id || applied.membership != meta.last_membership {
            return Err(sm_err(
                ErrorVerb::Read,
                "installing a snapshot",
                format!(
                    "its content (last applied {:?}) does not match its meta ({:?})",
                    applied.last_applied, meta.last_log_id
                ),
            ));
        }
        let state = applied
            .to_batch()
            .map_err(|e| sm_err(ErrorVerb::Write, "encoding the state", e))?;
        let snap = snapshot_batch(meta, &data)?;
        // One transaction: the state and the stored snapshot never disagree.
        (&self.sm, &self.snapshots)
            .transaction(|(sm, snapshots)| {
                sm.apply_batch(&state)?;
                snapshots.apply_batch(&snap)?;
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                sm_err(ErrorVerb::Write, "installing a snapshot", format!("{e:?}"))
            })?;
        flush(&self.db)
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, "flushing the snapshot", e))?;
        self.publish(applied);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        read_snapshot(&self.snapshots)
    }
}
