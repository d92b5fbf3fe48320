//! topod's pre-vote on openraft 0.9 (`raft.prevote`, on by default; see
//! `control::prevote`): elections still happen when they must — after the
//! leader goes, for a lone voter after a restart — without openraft's own
//! timer. That a voter cut off by a partition no longer deposes the leader
//! when it returns needs real partitions: the chaos scenario
//! `chaos/scenarios/isolate-heal.toml` shows it (chaos/README.md).

mod common;

use common::*;
use openraft::ServerState;

fn term(c: &TestCluster, id: u64) -> u64 {
    c.node(id).raft().metrics().borrow().current_term
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voters_left_elect_a_new_leader_when_the_leader_stops() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let old = c.leader().await;
    let before = term(&c, old);
    c.stop(old).await;
    let new = c.leader().await;
    assert_ne!(new, old);
    let after = term(&c, new);
    assert!(after > before, "term {before} -> {after}");
    assert!(
        after <= before + 4,
        "pre-vote keeps elections few: term {before} -> {after}"
    );
    // The cluster works under the new leader.
    let t = switch_and_wait(c.api(new), "hyparview", "after-failover").await;
    assert_eq!(t.to.to_string(), "hyparview");
    // The old leader comes back as a follower of the new one, its return
    // costing no election.
    c.restart(old).await;
    c.wait_converged().await;
    assert_eq!(c.leader().await, new);
    assert_eq!(term(&c, new), after, "the returning node deposed nobody");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_leads_again_after_a_restart() {
    let mut c = TestCluster::start(1, Options::default()).await;
    c.stop(1).await;
    c.restart(1).await;
    wait_until("node 1 leads again", DEADLINE, || {
        c.node(1).raft().metrics().borrow().state == ServerState::Leader
    })
    .await;
    let t = switch_and_wait(c.api(1), "hyparview", "after-restart").await;
    assert_eq!(t.to.to_string(), "hyparview");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_does_not_depose_the_leader() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let leader = c.leader().await;
    let before = term(&c, leader);
    let follower = c.followers().await[0];
    c.stop(follower).await;
    c.restart(follower).await;
    c.wait_converged().await;
    assert_eq!(c.leader().await, leader);
    assert_eq!(term(&c, leader), before);
    c.shutdown().await;
}
