//! The coordinator's pure decision (`decide`) on tokio's paused clock: the
//! state is built by applying real commands, and each test asserts the
//! exact command decided (or that nothing is decided).

use std::collections::BTreeSet;

use tokio::time::{advance, Duration, Instant};
use topod::control::coordinator::{decide, Watch};
use topod::model::{
    ApplyContext, Command, CommandResponse, NodeId, OverlayConfig, Phase, ProposeSwitch,
    SwitchReason, Topology, TopologyState,
};

const TIMEOUT: Duration = Duration::from_millis(1_000);
const ME: NodeId = 1;
const TERM: u64 = 3;

/// Applies commands at increasing log indexes, members 1–3.
struct Log {
    state: TopologyState,
    index: u64,
}

impl Log {
    fn new() -> Log {
        Log {
            state: TopologyState::default(),
            index: 0,
        }
    }

    fn apply(&mut self, command: Command) -> CommandResponse {
        self.index += 1;
        let ctx = ApplyContext {
            index: self.index,
            term: TERM,
            members: vec![1, 2, 3],
        };
        self.state.apply(&ctx, 1_000 * self.index, &command)
    }

    fn propose(&mut self, target: Topology, reason: SwitchReason) -> u64 {
        let answer = self.apply(Command::ProposeSwitch(ProposeSwitch::new(
            target,
            OverlayConfig::default_for(target),
            reason,
            None,
            "test",
        )));
        match answer {
            CommandResponse::Accepted { id } => id,
            other => panic!("proposal not accepted: {other:?}"),
        }
    }

    fn report(&mut self, id: u64, node: NodeId, phase: Phase) {
        let answer = self.apply(Command::ReportPhase { id, node, phase });
        assert_eq!(answer, CommandResponse::Applied);
    }

    /// A switch to `target` prepared by every member and committed.
    fn committed(&mut self, target: Topology, reason: SwitchReason) -> u64 {
        let id = self.propose(target, reason);
        for n in 1..=3 {
            self.report(id, n, Phase::Prepared);
        }
        let answer = self.apply(Command::CommitSwitch {
            id,
            term: TERM,
            missing: vec![],
        });
        assert_eq!(answer, CommandResponse::Applied);
        id
    }
}

/// The coordinator's view: a watch and a set of live peers.
struct Coord {
    watch: Option<Watch>,
    live: BTreeSet<NodeId>,
}

impl Coord {
    fn new(live: &[NodeId]) -> Coord {
        Coord {
            watch: None,
            live: live.iter().copied().collect(),
        }
    }

    fn decide(&mut self, state: &TopologyState, term: u64) -> Option<Command> {
        let live = self.live.clone();
        decide(
            state,
            ME,
            term,
            Instant::now(),
            TIMEOUT,
            &mut self.watch,
            move |n| live.contains(&n),
        )
    }
}

#[tokio::test(start_paused = true)]
async fn commits_once_every_member_prepared() {
    let mut log = Log::new();
    let id = log.propose(Topology::HyParView, SwitchReason::Manual);
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(c.decide(&log.state, TERM), None, "nobody prepared yet");
    log.report(id, 1, Phase::Prepared);
    log.report(id, 2, Phase::Prepared);
    assert_eq!(c.decide(&log.state, TERM), None, "live node 3 is pending");
    log.report(id, 3, Phase::Prepared);
    assert_eq!(
        c.decide(&log.state, TERM),
        Some(Command::CommitSwitch {
            id,
            term: TERM,
            missing: vec![]
        })
    );
}

#[tokio::test(start_paused = true)]
async fn commits_without_pending_members_that_are_not_live() {
    let mut log = Log::new();
    let id = log.propose(Topology::HyParView, SwitchReason::Manual);
    let mut c = Coord::new(&[2]);
    log.report(id, 2, Phase::Prepared);
    // The leader itself counts as live even though `is_live` says no.
    assert_eq!(
        c.decide(&log.state, TERM),
        None,
        "the leader has not prepared"
    );
    log.report(id, 1, Phase::Prepared);
    let decided = c.decide(&log.state, TERM);
    assert_eq!(
        decided,
        Some(Command::CommitSwitch {
            id,
            term: TERM,
            missing: vec![3]
        })
    );
    // The state machine takes it.
    assert_eq!(log.apply(decided.unwrap()), CommandResponse::Applied);
    assert_eq!(log.state.epoch, 1);

    // Nobody else live, nobody prepared but the leader: all others missing.
    let next = log.propose(Topology::FullMesh, SwitchReason::Manual);
    log.report(next, 1, Phase::Prepared);
    let mut lonely = Coord::new(&[]);
    assert_eq!(
        lonely.decide(&log.state, TERM),
        Some(Command::CommitSwitch {
            id: next,
            term: TERM,
            missing: vec![2, 3]
        })
    );
}

