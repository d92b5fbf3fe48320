//! Membership changes through the API (issue 11, defects 1, 3 and 7): a
//! join from a node id the cluster knows under another UUID is refused, a
//! join to an unreachable Raft address does not hold up later changes, and
//! each membership error has its own code.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::{Method, StatusCode};
use serde_json::json;
use topod::api::types::MembersView;
use topod::model::NodeId;

fn join_body(id: NodeId, raft_addr: &str, uuid: &str) -> serde_json::Value {
    json!({
        "id": id,
        "api_addr": "127.0.0.1:9",
        "raft_addr": raft_addr,
        "peer_addr": "127.0.0.1:9",
        "node_uuid": uuid,
    })
}

const OTHER_UUID: &str = "00000000-0000-4000-8000-000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_under_a_known_id_with_another_uuid_is_refused_whatever_the_role() {
    let mut c = TestCluster::start(1, Options::default()).await;
    let learner = c.join_learner().await;
    for (id, role) in [(1, "voter"), (learner, "learner")] {
        let r = post_json(
            c.api(1),
            "/v1/cluster/members",
            &join_body(id, "127.0.0.1:9", OTHER_UUID),
        )
        .await;
        let msg = r.expect_error(StatusCode::CONFLICT, "node_uuid_mismatch");
        assert!(msg.contains(&format!("node {id}")), "{role}: {msg}");
        assert!(msg.contains(OTHER_UUID), "{role}: {msg}");
    }
    // The same node (same UUID) asking again is answered as before.
    let me = c.node(learner).node_addr().clone();
    let r = post_json(
        c.api(1),
        "/v1/cluster/members",
        &join_body(learner, &me.raft_addr, &me.node_uuid),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.value());
    let m: MembersView = get(c.api(1), "/v1/cluster/members").await.json();
    let entry = m.members.iter().find(|m| m.id == learner).expect("member");
    assert_eq!(entry.node_uuid, me.node_uuid, "the entry is untouched");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_to_an_unreachable_raft_address_does_not_block_later_changes() {
    let mut c = TestCluster::start(
        1,
        Options {
            request_timeout_ms: 2_000,
            ..Options::default()
        },
    )
    .await;
    let learner = c.join_learner().await;
    // Nothing listens on port 1: the learner can never catch up.
    let api = c.api(1);
    let join = tokio::spawn(async move {
        let started = Instant::now();
        let r = post_json(
            api,
            "/v1/cluster/members",
            &join_body(9, "127.0.0.1:1", OTHER_UUID),
        )
        .await;
        (r, started.elapsed())
    });
    // Let the join take the membership lock first.
    wait_until("node 9 is in the membership", DEADLINE, || {
        c.node(1)
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&9)
            .is_some()
    })
    .await;
    let started = Instant::now();
    c.promote(learner).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the promote waited {:?} behind the join",
        started.elapsed()
    );
    let (r, took) = join.await.expect("join task");
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.value());
    assert_eq!(r.value()["status"], "catching_up", "{}", r.value());
    assert!(
        took < Duration::from_secs(10),
        "the join answered after {took:?}"
    );
    let r = request(c.api(1), Method::DELETE, "/v1/cluster/members/9", None, "")
        .await
        .expect("answer");
    assert_eq!(r.status, StatusCode::OK, "{}", r.value());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_errors_have_their_own_codes() {
    let c = TestCluster::start(1, Options::default()).await;
    let r = request(
        c.api(1),
        Method::POST,
        "/v1/cluster/members/42/promote",
        None,
        "",
    )
    .await
    .expect("answer");
    let msg = r.expect_error(StatusCode::NOT_FOUND, "learner_not_found");
    assert!(msg.contains("42"), "{msg}");
    let r = request(c.api(1), Method::DELETE, "/v1/cluster/members/1", None, "")
        .await
        .expect("answer");
    r.expect_error(StatusCode::CONFLICT, "empty_membership");
    c.shutdown().await;
}
