//! SIGTERM on the leader of a 3-node cluster of real `topod` processes:
//! the node stops gracefully and exits 0, the other two elect a leader
//! (openraft 0.9 has no leader transfer: this costs one election timeout)
//! and keep accepting switches, and the node restarts cleanly on its data
//! dir and catches up.

mod common;

use common::procs::ProcCluster;
use common::*;
use topod::api::types::{TopologyInfo, TransitionStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_leader_exits_0_the_others_keep_switching_and_it_restarts_cleanly() {
    let mut cluster = ProcCluster::start_voters("sigterm", 3).await;
    let before = switch_and_wait(cluster.api(1), "hyparview", "sigterm-1").await;
    assert_eq!(before.status, TransitionStatus::Committed);

    let leader = cluster.leader().await;
    let status = cluster.nodes.get_mut(&leader).expect("leader").terminate();
    assert!(status.success(), "the leader exited with {status}");
    let log = std::fs::read_to_string(&cluster.nodes[&leader].log).expect("log");
    assert!(
        log.contains("terminated: shutting down"),
        "the leader logged no graceful stop:\n{log}"
    );

    // The two others elect a leader among themselves and take switches.
    let new_leader = cluster.leader_except(Some(leader)).await;
    assert_ne!(new_leader, leader, "a stopped node cannot lead");
    let other = cluster.running_apis()[0];
    let during = switch_and_wait(other, "client_server", "sigterm-2").await;
    assert_eq!(during.status, TransitionStatus::Committed, "{during:?}");

    // Restarted on its data dir: ready, on the topology committed while it
    // was down, with the same history as the others.
    let node = cluster.nodes.get_mut(&leader).expect("node");
    node.start();
    node.wait_ready().await;
    let restarted = node.api;
    wait_for("the restarted node catches up", DEADLINE, || async {
        let info: TopologyInfo = get(restarted, "/v1/topology").await.json();
        (info.topology.as_str() == "client_server").then_some(())
    })
    .await;
    let history = |api| async move { get(api, "/v1/topology/history?limit=50").await.value() };
    // The restarted node may be on the new topology before it applied the
    // health reports that followed the commit: poll until both agree.
    wait_for(
        "the restarted node has the same history",
        DEADLINE,
        || async {
            let (a, b) = (history(restarted).await, history(other).await);
            (a["transitions"] == b["transitions"]).then_some(())
        },
    )
    .await;
    let after = switch_and_wait(restarted, "full_mesh", "sigterm-3").await;
    assert_eq!(after.status, TransitionStatus::Committed, "{after:?}");

    for id in [1, 2, 3] {
        let status = cluster.nodes.get_mut(&id).expect("node").terminate();
        assert!(status.success(), "node {id} exited with {status}");
    }
}

/// A client waiting on a switch when the node serving it shuts down gets
/// 503 `shutting_down` (the write was accepted and goes on), not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_waiting_on_a_stopping_leader_answers_503_shutting_down() {
    use common::{Options, TestCluster};
    let mut c = TestCluster::start(3, Options::default()).await;
    let hanging = c.followers().await[0];
    c.executor(hanging).set_hang_prepare(true);
    let leader = c.leader().await;
    let api = c.api(leader);
    let waiting = tokio::spawn(async move { switch(api, "hyparview", true).await });
    wait_until("the switch is in flight", DEADLINE, || {
        c.state(leader).in_flight.is_some()
    })
    .await;
    c.stop(leader).await;
    let r = waiting.await.expect("the request task");
    let message = r.expect_error(hyper::StatusCode::SERVICE_UNAVAILABLE, "shutting_down");
    assert!(message.contains("goes on"), "{message}");
}
