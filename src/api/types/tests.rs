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
            "reports": {"2": {"phase": "prepared"}}, "health": {},
            "request_id": null, "trigger": null
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
            "links": [], "metrics": null, "app_metrics": {}})
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

fn defaults(t: crate::model::Topology) -> crate::model::OverlayConfig {
    crate::model::OverlayConfig::default_for(t)
}

/// The `invalid_policy` message of a refused `PUT /v1/policy` body.
fn refused(body: serde_json::Value) -> String {
    let e = PolicyRequest::from_json(&body)
        .and_then(|r| r.to_update(defaults))
        .unwrap_err();
    assert_eq!(e.code, "invalid_policy", "{e}");
    e.message
}

#[test]
fn policy_request_maps_to_an_update() {
    let req = PolicyRequest::from_json(&json!({"auto_switch": true,
        "thresholds": {"min_connectivity": 0.5}}))
    .unwrap();
    assert_eq!(
        req.to_update(defaults).unwrap(),
        PolicyUpdate {
            auto_switch: Some(true),
            thresholds: crate::model::ThresholdsUpdate {
                min_connectivity: Some(0.5),
                ..Default::default()
            },
            ..PolicyUpdate::default()
        }
    );
    let e = PolicyRequest::default().to_update(defaults).unwrap_err();
    assert_eq!(e.code, "bad_request");
    assert!(e.message.contains("monitor_interval_ms"), "{e}");
    let view = serde_json::to_value(PolicyView::from(&crate::model::Policy::default())).unwrap();
    let keys: Vec<&str> = view
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = POLICY_KEYS.to_vec();
    expected.push("builtin_profiles");
    expected.push("builtin_rules");
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let mut thresholds: Vec<&str> = view["thresholds"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    thresholds.sort_unstable();
    let mut names = THRESHOLD_KEYS.to_vec();
    names.sort_unstable();
    assert_eq!(thresholds, names);
    assert_eq!(view["monitor_interval_ms"], 60_000);
}

#[test]
fn bad_policy_values_name_the_key_and_its_range() {
    assert!(refused(json!({"history_retention": 0}))
        .contains("history_retention: 0 is outside 1..=100000"));
    assert!(refused(json!({"cooldown_ms": 604_800_001u64})).contains("cooldown_ms"));
    assert!(refused(json!({"monitor_interval_ms": 99}))
        .contains("monitor_interval_ms: 99 is outside 100..="));
    assert!(refused(json!({"hold_rounds": 0})).contains("hold_rounds"));
    assert!(refused(json!({"flap_window_ms": -1})).contains("flap_window_ms"));
    let m = refused(json!({"thresholds": {"min_connectivity": 1.5}}));
    assert!(
        m.contains("thresholds.min_connectivity: 1.5 is outside 0..=1"),
        "{m}"
    );
    let m = refused(json!({"thresholds": {"latency_p99_ms": "NaN"}}));
    assert!(m.contains("thresholds.latency_p99_ms"), "{m}");
    let m = refused(json!({"thresholds": {"max_hop": 3}}));
    assert!(
        m.contains("thresholds.max_hop: unknown key; known: small_cluster_max_nodes"),
        "{m}"
    );
    let m = refused(json!({"cooldown": 5}));
    assert!(m.contains("cooldown: unknown key"), "{m}");
    assert!(refused(json!({"auto_switch": "yes"})).contains("auto_switch"));
    assert!(refused(json!({"thresholds": 3})).contains("thresholds: must be a JSON object"));
}

#[test]
fn bad_profiles_are_refused_by_key() {
    let range = |max: Option<u32>, t: &str| match max {
        Some(m) => json!({"max_nodes": m, "topology": t}),
        None => json!({"topology": t}),
    };
    let m = refused(
        json!({"profiles": {"p": {"ranges": [range(Some(10), "full_mesh"),
        range(Some(5), "hyparview"), range(None, "pub_sub")]}}}),
    );
    assert!(
        m.contains("profiles.p.ranges[1].max_nodes: 5 must exceed"),
        "{m}"
    );
    let m = refused(json!({"profiles": {"p": {"ranges": [range(Some(10), "full_mesh")]}}}));
    assert!(
        m.contains("profiles.p.ranges[0].max_nodes: must be absent"),
        "{m}"
    );
    let m = refused(
        json!({"profiles": {"p": {"ranges": [{"topology": "full_mesh",
        "overlay_config": {"active_view": 4}}]}}}),
    );
    assert!(m.contains("profiles.p.ranges[0].overlay_config"), "{m}");
    assert!(m.contains("active_view"), "{m}");
    let m = refused(json!({"profiles": {"event_driven": {"ranges": [range(None, "pub_sub")]}}}));
    assert!(
        m.contains("profiles.event_driven: `event_driven` is a built-in profile"),
        "{m}"
    );
    let m = refused(json!({"profiles": {"p": {"ranges": [range(None, "ring")]}}}));
    assert!(m.contains("profiles.p.ranges[0].topology"), "{m}");
    let m = refused(json!({"profiles": {"p": {"ranges": [], "extra": 1}}}));
    assert!(m.contains("profiles.p.extra: unknown key"), "{m}");
    let m = refused(json!({"profiles": {"Bad Name": {"ranges": [range(None, "pub_sub")]}}}));
    assert!(m.contains("profiles.Bad Name"), "{m}");
}

#[test]
fn a_profile_patch_resolves_over_the_defaults() {
    let req = PolicyRequest::from_json(&json!({"profiles": {
        "mine": {"description": "d", "ranges": [
            {"max_nodes": 3, "topology": "full_mesh"},
            {"topology": "hyparview", "overlay_config": {"active_view": 4}}]},
        "gone": null}}))
    .unwrap();
    let update = req.to_update(defaults).unwrap();
    assert_eq!(update.profiles["gone"], None);
    let mine = update.profiles["mine"].as_ref().unwrap();
    assert_eq!(mine.ranges[0].config, None);
    match &mine.ranges[1].config {
        Some(crate::model::OverlayConfig::HyParView(c)) => {
            assert_eq!(c.active_view, 4);
            assert_eq!(c.passive_view, 30, "other keys are the defaults");
        }
        other => panic!("{other:?}"),
    }
    let mut policy = crate::model::Policy::default();
    update.apply(&mut policy).unwrap();
    let view = PolicyView::from(&policy);
    assert_eq!(
        view.profiles["mine"].ranges[1]
            .overlay_config
            .as_ref()
            .unwrap()["active_view"],
        4
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
