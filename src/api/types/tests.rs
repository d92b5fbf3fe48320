//! JSON shapes of the API types and refusal of unknown fields.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::*;
use crate::control::types::NodeAddr;
use crate::model::{
    ApplyContext, Command, CommandResponse, OverlayConfig, Phase, PolicyUpdate, ProposeSwitch,
    SwitchReason, Topology, TopologyState,
};

fn ctx(index: u64) -> ApplyContext {
    ApplyContext {
        index,
        term: 1,
        members: vec![1, 2, 3],
    }
}

fn propose(target: Topology) -> Command {
    Command::ProposeSwitch(ProposeSwitch::new(
        target,
        OverlayConfig::default_for(target),
        SwitchReason::Manual,
        None,
        "api@node1",
    ))
}

/// A state with transition 3 committed (full_mesh → hyparview), 7 aborted
/// and 9 in flight with node 2 prepared.
fn state() -> TopologyState {
    let mut s = TopologyState::default();
    let mut apply = |i: u64, stamp: u64, c: Command| s.apply(&ctx(i), stamp, &c);
    assert_eq!(
        apply(3, 1000, propose(Topology::HyParView)),
        CommandResponse::Accepted { id: 3 }
    );
    for node in [1, 2, 3] {
        apply(
            4,
            1001,
            Command::ReportPhase {
                id: 3,
                node,
                phase: Phase::Prepared,
            },
        );
    }
    apply(
        5,
        1100,
        Command::CommitSwitch {
            id: 3,
            term: 1,
            missing: vec![],
        },
    );
    apply(7, 2000, propose(Topology::PubSub));
    apply(
        8,
        2500,
        Command::AbortSwitch {
            id: 7,
            term: 1,
            reason: "prepare timeout".into(),
        },
    );
    apply(9, 3000, propose(Topology::FullMesh));
    apply(
        10,
        3001,
        Command::ReportPhase {
            id: 9,
            node: 2,
            phase: Phase::Prepared,
        },
    );
    s
}

#[test]
fn in_flight_transition_has_the_documented_json() {
    let view = TransitionView::in_flight(&state()).unwrap();
    assert_eq!(
        serde_json::to_value(&view).unwrap(),
        json!({
            "id": 9, "from": "hyparview", "to": "full_mesh",
            "reason": {"kind": "manual"}, "requested_by": "api@node1",
            "proposed_at_ms": 3000, "status": "in_progress",
            "decided_at_ms": null, "missing": [], "abort_reason": null,
            "epoch": null, "members": [1, 2, 3],
            "reports": {"2": {"phase": "prepared"}}, "health": {}
        })
    );
    assert_eq!(view.waiting_for(), vec![1, 3]);
    let back: TransitionView =
        serde_json::from_value(serde_json::to_value(&view).unwrap()).unwrap();
    assert_eq!(back, view);
}

#[test]
fn decided_transitions_carry_their_outcome() {
    let s = state();
    let committed = TransitionView::lookup(&s, 3).unwrap();
    assert_eq!(committed.status, TransitionStatus::Committed);
    assert_eq!(committed.decided_at_ms, Some(1100));
    assert_eq!(committed.epoch, Some(1));
    // The record keeps who had to prepare and what they reported.
    assert_eq!(committed.members, vec![1, 2, 3]);
    assert_eq!(committed.reports.len(), 3);
    let aborted = TransitionView::lookup(&s, 7).unwrap();
    assert_eq!(aborted.status, TransitionStatus::Aborted);
    assert_eq!(aborted.abort_reason.as_deref(), Some("prepare timeout"));
    assert_eq!(aborted.decided_at_ms, Some(2500));
    assert!(TransitionView::lookup(&s, 4).is_none());
}

#[test]
fn reasons_and_phases_are_tagged() {
    let cases = [
        (SwitchReason::Manual, json!({"kind": "manual"})),
        (
            SwitchReason::Auto { rule: "r1".into() },
            json!({"kind": "auto", "rule": "r1"}),
        ),
        (
            SwitchReason::Workload {
                profile: "events".into(),
            },
            json!({"kind": "workload", "profile": "events"}),
        ),
        (
            SwitchReason::Rollback { of: 12 },
            json!({"kind": "rollback", "of": 12}),
        ),
    ];
    for (reason, expected) in cases {
        assert_eq!(
            serde_json::to_value(ReasonView::from(&reason)).unwrap(),
            expected
        );
    }
    let phases = [
        (Phase::Prepared, json!({"phase": "prepared"})),
        (
            Phase::Failed { reason: "x".into() },
            json!({"phase": "failed", "reason": "x"}),
        ),
        (Phase::Verified, json!({"phase": "verified"})),
        (
            Phase::Unhealthy { reason: "y".into() },
            json!({"phase": "unhealthy", "reason": "y"}),
        ),
    ];
    for (phase, expected) in phases {
        assert_eq!(
            serde_json::to_value(PhaseView::from(&phase)).unwrap(),
            expected
        );
    }
}

