//! `/readyz` means "can serve a write or a current read now" (issue 11,
//! defect 10): a leader that has not heard from a quorum lately is not
//! ready, nor is a learner or follower that has not heard from its leader;
//! and a switch sent to such a node fails fast with 503 and no leader hint
//! naming itself or the leader it lost.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;

/// Waits until `/readyz` on `node` answers 503 `not_ready`.
async fn wait_not_ready(c: &TestCluster, node: u64) -> String {
    wait_for(&format!("node {node} not ready"), DEADLINE, || async {
        let r = get(c.api(node), "/readyz").await;
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then(|| r.error().1)
    })
    .await
}

/// A switch sent to `node` is refused at once with 503 and a hint that
/// names neither `node` nor `lost`.
async fn switch_fails_fast(c: &TestCluster, node: u64, lost: u64) {
    let started = Instant::now();
    let r = switch(c.api(node), "hyparview", false).await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.value());
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let hint = &r.value()["error"]["leader"];
    assert!(
        hint.is_null() || (hint["id"] != node && hint["id"] != lost),
        "hint {hint}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_is_not_ready_and_refuses_writes_at_once() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let leader = c.leader().await;
    assert_eq!(get(c.api(leader), "/readyz").await.status, StatusCode::OK);
    for f in c.followers().await {
        c.stop(f).await;
    }
    let why = wait_not_ready(&c, leader).await;
    assert!(why.contains("quorum"), "{why}");
    switch_fails_fast(&c, leader, leader).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_whose_leader_is_gone_is_not_ready_and_refuses_writes_at_once() {
    let mut c = TestCluster::start(4, Options::default()).await;
    let leader = c.leader().await;
    let learner = 4;
    assert_eq!(get(c.api(learner), "/readyz").await.status, StatusCode::OK);
    // The leader and one more voter go: no quorum is left, no new leader.
    let voter = *c
        .followers()
        .await
        .iter()
        .find(|&&n| n != learner)
        .expect("a voter");
    c.stop(leader).await;
    c.stop(voter).await;
    let why = wait_not_ready(&c, learner).await;
    assert!(why.contains(&format!("leader {leader}")), "{why}");
    switch_fails_fast(&c, learner, leader).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_in_contact_with_a_leader_without_quorum_is_not_ready() {
    let mut c = TestCluster::start(4, Options::default()).await;
    let leader = c.leader().await;
    let learner = 4;
    assert_eq!(get(c.api(learner), "/readyz").await.status, StatusCode::OK);
    // Both other voters go: the leader keeps leading and sending the
    // learner heartbeats, but can commit nothing.
    for f in c.followers().await {
        if f != learner {
            c.stop(f).await;
        }
    }
    let why = wait_not_ready(&c, learner).await;
    assert!(
        why.contains(&format!("leader {leader} has not heard from a quorum")),
        "{why}"
    );
    assert_eq!(
        c.node(learner).raft().metrics().borrow().current_leader,
        Some(leader),
        "the learner still follows the leader it hears"
    );
    switch_fails_fast(&c, learner, leader).await;
    c.shutdown().await;
}
