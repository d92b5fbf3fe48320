//! Health endpoints and `/metrics` of one node. Its own test binary: the
//! metrics recorder is global to a process, so another test's cluster in
//! the same process would move the gauges this test reads.

mod common;

use common::*;
use hyper::StatusCode;
use topod::api::types::TransitionStatus;

async fn single() -> TestCluster {
    TestCluster::start(1, Options::default()).await
}

/// Nothing in flight and the last transition has its health report.
async fn settled(c: &TestCluster) {
    wait_until("the node settles", DEADLINE, || {
        let s = c.state(1);
        s.in_flight.is_none()
            && (s.current_instance == 0
                || s.record(s.current_instance)
                    .is_some_and(|r| r.health.contains_key(&1)))
    })
    .await;
}

async fn committed_switch(c: &TestCluster, topology: &str, request_id: &str) -> u64 {
    let v = switch_and_wait(c.api(1), topology, request_id).await;
    assert_eq!(v.status, TransitionStatus::Committed, "{v:?}");
    settled(c).await;
    v.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_and_metrics() {
    let c = single().await;
    let r = get(c.api(1), "/livez").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.value()["status"], "ok");
    wait_for("readyz answers 200", DEADLINE, || async {
        let r = get(c.api(1), "/readyz").await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;
    let r = get(c.api(1), "/readyz").await;
    assert_eq!(r.value()["leader"], 1);
    assert_eq!(r.served_by(), Some(1));

    committed_switch(&c, "hyparview", "m").await;
    let r = get(c.api(1), "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r.headers.get(hyper::header::CONTENT_TYPE).expect("type");
    assert!(ct.to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.body.to_vec()).expect("UTF-8");
    let sample = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no sample of {name} in\n{text}"))
    };
    assert!(sample("topod_term") >= 1.0);
    assert_eq!(sample("topod_has_leader"), 1.0);
    assert_eq!(
        sample("topod_current_topology{topology=\"hyparview\"}"),
        1.0
    );
    assert_eq!(
        sample("topod_current_topology{topology=\"full_mesh\"}"),
        0.0
    );
    assert!(sample("topod_commit_seconds_count") >= 1.0);
}
