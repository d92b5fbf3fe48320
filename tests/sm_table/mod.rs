//! Builders and the runner of the state machine's table tests: each step
//! is applied at log index = step number (1-based) with members 1–3, and
//! every rejection is checked to leave the state unchanged.

use topod::model::{
    ApplyContext, Command, CommandResponse, HyParViewConfig, OverlayConfig, Phase, ProposeSwitch,
    Rejection, SwitchReason, Topology, TopologyState,
};

pub const MEMBERS: [u64; 3] = [1, 2, 3];
pub const COOLDOWN: u64 = 300_000;
/// Stamp of the commit in `commit_hyparview()`: transition 1 commits at
/// step 5 at this time.
pub const T_COMMIT: u64 = 10_000;

/// What a step must answer.
#[derive(Debug)]
pub enum Expect {
    Is(CommandResponse),
    /// `stale_transition` whose detail contains this text.
    Stale(&'static str),
}

pub struct Step {
    pub stamp: u64,
    /// Term of the entry carrying the command.
    pub term: u64,
    pub command: Command,
    pub expect: Expect,
}

pub struct Case {
    pub name: &'static str,
    pub steps: Vec<Step>,
    pub check: fn(&TopologyState),
}

// ---- command builders ----

pub fn propose_cfg(config: OverlayConfig, reason: SwitchReason, rid: Option<&str>) -> Command {
    Command::ProposeSwitch(ProposeSwitch::new(
        config.topology(),
        config,
        reason,
        rid.map(str::to_string),
        "table",
    ))
}

pub fn propose(target: Topology, reason: SwitchReason) -> Command {
    propose_cfg(OverlayConfig::default_for(target), reason, None)
}

pub fn manual(target: Topology) -> Command {
    propose(target, SwitchReason::Manual)
}

pub fn auto(target: Topology) -> Command {
    propose(target, SwitchReason::Auto { rule: "r".into() })
}

pub fn rollback(target: Topology, of: u64) -> Command {
    propose(target, SwitchReason::Rollback { of })
}

pub fn report(id: u64, node: u64, phase: Phase) -> Command {
    Command::ReportPhase { id, node, phase }
}

pub fn commit(id: u64, term: u64, missing: &[u64]) -> Command {
    Command::CommitSwitch {
        id,
        term,
        missing: missing.to_vec(),
    }
}

pub fn abort(id: u64, term: u64) -> Command {
    Command::AbortSwitch {
        id,
        term,
        reason: "prepare timeout".into(),
    }
}

pub fn hyparview_with(active_view: u32) -> OverlayConfig {
    OverlayConfig::HyParView(HyParViewConfig {
        active_view,
        ..HyParViewConfig::default()
    })
}

// ---- step builders ----

pub fn at(stamp: u64, command: Command, expect: Expect) -> Step {
    Step {
        stamp,
        term: 1,
        command,
        expect,
    }
}

pub fn in_term(stamp: u64, term: u64, command: Command, expect: Expect) -> Step {
    Step {
        stamp,
        term,
        command,
        expect,
    }
}

pub fn applied() -> Expect {
    Expect::Is(CommandResponse::Applied)
}

pub fn accepted(id: u64) -> Expect {
    Expect::Is(CommandResponse::Accepted { id })
}

pub fn rejected(r: Rejection) -> Expect {
    Expect::Is(CommandResponse::Rejected(r))
}

/// Every member reports `Prepared` for `id`, at `stamp`.
pub fn all_prepared(stamp: u64, id: u64) -> Vec<Step> {
    MEMBERS
        .iter()
        .map(|n| at(stamp, report(id, *n, Phase::Prepared), applied()))
        .collect()
}

/// Steps 1–5: manual switch to HyParView, prepared everywhere, committed
/// at `T_COMMIT`. Transition 1 is then current.
pub fn commit_hyparview() -> Vec<Step> {
    let mut steps = vec![at(1_000, manual(Topology::HyParView), accepted(1))];
    steps.extend(all_prepared(2_000, 1));
    steps.push(at(T_COMMIT, commit(1, 1, &[]), applied()));
    steps
}

/// Steps 1–5 as `commit_hyparview`, then `more`.
pub fn after_commit(more: Vec<Step>) -> Vec<Step> {
    let mut steps = commit_hyparview();
    steps.extend(more);
    steps
}

/// A switch to `target` proposed at step `id` and committed 4 steps later.
pub fn switch_committed(stamp: u64, id: u64, target: Topology, reason: SwitchReason) -> Vec<Step> {
    let mut steps = vec![at(stamp, propose(target, reason), accepted(id))];
    steps.extend(all_prepared(stamp, id));
    steps.push(at(stamp, commit(id, 1, &[]), applied()));
    steps
}

// ---- the runner ----

pub fn run(case: &Case) -> TopologyState {
    let mut state = TopologyState::default();
    for (i, step) in case.steps.iter().enumerate() {
        let index = i as u64 + 1;
        let ctx = ApplyContext {
            index,
            term: step.term,
            members: MEMBERS.to_vec(),
        };
        let before = state.clone();
        let got = state.apply(&ctx, step.stamp, &step.command);
        let ctx_msg = format!("case `{}`, step {index}: {:?}", case.name, step.command);
        match &step.expect {
            Expect::Is(want) => assert_eq!(&got, want, "{ctx_msg}"),
            Expect::Stale(text) => match &got {
                CommandResponse::Rejected(Rejection::StaleTransition { detail }) => {
                    assert!(detail.contains(text), "{ctx_msg}: detail {detail:?}")
                }
                other => panic!("{ctx_msg}: expected stale_transition, got {other:?}"),
            },
        }
        if matches!(got, CommandResponse::Rejected(_)) {
            assert_unchanged_by_rejection(&before, &state, &step.command, &ctx_msg);
        }
    }
    (case.check)(&state);
    state
}

pub fn assert_unchanged_by_rejection(
    before: &TopologyState,
    after: &TopologyState,
    command: &Command,
    ctx_msg: &str,
) {
    let mut after = after.clone();
    if let Command::ProposeSwitch(ProposeSwitch {
        request_id: Some(_),
        ..
    }) = command
    {
        // The one documented change: the answer is remembered.
        after.requests = before.requests.clone();
    }
    assert_eq!(before, &after, "{ctx_msg}: a rejection changed the state");
}

pub fn no_check(_: &TopologyState) {}
