//! Tests of the operator commands of the monitor and rules: policy flags,
//! `monitor`, `watch`, `optimize`.

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde_json::json;

use super::render::*;
use super::tests::{cli, serve};
use super::*;
use crate::api::types::*;
use crate::model::Topology;

fn policy_args(argv: &[&str]) -> args::PolicyArgs {
    let mut full = vec!["topoctl", "policy"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).unwrap().command {
        Command::Policy(a) => a,
        other => panic!("not policy: {other:?}"),
    }
}

#[test]
fn policy_flags_become_the_put_body() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles.json");
    std::fs::write(
        &file,
        r#"{"mine": {"ranges": [{"max_nodes": 5, "topology": "full_mesh"},
                                {"topology": "hyparview", "overlay_config": {"active_view": 4}}]}}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let args = policy_args(&[
        "--monitor-interval-ms",
        "2000",
        "--hold-rounds",
        "2",
        "--flap-window-ms",
        "0",
        "--threshold",
        "latency_p99_ms=80.5",
        "--threshold",
        "max_hops=6",
        "--profile-file",
        file,
        "--delete-profile",
        "old",
    ]);
    let req = commands::policy_request(&args).unwrap().unwrap();
    assert_eq!(req.monitor_interval_ms, Some(2000));
    assert_eq!(req.hold_rounds, Some(2));
    assert_eq!(req.flap_window_ms, Some(0));
    assert_eq!(req.thresholds.latency_p99_ms, Some(80.5));
    assert_eq!(req.thresholds.max_hops, Some(6));
    assert_eq!(req.thresholds.min_connectivity, None);
    assert_eq!(req.profiles["old"], None);
    let mine = req.profiles["mine"].as_ref().unwrap();
    assert_eq!(mine.ranges.len(), 2);
    assert_eq!(
        mine.ranges[1].overlay_config,
        Some(json!({"active_view": 4}))
    );
    assert_eq!(commands::policy_request(&policy_args(&[])).unwrap(), None);
}

#[test]
fn bad_policy_flags_are_refused_naming_the_key() {
    let err = commands::policy_request(&policy_args(&["--threshold", "latency=5"])).unwrap_err();
    assert!(
        err.to_string().contains("thresholds.latency: unknown key"),
        "{err}"
    );
    let err = commands::policy_request(&policy_args(&["--threshold", "max_hops"])).unwrap_err();
    assert!(err.to_string().contains("not KEY=VALUE"), "{err}");
    let err =
        commands::policy_request(&policy_args(&["--threshold", "max_hops=many"])).unwrap_err();
    assert!(
        err.to_string().contains("max_hops: `many` is not a number"),
        "{err}"
    );
    let err = commands::policy_request(&policy_args(&["--threshold", "max_hops=1.5"])).unwrap_err();
    assert!(err.to_string().contains("thresholds.max_hops"), "{err}");
}

#[test]
fn monitor_round_renders_metrics_rules_decision_and_action() {
    use crate::model::ClusterMetrics;
    use crate::monitor::{MonitorRound, RoundAction};
    use crate::rules::{Decision, Evaluation, RuleEvaluation, RuleMemory};
    let metrics = ClusterMetrics {
        node_count: 5,
        live_nodes: 4,
        connectivity_score: 0.75,
        ..Default::default()
    };
    let round = MonitorRound {
        round: 7,
        leader: 1,
        term: 3,
        started_at_ms: 1_700_000_000_000,
        duration_ms: 12,
        asked: 5,
        unreachable: vec![4],
        bytes_gathered: 900,
        metrics: metrics.clone(),
        app: Default::default(),
        evaluation: Evaluation {
            rules: vec![RuleEvaluation {
                rule: "small_cluster_degraded".into(),
                holds: true,
                target: Topology::FullMesh,
                consecutive: 2,
                hold_rounds: 3,
                figures: Default::default(),
                why: "connectivity 0.75 < 0.9".into(),
            }],
            decision: Decision::Switch {
                target: Topology::FullMesh,
                rule: "small_cluster_degraded".into(),
                explanation: String::new(),
            },
            explanation: String::new(),
            memory: RuleMemory::default(),
        },
        action: RoundAction::Proposed { id: 40 },
    };
    let rows = monitor::round_rows(&round);
    assert!(rows.contains(&vec!["asked".to_string(), "5 (1 unreachable)".to_string()]));
    assert!(rows.contains(&vec!["metrics.nodes".to_string(), "5 (4 live)".to_string()]));
    assert!(rows.contains(&vec![
        "decision".to_string(),
        "switch to full_mesh (small_cluster_degraded)".to_string()
    ]));
    assert!(rows.contains(&vec![
        "action".to_string(),
        "proposed transition 40".to_string()
    ]));
    assert_eq!(
        monitor::rule_rows(&round),
        vec![vec![
            "small_cluster_degraded",
            "yes",
            "2",
            "full_mesh",
            "connectivity 0.75 < 0.9"
        ]]
    );
    let mut info = TopologyInfo::new(&crate::model::TopologyState::default(), 5, Some(1));
    assert!(info_rows(&info).contains(&vec![
        "metrics".to_string(),
        "- (no monitor round yet)".to_string()
    ]));
    info.metrics = Some(metrics);
    assert!(info_rows(&info).contains(&vec![
        "metrics.connectivity_score".to_string(),
        "0.750".to_string()
    ]));
}

