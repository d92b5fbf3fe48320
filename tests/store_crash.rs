//! Crash recovery at store level: a child process (this test binary,
//! re-executed with `CHILD_DIR_ENV` set) writes to the store and prints
//! every acknowledged write; the parent kills it with SIGKILL mid-stream,
//! reopens the store and checks that every acknowledged write survived.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader};
use topod::control::store::{Store, DEFAULT_CACHE_BYTES};
use topod::control::types::{Entry, LogId, LogPayload, Vote};
use topod::model::{
    Command, Envelope, OverlayConfig, Phase, PolicyUpdate, ProposeSwitch, SwitchReason, Topology,
};

/// Selects the child role and names its data dir.
const CHILD_DIR_ENV: &str = "TOPOD_STORE_CRASH_CHILD_DIR";
/// Term of every entry the child writes.
const TERM: u64 = 2;
/// Index of the `CommitSwitch` entry, the last one the child applies.
const COMMIT_INDEX: u64 = 6;
/// The child stops on its own after this many entries (the parent kills it
/// long before; this only bounds a run whose parent died).
const CHILD_MAX_INDEX: u64 = 20_000;
/// Acks the parent reads after the applied batch before it kills the child.
const ACKS_BEFORE_KILL: usize = 40;

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(TERM, 1), index)
}

fn command_at(index: u64) -> Command {
    match index {
        2 => Command::ProposeSwitch(ProposeSwitch::new(
            Topology::HyParView,
            OverlayConfig::default_for(Topology::HyParView),
            SwitchReason::Manual,
            None,
            "crash-test",
        )),
        3..=5 => Command::ReportPhase {
            id: 2,
            node: index - 2,
            phase: Phase::Prepared,
        },
        COMMIT_INDEX => Command::CommitSwitch {
            id: 2,
            term: TERM,
            missing: vec![],
        },
        _ => Command::SetPolicy(PolicyUpdate {
            cooldown_ms: Some(index),
            ..PolicyUpdate::default()
        }),
    }
}

/// The entry the child writes at `index` (deterministic, so the parent can
/// compare what it reads back).
fn entry_at(index: u64) -> Entry {
    let payload = if index == 1 {
        EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], None))
    } else {
        EntryPayload::Normal(LogPayload::new(&Envelope::new(
            1_000 + index,
            command_at(index),
        )))
    };
    Entry {
        log_id: log_id(index),
        payload,
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write to the parent");
    out.flush().expect("flush to the parent");
}

/// The child: vote, apply a committed switch, then append entries one by
/// one, printing each acknowledged index.
async fn child(dir: &Path) {
    let store = Store::open(dir, DEFAULT_CACHE_BYTES).expect("child opens the store");
    let (mut log, mut sm, _identity) = store.into_parts();
    log.save_vote(&Vote::new_committed(TERM, 1))
        .await
        .expect("save vote");
    let first: Vec<Entry> = (1..=COMMIT_INDEX).map(entry_at).collect();
    log.blocking_append(first.clone()).await.expect("append");
    let responses = sm.apply(first).await.expect("apply");
    say(&format!("applied {} {responses:?}", COMMIT_INDEX));
    for index in COMMIT_INDEX + 1..=CHILD_MAX_INDEX {
        log.blocking_append([entry_at(index)])
            .await
            .expect("append");
        say(&format!("ack {index}"));
    }
}

/// Runs the child role (when this process is the child) and reports
/// whether it did.
fn run_child_if_asked() -> bool {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return false;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(child(Path::new(&dir)));
    true
}

/// Independent kill rounds: one round catches a missing flush most of the
/// time (the kill must land before sled's background flush), three
/// almost always.
const ROUNDS: usize = 3;

#[test]
fn sigkilled_store_keeps_every_acknowledged_write() {
    if run_child_if_asked() {
        return;
    }
    for _ in 0..ROUNDS {
        kill_and_recover();
    }
}

fn kill_and_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Process::new(std::env::current_exe().expect("own binary"))
        .args([
            "--exact",
            "sigkilled_store_keeps_every_acknowledged_write",
            "--nocapture",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut applied = false;
    let mut last_ack = None;
    let mut acks = 0;
    while acks < ACKS_BEFORE_KILL {
        let line = lines
            .next()
            .expect("child exited early")
            .expect("read child stdout");
        if line.starts_with("applied ") {
            applied = true;
        } else if let Some(index) = line.strip_prefix("ack ") {
            last_ack = Some(index.parse::<u64>().expect("ack index"));
            acks += 1;
        }
    }
    // Child::kill is SIGKILL on Unix: no destructor, no final flush.
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "child was killed, not finished");
    assert!(applied, "child reported its applied batch");
    let last_ack = last_ack.expect("at least one ack");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(check_recovered(dir.path(), last_ack));
}

async fn check_recovered(dir: &Path, last_ack: u64) {
    let store = Store::open(dir, DEFAULT_CACHE_BYTES).expect("reopen after SIGKILL");
    assert!(!store.identity().is_fresh(), "identity survived");
    let (mut log, mut sm, _identity) = store.into_parts();

    assert_eq!(
        log.read_vote().await.expect("read vote"),
        Some(Vote::new_committed(TERM, 1))
    );
    let state = log.get_log_state().await.expect("log state");
    let last = state.last_log_id.expect("log is not empty");
    assert!(
        last.index >= last_ack,
        "last log index {} is behind the last ack {last_ack}",
        last.index
    );
    let entries = log
        .try_get_log_entries(1..=last_ack)
        .await
        .expect("read the log");
    let expected: Vec<Entry> = (1..=last_ack).map(entry_at).collect();
    assert_eq!(entries, expected, "every acknowledged entry survived");

    let (last_applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(last_applied, Some(log_id(COMMIT_INDEX)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
    let applied = sm.applied();
    assert_eq!(applied.state.topology, Topology::HyParView);
    assert_eq!(applied.state.epoch, 1);
    assert_eq!(applied.state.current_instance, 2);
    assert_eq!(applied.state.in_flight, None);
    assert_eq!(applied.state.history.len(), 1);
    assert_eq!(applied.state.history[0].id, 2);
    assert!(matches!(
        applied.state.history[0].outcome,
        topod::model::Outcome::Committed { epoch: 1, .. }
    ));
    assert_eq!(
        *sm.subscribe().borrow().clone(),
        *applied,
        "watch starts at the recovered state"
    );
}
