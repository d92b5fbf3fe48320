//! Migration of a data dir from storage format 1, 2 or 3 to the current
//! one (4).
//!
//! Format 2 changed the encoding of the applied state (the policy gained
//! the monitor's and rules' keys and user profiles; transitions and history
//! records gained their trigger and request id). Format 3 changed the
//! policy again (custom rules, disabled built-in rules); the history
//! records are as in format 2. Format 4 added the tokens to the state (an
//! empty set after the migration); history records are unchanged. Log
//! entries need nothing: `Envelope::V1`
//! and `V2` entries stay readable as they are. The state, the history and
//! the stored snapshot are decoded with the frozen types of their format
//! (`model::v1`, `model::v2`), converted, and written back with the new
//! format number in one sled transaction over the three trees, so a crash
//! leaves either the old format untouched or the new one complete.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::codec::{
    decode, encode, KEY_FORMAT, KEY_HISTORY, KEY_SNAPSHOT_DATA, KEY_STATE, STORAGE_FORMAT,
};
use super::{Applied, StoreError};
use crate::control::types::{LogId, StoredMembership};
use crate::model::v1::{StoredRecord, StoredState};
use crate::model::TopologyState;

/// A format-1 snapshot: the applied state with its history inside.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotV1 {
    state: StoredState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// A format-2 snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotV2 {
    state: crate::model::v2::StoredState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// A format-3 snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotV3 {
    state: crate::model::v3::StoredState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The current values of the state machine and snapshot trees, computed
/// from their old values (`None`: nothing stored under that key, or
/// nothing to change).
struct Converted {
    state: Option<Vec<u8>>,
    history: Option<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
}

