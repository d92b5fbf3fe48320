//! The monitor runs only on the leader: when leadership moves, the new
//! leader's monitor takes over (fresh rounds in its term) and the old one
//! runs no more rounds.

mod common;

use std::time::Duration;

use common::{wait_until, Options, TestCluster, DEADLINE};
use topod::config::RulesConfig;

fn fast_monitor() -> Options {
    Options {
        rules: RulesConfig {
            monitor_interval_ms: Some(200),
            ..Default::default()
        },
        ..Options::default()
    }
}

fn rounds_of(c: &TestCluster, id: u64) -> Option<(u64, u64, u64)> {
    c.node(id)
        .monitor()
        .last()
        .map(|r| (r.round, r.term, r.leader))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_leaders_monitor_takes_over_and_the_old_one_stops() {
    let c = TestCluster::start(3, fast_monitor()).await;
    let old = c.leader().await;
    wait_until("the leader's monitor ran two rounds", DEADLINE, || {
        rounds_of(&c, old).is_some_and(|(round, _, _)| round >= 2)
    })
    .await;
    let followers = c.followers().await;
    for &f in &followers {
        assert_eq!(rounds_of(&c, f), None, "follower {f} ran a monitor round");
    }
    let old_term = rounds_of(&c, old).map(|(_, t, _)| t).expect("a round");
    let last = c.node(old).monitor().last().expect("a round");
    assert_eq!(last.leader, old);
    assert_eq!(last.asked, 3, "every member was asked");

    // Move leadership: a follower starts an election. It usually wins;
    // on a loaded machine another node may (even the old leader, in a
    // later term): try again until a node other than `old` leads.
    let mut new = None;
    for attempt in 0..5 {
        let candidate = followers[attempt % followers.len()];
        c.node(candidate)
            .raft()
            .trigger()
            .elect()
            .await
            .expect("trigger election");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let l = c.leader().await;
            if l != old {
                new = Some(l);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if new.is_some() {
            break;
        }
    }
    let new = new.expect("leadership moved off the old leader");
    wait_until(
        "the new leader's monitor ran three rounds",
        DEADLINE,
        || {
            rounds_of(&c, new)
                .is_some_and(|(round, term, leader)| round >= 3 && term > old_term && leader == new)
        },
    )
    .await;
    // The old leader's monitor stopped with the last term it led (the
    // first, or a later one if it won an election in between): never a
    // term as recent as the new leader's, and no new round while the new
    // leader ran three.
    let new_term = rounds_of(&c, new).map(|(_, t, _)| t).expect("a round");
    let (old_round, term, leader) = rounds_of(&c, old).expect("its last round");
    assert_eq!(leader, old);
    assert!(
        term >= old_term && term < new_term,
        "{term} vs {old_term}..{new_term}"
    );
    let before = old_round;
    wait_until("the new leader ran three more rounds", DEADLINE, || {
        rounds_of(&c, new).is_some_and(|(round, _, _)| round >= 6)
    })
    .await;
    assert_eq!(
        rounds_of(&c, old).map(|(r, _, _)| r),
        Some(before),
        "the deposed leader's monitor kept running"
    );
    // Nothing was proposed by either monitor (auto_switch is off).
    let history = c.state(new).history;
    assert!(
        history
            .iter()
            .all(|r| !r.requested_by.starts_with("monitor@")),
        "{history:?}"
    );
    c.shutdown().await;
}
