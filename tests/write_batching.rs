//! The leader's proposer gathers concurrent writes into one log entry
//! (group commit, issue 15): a batch applies exactly as its commands one
//! by one, a command that needs an entry of its own is refused inside one,
//! and concurrent policy writes to a 3-node cluster each get their own
//! answer from fewer log entries than writes.

mod common;

use common::*;
use hyper::{Method, StatusCode};
use topod::model::{
    ApplyContext, Command, CommandResponse, Envelope, OverlayConfig, PolicyUpdate, ProposeSwitch,
    Rejection, SwitchReason, Topology, TopologyState,
};

fn policy(ms: u64) -> Command {
    Command::SetPolicy(PolicyUpdate {
        cooldown_ms: Some(ms),
        ..PolicyUpdate::default()
    })
}

#[test]
fn a_batch_applies_as_its_commands_one_by_one() {
    let ctx = ApplyContext {
        index: 7,
        term: 2,
        members: vec![1, 2, 3],
    };
    let commands = vec![
        policy(5_000),
        // Refused on its own: refused in the batch, the others still apply.
        Command::RevokeToken {
            name: "nobody".into(),
        },
        policy(6_000),
    ];
    let (mut one_by_one, mut batched) = (TopologyState::default(), TopologyState::default());
    let singles: Vec<CommandResponse> = commands
        .iter()
        .map(|c| one_by_one.apply(&ctx, 2_000, c))
        .collect();
    let answer = batched.apply(&ctx, 2_000, &Command::Batch { commands });
    assert_eq!(answer, CommandResponse::Batch(singles.clone()));
    assert!(matches!(
        singles[1],
        CommandResponse::Rejected(Rejection::UnknownToken { .. })
    ));
    assert_eq!(batched, one_by_one);
    assert_eq!(batched.policy.cooldown_ms, 6_000);
    // A batch travels in envelope V6, a policy update alone still in V3.
    let env = Envelope::new(3, Command::Batch { commands: vec![] });
    assert!(matches!(env, Envelope::V6 { .. }));
    assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
    assert!(matches!(Envelope::new(3, policy(1)), Envelope::V3 { .. }));
}

#[test]
fn a_proposal_inside_a_batch_is_refused_and_changes_nothing() {
    let ctx = ApplyContext {
        index: 7,
        term: 2,
        members: vec![1, 2, 3],
    };
    let target = Topology::HyParView;
    let proposal = Command::ProposeSwitch(ProposeSwitch::new(
        target,
        OverlayConfig::default_for(target),
        SwitchReason::Manual,
        None,
        "test",
    ));
    assert!(!proposal.batchable());
    assert!(policy(1).batchable());
    let mut state = TopologyState::default();
    let before = state.clone();
    let answer = state.apply(
        &ctx,
        2_000,
        &Command::Batch {
            commands: vec![proposal],
        },
    );
    assert_eq!(
        answer,
        CommandResponse::Batch(vec![CommandResponse::Rejected(Rejection::NotBatchable)])
    );
    assert_eq!(state, before);
}

/// `PUT /v1/policy` with `cooldown_ms`; the cooldown the answer shows.
async fn put_policy(api: std::net::SocketAddr, ms: u64) -> u64 {
    let r = send_json(
        api,
        Method::PUT,
        "/v1/policy",
        &serde_json::json!({ "cooldown_ms": ms }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "policy write: {:?}", r.value());
    r.value()["cooldown_ms"].as_u64().expect("cooldown_ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_and_each_is_applied() {
    let cluster = TestCluster::start(3, Options::default()).await;
    let leader = cluster.leader().await;
    let api = cluster.api(leader);
    // The batch envelope is written once the followers have announced
    // that they read it (on their first Raft answers).
    put_policy(api, 1_000).await;
    cluster.wait_converged().await;
    let raft = cluster.node(leader).raft().clone();
    let last_index = || raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
    let writers = 64u64;
    let mut entries = 0;
    // Three rounds of 64 concurrent writes: at least one gathers.
    for round in 0..3u64 {
        let before = last_index();
        let tasks: Vec<_> = (0..writers)
            .map(|i| tokio::spawn(put_policy(api, 10_000 + round * 1_000 + i)))
            .collect();
        for t in tasks {
            // Each answer shows a state with some round's write applied.
            assert!(t.await.expect("writer") >= 10_000);
        }
        entries += last_index() - before;
    }
    assert!(
        entries < 3 * writers,
        "{entries} log entries for {} writes",
        3 * writers
    );
    cluster.wait_converged().await;
    let cooldown = cluster.state(leader).policy.cooldown_ms;
    assert!((12_000..12_000 + writers).contains(&cooldown), "{cooldown}");
    for id in cluster.running() {
        assert_eq!(cluster.state(id), cluster.state(leader), "node {id}");
    }
    cluster.shutdown().await;
}
