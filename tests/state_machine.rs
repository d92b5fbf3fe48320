//! Table tests of the switch protocol's state machine
//! (`TopologyState::apply`): command sequences in, exact responses and
//! final state out.
//!
//! Every step's entry is at log index = step number (1-based), so a
//! proposal at step `n` creates transition `n`. Every rejection is also
//! checked to leave the state identical (compared with a clone taken
//! before the step; for proposals with a request id, identical except for
//! the remembered answer). Builders and the runner are in `sm_table`.

mod sm_table;

use sm_table::*;
use topod::model::state::{MAX_COOLDOWN_MS, MAX_HISTORY_RETENTION};
use topod::model::{
    Command, Outcome, OverlayConfig, Phase, PolicyUpdate, ProposeSwitch, Rejection, SwitchReason,
    Topology, TopologyState,
};

/// An automatic proposal decided in `term`, with a trigger.
fn fenced(target: Topology, term: u64) -> Command {
    let mut p = ProposeSwitch::new(
        target,
        OverlayConfig::default_for(target),
        SwitchReason::Auto {
            rule: "small_cluster_degraded".into(),
        },
        None,
        "monitor@node1",
    );
    p.fence_term = Some(term);
    p.trigger = Some(topod::model::Trigger {
        metrics: topod::model::ClusterMetrics {
            node_count: 3,
            ..Default::default()
        },
        explanation: "fenced".into(),
    });
    Command::ProposeSwitch(p)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "accept",
            steps: vec![at(1_000, manual(Topology::HyParView), accepted(1))],
            check: |s| {
                assert_eq!(s.topology, Topology::FullMesh, "not switched before commit");
                let t = s.in_flight.as_ref().expect("in flight");
                assert_eq!(
                    (t.id, t.from, t.to),
                    (1, Topology::FullMesh, Topology::HyParView)
                );
                assert_eq!(t.members, MEMBERS.to_vec());
                assert_eq!(t.proposed_at_ms, 1_000);
                assert_eq!(s.history.len(), 1);
                assert_eq!(s.history[0].outcome, Outcome::InProgress);
                assert_eq!(s.history[0].requested_by, "table");
            },
        },
        Case {
            name: "stale_term: a proposal fenced by another term is refused",
            steps: vec![
                in_term(
                    1_000,
                    3,
                    fenced(Topology::HyParView, 2),
                    rejected(Rejection::StaleTerm {
                        decided_in: 2,
                        appended_in: 3,
                    }),
                ),
                in_term(1_000, 3, fenced(Topology::HyParView, 3), accepted(2)),
            ],
            check: |s| {
                let t = s.in_flight.as_ref().expect("the fenced proposal of term 3");
                assert_eq!(t.id, 2);
                assert_eq!(s.history.len(), 1, "the refused one left no record");
                let trigger = s.history[0].trigger.as_ref().expect("trigger kept");
                assert_eq!(trigger.explanation, "fenced");
                assert_eq!(trigger.metrics.node_count, 3);
            },
        },
        Case {
            name: "already_current: same topology and same config",
            steps: vec![at(
                1_000,
                manual(Topology::FullMesh),
                rejected(Rejection::AlreadyCurrent {
                    topology: Topology::FullMesh,
                }),
            )],
            check: |s| assert_eq!(s, &TopologyState::default()),
        },
        Case {
            name: "same topology with another config is accepted",
            steps: after_commit(vec![
                at(
                    20_000,
                    manual(Topology::HyParView),
                    rejected(Rejection::AlreadyCurrent {
                        topology: Topology::HyParView,
                    }),
                ),
                at(
                    20_000,
                    propose_cfg(hyparview_with(6), SwitchReason::Manual, None),
                    accepted(7),
                ),
            ]),
            check: |s| {
                let t = s.in_flight.as_ref().expect("in flight");
                assert_eq!(t.to_config, hyparview_with(6));
                assert_eq!(
                    t.from_config,
                    OverlayConfig::default_for(Topology::HyParView)
                );
            },
        },
        Case {
            name: "transition_in_progress",
            steps: vec![
                at(1_000, manual(Topology::HyParView), accepted(1)),
                at(
                    1_001,
                    manual(Topology::ClientServer),
                    rejected(Rejection::TransitionInProgress { id: 1 }),
                ),
                at(
                    1_002,
                    rollback(Topology::FullMesh, 1),
                    rejected(Rejection::TransitionInProgress { id: 1 }),
                ),
            ],
            check: |s| assert_eq!(s.in_flight.as_ref().map(|t| t.id), Some(1)),
        },
        Case {
            name:
                "cooldown: automatic switch at cooldown - 1 ms is rejected with the exact remainder",
            steps: after_commit(vec![
                at(
                    T_COMMIT + COOLDOWN - 1,
                    auto(Topology::FullMesh),
                    rejected(Rejection::CooldownActive { remaining_ms: 1 }),
                ),
                at(
                    T_COMMIT + 1,
                    propose(
                        Topology::PubSub,
                        SwitchReason::Workload {
                            profile: "events".into(),
                        },
                    ),
                    // The rejection above did not move the clock: now = T_COMMIT + 1.
                    rejected(Rejection::CooldownActive {
                        remaining_ms: COOLDOWN - 1,
                    }),
                ),
                at(T_COMMIT + COOLDOWN, auto(Topology::FullMesh), accepted(8)),
            ]),
            check: |s| assert_eq!(s.in_flight.as_ref().map(|t| t.id), Some(8)),
        },
        Case {
            name: "cooldown does not block manual switches",
            steps: after_commit(vec![at(
                T_COMMIT + 1,
                manual(Topology::ClientServer),
                accepted(6),
            )]),
            check: no_check,
        },
        Case {
            name: "cooldown does not block rollback",
            steps: after_commit(vec![at(
                T_COMMIT + 1,
                rollback(Topology::FullMesh, 1),
                accepted(6),
            )]),
            check: |s| {
                let t = s.in_flight.as_ref().expect("in flight");
                assert_eq!(t.reason, SwitchReason::Rollback { of: 1 });
                assert_eq!((t.from, t.to), (Topology::HyParView, Topology::FullMesh));
            },
        },
        Case {
            name: "cooldown counts from the last committed switch, not the last proposal",
            steps: vec![
                at(1_000, auto(Topology::HyParView), accepted(1)),
                at(2_000, abort(1, 1), applied()),
                // Nothing was committed yet: no cooldown.
                at(2_001, auto(Topology::HyParView), accepted(3)),
            ],
            check: |s| assert_eq!(s.last_switch_ms, None),
        },
        Case {
            name: "unknown_topology: config for another topology",
            steps: vec![at(
                1_000,
                Command::ProposeSwitch(ProposeSwitch::new(
                    Topology::HyParView,
                    OverlayConfig::default_for(Topology::FullMesh),
                    SwitchReason::Manual,
                    None,
                    "table",
                )),
                rejected(Rejection::UnknownTopology {
                    detail: "overlay config is for full_mesh but the target is hyparview".into(),
                }),
            )],
            check: |s| assert_eq!(s, &TopologyState::default()),
        },
        Case {
            name: "invalid_config",
            steps: vec![at(
                1_000,
                propose_cfg(hyparview_with(0), SwitchReason::Manual, None),
                rejected(Rejection::InvalidConfig {
                    detail: hyparview_with(0).validate().unwrap_err().to_string(),
                }),
            )],
            check: |s| assert_eq!(s, &TopologyState::default()),
        },
        Case {
            name: "stale: prepare report for an unknown transition",
            steps: vec![
                at(1_000, manual(Topology::HyParView), accepted(1)),
                at(
                    1_001,
                    report(99, 1, Phase::Prepared),
                    Expect::Stale("not in flight"),
                ),
            ],
            check: |s| assert!(s.in_flight.as_ref().unwrap().reports.is_empty()),
        },
        Case {
            name: "stale: report from a node that is not a member of the transition",
            steps: vec![
                at(1_000, manual(Topology::HyParView), accepted(1)),
                at(
                    1_001,
                    report(1, 7, Phase::Prepared),
                    Expect::Stale("not a member"),
                ),
            ],
            check: |s| assert!(s.in_flight.as_ref().unwrap().reports.is_empty()),
        },
        Case {
            name: "stale: commit and abort naming the wrong transition",
            steps: {
                let mut steps = vec![at(1_000, manual(Topology::HyParView), accepted(1))];
                steps.extend(all_prepared(1_001, 1));
                steps.push(at(
                    1_002,
                    commit(99, 1, &[]),
                    Expect::Stale("not in flight"),
                ));
                steps.push(at(1_002, abort(99, 1), Expect::Stale("not in flight")));
                steps
            },
            check: |s| assert_eq!(s.in_flight.as_ref().map(|t| t.id), Some(1)),
        },
        Case {
            name: "stale: decision whose term differs from its entry's term",
            steps: {
                let mut steps = vec![at(1_000, manual(Topology::HyParView), accepted(1))];
                steps.extend(all_prepared(1_001, 1));
                // A deposed leader's commit, appended by the next leader.
                steps.push(in_term(
                    1_002,
                    2,
                    commit(1, 1, &[]),
                    Expect::Stale("term 1"),
                ));
                steps.push(in_term(1_002, 2, abort(1, 1), Expect::Stale("term 1")));
                steps.push(in_term(
                    1_002,
                    1,
                    commit(1, 2, &[]),
                    Expect::Stale("term 2"),
                ));
                steps.push(in_term(1_003, 2, commit(1, 2, &[]), applied()));
                steps
            },
            check: |s| assert_eq!(s.epoch, 1),
        },
        Case {
            name: "stale: commit while a member has not prepared and is not listed missing",
            steps: vec![
                at(1_000, manual(Topology::HyParView), accepted(1)),
                at(1_001, report(1, 1, Phase::Prepared), applied()),
                at(
                    1_001,
                    report(
                        1,
                        2,
                        Phase::Failed {
                            reason: "no links".into(),
                        },
                    ),
                    applied(),
                ),
                at(1_002, commit(1, 1, &[3]), Expect::Stale("node 2")),
                // Listed missing, node 2 still failed: its report decides.
                at(
                    1_002,
                    commit(1, 1, &[2]),
                    Expect::Stale("node 2 reported Failed"),
                ),
            ],
            check: |s| {
                assert_eq!(s.epoch, 0);
                assert_eq!(
                    s.in_flight.as_ref().unwrap().failure(),
                    Some((2, "no links"))
                );
            },
        },
        Case {
            name: "commit increments the epoch, sets the current instance, records missing",
            steps: vec![
                at(1_000, manual(Topology::HyParView), accepted(1)),
                at(1_001, report(1, 1, Phase::Prepared), applied()),
                at(1_001, report(1, 2, Phase::Prepared), applied()),
                at(5_000, commit(1, 1, &[3]), applied()),
            ],
            check: |s| {
                assert_eq!(s.topology, Topology::HyParView);
                assert_eq!(s.config, OverlayConfig::default_for(Topology::HyParView));
                assert_eq!((s.epoch, s.current_instance), (1, 1));
                assert_eq!(s.in_flight, None);
                assert_eq!(s.last_switch_ms, Some(5_000));
                assert_eq!(
                    s.record(1).unwrap().outcome,
                    Outcome::Committed {
                        at_ms: 5_000,
                        missing: vec![3],
                        epoch: 1
                    }
                );
            },
        },
        Case {
            name: "prepare reports after the commit are stale",
            steps: after_commit(vec![at(
                20_000,
                report(1, 1, Phase::Prepared),
                Expect::Stale("not in flight"),
            )]),
            check: no_check,
        },
        Case {
            name: "abort leaves the topology",
            steps: vec![
                at(1_000, manual(Topology::HyParView), accepted(1)),
                at(
                    1_001,
                    report(1, 1, Phase::Failed { reason: "x".into() }),
                    applied(),
                ),
                at(3_000, abort(1, 1), applied()),
                at(3_001, abort(1, 1), Expect::Stale("not in flight")),
            ],
            check: |s| {
                assert_eq!(s.topology, Topology::FullMesh);
                assert_eq!((s.epoch, s.current_instance), (0, 0));
                assert_eq!((s.in_flight.as_ref(), s.last_switch_ms), (None, None));
                assert_eq!(
                    s.record(1).unwrap().outcome,
                    Outcome::Aborted {
                        at_ms: 3_000,
                        reason: "prepare timeout".into()
                    }
                );
            },
        },
        Case {
            name: "stale: rollback when nothing was committed",
            steps: vec![at(
                1_000,
                rollback(Topology::FullMesh, 0),
                Expect::Stale("last committed"),
            )],
            check: |s| assert_eq!(s, &TopologyState::default()),
        },
        Case {
            name: "stale: rollback not naming the last committed transition",
            steps: {
                let mut steps = commit_hyparview();
                steps.extend(switch_committed(
                    20_000,
                    6,
                    Topology::ClientServer,
                    SwitchReason::Manual,
                ));
                steps.push(at(
                    30_000,
                    rollback(Topology::FullMesh, 1),
                    Expect::Stale("last committed transition is 6"),
                ));
                steps.push(at(
                    30_000,
                    rollback(Topology::FullMesh, 6),
                    Expect::Stale("must return to hyparview"),
                ));
                steps.push(at(30_000, rollback(Topology::HyParView, 6), accepted(13)));
                steps
            },
            check: |s| {
                assert_eq!(
                    s.in_flight.as_ref().map(|t| t.to),
                    Some(Topology::HyParView)
                )
            },
        },
        Case {
            name: "stale: rollback of a rollback",
            steps: {
                let mut steps = commit_hyparview();
                steps.extend(switch_committed(
                    20_000,
                    6,
                    Topology::FullMesh,
                    SwitchReason::Rollback { of: 1 },
                ));
                steps.push(at(
                    30_000,
                    rollback(Topology::HyParView, 6),
                    Expect::Stale("itself a rollback"),
                ));
                steps
            },
            check: |s| {
                assert_eq!(
                    (s.topology, s.epoch, s.current_instance),
                    (Topology::FullMesh, 2, 6)
                )
            },
        },
        Case {
            name: "health reports: recorded for the current transition, stale otherwise",
            steps: vec![
                at(
                    500,
                    report(0, 1, Phase::Verified),
                    Expect::Stale("current overlay"),
                ),
                at(1_000, manual(Topology::HyParView), accepted(2)),
                at(
                    1_001,
                    report(2, 1, Phase::Verified),
                    Expect::Stale("current overlay"),
                ),
                at(1_002, report(2, 1, Phase::Prepared), applied()),
                at(1_002, report(2, 2, Phase::Prepared), applied()),
                at(1_002, report(2, 3, Phase::Prepared), applied()),
                at(1_003, commit(2, 1, &[]), applied()),
                at(1_004, report(2, 1, Phase::Verified), applied()),
                at(
                    1_004,
                    report(
                        2,
                        3,
                        Phase::Unhealthy {
                            reason: "loss".into(),
                        },
                    ),
                    applied(),
                ),
                at(
                    1_005,
                    report(99, 1, Phase::Verified),
                    Expect::Stale("current overlay"),
                ),
            ],
            check: |s| {
                let health = &s.record(2).unwrap().health;
                assert_eq!(health.len(), 2);
                assert_eq!(health[&1], Phase::Verified);
                assert_eq!(
                    health[&3],
                    Phase::Unhealthy {
                        reason: "loss".into()
                    }
                );
            },
        },
        Case {
            name: "request_id: a repeated id returns the first (accepted) answer",
            steps: vec![
                at(
                    1_000,
                    propose_cfg(
                        OverlayConfig::default_for(Topology::HyParView),
                        SwitchReason::Manual,
                        Some("req-1"),
                    ),
                    accepted(1),
                ),
                at(
                    1_001,
                    propose_cfg(
                        OverlayConfig::default_for(Topology::ClientServer),
                        SwitchReason::Manual,
                        Some("req-1"),
                    ),
                    accepted(1),
                ),
            ],
            check: |s| {
                assert_eq!(s.history.len(), 1, "no second transition");
                assert_eq!(s.in_flight.as_ref().unwrap().to, Topology::HyParView);
                assert_eq!(s.last_stamp_ms, 1_000, "a replay does not move the clock");
            },
        },
        Case {
            name: "request_id: a repeated id returns the first (rejected) answer",
            steps: vec![
                at(
                    1_000,
                    propose_cfg(
                        OverlayConfig::default_for(Topology::FullMesh),
                        SwitchReason::Manual,
                        Some("req-2"),
                    ),
                    rejected(Rejection::AlreadyCurrent {
                        topology: Topology::FullMesh,
                    }),
                ),
                at(
                    1_001,
                    propose_cfg(
                        OverlayConfig::default_for(Topology::HyParView),
                        SwitchReason::Manual,
                        Some("req-2"),
                    ),
                    rejected(Rejection::AlreadyCurrent {
                        topology: Topology::FullMesh,
                    }),
                ),
                at(
                    1_002,
                    propose_cfg(
                        OverlayConfig::default_for(Topology::HyParView),
                        SwitchReason::Manual,
                        Some("req-3"),
                    ),
                    accepted(3),
                ),
            ],
            check: |s| assert_eq!(s.history.len(), 1),
        },
        Case {
            name: "stamps going backwards do not move time back",
            steps: after_commit(vec![
                // Time moves to T_COMMIT + COOLDOWN through an applied command...
                at(
                    T_COMMIT + COOLDOWN,
                    Command::SetPolicy(PolicyUpdate::default()),
                    applied(),
                ),
                // ...so an automatic switch stamped earlier is out of the cooldown.
                at(T_COMMIT + 1, auto(Topology::FullMesh), accepted(7)),
            ]),
            check: |s| {
                assert_eq!(s.last_stamp_ms, T_COMMIT + COOLDOWN);
                assert_eq!(
                    s.in_flight.as_ref().unwrap().proposed_at_ms,
                    T_COMMIT + COOLDOWN
                );
            },
        },
        Case {
            name: "invalid policies are rejected",
            steps: vec![
                at(
                    1_000,
                    Command::SetPolicy(PolicyUpdate {
                        cooldown_ms: Some(MAX_COOLDOWN_MS + 1),
                        ..PolicyUpdate::default()
                    }),
                    rejected(Rejection::InvalidPolicy {
                        detail: format!(
                            "cooldown_ms: {} is outside 0..={MAX_COOLDOWN_MS}",
                            MAX_COOLDOWN_MS + 1
                        ),
                    }),
                ),
                at(
                    1_000,
                    Command::SetPolicy(PolicyUpdate {
                        history_retention: Some(0),
                        ..PolicyUpdate::default()
                    }),
                    rejected(Rejection::InvalidPolicy {
                        detail: format!(
                            "history_retention: 0 is outside 1..={MAX_HISTORY_RETENTION}"
                        ),
                    }),
                ),
                at(
                    1_000,
                    Command::SetPolicy(PolicyUpdate {
                        cooldown_ms: Some(5),
                        auto_switch: Some(true),
                        ..PolicyUpdate::default()
                    }),
                    applied(),
                ),
            ],
            check: |s| {
                assert_eq!((s.policy.cooldown_ms, s.policy.auto_switch), (5, true));
                assert!(s.policy_set);
            },
        },
    ]
}

