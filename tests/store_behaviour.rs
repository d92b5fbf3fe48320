//! Behaviour of the sled store beyond openraft's suite: what `apply`
//! computes and publishes, refusal of undecodable entries, restart,
//! snapshots across restarts, and the data dir's identity.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder};
use topod::control::store::{Store, StoreError, DEFAULT_CACHE_BYTES};
use topod::control::types::{Entry, LogId, LogPayload, NodeAddr};
use topod::model::{
    Command, CommandResponse, Envelope, OverlayConfig, Phase, ProposeSwitch, SwitchReason, Topology,
};

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn normal(index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(LogPayload::new(&Envelope::new(1_000 * index, command))),
    }
}

fn blank(index: u64) -> Entry {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Blank,
    }
}

/// Voters 1–3 and learner 4.
fn membership(index: u64) -> Entry {
    let nodes: BTreeMap<u64, NodeAddr> = (1..=4).map(|n| (n, NodeAddr::default())).collect();
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)),
    }
}

fn to_hyparview() -> Command {
    Command::ProposeSwitch(ProposeSwitch::new(
        Topology::HyParView,
        OverlayConfig::default_for(Topology::HyParView),
        SwitchReason::Manual,
        None,
        "test",
    ))
}

/// Membership (1), blank (2), proposal (3), reports from all four members
/// (4–7), commit (8).
fn committed_switch() -> Vec<Entry> {
    let mut entries = vec![membership(1), blank(2), normal(3, to_hyparview())];
    entries.extend((1..=4).map(|n| {
        normal(
            3 + n,
            Command::ReportPhase {
                id: 3,
                node: n,
                phase: Phase::Prepared,
            },
        )
    }));
    entries.push(normal(
        8,
        Command::CommitSwitch {
            id: 3,
            term: 1,
            missing: vec![],
        },
    ));
    entries
}

/// Opens the store, waiting out sled's file lock of a handle just dropped
/// ([`retry_lock`]).
fn open(dir: &Path) -> Store {
    retry_lock(|| Store::open(dir, DEFAULT_CACHE_BYTES)).expect("open the store")
}

/// Runs `open` until it does not fail on sled's file lock. sled's
/// flusher thread lets go of the lock shortly after the last handle of a
/// db is dropped, so opening it again right away can fail with "could not
/// acquire lock" (seen once in CI); other errors come back at once.
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

/// The raw sled db of a store dropped a moment ago.
fn sled_reopen(dir: &Path) -> sled::Db {
    retry_lock(|| sled::open(dir)).unwrap_or_else(|e| panic!("reopening {}: {e}", dir.display()))
}

#[tokio::test]
async fn apply_answers_each_entry_and_publishes_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rx = store.subscribe();
    let (_log, mut sm, _id) = store.into_parts();

    let responses = sm.apply(committed_switch()).await.unwrap();
    let mut expected = vec![
        CommandResponse::Applied,
        CommandResponse::Applied,
        CommandResponse::Accepted { id: 3 },
    ];
    expected.extend(std::iter::repeat_n(CommandResponse::Applied, 5));
    assert_eq!(responses, expected);

    assert!(rx.has_changed().unwrap(), "apply published");
    let applied = rx.borrow_and_update().clone();
    assert_eq!(applied.last_applied, Some(log_id(1, 8)));
    assert_eq!(applied.members(), vec![1, 2, 3, 4], "voters and learners");
    assert_eq!(applied.state.topology, Topology::HyParView);
    assert_eq!(
        (applied.state.epoch, applied.state.current_instance),
        (1, 3)
    );
    let record = applied.state.record(3).unwrap();
    assert_eq!(record.proposed_at_ms, 3_000, "time is the entry's stamp");
    assert_eq!(applied, sm.applied());
}

#[tokio::test]
async fn the_learner_must_prepare_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut sm, _id) = open(dir.path()).into_parts();
    let mut entries = committed_switch();
    entries.remove(6); // learner 4's report
    let commit_response = sm.apply(entries).await.unwrap().pop().unwrap();
    assert!(
        matches!(commit_response, CommandResponse::Rejected(ref r) if r.code() == "stale_transition"),
        "{commit_response:?}"
    );
}

#[tokio::test]
async fn an_undecodable_entry_stops_apply_and_names_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rx = store.subscribe();
    let (_log, mut sm, _id) = store.into_parts();
    sm.apply([membership(1)]).await.unwrap();
    rx.borrow_and_update();
    let before = sm.applied();

    let garbage = Entry {
        log_id: log_id(1, 3),
        payload: EntryPayload::Normal(LogPayload(vec![7, 7, 7])),
    };
    let err = sm
        .apply([normal(2, to_hyparview()), garbage, blank(4)])
        .await
        .expect_err("an undecodable entry is fatal");
    assert!(err.to_string().contains("log entry 3"), "{err}");
    assert_eq!(sm.applied(), before, "nothing of the batch was applied");
    assert!(!rx.has_changed().unwrap(), "nothing was published");
    let (last_applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(last_applied, Some(log_id(1, 1)));
}

