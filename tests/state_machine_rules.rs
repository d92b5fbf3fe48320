//! The state machine's rules of envelope `V2` that differ from `V1`
//! (issue 11, defects 2 and 6), and that `V1` entries still apply by the
//! old rules:
//!
//! - a retryable rejection (`transition_in_progress`, `cooldown_active`,
//!   `stale_term`) is not remembered under its request id, so a retry with
//!   the same id is decided anew (a remembered one replayed forever);
//! - a commit never goes ahead past a member that reported `Failed`, even
//!   when the decision lists it as missing.

// Shared with tests/state_machine.rs, which uses all of it.
#[allow(dead_code)]
mod sm_table;

use sm_table::*;
use topod::model::state::Rules;
use topod::model::{
    ApplyContext, Command, CommandResponse, OverlayConfig, Phase, PolicyUpdate, Rejection,
    SwitchReason, Topology, TopologyState,
};

fn with_id(target: Topology, reason: SwitchReason, rid: &str) -> Command {
    propose_cfg(OverlayConfig::default_for(target), reason, Some(rid))
}

#[test]
fn a_transition_in_progress_answer_is_not_remembered() {
    let state = run(&Case {
        name: "retry after transition_in_progress",
        steps: vec![
            at(1_000, manual(Topology::HyParView), accepted(1)),
            at(
                1_001,
                with_id(Topology::PubSub, SwitchReason::Manual, "r"),
                rejected(Rejection::TransitionInProgress { id: 1 }),
            ),
            at(1_002, abort(1, 1), applied()),
            at(
                1_003,
                with_id(Topology::PubSub, SwitchReason::Manual, "r"),
                accepted(4),
            ),
            // Accepted answers are remembered as before.
            at(
                1_004,
                with_id(Topology::ClientServer, SwitchReason::Manual, "r"),
                accepted(4),
            ),
        ],
        check: |s| {
            assert_eq!(s.in_flight.as_ref().map(|t| t.to), Some(Topology::PubSub));
            assert_eq!(s.requests.len(), 1, "only the accepted answer is kept");
        },
    });
    assert_eq!(state.history.len(), 2);
}

#[test]
fn a_cooldown_answer_is_not_remembered() {
    let auto = SwitchReason::Auto { rule: "r".into() };
    let mut steps = vec![at(
        1,
        Command::SetPolicy(PolicyUpdate {
            cooldown_ms: Some(COOLDOWN),
            ..PolicyUpdate::default()
        }),
        applied(),
    )];
    steps.extend(switch_committed(
        1_000,
        2,
        Topology::HyParView,
        auto.clone(),
    ));
    steps.push(at(
        2_000,
        with_id(Topology::FullMesh, auto.clone(), "auto-1"),
        rejected(Rejection::CooldownActive {
            remaining_ms: COOLDOWN - 1_000,
        }),
    ));
    steps.push(at(
        1_000 + COOLDOWN,
        with_id(Topology::FullMesh, auto, "auto-1"),
        accepted(8),
    ));
    run(&Case {
        name: "retry after cooldown",
        steps,
        check: |s| assert_eq!(s.in_flight.as_ref().map(|t| t.id), Some(8)),
    });
}

#[test]
fn a_commit_never_goes_past_a_failed_member_listed_missing() {
    run(&Case {
        name: "commit past a Failed report",
        steps: vec![
            at(1_000, manual(Topology::HyParView), accepted(1)),
            at(1_001, report(1, 1, Phase::Prepared), applied()),
            at(1_001, report(1, 2, Phase::Prepared), applied()),
            // The coordinator saw node 3 silent and not live, decided to
            // commit without it; node 3's Failed report landed first.
            at(
                1_002,
                report(1, 3, Phase::Failed { reason: "x".into() }),
                applied(),
            ),
            at(
                1_003,
                commit(1, 1, &[3]),
                Expect::Stale("node 3 reported Failed"),
            ),
            at(1_004, abort(1, 1), applied()),
        ],
        check: |s| assert_eq!((s.epoch, s.topology), (0, Topology::FullMesh)),
    });
}

/// Applies `commands` by `rules` at indexes 1.. and returns the answers.
fn apply_all(rules: Rules, commands: &[Command]) -> (TopologyState, Vec<CommandResponse>) {
    let mut state = TopologyState::default();
    let answers = commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ctx = ApplyContext {
                index: i as u64 + 1,
                term: 1,
                members: MEMBERS.to_vec(),
            };
            state.apply_with(rules, &ctx, 1_000 + i as u64, c)
        })
        .collect();
    (state, answers)
}

#[test]
fn v1_entries_apply_by_the_old_rules() {
    let retry = [
        manual(Topology::HyParView),
        with_id(Topology::PubSub, SwitchReason::Manual, "r"),
        abort(1, 1),
        with_id(Topology::PubSub, SwitchReason::Manual, "r"),
    ];
    let (_, v1) = apply_all(Rules::V1, &retry);
    assert_eq!(
        v1[3],
        CommandResponse::Rejected(Rejection::TransitionInProgress { id: 1 }),
        "V1 replays the remembered rejection"
    );
    let (_, v2) = apply_all(Rules::V2, &retry);
    assert_eq!(v2[3], CommandResponse::Accepted { id: 4 });

    let failed_missing = [
        manual(Topology::HyParView),
        report(1, 1, Phase::Prepared),
        report(1, 2, Phase::Prepared),
        report(1, 3, Phase::Failed { reason: "x".into() }),
        commit(1, 1, &[3]),
    ];
    let (s1, v1) = apply_all(Rules::V1, &failed_missing);
    assert_eq!((v1[4].clone(), s1.epoch), (CommandResponse::Applied, 1));
    let (s2, v2) = apply_all(Rules::V2, &failed_missing);
    assert!(
        matches!(
            &v2[4],
            CommandResponse::Rejected(Rejection::StaleTransition { .. })
        ),
        "{:?}",
        v2[4]
    );
    assert_eq!(s2.epoch, 0);
}

#[test]
fn a_v2_retry_decides_anew_over_a_retryable_answer_remembered_by_v1() {
    let mut state = TopologyState::default();
    let ctx = |index| ApplyContext {
        index,
        term: 1,
        members: MEMBERS.to_vec(),
    };
    state.apply_with(Rules::V1, &ctx(1), 1, &manual(Topology::HyParView));
    let first = with_id(Topology::PubSub, SwitchReason::Manual, "r");
    state.apply_with(Rules::V1, &ctx(2), 2, &first);
    state.apply_with(Rules::V1, &ctx(3), 3, &abort(1, 1));
    assert_eq!(
        state.apply_with(Rules::V2, &ctx(4), 4, &first),
        CommandResponse::Accepted { id: 4 }
    );
    assert_eq!(
        state.requests.iter().filter(|(r, _)| r == "r").count(),
        1,
        "the new answer replaces the old one"
    );
}
