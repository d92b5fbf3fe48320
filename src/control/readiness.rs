//! Whether this node can serve a write or a current read now: the check
//! behind `/readyz` and behind a write's fast 503.
//!
//! Knowing a leader is not enough: a leader cut off from the majority
//! keeps `role = leader` for as long as nothing tells it otherwise, and the
//! followers and learners behind it keep naming it. So a leader must have
//! been acknowledged by a quorum (openraft's `millis_since_quorum_ack`)
//! within the window, and any other node must have accepted an
//! AppendEntries (a heartbeat at least) from its leader within the window
//! ([`LeaderContact`], recorded by the Raft RPC server). The window is the
//! election timeout's maximum: a follower that hears nothing for that long
//! starts an election, so no leader is in contact with it any more.

use std::sync::{Arc, Mutex};

use tokio::time::{Duration, Instant};

use crate::model::NodeId;

/// When this node last accepted an AppendEntries, and from which leader.
#[derive(Debug, Clone, Default)]
pub struct LeaderContact {
    last: Arc<Mutex<Option<(NodeId, Instant)>>>,
}

impl LeaderContact {
    /// Records an AppendEntries from `leader` accepted now.
    pub fn record(&self, leader: NodeId) {
        let mut last = self.last.lock().expect("leader contact lock poisoned");
        *last = Some((leader, Instant::now()));
    }

    /// How long ago `leader` was last heard from (`None`: never).
    pub fn since(&self, leader: NodeId) -> Option<Duration> {
        let last = self.last.lock().expect("leader contact lock poisoned");
        last.filter(|(l, _)| *l == leader).map(|(_, t)| t.elapsed())
    }
}

/// What the check looks at, copied from Raft's metrics and this node's
/// records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub me: NodeId,
    pub leader: Option<NodeId>,
    /// For a leader: ms since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// For a follower or learner: time since its leader's last
    /// AppendEntries.
    pub since_leader_contact: Option<Duration>,
    pub applied: u64,
    pub committed: u64,
}

/// Why the node cannot serve now. Nothing changes state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotServing {
    #[error("no leader is known")]
    NoLeader,
    #[error(
        "this node leads but has not heard from a quorum {} (window {window_ms} ms): it may be \
         cut off from the majority",
        silence(.ms)
    )]
    NoQuorum { ms: Option<u64>, window_ms: u64 },
    #[error("no AppendEntries from leader {leader} {} (window {window_ms} ms)", silence(.ms))]
    LeaderSilent {
        leader: NodeId,
        ms: Option<u64>,
        window_ms: u64,
    },
    #[error("applied {applied} < committed {committed}: catching up")]
    CatchingUp { applied: u64, committed: u64 },
}

fn silence(ms: &Option<u64>) -> String {
    match ms {
        Some(ms) => format!("for {ms} ms"),
        None => "yet".to_string(),
    }
}

/// The check, a pure function of `view` and `window`.
pub fn check(view: &View, window: Duration) -> Result<(), NotServing> {
    let window_ms = window.as_millis() as u64;
    let leader = view.leader.ok_or(NotServing::NoLeader)?;
    if leader == view.me {
        if view.millis_since_quorum_ack.is_none_or(|ms| ms > window_ms) {
            return Err(NotServing::NoQuorum {
                ms: view.millis_since_quorum_ack,
                window_ms,
            });
        }
    } else if view.since_leader_contact.is_none_or(|d| d > window) {
        return Err(NotServing::LeaderSilent {
            leader,
            ms: view.since_leader_contact.map(|d| d.as_millis() as u64),
            window_ms,
        });
    }
    if view.applied < view.committed {
        return Err(NotServing::CatchingUp {
            applied: view.applied,
            committed: view.committed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(300);

    fn view(leader: Option<NodeId>) -> View {
        View {
            me: 1,
            leader,
            millis_since_quorum_ack: None,
            since_leader_contact: None,
            applied: 7,
            committed: 7,
        }
    }

    #[test]
    fn a_leader_needs_a_recent_quorum_ack() {
        let mut v = view(Some(1));
        assert_eq!(
            check(&v, W),
            Err(NotServing::NoQuorum {
                ms: None,
                window_ms: 300
            })
        );
        v.millis_since_quorum_ack = Some(300);
        assert_eq!(check(&v, W), Ok(()));
        v.millis_since_quorum_ack = Some(301);
        assert!(matches!(check(&v, W), Err(NotServing::NoQuorum { .. })));
        v.since_leader_contact = Some(Duration::ZERO);
        assert!(
            matches!(check(&v, W), Err(NotServing::NoQuorum { .. })),
            "a leader's own contact record does not count"
        );
    }

    #[test]
    fn a_follower_needs_recent_contact_with_its_leader_and_to_have_caught_up() {
        assert_eq!(check(&view(None), W), Err(NotServing::NoLeader));
        let mut v = view(Some(2));
        v.millis_since_quorum_ack = Some(0);
        assert!(matches!(
            check(&v, W),
            Err(NotServing::LeaderSilent {
                leader: 2,
                ms: None,
                ..
            })
        ));
        v.since_leader_contact = Some(Duration::from_millis(301));
        assert!(matches!(check(&v, W), Err(NotServing::LeaderSilent { .. })));
        v.since_leader_contact = Some(Duration::from_millis(40));
        assert_eq!(check(&v, W), Ok(()));
        v.committed = 8;
        assert_eq!(
            check(&v, W),
            Err(NotServing::CatchingUp {
                applied: 7,
                committed: 8
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn contact_is_per_leader() {
        let c = LeaderContact::default();
        assert_eq!(c.since(2), None);
        c.record(2);
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(c.since(2), Some(Duration::from_millis(10)));
        assert_eq!(c.since(3), None, "a newer leader has not been heard");
    }
}