#[test]
fn table_of_command_sequences() {
    for case in cases() {
        run(&case);
    }
}

/// `count` proposals to HyParView, each aborted right after: transition
/// ids 1, 3, 5, ...
fn proposals_and_aborts(count: u64) -> Vec<Step> {
    (0..count)
        .flat_map(|k| {
            let id = 2 * k + 1;
            [
                at(id, manual(Topology::HyParView), accepted(id)),
                at(id, abort(id, 1), applied()),
            ]
        })
        .collect()
}

#[test]
fn history_keeps_the_newest_records_within_the_retention() {
    let mut steps = vec![at(
        0,
        Command::SetPolicy(PolicyUpdate {
            history_retention: Some(3),
            ..PolicyUpdate::default()
        }),
        applied(),
    )];
    // After the policy at step 1, proposals land at 2, 4, 6, 8, 10.
    steps.extend((0..5u64).flat_map(|k| {
        let id = 2 * k + 2;
        [
            at(id, manual(Topology::HyParView), accepted(id)),
            at(id, abort(id, 1), applied()),
        ]
    }));
    let state = run(&Case {
        name: "retention",
        steps,
        check: no_check,
    });
    let ids: Vec<u64> = state.history.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![6, 8, 10], "oldest first, newest three kept");
}

#[test]
fn history_page_paginates_newest_first() {
    let state = run(&Case {
        name: "pagination",
        steps: proposals_and_aborts(5),
        check: no_check,
    });
    let page = |limit, before| -> Vec<u64> {
        state
            .history_page(limit, before)
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(page(2, None), vec![9, 7]);
    assert_eq!(page(2, Some(7)), vec![5, 3]);
    assert_eq!(page(2, Some(3)), vec![1]);
    assert_eq!(page(2, Some(1)), Vec::<u64>::new());
    assert_eq!(page(10, None), vec![9, 7, 5, 3, 1]);
    assert_eq!(page(0, None), Vec::<u64>::new());
    assert_eq!(page(10, Some(6)), vec![5, 3, 1], "before need not be an id");
}

#[test]
fn shrinking_the_retention_prunes_at_once_but_keeps_the_in_flight_record() {
    let mut steps = proposals_and_aborts(3);
    steps.push(at(10, manual(Topology::HyParView), accepted(7)));
    steps.push(at(
        11,
        Command::SetPolicy(PolicyUpdate {
            history_retention: Some(1),
            ..PolicyUpdate::default()
        }),
        applied(),
    ));
    let state = run(&Case {
        name: "shrink",
        steps,
        check: no_check,
    });
    let ids: Vec<u64> = state.history.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![7]);
    assert_eq!(state.in_flight.as_ref().map(|t| t.id), Some(7));
}
