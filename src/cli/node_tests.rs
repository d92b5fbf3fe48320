//! `topoctl node stats` and `topoctl faults` against a tiny in-test
//! server: they talk to the first endpoint only, send the body the flags
//! describe, and print readable tables.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};

use super::render::*;
use super::tests::{dead_endpoint, serve};
use super::*;
use crate::api::types::*;
use crate::model::metrics::{HopCount, Percentiles};
use crate::model::{NodeSummary, Topology};

fn cli(endpoints: &[&Endpoint], args: &[&str]) -> Cli {
    let list = endpoints
        .iter()
        .map(|e| e.authority())
        .collect::<Vec<_>>()
        .join(",");
    let mut argv = vec!["topoctl", "--endpoints", &list];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap()
}

fn stats() -> NodeStats {
    NodeStats {
        node_id: 2,
        incarnation: 5,
        state: ExecStateView::Preparing {
            current: 4,
            shadow: 9,
        },
        verified: Some(4),
        last_failure: None,
        current: Some(OverlayView {
            instance: 4,
            topology: Topology::FullMesh,
            links: vec![1, 3],
            eager: None,
        }),
        other: Some(OverlayView {
            instance: 9,
            topology: Topology::PubSub,
            links: vec![3],
            eager: Some(vec![3]),
        }),
        peers: vec![PeerView {
            peer: 1,
            link_up: true,
            overlay_link: true,
            rtt_us: Some(850),
            rtt_p50_us: Some(12_300),
            rtt_p99_us: Some(1_200_000),
            bytes_in: 10,
            bytes_out: 20,
            messages_in: 1,
            messages_out: 2,
            send_queue_depth: 3,
            disconnects: 4,
            frames_dropped: 5,
        }],
        totals: TotalsView {
            peers: 1,
            links_up: 1,
            ..TotalsView::default()
        },
        counters: CountersView::default(),
        dropped_events: 0,
        summary: NodeSummary {
            node: 2,
            window_ms: 60_000,
            links_up: 1,
            links_expected: 2,
            rtt_ms: Some(Percentiles {
                p50: 0.85,
                p99: 2.5,
            }),
            hops: Some(HopCount { p50: 1.0, max: 2 }),
            cpu_share: 0.25,
            ..NodeSummary::default()
        },
    }
}

#[test]
fn node_stats_rows_are_readable() {
    let s = stats();
    let rows = node_stats_rows(&s);
    let get = |k: &str| {
        rows.iter()
            .find(|r| r[0] == k)
            .unwrap_or_else(|| panic!("no {k}"))[1]
            .clone()
    };
    assert_eq!(get("state"), "preparing (current 4, shadow 9)");
    assert_eq!(get("current overlay"), "4 full_mesh, links 1,3");
    assert_eq!(get("other overlay"), "9 pub_sub, links 3, eager 3");
    assert_eq!(get("links up"), "1 of 1 peers");
    assert_eq!(get("overlay links up / expected"), "1 / 2");
    assert_eq!(get("overlay rtt p50 / p99"), "0.85ms / 2.50ms");
    assert_eq!(get("broadcast hops p50 / max"), "1 / 2");
    assert_eq!(get("cpu share"), "0.25");
    assert_eq!(get("summary window"), "60.0s");
    assert_eq!(
        peer_rows(&s),
        vec![vec![
            "1", "up", "yes", "850µs", "12.3ms", "1.20s", "10", "20", "1", "2", "3", "4", "5"
        ]]
    );
    assert_eq!(PEERS_HEADER.len(), peer_rows(&s)[0].len());
}

#[tokio::test]
async fn node_stats_asks_the_first_endpoint_only() {
    let live = serve(Router::new().route(
        "/v1/node/stats",
        get(|| async { Json(serde_json::to_value(stats()).unwrap()) }),
    ))
    .await;
    let mut out = Vec::new();
    run(cli(&[&live], &["node", "stats"]), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("preparing (current 4, shadow 9)"), "{text}");
    assert!(text.contains("DISCONNECTS"), "{text}");
    let mut out = Vec::new();
    run(cli(&[&live], &["node", "stats", "--json"]), &mut out)
        .await
        .unwrap();
    let v: NodeStats = serde_json::from_slice(&out).unwrap();
    assert_eq!(v, stats());
    // A dead first endpoint is an error, not an answer from another node.
    let dead = dead_endpoint().await;
    let e = run(cli(&[&dead, &live], &["node", "stats"]), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, CliError::Unreachable { .. }), "{e}");
}

/// Each request's method and JSON body, as a test server saw them.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A fault server that records each request's method and body.
fn faults_router(seen: Seen) -> Router {
    async fn handle(
        State(seen): State<Seen>,
        method: axum::http::Method,
        body: String,
    ) -> (StatusCode, Json<Value>) {
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        seen.lock().unwrap().push((method.to_string(), v.clone()));
        if method == axum::http::Method::DELETE {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": {"code": "chaos_disabled", "message": "chaos mode is off"}})),
            );
        }
        let rules = v.get("rules").cloned().unwrap_or(json!([]));
        let seed = v.get("seed").cloned().unwrap_or(json!(0));
        (
            StatusCode::OK,
            Json(json!({"node_id": 3, "chaos_enabled": true, "rules": rules, "seed": seed})),
        )
    }
    Router::new()
        .route("/v1/node/faults", get(handle).put(handle).delete(handle))
        .with_state(seen)
}

#[tokio::test]
async fn faults_commands_send_the_rules_to_the_first_endpoint() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let live = serve(faults_router(seen.clone())).await;
    let other = serve(faults_router(Arc::new(Mutex::new(Vec::new())))).await;
    let mut out = Vec::new();
    let args = ["faults", "set", "--drop-to", "2", "--delay-from", "4:30ms"];
    run(cli(&[&live, &other], &args), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("node 3: chaos mode on; 2 fault rule(s), seed 0"),
        "{text}"
    );
    assert!(text.contains("outbound") && text.contains("30ms"), "{text}");
    assert_eq!(
        seen.lock().unwrap()[0],
        (
            "PUT".to_string(),
            json!({"seed": 0, "rules": [
                {"peer": 2, "direction": "outbound", "drop_probability": 1.0, "delay_ms": 0},
                {"peer": 4, "direction": "inbound", "drop_probability": 0.0, "delay_ms": 30}]})
        )
    );
    // A refusal is the server's error, code first.
    let e = run(cli(&[&live], &["faults", "clear"]), &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "chaos_disabled: chaos mode is off");
    // Bad flags are refused before anything is sent.
    let before = seen.lock().unwrap().len();
    let e = run(
        cli(&[&live], &["faults", "set", "--delay-to", "2"]),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().starts_with("bad_request: --delay-to 2"),
        "{e}"
    );
    assert_eq!(seen.lock().unwrap().len(), before);
    // Writes never fail over: a dead first endpoint is an error.
    let dead = dead_endpoint().await;
    let e = run(
        cli(&[&dead, &live], &["faults", "set", "--drop", "2"]),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, CliError::Unreachable { .. }), "{e}");
    assert_eq!(seen.lock().unwrap().len(), before);
}