#[test]
fn topology_info_shows_config_and_in_flight() {
    let info = TopologyInfo::new(&state(), 3, Some(1));
    let v = serde_json::to_value(&info).unwrap();
    assert_eq!(v["topology"], "hyparview");
    assert_eq!(v["overlay_config"]["active_view"], 5);
    assert_eq!(v["epoch"], 1);
    assert_eq!(v["node_count"], 3);
    assert_eq!(v["leader"], 1);
    assert_eq!(v["current_instance"], 3);
    assert_eq!(v["in_flight"]["id"], 9);
    let idle = TopologyInfo::new(&TopologyState::default(), 1, None);
    assert_eq!(
        serde_json::to_value(&idle).unwrap(),
        json!({"topology": "full_mesh", "overlay_config": {}, "epoch": 0,
            "node_count": 1, "leader": null, "in_flight": null, "current_instance": 0,
            "links": []})
    );
    let linked = TopologyInfo::new(&state(), 3, Some(1)).with_links(vec![3, 2]);
    assert_eq!(
        serde_json::to_value(&linked).unwrap()["links"],
        json!([2, 3])
    );
}

#[test]
fn history_pages_newest_first_with_a_cursor() {
    let s = state();
    let q = HistoryQuery {
        limit: Some(2),
        before: None,
    };
    let page = HistoryPage::new(&s, &q);
    let ids: Vec<u64> = page.transitions.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![9, 7]);
    assert_eq!(page.next_before, Some(7));
    assert_eq!(page.transitions[0].reports.len(), 1);
    let last = HistoryPage::new(
        &s,
        &HistoryQuery {
            limit: Some(2),
            before: page.next_before,
        },
    );
    assert_eq!(last.transitions.len(), 1);
    assert_eq!(last.next_before, None);
    assert_eq!(
        HistoryQuery::default().effective_limit(),
        DEFAULT_HISTORY_LIMIT
    );
    let huge = HistoryQuery {
        limit: Some(1 << 40),
        before: None,
    };
    assert_eq!(huge.effective_limit(), MAX_HISTORY_LIMIT);
}

#[test]
fn switch_request_builds_a_manual_proposal() {
    let req: SwitchRequest = serde_json::from_value(json!({
        "topology": "hyparview", "overlay_config": {"active_view": 3},
        "request_id": "r-1"
    }))
    .unwrap();
    let p = req
        .to_proposal(OverlayConfig::default_for, "api@node2")
        .unwrap();
    assert_eq!(p.target, Topology::HyParView);
    let OverlayConfig::HyParView(h) = &p.config else {
        panic!("wrong config {:?}", p.config)
    };
    assert_eq!((h.active_view, h.passive_view), (3, 30));
    assert_eq!(p.reason, SwitchReason::Manual);
    assert_eq!(p.request_id.as_deref(), Some("r-1"));
    assert_eq!(p.requested_by, "api@node2");
    assert!(!req.waits());
}

#[test]
fn switch_request_errors_carry_codes() {
    let bad = |v: serde_json::Value| {
        serde_json::from_value::<SwitchRequest>(v)
            .unwrap()
            .to_proposal(OverlayConfig::default_for, "t")
            .unwrap_err()
    };
    assert_eq!(bad(json!({"topology": "ring"})).code, "unknown_topology");
    let e = bad(json!({"topology": "hyparview", "overlay_config": {"active_view": 0}}));
    assert_eq!(e.code, "invalid_config");
    assert!(e.message.contains("hyparview.active_view"), "{e}");
    let e = bad(json!({"topology": "hyparview", "wait_timeout_ms": 0}));
    assert_eq!(e.code, codes::BAD_REQUEST);
    let e = bad(json!({"topology": "hyparview", "request_id": "x".repeat(129)}));
    assert!(e.message.contains("request_id"), "{e}");
}

#[test]
fn the_rollback_request_id_prefix_is_reserved_for_the_coordinator() {
    let e = serde_json::from_value::<SwitchRequest>(
        json!({"topology": "hyparview", "request_id": "rollback-of-7"}),
    )
    .unwrap()
    .to_proposal(OverlayConfig::default_for, "t")
    .unwrap_err();
    assert_eq!(e.code, codes::BAD_REQUEST);
    assert!(e.message.contains("request_id `rollback-of-7`"), "{e}");
    assert!(e.message.contains("reserved"), "{e}");
}

