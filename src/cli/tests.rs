//! topoctl against a tiny in-test HTTP server: failover, error decoding,
//! `switch --wait`; and the rendering of views into rows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{CommandFactory, Parser};
use serde_json::json;

use super::render::*;
use super::watch::{progress_lines, wait_for_decision, Lines};
use super::*;
use crate::api::types::*;
use crate::model::Topology;

/// Serves `router` on 127.0.0.1:0 and returns its endpoint.
pub(super) async fn serve(router: Router) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr.to_string().parse().unwrap()
}

/// An endpoint where nothing listens (bound, then closed).
pub(super) async fn dead_endpoint() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string().parse().unwrap()
}

/// A policy view as a server sends it.
fn policy_json(cooldown_ms: u64) -> serde_json::Value {
    let mut p = crate::model::Policy {
        cooldown_ms,
        auto_switch: true,
        history_retention: 10,
        ..Default::default()
    };
    p.thresholds.latency_p99_ms = 80.0;
    serde_json::to_value(PolicyView::from(&p)).unwrap()
}

fn policy_router() -> Router {
    Router::new().route(
        "/v1/policy",
        get(|| async { ([(SERVED_BY_HEADER, "2")], Json(policy_json(1000))) }),
    )
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint_and_remembers_it() {
    let dead = dead_endpoint().await;
    let live = serve(policy_router()).await;
    let client = ApiClient::new(vec![dead.clone(), live.clone()], Duration::from_secs(2));
    let answer = client.get::<PolicyView>("/v1/policy").await.unwrap();
    assert_eq!(answer.endpoint, live);
    assert_eq!(answer.served_by.as_deref(), Some("2"));
    assert_eq!(answer.value.cooldown_ms, 1000);
    // The next request starts at the endpoint that answered.
    let again = client.get::<PolicyView>("/v1/policy").await.unwrap();
    assert_eq!(again.endpoint, live);
}

#[tokio::test]
async fn all_endpoints_down_lists_each_attempt() {
    let (a, b) = (dead_endpoint().await, dead_endpoint().await);
    let client = ApiClient::new(vec![a.clone(), b.clone()], Duration::from_secs(2));
    let err = client.get::<PolicyView>("/v1/policy").await.unwrap_err();
    let CliError::Unreachable { attempts } = &err else {
        panic!("expected unreachable, got {err:?}")
    };
    let tried: Vec<&str> = attempts.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(tried, vec![a.authority(), b.authority()]);
    assert!(err.to_string().starts_with("unreachable: "), "{err}");
    assert!(
        attempts[0].1.to_lowercase().contains("refused"),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn error_bodies_become_typed_errors() {
    let router = Router::new()
        .route(
            "/v1/topology/switch",
            post(|| async {
                (
                    StatusCode::CONFLICT,
                    Json(ErrorBody::new(
                        "transition_in_progress",
                        "transition 9 is still in flight",
                    )),
                )
            }),
        )
        .route(
            "/v1/plain",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream died") }),
        )
        .route("/v1/big", get(|| async { "x".repeat(10_000) }))
        .route("/v1/notjson", get(|| async { "hello" }));
    let ep = serve(router).await;
    let client = ApiClient::new(vec![ep], Duration::from_secs(2)).with_max_body(1000);
    let err = client
        .send::<SwitchAccepted>(
            hyper::Method::POST,
            "/v1/topology/switch",
            &SwitchRequest::new(Topology::HyParView),
        )
        .await
        .unwrap_err();
    match &err {
        CliError::Api {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 409);
            assert_eq!(code, "transition_in_progress");
            assert_eq!(message, "transition 9 is still in flight");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "transition_in_progress: transition 9 is still in flight"
    );
    let err = client
        .get::<serde_json::Value>("/v1/plain")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "http_502: upstream died");
    let err = client
        .get::<serde_json::Value>("/v1/big")
        .await
        .unwrap_err();
    assert!(matches!(err, CliError::BadResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("exceeds 1000 bytes"), "{err}");
    let err = client.get::<PolicyView>("/v1/notjson").await.unwrap_err();
    assert!(err.to_string().starts_with("bad_response: "), "{err}");
}

#[tokio::test]
async fn a_slow_get_moves_on_but_a_slow_write_does_not() {
    let slow = serve(
        Router::new().route(
            "/v1/policy",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            })
            .put(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        ),
    )
    .await;
    let live = serve(policy_router()).await;
    let client = ApiClient::new(vec![slow.clone(), live.clone()], Duration::from_millis(200));
    let answer = client.get::<PolicyView>("/v1/policy").await.unwrap();
    assert_eq!(answer.endpoint, live);

    let client = ApiClient::new(vec![slow, live], Duration::from_millis(200));
    let err = client
        .send::<PolicyView>(hyper::Method::PUT, "/v1/policy", &PolicyRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, CliError::Timeout { .. }), "{err:?}");
}

fn view(status: TransitionStatus, reports: &[(u64, PhaseView)]) -> TransitionView {
    TransitionView {
        id: 12,
        from: Topology::FullMesh,
        to: Topology::HyParView,
        reason: ReasonView::Manual,
        requested_by: "api@node1".into(),
        proposed_at_ms: 1_700_000_000_123,
        status,
        decided_at_ms: status.is_final().then_some(1_700_000_001_000),
        missing: vec![],
        abort_reason: (status == TransitionStatus::Aborted).then(|| "node 3 failed".into()),
        epoch: (status == TransitionStatus::Committed).then_some(4),
        members: vec![1, 2, 3],
        reports: reports.iter().cloned().collect(),
        health: BTreeMap::new(),
        request_id: None,
        trigger: None,
    }
}

/// A server that accepts a switch and then shows transition 12 going
/// through `steps`, one per poll (the last one repeats).
async fn switch_server(steps: Vec<TransitionView>) -> Endpoint {
    let polls = Arc::new(AtomicUsize::new(0));
    let steps = Arc::new(steps);
    let router = Router::new()
        .route(
            "/v1/topology/switch",
            post(|Json(req): Json<SwitchRequest>| async move {
                assert_eq!(req.topology, "hyparview");
                (
                    StatusCode::ACCEPTED,
                    Json(SwitchAccepted {
                        transition_id: 12,
                        status: TransitionStatus::InProgress,
                    }),
                )
            }),
        )
        .route(
            "/v1/transitions/12",
            get(
                |State((polls, steps)): State<(Arc<AtomicUsize>, Arc<Vec<TransitionView>>)>| async move {
                    let i = polls.fetch_add(1, Ordering::SeqCst).min(steps.len() - 1);
                    Json(steps[i].clone())
                },
            ),
        )
        .with_state((polls, steps));
    serve(router).await
}

pub(super) fn cli(ep: &Endpoint, args: &[&str]) -> Cli {
    let mut argv = vec!["topoctl", "--endpoints", ep.authority()];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap()
}

#[tokio::test]
async fn switch_wait_shows_each_phase_then_the_commit() {
    use TransitionStatus::*;
    let ep = switch_server(vec![
        view(InProgress, &[]),
        view(InProgress, &[(2, PhaseView::Prepared)]),
        view(
            InProgress,
            &[(2, PhaseView::Prepared), (1, PhaseView::Prepared)],
        ),
        view(Committed, &[]),
    ])
    .await;
    let mut out = Vec::new();
    run(cli(&ep, &["switch", "hyparview", "--wait"]), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().take(4).collect();
    assert_eq!(
        lines,
        vec![
            "transition 12: full_mesh -> hyparview (manual), members to prepare: 1,2,3",
            "  node 2: prepared",
            "  node 1: prepared",
            "transition 12: committed (epoch 4)",
        ],
        "{text}"
    );
}

#[tokio::test]
async fn switch_wait_fails_when_aborted() {
    use TransitionStatus::*;
    let failed = PhaseView::Failed {
        reason: "no links".into(),
    };
    let ep = switch_server(vec![view(InProgress, &[(3, failed)]), view(Aborted, &[])]).await;
    let mut out = Vec::new();
    let err = run(cli(&ep, &["switch", "hyparview", "--wait"]), &mut out)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transition_aborted: transition 12 aborted: node 3 failed"
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("  node 3: failed: no links"), "{text}");
    assert!(
        text.contains("transition 12: aborted: node 3 failed"),
        "{text}"
    );
}

#[tokio::test]
async fn wait_gives_up_at_the_deadline() {
    let ep = switch_server(vec![view(TransitionStatus::InProgress, &[])]).await;
    let client = ApiClient::new(vec![ep], Duration::from_secs(1));
    let mut sink = Lines(Vec::new());
    let err = wait_for_decision(
        &client,
        12,
        Duration::from_millis(300),
        Duration::from_millis(20),
        &mut sink,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CliError::WaitTimeout { id: 12, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn switch_without_wait_prints_the_raw_json_answer() {
    let ep = switch_server(vec![]).await;
    let mut out = Vec::new();
    run(cli(&ep, &["switch", "hyparview", "--json"]), &mut out)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v, json!({"transition_id": 12, "status": "in_progress"}));
}

#[test]
fn progress_lines_report_only_changes() {
    use TransitionStatus::*;
    let a = view(InProgress, &[(2, PhaseView::Prepared)]);
    assert_eq!(progress_lines(Some(&a), &a), Vec::<String>::new());
    let b = view(
        InProgress,
        &[(2, PhaseView::Prepared), (3, PhaseView::Prepared)],
    );
    assert_eq!(progress_lines(Some(&a), &b), vec!["  node 3: prepared"]);
    // Decided before the first poll: the header and the outcome.
    let c = view(Committed, &[]);
    assert_eq!(
        progress_lines(None, &c),
        vec![
            "transition 12: full_mesh -> hyparview (manual), members to prepare: 1,2,3",
            "transition 12: committed (epoch 4)",
        ]
    );
}

fn status(id: u64, role: Role) -> ClusterStatus {
    ClusterStatus {
        node_id: id,
        role,
        term: 3,
        leader: Some(1),
        last_log_index: Some(20),
        applied_index: Some(19),
        commit_index: None,
        api_addr: format!("127.0.0.1:710{id}"),
    }
}

#[test]
fn status_rows_show_unreachable_endpoints() {
    let rows = status_rows(&[
        EndpointStatus {
            endpoint: "127.0.0.1:7101".into(),
            result: Ok(status(1, Role::Leader)),
        },
        EndpointStatus {
            endpoint: "127.0.0.1:7102".into(),
            result: Err("unreachable: Connection refused".into()),
        },
    ]);
    assert_eq!(
        rows,
        vec![
            vec!["127.0.0.1:7101", "1", "leader", "3", "20", "19", "1", ""],
            vec![
                "127.0.0.1:7102",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "unreachable: Connection refused"
            ],
        ]
    );
    let text = table(&STATUS_HEADER, rows).to_string();
    assert!(
        text.contains("LAST INDEX") && text.contains("leader"),
        "{text}"
    );
}

#[tokio::test]
async fn status_queries_every_endpoint() {
    let router = Router::new().route(
        "/v1/cluster/status",
        get(|| async { Json(status(2, Role::Follower)) }),
    );
    let live = serve(router).await;
    let dead = dead_endpoint().await;
    let list = format!("{},{}", live.authority(), dead.authority());
    let mut out = Vec::new();
    run(
        Cli::try_parse_from(["topoctl", "--endpoints", &list, "status"]).unwrap(),
        &mut out,
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let row_of = |ep: &Endpoint| {
        text.lines()
            .find(|l| l.contains(ep.authority()))
            .unwrap_or_else(|| panic!("no row for {ep}: {text}"))
            .to_string()
    };
    assert!(row_of(&live).contains("follower"), "{text}");
    assert!(row_of(&dead).contains("unreachable"), "{text}");
}

#[test]
fn members_and_policy_rows() {
    let view = MembersView {
        members: vec![MemberView {
            id: 4,
            voter: false,
            api_addr: "127.0.0.1:7104".into(),
            raft_addr: "127.0.0.1:7204".into(),
            peer_addr: "127.0.0.1:7304".into(),
            node_uuid: "u4".into(),
        }],
    };
    assert_eq!(
        members_rows(&view),
        vec![vec![
            "4",
            "learner",
            "127.0.0.1:7104",
            "127.0.0.1:7204",
            "127.0.0.1:7304",
            "u4"
        ]]
    );
    let mut policy = crate::model::Policy {
        cooldown_ms: 5,
        auto_switch: true,
        history_retention: 7,
        ..Default::default()
    };
    policy.profiles.insert(
        "mine".into(),
        crate::model::WorkloadProfile {
            description: String::new(),
            ranges: vec![
                crate::model::policy::ProfileRange {
                    max_nodes: Some(8),
                    topology: Topology::FullMesh,
                    config: None,
                },
                crate::model::policy::ProfileRange {
                    max_nodes: None,
                    topology: Topology::HyParView,
                    config: None,
                },
            ],
        },
    );
    let rows = policy_rows(&PolicyView::from(&policy));
    assert_eq!(
        rows[..6],
        vec![
            vec!["cooldown_ms", "5"],
            vec!["auto_switch", "on"],
            vec!["history_retention", "7"],
            vec!["monitor_interval_ms", "60000"],
            vec!["hold_rounds", "3"],
            vec!["flap_window_ms", "900000"],
        ]
    );
    assert!(rows.contains(&vec![
        "thresholds.latency_p99_ms".to_string(),
        "50".to_string()
    ]));
    assert!(rows.contains(&vec![
        "thresholds.min_messages".to_string(),
        "100".to_string()
    ]));
    assert_eq!(
        rows.iter()
            .filter(|r| r[0].starts_with("thresholds."))
            .count(),
        11
    );
    assert!(rows.contains(&vec![
        "profiles.mine[0]".to_string(),
        "<= 8: full_mesh (defaults)".to_string()
    ]));
    assert!(rows.contains(&vec![
        "profiles.mine[1]".to_string(),
        "rest: hyparview (defaults)".to_string()
    ]));
}

#[test]
fn history_and_info_rows() {
    let page = HistoryPage {
        transitions: vec![view(TransitionStatus::Committed, &[])],
        next_before: None,
    };
    assert_eq!(
        history_rows(&page),
        vec![vec![
            "12",
            "full_mesh",
            "hyparview",
            "manual",
            "api@node1",
            "2023-11-14 22:13:20.123Z",
            "2023-11-14 22:13:21.000Z",
            "committed (epoch 4)",
        ]]
    );
    let info = TopologyInfo {
        topology: Topology::PubSub,
        overlay_config: json!({"hyparview": {"active_view": 5}, "ihave_timeout_ms": 80}),
        epoch: 2,
        node_count: 3,
        leader: None,
        in_flight: Some(view(
            TransitionStatus::InProgress,
            &[(1, PhaseView::Prepared)],
        )),
        current_instance: 7,
        links: vec![2, 3],
        metrics: None,
        app_metrics: Default::default(),
    };
    let rows = info_rows(&info);
    assert_eq!(rows[0], vec!["topology", "pub_sub"]);
    assert_eq!(rows[4], vec!["leader", "-"]);
    assert_eq!(
        rows[5],
        vec![
            "in flight",
            "12: full_mesh -> hyparview, in progress (1/3 prepared)"
        ]
    );
    assert!(rows.contains(&vec![
        "config.hyparview.active_view".to_string(),
        "5".to_string()
    ]));
    assert!(rows.contains(&vec![
        "config.ihave_timeout_ms".to_string(),
        "80".to_string()
    ]));
}

#[test]
fn transition_rows_list_each_member() {
    let t = view(TransitionStatus::InProgress, &[(2, PhaseView::Prepared)]);
    let rows = transition_rows(&t);
    assert!(rows.contains(&vec!["node 1".to_string(), "waiting".to_string()]));
    assert!(rows.contains(&vec!["node 2".to_string(), "prepared".to_string()]));
}

#[test]
fn timestamps_are_utc() {
    assert_eq!(format_unix_ms(0), "1970-01-01 00:00:00.000Z");
    assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29 00:00:00.000Z");
    assert_eq!(
        format_unix_ms(1_700_000_000_123),
        "2023-11-14 22:13:20.123Z"
    );
}

#[test]
fn command_line_is_consistent_and_checks_input() {
    Cli::command().debug_assert();
    let err = Cli::try_parse_from(["topoctl", "--endpoints", "127.0.0.1", "info"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(err.to_string().contains("missing port"), "{err}");
    let c = Cli::try_parse_from(["topoctl", "history", "--limit", "5", "--json"]).unwrap();
    assert!(c.json);
    assert_eq!(c.endpoints.len(), 3);
    let c = Cli::try_parse_from(["topoctl", "policy", "--auto-switch", "false"]).unwrap();
    let Command::Policy(args) = c.command else {
        panic!("not policy")
    };
    assert_eq!(
        commands::policy_request(&args).unwrap(),
        Some(PolicyRequest {
            auto_switch: Some(false),
            ..PolicyRequest::default()
        })
    );
    let c = Cli::try_parse_from(["topoctl", "switch", "hyparview", "--config", "{bad"]).unwrap();
    let Command::Switch(args) = c.command else {
        panic!("not switch")
    };
    let err = commands::switch_request(&args).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bad_request: --config is not valid JSON"),
        "{err}"
    );
}

#[tokio::test]
async fn transition_command_shows_or_follows_one_transition() {
    use TransitionStatus::*;
    let ep = switch_server(vec![
        view(InProgress, &[(2, PhaseView::Prepared)]),
        view(Committed, &[]),
    ])
    .await;
    let mut out = Vec::new();
    run(cli(&ep, &["transition", "12"]), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("in progress (1/3 prepared)"), "{text}");
    let mut out = Vec::new();
    run(
        cli(&ep, &["transition", "12", "--wait", "--json"]),
        &mut out,
    )
    .await
    .unwrap();
    let v: TransitionView = serde_json::from_slice(&out).unwrap();
    assert_eq!(v.status, Committed);
}
