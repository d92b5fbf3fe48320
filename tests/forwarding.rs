//! A forwarded write's server-side wait is bounded by the client's
//! deadline (issue 11, defect 12): the `x-topod-deadline-ms` header, sent
//! by a client or by the forwarding follower, caps how long the leader's
//! handler waits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::{Method, StatusCode};
use topod::api::types::DEADLINE_HEADER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_wait_ends_at_the_clients_deadline() {
    let c = TestCluster::start(
        3,
        Options {
            prepare_timeout_ms: 60_000,
            ..Options::default()
        },
    )
    .await;
    let leader = c.leader().await;
    let follower = c.followers().await[0];
    // The transition never decides: every node hangs in prepare.
    for n in c.running() {
        c.executor(n).set_hang_prepare(true);
    }
    let body = r#"{"topology":"hyparview","wait":true,"wait_timeout_ms":60000}"#;
    let started = Instant::now();
    let r = request_with(
        c.api(follower),
        Method::POST,
        "/v1/topology/switch",
        &[
            ("content-type", "application/json"),
            (DEADLINE_HEADER, "1500"),
        ],
        body,
    )
    .await
    .expect("an answer");
    let took = started.elapsed();
    r.expect_error(StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert_eq!(r.served_by(), Some(leader), "the leader's own 504");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");

    let r = request_with(
        c.api(follower),
        Method::POST,
        "/v1/topology/switch",
        &[
            ("content-type", "application/json"),
            (DEADLINE_HEADER, "soon"),
        ],
        body,
    )
    .await
    .expect("an answer");
    let msg = r.expect_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(msg.contains(DEADLINE_HEADER), "{msg}");
    for n in c.running() {
        c.executor(n).set_hang_prepare(false);
    }
    c.shutdown().await;
}
