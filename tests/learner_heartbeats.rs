//! Idle heartbeats to learners are thinned (`raft.learner_heartbeat_ms`,
//! default 250 ms against a 50 ms heartbeat): the leader answers the idle
//! ones itself, a learner stays ready, applies a new decision as soon as
//! the voters do, and one that fell behind catches up and applies every
//! entry in order.

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::json;
use topod::api::types::TransitionStatus;

/// The value of counter `name` in a Prometheus text exposition.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_with_thinned_heartbeats_stays_ready_and_applies_every_entry_in_order() {
    let mut cluster = TestCluster::start(4, Options::default()).await;
    let leader = cluster.leader().await;
    let learner = 4;

    // Idle: the leader thins the learner's heartbeats, the learner stays
    // ready through them.
    wait_for("thinned heartbeats", DEADLINE, || async {
        let text = String::from_utf8(get(cluster.api(leader), "/metrics").await.body.to_vec())
            .expect("utf-8");
        (counter(&text, "topod_raft_learner_heartbeats_thinned_total") >= 20.0).then_some(())
    })
    .await;
    for _ in 0..5 {
        let r = get(cluster.api(learner), "/readyz").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.value());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A decision reaches the learner as soon as it is committed, not at
    // the next idle heartbeat: its driver cuts over with the others.
    let t = switch_and_wait(cluster.api(leader), "hyparview", "thin-1").await;
    assert_eq!(t.status, TransitionStatus::Committed);
    assert!(
        t.reports.contains_key(&learner),
        "the learner prepared: {t:?}"
    );
    cluster.wait_converged().await;

    // Behind: the learner is down while the cluster decides more.
    cluster.stop(learner).await;
    for (i, topology) in ["client_server", "pub_sub", "full_mesh"].iter().enumerate() {
        let t = switch_and_wait(cluster.api(leader), topology, &format!("thin-{}", i + 2)).await;
        assert_eq!(t.status, TransitionStatus::Committed, "{t:?}");
    }
    let r = send_json(
        cluster.api(leader),
        hyper::Method::PUT,
        "/v1/policy",
        &json!({"cooldown_ms": 777}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.value());
    cluster.restart(learner).await;
    // wait_converged: the same last applied log id and the same state,
    // history included, on every node.
    cluster.wait_converged().await;
    let (mine, theirs) = (cluster.state(learner), cluster.state(leader));
    let ids: Vec<u64> = mine.history.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert_eq!(mine.history, theirs.history);
    assert_eq!(mine.policy.cooldown_ms, 777);
    wait_for("the caught-up learner is ready", DEADLINE, || async {
        (get(cluster.api(learner), "/readyz").await.status == StatusCode::OK).then_some(())
    })
    .await;
    cluster.shutdown().await;
}
