//! The admin API on a single-node cluster: every documented error (exact
//! status and code, the `{"error":{"code","message"}}` shape) leaves the
//! replicated state unchanged; pagination, policy, request-id dedup,
//! health and metrics endpoints.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use hyper::{Method, StatusCode};
use serde_json::json;
use topod::api::types::{HistoryPage, PolicyView, SwitchAccepted, TransitionStatus};
use topod::control::applied::Applied;
use topod::model::Topology;

async fn single() -> TestCluster {
    TestCluster::start(1, Options::default()).await
}

/// The applied state once nothing is in flight and every committed
/// transition has its health report (no write is pending).
async fn settled(c: &TestCluster) -> Arc<Applied> {
    wait_until("the node settles", DEADLINE, || {
        let s = c.state(1);
        s.in_flight.is_none()
            && (s.current_instance == 0
                || s.record(s.current_instance)
                    .is_some_and(|r| r.health.contains_key(&1)))
    })
    .await;
    c.applied(1)
}

/// Refused before anything was proposed: the state and the applied index
/// are exactly as before.
fn assert_nothing_written(c: &TestCluster, before: &Applied) {
    let after = c.applied(1);
    assert_eq!(
        after.last_applied, before.last_applied,
        "nothing was written"
    );
    assert_eq!(after.state, before.state);
}

/// Rejected by the state machine: the entry is in the log (the index moves
/// on) but no state changed, not even the clock.
fn assert_state_unchanged(c: &TestCluster, before: &Applied) {
    let after = c.applied(1);
    assert_eq!(after.state, before.state);
}

async fn raw_switch(c: &TestCluster, content_type: Option<&str>, body: &str) -> Resp {
    request(
        c.api(1),
        Method::POST,
        "/v1/topology/switch",
        content_type,
        Bytes::from(body.to_string()),
    )
    .await
    .expect("answer")
}

