//! [`Applied`]: the state machine's applied state, and the pure step that
//! applies one log entry to it.

use std::sync::Arc;

use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftLogId};
use serde::{Deserialize, Serialize};

use super::codec::{
    decode, encode, io_err, KEY_HISTORY, KEY_LAST_APPLIED, KEY_MEMBERSHIP, KEY_STATE,
};
use super::StoreError;
use crate::control::types::{Entry, LogId, StorageError, StoredMembership};
use crate::model::{ApplyContext, CommandResponse, NodeId, TopologyState};

/// What the state machine has applied: the topology state, the id of the
/// last applied entry and the last membership. Published on a watch
/// channel after every apply; a snapshot is this value, whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub state: TopologyState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl Applied {
    /// Index of the last applied entry (0 when none).
    pub fn applied_index(&self) -> u64 {
        self.last_applied.map_or(0, |l| l.index)
    }

    /// Voters and learners of the last applied membership, ascending.
    pub fn members(&self) -> Vec<NodeId> {
        self.membership
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect()
    }

    /// Applies one entry. Blank and membership entries answer
    /// [`CommandResponse::Applied`]. An application entry that does not
    /// decode is an error naming its index: the node must stop there,
    /// never skip it. On error `self` may hold a partly applied batch and
    /// must be dropped.
    pub fn apply_entry(&mut self, entry: &Entry) -> Result<CommandResponse, StorageError> {
        let log_id = *entry.get_log_id();
        self.last_applied = Some(log_id);
        match &entry.payload {
            EntryPayload::Blank => Ok(CommandResponse::Applied),
            EntryPayload::Membership(m) => {
                self.membership = StoredMembership::new(Some(log_id), m.clone());
                Ok(CommandResponse::Applied)
            }
            EntryPayload::Normal(payload) => {
                let envelope = payload.decode().map_err(|e| {
                    io_err(
                        ErrorSubject::Apply(log_id),
                        ErrorVerb::Read,
                        format!(
                            "log entry {} (term {}) cannot be decoded; this node stops \
                             applying rather than skip it (upgrade the binary?)",
                            log_id.index, log_id.leader_id.term
                        ),
                        e,
                    )
                })?;
                let rules = envelope.rules();
                let (stamp_ms, command) = envelope.into_parts();
                let ctx = ApplyContext {
                    index: log_id.index,
                    term: log_id.leader_id.term,
                    members: self.members(),
                };
                Ok(self.state.apply_with(rules, &ctx, stamp_ms, &command))
            }
        }
    }

    /// The sled batch that writes this value into the state machine tree:
    /// state, history, last applied and membership land together or not at
    /// all. The history is written only when it is not the very allocation
    /// of `previous` (it is copy-on-write: any change makes a new one).
    pub(crate) fn to_batch(
        &self,
        previous: Option<&Applied>,
    ) -> Result<sled::Batch, postcard::Error> {
        let mut batch = sled::Batch::default();
        let history_changed =
            previous.is_none_or(|p| !Arc::ptr_eq(&p.state.history, &self.state.history));
        if history_changed {
            batch.insert(KEY_HISTORY, encode(&*self.state.history)?);
        }
        let mut rest = self.state.clone();
        rest.history = Arc::default();
        batch.insert(KEY_STATE, encode(&rest)?);
        batch.insert(KEY_LAST_APPLIED, encode(&self.last_applied)?);
        batch.insert(KEY_MEMBERSHIP, encode(&self.membership)?);
        Ok(batch)
    }

    /// Reads the value written by [`Applied::to_batch`]; the default (empty)
    /// state when nothing was ever applied.
    pub(crate) fn load(tree: &sled::Tree) -> Result<Applied, StoreError> {
        let read = |key: &[u8]| {
            tree.get(key)
                .map_err(StoreError::io("reading the state machine"))
        };
        let (state, last, membership) = (
            read(KEY_STATE)?,
            read(KEY_LAST_APPLIED)?,
            read(KEY_MEMBERSHIP)?,
        );
        let (state, last, membership) = match (state, last, membership) {
            (None, None, None) => return Ok(Applied::default()),
            (Some(s), Some(l), Some(m)) => (s, l, m),
            _ => {
                return Err(StoreError::Inconsistent {
                    detail: "the state machine tree holds only some of state, \
                             last_applied and membership"
                        .into(),
                })
            }
        };
        let mut state: TopologyState =
            decode(&state).map_err(StoreError::corrupt("topology state"))?;
        if let Some(history) = read(KEY_HISTORY)? {
            state.history =
                Arc::new(decode(&history).map_err(StoreError::corrupt("transition history"))?);
        }
        Ok(Applied {
            state,
            last_applied: decode(&last).map_err(StoreError::corrupt("last applied log id"))?,
            membership: decode(&membership).map_err(StoreError::corrupt("membership"))?,
        })
    }
}
