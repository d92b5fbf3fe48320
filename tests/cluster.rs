//! The switch protocol on in-process clusters over real sockets: a switch
//! forwarded by a follower, leader fail-over, a learner catching up, the
//! abort, prepare-timeout and rollback paths, and a commit that goes ahead
//! without a member that is down.

mod common;

use std::time::Duration;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::json;
use topod::api::types::{
    MembersView, ReasonView, TopologyInfo, TransitionStatus, TransitionView, FORWARDED_HEADER,
};
use topod::model::{NodeId, Outcome, Phase, SwitchReason, Topology};

/// Waits until every running node has applied the post-cut-over health
/// reports of all `expected` members for transition `id`.
async fn wait_health(c: &TestCluster, id: u64, expected: &[NodeId]) {
    wait_until(
        &format!("health reports of {expected:?} for transition {id}"),
        DEADLINE,
        || {
            c.running().iter().all(|&n| {
                c.state(n)
                    .record(id)
                    .is_some_and(|r| expected.iter().all(|m| r.health.contains_key(m)))
            })
        },
    )
    .await;
}

fn has_call(c: &TestCluster, node: NodeId, call: &str) -> bool {
    c.executor(node).calls().iter().any(|x| x == call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_sent_to_a_follower_is_forwarded_and_applied_identically_everywhere() {
    let c = TestCluster::start(3, Options::default()).await;
    let leader = c.leader().await;
    let follower = c.followers().await[0];

    let r = switch(c.api(follower), "hyparview", true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.value());
    assert_eq!(r.served_by(), Some(leader), "the leader served the write");
    let v: TransitionView = r.json();
    assert_eq!(v.status, TransitionStatus::Committed);
    assert_eq!((v.from, v.to), (Topology::FullMesh, Topology::HyParView));
    assert_eq!(v.epoch, Some(1));
    assert_eq!(v.missing, Vec::<NodeId>::new());
    assert_eq!(v.members, vec![1, 2, 3]);
    assert_eq!(
        v.requested_by,
        format!("api@node{follower}"),
        "who was asked"
    );

    wait_health(&c, v.id, &[1, 2, 3]).await;
    c.wait_converged().await;
    let reference = c.applied(leader);
    assert_eq!(reference.state.topology, Topology::HyParView);
    assert_eq!(reference.state.epoch, 1);
    assert_eq!(reference.state.current_instance, v.id);
    for n in 1..=3 {
        let a = c.applied(n);
        assert_eq!(a.last_applied, reference.last_applied, "node {n}");
        assert_eq!(a.state.history, reference.state.history, "node {n}");
        assert_eq!(a.state, reference.state, "node {n}");
        let info: TopologyInfo = get(c.api(n), "/v1/topology").await.json();
        assert_eq!((info.topology, info.epoch), (Topology::HyParView, 1));
        assert_eq!(info.leader, Some(leader));
        assert!(info.in_flight.is_none());
        for call in [
            format!("prepare {} hyparview", v.id),
            format!("cut_over {}", v.id),
            "verify".to_string(),
        ] {
            assert!(has_call(&c, n, &call), "node {n} lacks `{call}`");
        }
        assert!(!has_call(&c, n, &format!("abort {}", v.id)));
    }
    let record = reference.state.record(v.id).expect("in the history");
    assert!(record.health.values().all(|p| *p == Phase::Verified));

    // Other writes are forwarded too (PUT keeps its method).
    let r = send_json(
        c.api(follower),
        Method::PUT,
        "/v1/policy",
        &json!({"cooldown_ms": 777}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.value());
    assert_eq!(r.served_by(), Some(leader));
    c.wait_converged().await;
    for n in 1..=3 {
        assert_eq!(c.state(n).policy.cooldown_ms, 777, "node {n}");
    }

    // A client cannot pose as a forwarding node: on a secure node the
    // forwarding header is believed only with a node certificate, so a
    // client's is dropped and its write is forwarded like any other (an
    // insecure node still answers 503 `not_leader`, see
    // `an_insecure_follower_forwards_one_hop_only`).
    let r = request_with(
        c.api(follower),
        Method::POST,
        "/v1/topology/switch",
        &[
            ("content-type", "application/json"),
            (FORWARDED_HEADER, "1"),
        ],
        r#"{"topology":"pub_sub"}"#,
    )
    .await
    .expect("answer");
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.served_by(), Some(leader));
    c.wait_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_follower_forwards_one_hop_only() {
    let c = TestCluster::start(
        3,
        Options {
            insecure: true,
            ..Options::default()
        },
    )
    .await;
    let leader = c.leader().await;
    let follower = c.followers().await[0];
    // A write that was already forwarded and reaches a follower is
    // answered 503 `not_leader` with the leader's address.
    let before = c.applied(leader);
    let r = request_with(
        c.api(follower),
        Method::POST,
        "/v1/topology/switch",
        &[
            ("content-type", "application/json"),
            (FORWARDED_HEADER, "1"),
        ],
        r#"{"topology":"pub_sub"}"#,
    )
    .await
    .expect("answer");
    r.expect_error(StatusCode::SERVICE_UNAVAILABLE, "not_leader");
    let hint = &r.value()["error"]["leader"];
    assert_eq!(hint["id"], leader);
    assert_eq!(hint["api_addr"], c.api(leader).to_string());
    c.wait_converged().await;
    assert_eq!(c.applied(leader).state, before.state, "nothing written");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_leader_stops_a_new_leader_accepts_and_commits_the_next_switch() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let first = switch_and_wait(c.api(1), "hyparview", "before-failover").await;
    assert_eq!(first.status, TransitionStatus::Committed);
    wait_health(&c, first.id, &[1, 2, 3]).await;

    let old = c.leader().await;
    c.stop(old).await;
    let new = c.leader().await;
    assert_ne!(new, old);
    let survivors = c.running();
    assert_eq!(survivors.len(), 2);

    // Sent to a survivor that may not know the new leader yet: retried.
    let via = *survivors
        .iter()
        .find(|&&n| n != new)
        .expect("two survivors");
    let next = switch_and_wait(c.api(via), "full_mesh", "after-failover").await;
    assert_eq!(next.status, TransitionStatus::Committed, "{next:?}");
    assert_eq!(next.epoch, Some(2));
    assert_eq!(
        next.missing,
        vec![old],
        "went ahead without the stopped node"
    );
    wait_health(&c, next.id, &survivors).await;
    c.wait_converged().await;
    for n in survivors {
        let s = c.state(n);
        assert_eq!((s.topology, s.epoch), (Topology::FullMesh, 2), "node {n}");
        assert_eq!(s.current_instance, next.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_learner_applies_the_history_from_before_it_joined() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let a = switch_and_wait(c.api(2), "hyparview", "a").await;
    let b = switch_and_wait(c.api(3), "client_server", "b").await;
    assert_eq!(
        (a.status, b.status),
        (TransitionStatus::Committed, TransitionStatus::Committed)
    );
    wait_health(&c, b.id, &[1, 2, 3]).await;

    let learner = c.join_learner().await;
    assert_eq!(learner, 4);
    let leader = c.leader().await;
    assert_eq!(c.state(4), c.state(leader));
    assert_eq!(c.applied(4).last_applied, c.applied(leader).last_applied);
    let s = c.state(4);
    assert_eq!((s.topology, s.epoch), (Topology::ClientServer, 2));
    let ids: Vec<u64> = s.history.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![a.id, b.id]);
    // It built the committed overlay directly, never preparing the old ones.
    assert!(has_call(&c, 4, &format!("build {} client_server", b.id)));
    assert!(!c
        .executor(4)
        .calls()
        .iter()
        .any(|x| x.starts_with("prepare")));

    for n in [1, 4] {
        let m: MembersView = get(c.api(n), "/v1/cluster/members").await.json();
        let roles: Vec<(NodeId, bool)> = m.members.iter().map(|m| (m.id, m.voter)).collect();
        assert_eq!(
            roles,
            vec![(1, true), (2, true), (3, true), (4, false)],
            "as node {n} sees it"
        );
        let four = &m.members[3];
        assert_eq!(four.api_addr, c.api(4).to_string());
        assert!(!four.node_uuid.is_empty());
    }

    // A later switch includes the learner among the members that prepare.
    let d = switch_and_wait(c.api(4), "pub_sub", "d").await;
    assert_eq!(d.status, TransitionStatus::Committed);
    assert_eq!(d.members, vec![1, 2, 3, 4]);
    assert!(has_call(&c, 4, &format!("prepare {} pub_sub", d.id)));
    wait_health(&c, d.id, &[1, 2, 3, 4]).await;
    c.wait_converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_prepare_aborts_the_switch_and_changes_nothing() {
    let c = TestCluster::start(3, Options::default()).await;
    let failing = c.followers().await[0];
    c.executor(failing).set_fail_prepare(true);
    let leader = c.leader().await;
    let before = c.state(leader);

    let v = switch_and_wait(c.api(leader), "hyparview", "doomed").await;
    assert_eq!(v.status, TransitionStatus::Aborted, "{v:?}");
    let reason = v.abort_reason.clone().expect("an abort reason");
    assert!(
        reason.contains(&format!("node {failing}")),
        "reason names the failing node: {reason}"
    );
    assert!(reason.contains("prepare failed (scripted)"), "{reason}");
    assert_eq!(v.epoch, None);

    c.wait_converged().await;
    for n in 1..=3 {
        let s = c.state(n);
        assert_eq!(
            (s.topology, s.epoch, s.current_instance),
            (before.topology, before.epoch, before.current_instance),
            "node {n}: topology unchanged"
        );
        assert!(s.in_flight.is_none());
        let last = s.history.back().expect("a record");
        assert_eq!(last.id, v.id);
        assert!(
            matches!(&last.outcome, Outcome::Aborted { reason: r, .. } if *r == reason),
            "{:?}",
            last.outcome
        );
        assert_eq!(
            last.reports.get(&failing),
            Some(&Phase::Failed {
                reason: "prepare failed (scripted)".into()
            })
        );
    }
    let abort = format!("abort {}", v.id);
    wait_until("the failing node tore its shadow down", DEADLINE, || {
        has_call(&c, failing, &abort)
    })
    .await;
    let prepare = format!("prepare {} hyparview", v.id);
    let calls = c.executor(failing).calls();
    assert_eq!(
        calls.iter().filter(|x| **x == prepare).count(),
        1,
        "prepared once: {calls:?}"
    );
    for n in 1..=3 {
        assert!(
            !has_call(&c, n, &format!("cut_over {}", v.id)),
            "node {n} never cut over"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_prepare_is_aborted_after_the_prepare_timeout() {
    let opts = Options {
        prepare_timeout_ms: 1_000,
        ..Options::default()
    };
    let c = TestCluster::start(3, opts).await;
    let hanging = c.followers().await[0];
    c.executor(hanging).set_hang_prepare(true);
    let leader = c.leader().await;

    let started = tokio::time::Instant::now();
    let v = switch_and_wait(c.api(leader), "hyparview", "slow").await;
    let elapsed = started.elapsed();
    assert_eq!(v.status, TransitionStatus::Aborted, "{v:?}");
    assert!(elapsed >= Duration::from_millis(1_000), "{elapsed:?}");
    let decided = v.decided_at_ms.expect("decided");
    assert!(
        decided - v.proposed_at_ms >= 1_000,
        "aborted {} ms after the proposal",
        decided - v.proposed_at_ms
    );
    let reason = v.abort_reason.expect("reason");
    // The coordinator's timeout (naming the nodes that did not report) or,
    // if the node's own step timeout won the race, its failure report.
    assert!(
        reason.contains(&format!("[{hanging}]")) || reason.contains(&format!("node {hanging}")),
        "reason names the silent node: {reason}"
    );
    assert!(
        reason.contains("prepare timeout") || reason.contains("did not finish"),
        "{reason}"
    );
    c.wait_converged().await;
    let s = c.state(leader);
    assert_eq!((s.topology, s.epoch), (Topology::FullMesh, 0));
    assert!(s.in_flight.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_still_verifying_prepares_the_next_transition_at_once() {
    let c = TestCluster::start(3, Options::default()).await;
    let slow = c.followers().await[0];
    c.executor(slow).set_hang_verify(true);
    let leader = c.leader().await;
    let first = switch_and_wait(c.api(leader), "hyparview", "first").await;
    assert_eq!(first.status, TransitionStatus::Committed);
    wait_until("the slow node is verifying", DEADLINE, || {
        c.executor(slow).calls().iter().any(|x| x == "verify")
    })
    .await;
    // Its verify never ends (within the 10 s step timeout); the next
    // switch must not wait for it.
    let started = tokio::time::Instant::now();
    let second = switch_and_wait(c.api(leader), "full_mesh", "second").await;
    assert_eq!(second.status, TransitionStatus::Committed, "{second:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "committed only after {:?}",
        started.elapsed()
    );
    let want = format!("prepare {} full_mesh", second.id);
    assert!(
        c.executor(slow).calls().contains(&want),
        "{:?}",
        c.executor(slow).calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_cut_over_is_rolled_back_once() {
    let c = TestCluster::start(3, Options::default()).await;
    let sick = c.followers().await[0];
    c.executor(sick).set_fail_verify(true);
    let leader = c.leader().await;
    let before = c.state(leader);

    let v = switch_and_wait(c.api(leader), "hyparview", "to-roll-back").await;
    assert_eq!(v.status, TransitionStatus::Committed);

    let rollback = wait_for("the coordinator's rollback commits", DEADLINE, || async {
        let s = c.state(c.leader().await);
        let r = s
            .history
            .iter()
            .find(|r| r.reason == SwitchReason::Rollback { of: v.id })?;
        matches!(r.outcome, Outcome::Committed { .. }).then(|| r.clone())
    })
    .await;
    assert_eq!(
        (rollback.from, rollback.to),
        (Topology::HyParView, Topology::FullMesh)
    );
    assert!(
        rollback.requested_by.contains("coordinator")
            && rollback.requested_by.contains(&format!("node {sick}")),
        "{}",
        rollback.requested_by
    );
    // The sick node finds the rolled-back overlay unhealthy too: that is
    // never rolled back.
    wait_health(&c, rollback.id, &[1, 2, 3]).await;
    c.wait_converged().await;
    let settled = c.state(leader);
    let observe = tokio::time::Instant::now() + Duration::from_millis(1_000);
    while tokio::time::Instant::now() < observe {
        let s = c.state(leader);
        assert!(s.in_flight.is_none(), "no rollback of the rollback");
        assert_eq!(s.history, settled.history);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for n in 1..=3 {
        let s = c.state(n);
        assert_eq!(s.topology, before.topology, "node {n} is back");
        assert_eq!(s.config, before.config, "node {n} has the old config");
        assert_eq!(s.epoch, 2);
        assert_eq!(s.current_instance, rollback.id);
        let ids: Vec<u64> = s.history.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![v.id, rollback.id], "node {n}");
        let first = &s.history[0];
        assert!(matches!(
            first.health.get(&sick),
            Some(Phase::Unhealthy { .. })
        ));
        assert!(matches!(
            s.history[1].health.get(&sick),
            Some(Phase::Unhealthy { .. })
        ));
    }
    let r = get(c.api(leader), &format!("/v1/transitions/{}", rollback.id)).await;
    let view: TransitionView = r.json();
    assert_eq!(view.reason, ReasonView::Rollback { of: v.id });
    assert_eq!(view.status, TransitionStatus::Committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_commits_without_a_stopped_member_which_catches_up_on_restart() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let down = c.followers().await[0];
    c.stop(down).await;
    let leader = c.leader().await;

    let v = switch_and_wait(c.api(leader), "hyparview", "without-one").await;
    assert_eq!(v.status, TransitionStatus::Committed, "{v:?}");
    assert_eq!(v.missing, vec![down]);
    assert_eq!(v.members, vec![1, 2, 3]);
    assert!(!v.reports.contains_key(&down));

    c.restart(down).await;
    wait_until(
        "the restarted node reaches the committed topology",
        DEADLINE,
        || {
            let s = c.state(down);
            s.topology == Topology::HyParView && s.epoch == 1
        },
    )
    .await;
    c.wait_converged().await;
    assert_eq!(c.state(down), c.state(leader));
    // It runs the committed overlay: built directly from the log, or, when
    // replication delivered the proposal and the commit in separate
    // appends, prepared and cut over (its late report is refused as stale).
    let build = format!("build {} hyparview", v.id);
    let cut = format!("cut_over {}", v.id);
    wait_until(
        "the restarted node runs the committed overlay",
        DEADLINE,
        || has_call(&c, down, &build) || has_call(&c, down, &cut),
    )
    .await;
    let calls = c.executor(down).calls();
    let last = calls
        .iter()
        .rev()
        .find(|x| x.starts_with("build") || x.starts_with("cut_over") || x.starts_with("abort"));
    assert!(last == Some(&build) || last == Some(&cut), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_resumes_the_in_flight_transition() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let old = c.leader().await;
    // The leader never prepares; the followers do.
    c.executor(old).set_hang_prepare(true);
    let r = switch(c.api(old), "hyparview", false).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.value());
    let id = r.value()["transition_id"].as_u64().expect("an id");
    let followers = c.followers().await;
    wait_until("the followers prepared", DEADLINE, || {
        c.running().iter().all(|&n| {
            c.state(n)
                .in_flight
                .is_some_and(|t| t.id == id && followers.iter().all(|f| t.reports.contains_key(f)))
        })
    })
    .await;

    // Stops promptly although its executor hangs in prepare.
    c.stop(old).await;
    let new = c.leader().await;
    assert_ne!(new, old);
    let record = wait_for(
        "the new leader decides the transition",
        DEADLINE,
        || async {
            let s = c.state(new);
            let r = s.record(id)?.clone();
            (r.outcome != Outcome::InProgress).then_some(r)
        },
    )
    .await;
    match &record.outcome {
        Outcome::Committed { missing, epoch, .. } => {
            assert_eq!(missing, &vec![old], "went ahead without the stopped leader");
            assert_eq!(*epoch, 1);
        }
        other => panic!("expected a commit, got {other:?}"),
    }
    wait_health(&c, id, &followers).await;
    c.wait_converged().await;
    for n in c.running() {
        let s = c.state(n);
        assert_eq!(
            (s.topology, s.epoch, s.current_instance),
            (Topology::HyParView, 1, id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_waits_for_a_live_learner_that_has_not_prepared() {
    let opts = Options {
        prepare_timeout_ms: 2_000,
        ..Options::default()
    };
    let mut c = TestCluster::start(3, opts).await;
    let learner = c.join_learner().await;
    let old = c.leader().await;
    c.executor(old).set_hang_prepare(true);
    c.executor(learner).set_hang_prepare(true);
    let r = switch(c.api(old), "hyparview", false).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.value());
    let id = r.value()["transition_id"].as_u64().expect("an id");
    let voters: Vec<NodeId> = (1..=3).filter(|&n| n != old).collect();
    wait_until("the other voters prepared", DEADLINE, || {
        c.state(learner)
            .in_flight
            .is_some_and(|t| voters.iter().all(|f| t.reports.contains_key(f)))
    })
    .await;
    c.stop(old).await;
    let new = c.leader().await;
    let record = wait_for(
        "the new leader decides the transition",
        DEADLINE,
        || async {
            let r = c.state(new).record(id)?.clone();
            (r.outcome != Outcome::InProgress).then_some(r)
        },
    )
    .await;
    // The learner is live (it answers the new leader) but never prepared:
    // the transition waits for it and is aborted (by the new leader's
    // timeout or the learner's own step timeout), never committed without it.
    assert!(
        matches!(&record.outcome, Outcome::Aborted { reason, .. } if reason.contains(&learner.to_string())),
        "{:?}",
        record.outcome
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_writes_get_503_and_readyz_fails() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let leader = c.leader().await;
    let followers = c.followers().await;
    let (lonely, other) = (followers[0], followers[1]);
    let before = c.applied(lonely);
    c.stop(leader).await;
    c.stop(other).await;
    // With pre-vote the lonely node does not campaign, so Raft keeps
    // naming the old leader; the API names none once it has been silent.
    wait_for("the lonely node names no leader", DEADLINE, || async {
        let s = get(c.api(lonely), "/v1/cluster/status").await;
        s.value()["leader"].is_null().then_some(())
    })
    .await;

    let r = switch(c.api(lonely), "hyparview", false).await;
    r.expect_error(StatusCode::SERVICE_UNAVAILABLE, "no_leader");
    let r = send_json(
        c.api(lonely),
        Method::PUT,
        "/v1/policy",
        &json!({"cooldown_ms": 1}),
    )
    .await;
    r.expect_error(StatusCode::SERVICE_UNAVAILABLE, "no_leader");
    let r = get(c.api(lonely), "/readyz").await;
    r.expect_error(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    // Reads still answer, from the applied state.
    let r = get(c.api(lonely), "/v1/topology").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.value()["leader"], serde_json::Value::Null);
    assert_eq!(get(c.api(lonely), "/livez").await.status, StatusCode::OK);
    assert_eq!(c.applied(lonely).state, before.state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_members_no_longer_take_part_in_switches() {
    let mut c = TestCluster::start(3, Options::default()).await;
    let learner = c.join_learner().await;
    let leader = c.leader().await;
    let voter = c.followers().await[0];
    let via = *c
        .followers()
        .await
        .iter()
        .find(|&&n| n != voter && n != learner)
        .expect("another follower");
    for gone in [learner, voter] {
        let r = request(
            c.api(via),
            Method::DELETE,
            &format!("/v1/cluster/members/{gone}"),
            None,
            "",
        )
        .await
        .expect("answer");
        assert_eq!(r.status, StatusCode::OK, "{}", r.value());
        assert_eq!(r.served_by(), Some(leader));
        let m: MembersView = r.json();
        assert!(m.members.iter().all(|m| m.id != gone), "{m:?}");
        c.stop(gone).await;
    }
    let m: MembersView = get(c.api(leader), "/v1/cluster/members").await.json();
    let mut remaining: Vec<NodeId> = m.members.iter().map(|m| m.id).collect();
    remaining.sort();
    let mut expected = vec![leader, via];
    expected.sort();
    assert_eq!(remaining, expected);
    assert!(m.members.iter().all(|m| m.voter));

    let v = switch_and_wait(c.api(via), "hyparview", "after-removal").await;
    assert_eq!(v.status, TransitionStatus::Committed);
    assert_eq!(v.members, expected);
    assert_eq!(v.missing, Vec::<NodeId>::new());
    c.wait_converged().await;
}