#[tokio::test]
async fn a_restarted_store_resumes_its_state_snapshot_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot_meta;
    {
        let (mut log, mut sm, _id) = open(dir.path()).into_parts();
        log.blocking_append(committed_switch()).await.unwrap();
        sm.apply(committed_switch()).await.unwrap();
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        snapshot_meta = snapshot.meta;
        log.purge(log_id(1, 5)).await.unwrap();
    }
    let store = open(dir.path());
    assert_eq!(*store.subscribe().borrow().clone(), *store.applied());
    let (mut log, mut sm, _id) = store.into_parts();
    let applied = sm.applied();
    assert_eq!(applied.last_applied, Some(log_id(1, 8)));
    assert_eq!(applied.state.topology, Topology::HyParView);

    let snapshot = sm.get_current_snapshot().await.unwrap().expect("kept");
    assert_eq!(snapshot.meta, snapshot_meta);
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 5)));
    assert_eq!(state.last_log_id, Some(log_id(1, 8)));
    let left = log.try_get_log_entries(0..100).await.unwrap();
    assert_eq!(left, committed_switch()[5..].to_vec());
}

#[tokio::test]
async fn an_installed_snapshot_replaces_the_state_and_is_published() {
    let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_l, mut leader, _) = open(leader_dir.path()).into_parts();
    leader.apply(committed_switch()).await.unwrap();
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let store = open(follower_dir.path());
    let mut rx = store.subscribe();
    let (_f, mut follower, _) = store.into_parts();
    follower.apply([membership(1)]).await.unwrap();
    rx.borrow_and_update();
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update().clone(), *leader.applied());

    // A snapshot whose bytes do not match its meta is refused.
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    let mut wrong_meta = current.meta.clone();
    wrong_meta.last_log_id = Some(log_id(1, 99));
    let err = follower
        .install_snapshot(&wrong_meta, current.snapshot)
        .await
        .expect_err("mismatched snapshot");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(follower.applied(), leader.applied(), "state unchanged");
}

#[tokio::test]
async fn a_corrupt_log_entry_is_an_error_not_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _sm, _id) = open(dir.path()).into_parts();
        log.blocking_append((1..=3).map(blank)).await.unwrap();
    }
    {
        let db = sled_reopen(dir.path());
        db.open_tree("log")
            .unwrap()
            .insert(2u64.to_be_bytes(), &[0xff, 0xff][..])
            .unwrap();
        db.flush().unwrap();
    }
    let (mut log, _sm, _id) = retry_lock(|| Store::open(dir.path(), DEFAULT_CACHE_BYTES))
        .expect("open the store")
        .into_parts();
    let err = log
        .try_get_log_entries(1..=3)
        .await
        .expect_err("corrupt entry");
    assert!(err.to_string().contains("index 2"), "{err}");
}

#[test]
fn the_data_dir_keeps_its_identity_and_refuses_another_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let uuid = {
        let store = open(dir.path());
        assert!(store.identity().is_fresh());
        assert_eq!(store.identity().cluster_id().unwrap(), None);
        store.identity().check("cluster-a").unwrap();
        store.identity().node_uuid()
    };
    let store = open(dir.path());
    let id = store.identity();
    assert!(!id.is_fresh());
    assert_eq!(id.node_uuid(), uuid);
    id.check("cluster-a").expect("same cluster");
    match id.check("cluster-b") {
        Err(StoreError::ClusterMismatch {
            found, expected, ..
        }) => assert_eq!(
            (found.as_str(), expected.as_str()),
            ("cluster-a", "cluster-b")
        ),
        other => panic!("expected a cluster mismatch, got {other:?}"),
    }
    assert_eq!(id.cluster_id().unwrap().as_deref(), Some("cluster-a"));
}

#[test]
fn a_data_dir_of_another_storage_format_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = sled_reopen(dir.path());
        let meta = db.open_tree("meta").unwrap();
        meta.insert("format", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    match retry_lock(|| Store::open(dir.path(), DEFAULT_CACHE_BYTES)) {
        Err(e @ StoreError::Format { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("v99"), "{msg}");
        }
        Err(other) => panic!("expected a format error, got {other}"),
        Ok(_) => panic!("a data dir of a future format was opened"),
    }
    let db = sled_reopen(dir.path());
    let format = db
        .open_tree("meta")
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap();
    assert_eq!(
        &format[..],
        &99u32.to_be_bytes(),
        "refusal changed the data dir"
    );
}

#[tokio::test]
async fn the_history_survives_restarts_across_applies_that_leave_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let (_log, mut sm, _id) = open(dir.path()).into_parts();
        sm.apply(committed_switch()).await.unwrap();
        // Applies that do not touch the history write the state without it.
        for i in 0..5u64 {
            let update = topod::model::PolicyUpdate {
                cooldown_ms: Some(1_000 + i),
                ..Default::default()
            };
            sm.apply([normal(9 + i, Command::SetPolicy(update))])
                .await
                .unwrap();
        }
        sm.applied()
    };
    assert_eq!(before.state.history.len(), 1);
    let (_log, sm, _id) = open(dir.path()).into_parts();
    let after = sm.applied();
    assert_eq!(after.state.history, before.state.history);
    assert_eq!(after.state.policy.cooldown_ms, 1_004);
    assert_eq!(*after, *before);
}
