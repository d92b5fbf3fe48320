//! The leader batches phase and health reports (issue 15): a switch on a
//! 9-node cluster commits with fewer log entries than members, and the
//! history still shows every member's report; a batch applies exactly as
//! its reports one by one.

mod common;

use common::*;
use topod::api::types::TransitionStatus;
use topod::model::{
    ApplyContext, Command, CommandResponse, Envelope, OverlayConfig, Phase, PhaseReport,
    ProposeSwitch, Rejection, SwitchReason, Topology, TopologyState,
};

fn propose(state: &mut TopologyState, ctx: &ApplyContext) -> u64 {
    let target = Topology::HyParView;
    let p = ProposeSwitch::new(
        target,
        OverlayConfig::default_for(target),
        SwitchReason::Manual,
        None,
        "test",
    );
    match state.apply(ctx, 1_000, &Command::ProposeSwitch(p)) {
        CommandResponse::Accepted { id } => id,
        other => panic!("not accepted: {other:?}"),
    }
}

#[test]
fn a_batch_applies_as_its_reports_one_by_one() {
    let ctx = ApplyContext {
        index: 1,
        term: 1,
        members: vec![1, 2, 3],
    };
    let (mut one_by_one, mut batched) = (TopologyState::default(), TopologyState::default());
    let id = propose(&mut one_by_one, &ctx);
    assert_eq!(propose(&mut batched, &ctx), id);
    let reports = vec![
        PhaseReport {
            id,
            node: 1,
            phase: Phase::Prepared,
        },
        // Not a member: refused, the others still apply.
        PhaseReport {
            id,
            node: 9,
            phase: Phase::Prepared,
        },
        PhaseReport {
            id,
            node: 2,
            phase: Phase::Failed {
                reason: "no links".into(),
            },
        },
    ];
    let singles: Vec<CommandResponse> = reports
        .iter()
        .map(|r| {
            let c = Command::ReportPhase {
                id: r.id,
                node: r.node,
                phase: r.phase.clone(),
            };
            one_by_one.apply(&ctx, 2_000, &c)
        })
        .collect();
    let batch = batched.apply(&ctx, 2_000, &Command::ReportPhases { reports });
    assert_eq!(batch, CommandResponse::Batch(singles.clone()));
    assert!(matches!(
        singles[1],
        CommandResponse::Rejected(Rejection::StaleTransition { .. })
    ));
    assert_eq!(batched, one_by_one);
    // A batch travels in envelope V4, everything else still in V3.
    let env = Envelope::new(
        5,
        Command::ReportPhases {
            reports: Vec::new(),
        },
    );
    assert!(matches!(env, Envelope::V4 { .. }));
    assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
    let env = Envelope::new(
        5,
        Command::ReportPhase {
            id,
            node: 1,
            phase: Phase::Verified,
        },
    );
    assert!(matches!(env, Envelope::V3 { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_on_nine_nodes_writes_fewer_report_entries_than_members() {
    let cluster = TestCluster::start(9, Options::default()).await;
    let leader = cluster.leader().await;
    let raft = cluster.node(leader).raft().clone();
    let last_index = || raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
    let before = last_index();

    let t = switch_and_wait(cluster.api(leader), "hyparview", "batch-1").await;
    assert_eq!(t.status, TransitionStatus::Committed);
    assert_eq!(t.reports.len(), 9, "every member's prepare report: {t:?}");
    // Every member's health report after the cut-over.
    let record = wait_for("all nine health reports", DEADLINE, || async {
        let s = cluster.state(leader);
        let r = s.record(t.id)?.clone();
        (r.health.len() == 9).then_some(r)
    })
    .await;
    assert!(record.health.values().all(|p| *p == Phase::Verified));
    cluster.wait_converged().await;
    let entries = last_index() - before;
    // Unbatched: a proposal, 9 prepare reports, a commit and 9 health
    // reports, 20 entries at least.
    assert!(
        entries < 2 + 9,
        "{entries} log entries for a switch on 9 members"
    );
    cluster.shutdown().await;
}
