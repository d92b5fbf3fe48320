//! Replacing a failed voter, the runbook's procedure
//! (docs/operations.md), on real processes: a voter of 3 is SIGKILLed and
//! its disk counted lost; it is removed, a new node with a new id and an
//! empty data dir joins as a learner and is promoted. The cluster is back
//! to 3 voters, switches include the new node, and it then survives the
//! loss of another original voter: the new one counts in the quorum.

mod common;

use common::procs::ProcCluster;
use common::*;
use hyper::{Method, StatusCode};
use topod::api::types::{MembersView, TransitionStatus};
use topod::model::NodeId;

fn voters(m: &MembersView) -> Vec<NodeId> {
    m.members.iter().filter(|m| m.voter).map(|m| m.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_voter_is_removed_and_replaced_by_a_new_node_that_counts_in_the_quorum() {
    let mut c = ProcCluster::start_voters("replace", 3).await;
    let leader = c.leader().await;
    let failed = [1, 2, 3]
        .into_iter()
        .find(|n| *n != leader)
        .expect("a follower");
    c.nodes.get_mut(&failed).expect("node").kill();

    // 1. Remove the failed voter (through any live node).
    let via = c.running_apis()[0];
    let r = request(
        via,
        Method::DELETE,
        &format!("/v1/cluster/members/{failed}"),
        None,
        "",
    )
    .await
    .expect("answer");
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let m: MembersView = r.json();
    assert!(m.members.iter().all(|m| m.id != failed), "{m:?}");
    assert_eq!(voters(&m).len(), 2);

    // 2. A new node (new id, empty data dir) joins as a learner, 3. is
    // promoted.
    let new = 4;
    c.add_node(new, false).await;
    c.promote(new).await;
    let m = c.members().await;
    let mut want: Vec<NodeId> = [1, 2, 3]
        .into_iter()
        .filter(|n| *n != failed)
        .chain([new])
        .collect();
    want.sort();
    assert_eq!(voters(&m), want, "{m:?}");

    // Switches include it.
    let t = switch_and_wait(c.api(new), "hyparview", "after-replace").await;
    assert_eq!(t.status, TransitionStatus::Committed, "{t:?}");
    assert_eq!(t.members, want);

    // Another original voter fails: the remaining original and the new
    // voter are a quorum and keep switching.
    let leader = c.leader().await;
    let second = want
        .iter()
        .copied()
        .find(|n| *n != new && *n != leader)
        .unwrap_or_else(|| want.iter().copied().find(|n| *n != new).expect("original"));
    c.nodes.get_mut(&second).expect("node").kill();
    let t = switch_and_wait(c.api(new), "client_server", "after-second-loss").await;
    assert_eq!(t.status, TransitionStatus::Committed, "{t:?}");
    assert_eq!(t.missing, vec![second], "{t:?}");
}