#[test]
fn requests_refuse_unknown_fields_by_name() {
    let e = serde_json::from_value::<SwitchRequest>(json!({"topology": "x", "wiat": true}))
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `wiat`"), "{e}");
    let e = serde_json::from_value::<PolicyRequest>(json!({"cooldown": 5})).unwrap_err();
    assert!(e.to_string().contains("unknown field `cooldown`"), "{e}");
    let e = serde_json::from_value::<JoinRequest>(json!({"id": 4, "api_addr": "a",
        "raft_addr": "b", "peer_addr": "c", "node_uuid": "d", "voter": true}))
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `voter`"), "{e}");
    let e = serde_json::from_value::<HistoryQuery>(json!({"limt": 5})).unwrap_err();
    assert!(e.to_string().contains("unknown field `limt`"), "{e}");
}

#[test]
fn policy_request_maps_to_an_update() {
    let req: PolicyRequest = serde_json::from_value(json!({"auto_switch": true})).unwrap();
    assert_eq!(
        req.to_update().unwrap(),
        PolicyUpdate {
            auto_switch: Some(true),
            ..PolicyUpdate::default()
        }
    );
    assert!(PolicyRequest::default().to_update().is_err());
    for bad in [
        json!({"history_retention": 0}),
        json!({"cooldown_ms": 604_800_001u64}),
    ] {
        let req: PolicyRequest = serde_json::from_value(bad).unwrap();
        assert_eq!(req.to_update().unwrap_err().code, "invalid_policy");
    }
    assert_eq!(
        serde_json::to_value(PolicyView::from(&crate::model::Policy::default())).unwrap(),
        json!({"cooldown_ms": 300000, "auto_switch": false, "history_retention": 1000})
    );
}

#[test]
fn join_request_checks_addresses() {
    let mut req = JoinRequest {
        id: 4,
        api_addr: "127.0.0.1:7104".into(),
        raft_addr: "127.0.0.1:7204".into(),
        peer_addr: "127.0.0.1:7304".into(),
        node_uuid: "67e55044-10b1-426f-9247-bb680e5fe0c8".into(),
    };
    assert_eq!(req.to_node_addr().unwrap().raft_addr, "127.0.0.1:7204");
    req.raft_addr = "localhost".into();
    assert!(req
        .to_node_addr()
        .unwrap_err()
        .message
        .contains("raft_addr"));
    req.raft_addr = "127.0.0.1:7204".into();
    req.node_uuid = "nope".into();
    assert!(req
        .to_node_addr()
        .unwrap_err()
        .message
        .contains("node_uuid"));
    req.node_uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8".into();
    req.id = 0;
    assert!(req.to_node_addr().is_err());
}

#[test]
fn members_view_marks_voters_and_sorts_by_id() {
    let addr = |i: u64| NodeAddr {
        api_addr: format!("127.0.0.1:710{i}"),
        raft_addr: format!("127.0.0.1:720{i}"),
        peer_addr: format!("127.0.0.1:730{i}"),
        node_uuid: format!("u{i}"),
    };
    let nodes: BTreeMap<u64, NodeAddr> = (1..=4).map(|i| (i, addr(i))).collect();
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    let m = openraft::Membership::new(vec![voters], nodes);
    let view = MembersView::from(&m);
    let flags: Vec<(u64, bool)> = view.members.iter().map(|m| (m.id, m.voter)).collect();
    assert_eq!(flags, vec![(1, true), (2, true), (3, true), (4, false)]);
    assert_eq!(
        serde_json::to_value(&view.members[3]).unwrap(),
        json!({"id": 4, "voter": false, "api_addr": "127.0.0.1:7104",
            "raft_addr": "127.0.0.1:7204", "peer_addr": "127.0.0.1:7304", "node_uuid": "u4"})
    );
}

#[test]
fn cluster_status_json() {
    let s = ClusterStatus {
        node_id: 2,
        role: Role::Follower,
        term: 3,
        leader: Some(1),
        last_log_index: Some(10),
        applied_index: Some(9),
        commit_index: None,
        api_addr: "127.0.0.1:7102".into(),
    };
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"node_id": 2, "role": "follower", "term": 3, "leader": 1,
            "last_log_index": 10, "applied_index": 9, "commit_index": null,
            "api_addr": "127.0.0.1:7102"})
    );
}

#[test]
fn switch_accepted_json() {
    let a = SwitchAccepted {
        transition_id: 9,
        status: TransitionStatus::InProgress,
    };
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        json!({"transition_id": 9, "status": "in_progress"})
    );
}