#[test]
fn watch_lines_for_each_event_kind() {
    let line = |event: &str, data: serde_json::Value| {
        commands::watch_line(
            &sse::SseEvent {
                event: event.into(),
                data: data.to_string(),
            },
            false,
        )
        .unwrap()
    };
    let committed = json!({"kind": "committed", "transition_id": 5, "from": "full_mesh",
        "to": "hyparview", "reason": {"kind": "workload", "profile": "p"}, "epoch": 2});
    assert_eq!(
        line("committed", committed.clone()),
        "transition 5 committed: full_mesh -> hyparview (workload (p)), epoch 2"
    );
    let rolled = json!({"kind": "rolled_back", "transition_id": 6, "from": "hyparview",
        "to": "full_mesh", "reason": {"kind": "rollback", "of": 5}, "epoch": 3, "reverted": 5});
    assert_eq!(
        line("rolled_back", rolled),
        "transition 6 rolled_back: hyparview -> full_mesh (rollback of 5), epoch 3, reverted 5"
    );
    assert_eq!(
        line("lagged", json!({"stream": "topology", "missed": 3})),
        "missed 3 topology events (this client fell behind)"
    );
    let raw = commands::watch_line(
        &sse::SseEvent {
            event: "committed".into(),
            data: committed.to_string(),
        },
        true,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["event"], "committed");
    assert_eq!(v["data"]["transition_id"], 5);
    let err = commands::watch_line(
        &sse::SseEvent {
            event: "committed".into(),
            data: "{".into(),
        },
        false,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("bad_response"), "{err}");
}

/// A server streaming two SSE events (with a keep-alive comment between).
async fn events_server() -> Endpoint {
    let router = Router::new().route(
        "/v1/events",
        get(|| async {
            let body = concat!(
                ":\n\n",
                "event: announced\ndata: {\"kind\":\"announced\",\"transition_id\":9,",
                "\"from\":\"full_mesh\",\"to\":\"pub_sub\",\"reason\":{\"kind\":\"manual\"}}\n\n",
                "event: aborted\ndata: {\"kind\":\"aborted\",\"transition_id\":9,",
                "\"from\":\"full_mesh\",\"to\":\"pub_sub\",\"reason\":{\"kind\":\"manual\"},",
                "\"abort_reason\":\"node 2 failed\"}\n\n",
            );
            ([("content-type", "text/event-stream")], body)
        }),
    );
    serve(router).await
}

#[tokio::test]
async fn watch_prints_streamed_events() {
    let ep = events_server().await;
    let mut out = Vec::new();
    run(cli(&ep, &["watch", "--count", "2"]), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "transition 9 announced: full_mesh -> pub_sub (manual)\n\
         transition 9 aborted: full_mesh -> pub_sub (manual): node 2 failed\n"
    );
}

#[tokio::test]
async fn optimize_prints_the_choice_and_already_current() {
    let router = Router::new().route(
        "/v1/topology/optimize",
        post(|Json(req): Json<OptimizeRequest>| async move {
            assert_eq!(req.workload, "mine");
            (
                StatusCode::OK,
                Json(
                    json!({"workload": "mine", "node_count": 3, "topology": "full_mesh",
                    "status": "already_current", "transition_id": null, "transition": null,
                    "why": "range 0 covers 3"}),
                ),
            )
        }),
    );
    let ep = serve(router).await;
    let mut out = Vec::new();
    run(cli(&ep, &["optimize", "mine"]), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "mine: 3 members -> full_mesh: already current\nwhy: range 0 covers 3\n"
    );
}