fn convert_v3(sm: &sled::Tree, snapshots: &sled::Tree) -> Result<Converted, StoreError> {
    let read = |tree: &sled::Tree, key: &[u8]| {
        tree.get(key)
            .map_err(StoreError::io("reading format-3 state"))
    };
    let enc = |e: postcard::Error| StoreError::Inconsistent {
        detail: format!("encoding migrated state: {e}"),
    };
    let state = match read(sm, KEY_STATE)? {
        Some(bytes) => {
            let old: crate::model::v3::StoredState =
                decode(&bytes).map_err(StoreError::corrupt("format-3 topology state"))?;
            let mut new = TopologyState::from(old);
            new.history = Default::default();
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    let snapshot = match read(snapshots, KEY_SNAPSHOT_DATA)? {
        Some(bytes) => {
            let old: SnapshotV3 =
                decode(&bytes).map_err(StoreError::corrupt("format-3 snapshot"))?;
            let new = Applied {
                state: TopologyState::from(old.state),
                last_applied: old.last_applied,
                membership: old.membership,
            };
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    // Format 3's history records are format 4's.
    Ok(Converted {
        state,
        history: None,
        snapshot,
    })
}

fn convert_v2(sm: &sled::Tree, snapshots: &sled::Tree) -> Result<Converted, StoreError> {
    let read = |tree: &sled::Tree, key: &[u8]| {
        tree.get(key)
            .map_err(StoreError::io("reading format-2 state"))
    };
    let enc = |e: postcard::Error| StoreError::Inconsistent {
        detail: format!("encoding migrated state: {e}"),
    };
    let state = match read(sm, KEY_STATE)? {
        Some(bytes) => {
            let old: crate::model::v2::StoredState =
                decode(&bytes).map_err(StoreError::corrupt("format-2 topology state"))?;
            let mut new = TopologyState::from(old);
            new.history = Default::default();
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    let snapshot = match read(snapshots, KEY_SNAPSHOT_DATA)? {
        Some(bytes) => {
            let old: SnapshotV2 =
                decode(&bytes).map_err(StoreError::corrupt("format-2 snapshot"))?;
            let new = Applied {
                state: TopologyState::from(old.state),
                last_applied: old.last_applied,
                membership: old.membership,
            };
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    // Format 2's history records are format 3's.
    Ok(Converted {
        state,
        history: None,
        snapshot,
    })
}

fn convert_v1(sm: &sled::Tree, snapshots: &sled::Tree) -> Result<Converted, StoreError> {
    let read = |tree: &sled::Tree, key: &[u8]| {
        tree.get(key)
            .map_err(StoreError::io("reading format-1 state"))
    };
    let enc = |e: postcard::Error| StoreError::Inconsistent {
        detail: format!("encoding migrated state: {e}"),
    };
    let state = match read(sm, KEY_STATE)? {
        Some(bytes) => {
            let old: StoredState =
                decode(&bytes).map_err(StoreError::corrupt("format-1 topology state"))?;
            let mut new = TopologyState::from(old);
            new.history = Default::default();
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    let history = match read(sm, KEY_HISTORY)? {
        Some(bytes) => {
            let old: std::collections::VecDeque<StoredRecord> =
                decode(&bytes).map_err(StoreError::corrupt("format-1 history"))?;
            let new: std::collections::VecDeque<crate::model::HistoryRecord> =
                old.into_iter().map(Into::into).collect();
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    let snapshot = match read(snapshots, KEY_SNAPSHOT_DATA)? {
        Some(bytes) => {
            let old: SnapshotV1 =
                decode(&bytes).map_err(StoreError::corrupt("format-1 snapshot"))?;
            let new = Applied {
                state: TopologyState::from(old.state),
                last_applied: old.last_applied,
                membership: old.membership,
            };
            Some(encode(&new).map_err(enc)?)
        }
        None => None,
    };
    Ok(Converted {
        state,
        history,
        snapshot,
    })
}

/// Migrates a data dir of format `from` (1 to 3) to the current format,
/// in place.
pub(crate) fn migrate(
    from: u32,
    db: &sled::Db,
    meta: &sled::Tree,
    sm: &sled::Tree,
    snapshots: &sled::Tree,
) -> Result<(), StoreError> {
    let c = match from {
        1 => convert_v1(sm, snapshots)?,
        2 => convert_v2(sm, snapshots)?,
        3 => convert_v3(sm, snapshots)?,
        _ => {
            return Err(StoreError::Inconsistent {
                detail: format!("no migration from storage format {from}"),
            })
        }
    };
    let result: Result<(), TransactionError<()>> =
        (meta, sm, snapshots).transaction(|(meta, sm, snapshots)| {
            if let Some(v) = &c.state {
                sm.insert(KEY_STATE, v.as_slice())?;
            }
            if let Some(v) = &c.history {
                sm.insert(KEY_HISTORY, v.as_slice())?;
            }
            if let Some(v) = &c.snapshot {
                snapshots.insert(KEY_SNAPSHOT_DATA, v.as_slice())?;
            }
            meta.insert(KEY_FORMAT, &STORAGE_FORMAT.to_be_bytes())?;
            Ok::<(), ConflictableTransactionError<()>>(())
        });
    result.map_err(|e| StoreError::Inconsistent {
        detail: format!("migrating the data dir to format {STORAGE_FORMAT}: {e:?}"),
    })?;
    db.flush()
        .map_err(StoreError::io("flushing the migrated data dir"))?;
    tracing::info!(
        from,
        to = STORAGE_FORMAT,
        "data dir migrated to the current storage format"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use super::*;

    /// Opens a db (or store) dropped a moment ago: sled's flusher thread
    /// may still hold the file lock for a little while.
    fn retry_lock<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match open() {
                Err(e)
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other,
            }
        }
    }
    use crate::control::store::codec::{
        KEY_LAST_APPLIED, KEY_MEMBERSHIP, KEY_NODE_UUID, META_TREE, SM_TREE, SNAPSHOT_TREE,
    };
    use crate::control::store::Store;
    use crate::model::v1::Policy as PolicyV1;
    use crate::model::{Outcome, OverlayConfig, SwitchReason, Topology};

    fn record(id: u64) -> StoredRecord {
        StoredRecord {
            id,
            from: Topology::FullMesh,
            to: Topology::HyParView,
            reason: SwitchReason::Manual,
            requested_by: "api@node1".into(),
            proposed_at_ms: 10,
            outcome: Outcome::Committed {
                at_ms: 20,
                missing: vec![],
                epoch: 1,
            },
            members: vec![1],
            reports: BTreeMap::new(),
            health: BTreeMap::new(),
        }
    }

    fn state_v1(history: VecDeque<StoredRecord>) -> StoredState {
        StoredState {
            topology: Topology::HyParView,
            config: OverlayConfig::default_for(Topology::HyParView),
            epoch: 1,
            current_instance: 3,
            previous_config: Some(OverlayConfig::default_for(Topology::FullMesh)),
            in_flight: None,
            policy: PolicyV1 {
                cooldown_ms: 1234,
                auto_switch: true,
                history_retention: 50,
            },
            policy_set: true,
            last_switch_ms: Some(20),
            last_stamp_ms: 20,
            history,
            requests: VecDeque::new(),
        }
    }

    #[test]
    fn a_format_1_data_dir_opens_with_its_state_history_and_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = retry_lock(|| sled::open(dir.path())).unwrap();
            let meta = db.open_tree(META_TREE).unwrap();
            meta.insert(KEY_FORMAT, &1u32.to_be_bytes()).unwrap();
            meta.insert(KEY_NODE_UUID, uuid::Uuid::new_v4().as_bytes().as_slice())
                .unwrap();
            let sm = db.open_tree(SM_TREE).unwrap();
            sm.insert(KEY_STATE, encode(&state_v1(VecDeque::new())).unwrap())
                .unwrap();
            sm.insert(KEY_HISTORY, encode(&VecDeque::from([record(3)])).unwrap())
                .unwrap();
            let last: Option<LogId> = None;
            sm.insert(KEY_LAST_APPLIED, encode(&last).unwrap()).unwrap();
            sm.insert(
                KEY_MEMBERSHIP,
                encode(&StoredMembership::default()).unwrap(),
            )
            .unwrap();
            let snap = SnapshotV1 {
                state: state_v1(VecDeque::from([record(3)])),
                last_applied: None,
                membership: StoredMembership::default(),
            };
            db.open_tree(SNAPSHOT_TREE)
                .unwrap()
                .insert(KEY_SNAPSHOT_DATA, encode(&snap).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let store = retry_lock(|| Store::open(dir.path(), 1 << 20)).unwrap();
        let applied = store.applied();
        let s = &applied.state;
        assert_eq!(s.topology, Topology::HyParView);
        assert_eq!(s.policy.cooldown_ms, 1234);
        assert!(s.policy.auto_switch);
        assert_eq!(s.policy.history_retention, 50);
        assert_eq!(
            s.policy.hold_rounds,
            crate::model::Policy::default().hold_rounds
        );
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].id, 3);
        assert_eq!(s.history[0].trigger, None);
        drop(store);
        // Reopening finds the current format and changes nothing.
        let db = retry_lock(|| sled::open(dir.path())).unwrap();
        let meta = db.open_tree(META_TREE).unwrap();
        assert_eq!(
            super::super::identity::stored_format(&meta).unwrap(),
            STORAGE_FORMAT
        );
        let snap = db
            .open_tree(SNAPSHOT_TREE)
            .unwrap()
            .get(KEY_SNAPSHOT_DATA)
            .unwrap()
            .unwrap();
        let migrated: Applied = decode(&snap).unwrap();
        assert_eq!(migrated.state.history.len(), 1);
        assert_eq!(migrated.state.policy.cooldown_ms, 1234);
    }

    #[test]
    fn a_format_2_data_dir_opens_with_its_policy_and_no_custom_rules() {
        use crate::model::v2::{Policy as PolicyV2, StoredState as StateV2};
        let dir = tempfile::tempdir().unwrap();
        let state = |history: VecDeque<crate::model::HistoryRecord>| StateV2 {
            topology: Topology::FullMesh,
            config: OverlayConfig::default_for(Topology::FullMesh),
            epoch: 1,
            current_instance: 3,
            previous_config: None,
            in_flight: None,
            policy: PolicyV2 {
                cooldown_ms: 4321,
                auto_switch: true,
                history_retention: 50,
                monitor_interval_ms: 1000,
                hold_rounds: 2,
                flap_window_ms: 0,
                thresholds: Default::default(),
                profiles: BTreeMap::new(),
            },
            policy_set: true,
            last_switch_ms: Some(20),
            last_stamp_ms: 20,
            history,
            requests: VecDeque::new(),
        };
        let rec: crate::model::HistoryRecord = record(3).into();
        {
            let db = retry_lock(|| sled::open(dir.path())).unwrap();
            let meta = db.open_tree(META_TREE).unwrap();
            meta.insert(KEY_FORMAT, &2u32.to_be_bytes()).unwrap();
            meta.insert(KEY_NODE_UUID, uuid::Uuid::new_v4().as_bytes().as_slice())
                .unwrap();
            let sm = db.open_tree(SM_TREE).unwrap();
            sm.insert(KEY_STATE, encode(&state(VecDeque::new())).unwrap())
                .unwrap();
            sm.insert(KEY_HISTORY, encode(&VecDeque::from([rec.clone()])).unwrap())
                .unwrap();
            let last: Option<LogId> = None;
            sm.insert(KEY_LAST_APPLIED, encode(&last).unwrap()).unwrap();
            sm.insert(
                KEY_MEMBERSHIP,
                encode(&StoredMembership::default()).unwrap(),
            )
            .unwrap();
            let snap = SnapshotV2 {
                state: state(VecDeque::from([rec])),
                last_applied: None,
                membership: StoredMembership::default(),
            };
            db.open_tree(SNAPSHOT_TREE)
                .unwrap()
                .insert(KEY_SNAPSHOT_DATA, encode(&snap).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let store = retry_lock(|| Store::open(dir.path(), 1 << 20)).unwrap();
        let applied = store.applied();
        let s = &applied.state;
        assert_eq!(s.policy.cooldown_ms, 4321);
        assert_eq!(s.policy.hold_rounds, 2);
        assert!(s.policy.custom_rules.is_empty());
        assert!(s.policy.disabled_rules.is_empty());
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].id, 3);
        drop(store);
        let db = retry_lock(|| sled::open(dir.path())).unwrap();
        let meta = db.open_tree(META_TREE).unwrap();
        assert_eq!(
            super::super::identity::stored_format(&meta).unwrap(),
            STORAGE_FORMAT
        );
        let snap = db
            .open_tree(SNAPSHOT_TREE)
            .unwrap()
            .get(KEY_SNAPSHOT_DATA)
            .unwrap()
            .unwrap();
        let migrated: Applied = decode(&snap).unwrap();
        assert_eq!(migrated.state.history.len(), 1);
        assert_eq!(migrated.state.policy.cooldown_ms, 4321);
    }

    #[test]
    fn a_format_3_data_dir_opens_with_its_state_and_no_tokens() {
        use crate::model::v3::StoredState as StateV3;
        let dir = tempfile::tempdir().unwrap();
        let state = |history: VecDeque<crate::model::HistoryRecord>| StateV3 {
            topology: Topology::HyParView,
            config: OverlayConfig::default_for(Topology::HyParView),
            epoch: 2,
            current_instance: 3,
            previous_config: None,
            in_flight: None,
            policy: crate::model::Policy {
                cooldown_ms: 999,
                ..Default::default()
            },
            policy_set: true,
            last_switch_ms: Some(20),
            last_stamp_ms: 20,
            history,
            requests: VecDeque::new(),
        };
        let rec: crate::model::HistoryRecord = record(3).into();
        {
            let db = retry_lock(|| sled::open(dir.path())).unwrap();
            let meta = db.open_tree(META_TREE).unwrap();
            meta.insert(KEY_FORMAT, &3u32.to_be_bytes()).unwrap();
            meta.insert(KEY_NODE_UUID, uuid::Uuid::new_v4().as_bytes().as_slice())
                .unwrap();
            let sm = db.open_tree(SM_TREE).unwrap();
            sm.insert(KEY_STATE, encode(&state(VecDeque::new())).unwrap())
                .unwrap();
            sm.insert(KEY_HISTORY, encode(&VecDeque::from([rec.clone()])).unwrap())
                .unwrap();
            let last: Option<LogId> = None;
            sm.insert(KEY_LAST_APPLIED, encode(&last).unwrap()).unwrap();
            sm.insert(
                KEY_MEMBERSHIP,
                encode(&StoredMembership::default()).unwrap(),
            )
            .unwrap();
            let snap = SnapshotV3 {
                state: state(VecDeque::from([rec])),
                last_applied: None,
                membership: StoredMembership::default(),
            };
            db.open_tree(SNAPSHOT_TREE)
                .unwrap()
                .insert(KEY_SNAPSHOT_DATA, encode(&snap).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let store = retry_lock(|| Store::open(dir.path(), 1 << 20)).unwrap();
        let applied = store.applied();
        let s = &applied.state;
        assert_eq!(s.topology, Topology::HyParView);
        assert_eq!(s.epoch, 2);
        assert_eq!(s.policy.cooldown_ms, 999);
        assert_eq!(s.history.len(), 1);
        assert!(s.tokens.records.is_empty());
        assert!(!s.tokens.initial_stored);
        drop(store);
        let db = retry_lock(|| sled::open(dir.path())).unwrap();
        let meta = db.open_tree(META_TREE).unwrap();
        assert_eq!(super::super::identity::stored_format(&meta).unwrap(), 4);
        let snap = db
            .open_tree(SNAPSHOT_TREE)
            .unwrap()
            .get(KEY_SNAPSHOT_DATA)
            .unwrap()
            .unwrap();
        let migrated: Applied = decode(&snap).unwrap();
        assert_eq!(migrated.state.history.len(), 1);
        assert_eq!(migrated.state.policy.cooldown_ms, 999);
        assert!(migrated.state.tokens.records.is_empty());
    }
}