async fn committed_switch(c: &TestCluster, topology: &str, request_id: &str) -> u64 {
    let v = switch_and_wait(c.api(1), topology, request_id).await;
    assert_eq!(v.status, TransitionStatus::Committed, "{v:?}");
    settled(c).await;
    v.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_bad_request() {
    let c = single().await;
    let before = settled(&c).await;
    for body in [r#"{"topology":"#, "not json", "", r#"["hyparview"]"#] {
        let r = raw_switch(&c, Some("application/json"), body).await;
        let m = r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
        assert!(m.contains("invalid JSON"), "{body}: {m}");
    }
    let r = request(
        c.api(1),
        Method::PUT,
        "/v1/policy",
        Some("application/json"),
        "{",
    )
    .await
    .expect("answer");
    r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_nothing_written(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topology_is_refused_by_name() {
    let c = single().await;
    let before = settled(&c).await;
    let r = switch(c.api(1), "ring", false).await;
    let m = r.expect_error(StatusCode::BAD_REQUEST, "unknown_topology");
    assert!(m.contains("ring"), "{m}");
    assert_nothing_written(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_field_is_named() {
    let c = single().await;
    let before = settled(&c).await;
    let r = post_json(
        c.api(1),
        "/v1/topology/switch",
        &json!({"topology": "hyparview", "colour": "red"}),
    )
    .await;
    let m = r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(m.contains("colour"), "{m}");
    // The policy's keys are checked one by one: an unknown one is an
    // invalid policy naming it.
    let r = send_json(c.api(1), Method::PUT, "/v1/policy", &json!({"cooldown": 5})).await;
    let m = r.expect_error(StatusCode::BAD_REQUEST, "invalid_policy");
    assert!(m.contains("cooldown: unknown key"), "{m}");
    assert_nothing_written(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused() {
    let c = single().await;
    let before = settled(&c).await;
    let big = "x".repeat(70 * 1024);
    let body = json!({"topology": "hyparview", "request_id": big}).to_string();
    let r = raw_switch(&c, Some("application/json"), &body).await;
    let m = r.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(m.contains("65536"), "{m}");
    assert_nothing_written(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_refused() {
    let c = single().await;
    let before = settled(&c).await;
    let body = r#"{"topology":"hyparview"}"#;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = raw_switch(&c, ct, body).await;
        let m = r.expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        assert!(m.contains("application/json"), "{m}");
    }
    // A parameter after the media type is fine.
    let r = raw_switch(&c, Some("application/json; charset=utf-8"), body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.value());
    assert_ne!(c.applied(1).last_applied, before.last_applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_and_unknown_routes() {
    let c = single().await;
    let before = settled(&c).await;
    for (method, path) in [
        (Method::DELETE, "/v1/topology"),
        (Method::GET, "/v1/topology/switch"),
        (Method::POST, "/v1/policy"),
        (Method::PUT, "/v1/topology/history"),
    ] {
        let r = request(c.api(1), method.clone(), path, None, Bytes::new())
            .await
            .expect("answer");
        let m = r.expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert!(m.contains(method.as_str()) && m.contains(path), "{m}");
    }
    for path in ["/v1/nope", "/v2/topology", "/"] {
        let r = get(c.api(1), path).await;
        let m = r.expect_error(StatusCode::NOT_FOUND, "not_found");
        assert!(m.contains(path), "{m}");
    }
    let r = get(c.api(1), "/v1/transitions/999").await;
    let m = r.expect_error(StatusCode::NOT_FOUND, "not_found");
    assert!(m.contains("999"), "{m}");
    let r = get(c.api(1), "/v1/transitions/abc").await;
    r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert_nothing_written(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_to_the_current_topology_is_a_conflict() {
    let c = single().await;
    let before = settled(&c).await;
    let r = switch(c.api(1), "full_mesh", false).await;
    let m = r.expect_error(StatusCode::CONFLICT, "already_current");
    assert!(m.contains("full_mesh"), "{m}");
    assert_state_unchanged(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_switch_while_one_is_in_flight_is_a_conflict() {
    let c = single().await;
    c.executor(1).set_hang_prepare(true);
    let r = switch(c.api(1), "hyparview", false).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let first: SwitchAccepted = r.json();
    assert_eq!(first.status, TransitionStatus::InProgress);
    let before = c.applied(1);
    assert_eq!(
        before.state.in_flight.as_ref().map(|t| t.id),
        Some(first.transition_id)
    );

    let r = switch(c.api(1), "client_server", false).await;
    let m = r.expect_error(StatusCode::CONFLICT, "transition_in_progress");
    assert!(m.contains(&first.transition_id.to_string()), "{m}");
    assert_state_unchanged(&c, &before);

    // The node shuts down promptly although its executor hangs.
    tokio::time::timeout(std::time::Duration::from_secs(5), c.shutdown())
        .await
        .expect("shutdown does not wait for a hanging executor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_runs_out_is_a_timeout_and_the_switch_goes_on() {
    let c = single().await;
    c.executor(1).set_hang_prepare(true);
    let r = post_json(
        c.api(1),
        "/v1/topology/switch",
        &json!({"topology": "hyparview", "wait": true, "wait_timeout_ms": 200}),
    )
    .await;
    let m = r.expect_error(StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert!(m.contains("goes on"), "{m}");
    let s = c.state(1);
    let t = s.in_flight.expect("still in flight");
    assert_eq!(t.to, Topology::HyParView);
    for bad in [0, 300_001] {
        let r = post_json(
            c.api(1),
            "/v1/topology/switch",
            &json!({"topology": "client_server", "wait": true, "wait_timeout_ms": bad}),
        )
        .await;
        r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_newest_first() {
    let c = single().await;
    let a = committed_switch(&c, "hyparview", "a").await;
    let b = committed_switch(&c, "client_server", "b").await;
    let d = committed_switch(&c, "pub_sub", "d").await;

    let page: HistoryPage = get(c.api(1), "/v1/topology/history").await.json();
    let ids: Vec<u64> = page.transitions.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![d, b, a]);
    assert_eq!(page.next_before, None);

    let mut seen = Vec::new();
    let mut path = "/v1/topology/history?limit=1".to_string();
    loop {
        let page: HistoryPage = get(c.api(1), &path).await.json();
        assert_eq!(page.transitions.len(), 1);
        seen.push(page.transitions[0].id);
        match page.next_before {
            Some(before) => {
                assert_eq!(before, page.transitions[0].id);
                path = format!("/v1/topology/history?limit=1&before={before}");
            }
            None => break,
        }
    }
    assert_eq!(seen, vec![d, b, a]);
    let page: HistoryPage = get(c.api(1), &format!("/v1/topology/history?before={a}"))
        .await
        .json();
    assert!(page.transitions.is_empty());
    assert_eq!(page.next_before, None);

    let before = settled(&c).await;
    for q in ["limit=abc", "before=-1", "page=2"] {
        let r = get(c.api(1), &format!("/v1/topology/history?{q}")).await;
        r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_nothing_written(&c, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_round_trips_and_invalid_values_are_refused() {
    let c = single().await;
    settled(&c).await;
    let r = send_json(
        c.api(1),
        Method::PUT,
        "/v1/policy",
        &json!({"cooldown_ms": 1234, "auto_switch": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.value());
    let set: PolicyView = r.json();
    let got: PolicyView = get(c.api(1), "/v1/policy").await.json();
    assert_eq!(set, got);
    assert_eq!((got.cooldown_ms, got.auto_switch), (1234, true));
    assert_eq!(
        got.history_retention, 1000,
        "an absent field keeps its value"
    );

    let before = settled(&c).await;
    for body in [
        json!({"history_retention": 0}),
        json!({"history_retention": 100_001}),
        json!({"cooldown_ms": 604_800_001u64}),
    ] {
        let r = send_json(c.api(1), Method::PUT, "/v1/policy", &body).await;
        r.expect_error(StatusCode::BAD_REQUEST, "invalid_policy");
        assert_nothing_written(&c, &before);
    }
    let r = send_json(c.api(1), Method::PUT, "/v1/policy", &json!({})).await;
    r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    let r = send_json(
        c.api(1),
        Method::PUT,
        "/v1/policy",
        &json!({"auto_switch": "yes"}),
    )
    .await;
    let m = r.expect_error(StatusCode::BAD_REQUEST, "invalid_policy");
    assert!(m.contains("auto_switch"), "{m}");
    assert_nothing_written(&c, &before);
    let got: PolicyView = get(c.api(1), "/v1/policy").await.json();
    assert_eq!(got, set);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_id_returns_the_same_transition() {
    let c = single().await;
    let body = json!({"topology": "hyparview", "request_id": "once"});
    let r = post_json(c.api(1), "/v1/topology/switch", &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let first: SwitchAccepted = r.json();
    let after_first = settled(&c).await;
    assert_eq!(after_first.state.topology, Topology::HyParView);

    let r = post_json(c.api(1), "/v1/topology/switch", &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.value());
    let again: SwitchAccepted = r.json();
    assert_eq!(again.transition_id, first.transition_id);
    assert_eq!(
        again.status,
        TransitionStatus::Committed,
        "its current status"
    );
    assert_state_unchanged(&c, &after_first);
    assert_eq!(c.state(1).history.len(), 1);
    assert_eq!(c.state(1).epoch, 1);
}

/// A node started with a control-plane-only executor has no data plane:
/// its `/v1/node/...` routes say so with 409 `no_data_plane` (never a panic
/// or a 500), nothing is written, and `/v1/topology` lists no links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_routes_without_a_data_plane_are_a_conflict() {
    let c = single().await;
    let before = settled(&c).await;
    let body = json!({"rules": [{"peer": 2, "drop_probability": 1.0}]});
    let answers = [
        get(c.api(1), "/v1/node/stats").await,
        get(c.api(1), "/v1/node/summary").await,
        get(c.api(1), "/v1/node/summary?window_ms=5000").await,
        get(c.api(1), "/v1/node/faults").await,
        send_json(c.api(1), Method::PUT, "/v1/node/faults", &body).await,
        request(
            c.api(1),
            Method::DELETE,
            "/v1/node/faults",
            None,
            Bytes::new(),
        )
        .await
        .expect("answer"),
    ];
    for r in answers {
        let m = r.expect_error(StatusCode::CONFLICT, "no_data_plane");
        assert!(m.contains("node 1"), "{m}");
        assert_eq!(r.served_by(), Some(1));
    }
    let r = get(c.api(1), "/v1/topology").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.value()["links"], json!([]));
    assert_nothing_written(&c, &before);
}