#[tokio::test(start_paused = true)]
async fn aborts_on_a_failed_report() {
    let mut log = Log::new();
    let id = log.propose(Topology::HyParView, SwitchReason::Manual);
    log.report(id, 1, Phase::Prepared);
    log.report(id, 3, Phase::Prepared);
    log.report(
        id,
        2,
        Phase::Failed {
            reason: "view never formed".into(),
        },
    );
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(
        c.decide(&log.state, TERM),
        Some(Command::AbortSwitch {
            id,
            term: TERM,
            reason: "node 2 failed to prepare: view never formed".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn aborts_at_the_prepare_timeout_and_not_a_millisecond_before() {
    let mut log = Log::new();
    let id = log.propose(Topology::HyParView, SwitchReason::Manual);
    log.report(id, 1, Phase::Prepared);
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(c.decide(&log.state, TERM), None, "the timer starts");
    advance(Duration::from_millis(400)).await;
    log.report(id, 2, Phase::Prepared);
    assert_eq!(
        c.decide(&log.state, TERM),
        None,
        "a report does not restart it"
    );
    advance(Duration::from_millis(599)).await;
    assert_eq!(c.decide(&log.state, TERM), None, "1 ms before the timeout");
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        c.decide(&log.state, TERM),
        Some(Command::AbortSwitch {
            id,
            term: TERM,
            reason: "prepare timeout (1000 ms): nodes [3] did not report Prepared".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn the_timer_restarts_when_a_new_term_takes_over() {
    let mut log = Log::new();
    let id = log.propose(Topology::HyParView, SwitchReason::Manual);
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(c.decide(&log.state, TERM), None);
    advance(TIMEOUT - Duration::from_millis(1)).await;
    // A leader change (here: the same node in a later term) starts over.
    let new_term = TERM + 1;
    assert_eq!(c.decide(&log.state, new_term), None);
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        c.decide(&log.state, new_term),
        None,
        "the old term's deadline does not count"
    );
    advance(TIMEOUT - Duration::from_millis(2)).await;
    assert_eq!(c.decide(&log.state, new_term), None);
    advance(Duration::from_millis(1)).await;
    match c.decide(&log.state, new_term) {
        Some(Command::AbortSwitch { id: got, term, .. }) => {
            assert_eq!((got, term), (id, new_term), "decided in the new term");
        }
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_transition_gets_its_own_timer() {
    let mut log = Log::new();
    let first = log.propose(Topology::HyParView, SwitchReason::Manual);
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(c.decide(&log.state, TERM), None);
    advance(TIMEOUT - Duration::from_millis(1)).await;
    let abort = Command::AbortSwitch {
        id: first,
        term: TERM,
        reason: "test".into(),
    };
    assert_eq!(log.apply(abort), CommandResponse::Applied);
    assert_eq!(c.decide(&log.state, TERM), None, "nothing in flight");
    assert_eq!(c.watch, None);
    log.propose(Topology::HyParView, SwitchReason::Manual);
    assert_eq!(c.decide(&log.state, TERM), None);
    advance(Duration::from_millis(1)).await;
    assert_eq!(c.decide(&log.state, TERM), None);
}

#[tokio::test(start_paused = true)]
async fn proposes_a_rollback_of_an_unhealthy_cut_over() {
    let mut log = Log::new();
    let id = log.committed(Topology::HyParView, SwitchReason::Manual);
    let mut c = Coord::new(&[2, 3]);
    log.report(id, 1, Phase::Verified);
    log.report(id, 2, Phase::Verified);
    assert_eq!(c.decide(&log.state, TERM), None, "healthy so far");
    log.report(
        id,
        3,
        Phase::Unhealthy {
            reason: "probes lost".into(),
        },
    );
    let decided = c.decide(&log.state, TERM);
    assert_eq!(
        decided,
        Some(Command::ProposeSwitch(ProposeSwitch::new(
            Topology::FullMesh,
            OverlayConfig::default_for(Topology::FullMesh),
            SwitchReason::Rollback { of: id },
            Some(format!("rollback-of-{id}")),
            "coordinator (node 3 unhealthy: probes lost)",
        )))
    );
    let rollback = match log.apply(decided.unwrap()) {
        CommandResponse::Accepted { id } => id,
        other => panic!("the state machine refused the rollback: {other:?}"),
    };
    for n in 1..=3 {
        log.report(rollback, n, Phase::Prepared);
    }
    let commit = c.decide(&log.state, TERM).expect("commit the rollback");
    assert_eq!(log.apply(commit), CommandResponse::Applied);
    assert_eq!(log.state.topology, Topology::FullMesh);

    // The rolled-back overlay is unhealthy too: never rolled back again.
    log.report(
        rollback,
        3,
        Phase::Unhealthy {
            reason: "still lost".into(),
        },
    );
    assert_eq!(c.decide(&log.state, TERM), None);
}

#[tokio::test(start_paused = true)]
async fn an_aborted_rollback_is_not_proposed_again() {
    let mut log = Log::new();
    let id = log.committed(Topology::HyParView, SwitchReason::Manual);
    let mut c = Coord::new(&[2, 3]);
    log.report(
        id,
        3,
        Phase::Unhealthy {
            reason: "cut off".into(),
        },
    );
    let rollback = match log.apply(c.decide(&log.state, TERM).expect("a rollback")) {
        CommandResponse::Accepted { id } => id,
        other => panic!("refused: {other:?}"),
    };
    log.report(
        rollback,
        3,
        Phase::Failed {
            reason: "still cut off".into(),
        },
    );
    let abort = c.decide(&log.state, TERM).expect("abort the rollback");
    assert!(matches!(abort, Command::AbortSwitch { .. }), "{abort:?}");
    log.apply(abort);
    assert_eq!(log.state.current_instance, id, "still on the unhealthy one");
    for _ in 0..3 {
        advance(Duration::from_millis(100)).await;
        assert_eq!(
            c.decide(&log.state, TERM),
            None,
            "proposed once: the operator decides what next"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn only_the_last_committed_transition_is_rolled_back() {
    let mut log = Log::new();
    let old = log.committed(Topology::HyParView, SwitchReason::Manual);
    log.report(
        old,
        2,
        Phase::Unhealthy {
            reason: "old news".into(),
        },
    );
    log.committed(Topology::ClientServer, SwitchReason::Manual);
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(
        c.decide(&log.state, TERM),
        None,
        "an earlier transition's health does not matter"
    );
    // An aborted switch since the last commit changes nothing either.
    let aborted = log.propose(Topology::PubSub, SwitchReason::Manual);
    log.apply(Command::AbortSwitch {
        id: aborted,
        term: TERM,
        reason: "test".into(),
    });
    assert_eq!(c.decide(&log.state, TERM), None);
}

#[tokio::test(start_paused = true)]
async fn a_rollback_first_refused_as_transition_in_progress_happens_later() {
    let mut log = Log::new();
    let id = log.committed(Topology::HyParView, SwitchReason::Manual);
    log.report(
        id,
        3,
        Phase::Unhealthy {
            reason: "lost".into(),
        },
    );
    let mut c = Coord::new(&[2, 3]);
    let rollback = c.decide(&log.state, TERM).expect("a rollback");
    // A client's switch lands between the decision and its entry.
    let other = log.propose(Topology::PubSub, SwitchReason::Manual);
    assert!(matches!(
        log.apply(rollback),
        CommandResponse::Rejected(topod::model::Rejection::TransitionInProgress { .. })
    ));
    log.apply(Command::AbortSwitch {
        id: other,
        term: TERM,
        reason: "test".into(),
    });
    let again = c.decide(&log.state, TERM).expect("the rollback again");
    assert!(
        matches!(log.apply(again), CommandResponse::Accepted { .. }),
        "the retry is decided anew, not answered from memory"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_whose_request_id_was_refused_for_good_is_not_proposed() {
    let mut log = Log::new();
    let id = log.committed(Topology::HyParView, SwitchReason::Manual);
    // A proposal under the coordinator's request id, refused for good (a
    // client could send that id before the API reserved it; or a V1 entry).
    let refused = log.apply(Command::ProposeSwitch(ProposeSwitch::new(
        Topology::HyParView,
        OverlayConfig::default_for(Topology::HyParView),
        SwitchReason::Manual,
        Some(format!("rollback-of-{id}")),
        "client",
    )));
    assert!(
        matches!(refused, CommandResponse::Rejected(_)),
        "{refused:?}"
    );
    log.report(
        id,
        3,
        Phase::Unhealthy {
            reason: "lost".into(),
        },
    );
    let mut c = Coord::new(&[2, 3]);
    assert_eq!(
        c.decide(&log.state, TERM),
        None,
        "its answer would only be replayed, a log entry per tick"
    );
}
