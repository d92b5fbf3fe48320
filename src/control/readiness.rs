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
//!
//! Contact with a leader is not enough either: a leader cut off from the
//! majority with one follower or learner keeps sending it heartbeats. So a
//! leader stamps every AppendEntries with how long ago a quorum last
//! acknowledged it ([`QuorumClock`], header
//! [`crate::control::network::QUORUM_AGE_HEADER`]) and a follower or
//! learner whose leader reported an age beyond the window is not ready
//! either ([`NotServing::LeaderWithoutQuorum`]). A leader that sends no
//! stamp (an older build during a rolling upgrade) is taken at its word.

use std::sync::{Arc, Mutex};

use tokio::time::{Duration, Instant};

use crate::model::NodeId;

/// The last accepted AppendEntries: from which leader, when, and the
/// leader's quorum age it carried (`None`: not stamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Contact {
    leader: NodeId,
    at: Instant,
    leader_quorum_ms: Option<u64>,
}

/// When this node last accepted an AppendEntries, and from which leader.
#[derive(Debug, Clone, Default)]
pub struct LeaderContact {
    last: Arc<Mutex<Option<Contact>>>,
}

impl LeaderContact {
    /// Records an AppendEntries from `leader` accepted now, stamped with
    /// the leader's quorum age in ms (`None`: no stamp).
    pub fn record(&self, leader: NodeId, leader_quorum_ms: Option<u64>) {
        let mut last = self.last.lock().expect("leader contact lock poisoned");
        *last = Some(Contact {
            leader,
            at: Instant::now(),
            leader_quorum_ms,
        });
    }

    /// How long ago any leader was last heard from (`None`: never).
    pub fn since_any(&self) -> Option<Duration> {
        let last = self.last.lock().expect("leader contact lock poisoned");
        last.map(|c| c.at.elapsed())
    }

    /// How long ago `leader` was last heard from (`None`: never).
    pub fn since(&self, leader: NodeId) -> Option<Duration> {
        let last = self.last.lock().expect("leader contact lock poisoned");
        last.filter(|c| c.leader == leader).map(|c| c.at.elapsed())
    }

    /// The quorum age `leader` stamped its last AppendEntries with
    /// (`None`: never heard, or not stamped).
    pub fn leader_quorum_ms(&self, leader: NodeId) -> Option<u64> {
        let last = self.last.lock().expect("leader contact lock poisoned");
        last.filter(|c| c.leader == leader)
            .and_then(|c| c.leader_quorum_ms)
    }
}

/// As leader: when a quorum last acknowledged this node, kept from Raft's
/// metrics so that its age grows with time between metrics updates.
#[derive(Debug, Clone, Default)]
pub struct QuorumClock {
    acked_at: Arc<Mutex<Option<Instant>>>,
}

impl QuorumClock {
    /// Takes openraft's `millis_since_quorum_ack` (as leader; `None`
    /// otherwise) read now.
    pub fn observe(&self, millis_since_quorum_ack: Option<u64>) {
        let now = Instant::now();
        let at = millis_since_quorum_ack
            .map(|ms| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now));
        *self.acked_at.lock().expect("quorum clock lock poisoned") = at;
    }

    /// Ms since a quorum acknowledged this node (`None`: not leading, or
    /// never acknowledged).
    pub fn age_ms(&self) -> Option<u64> {
        let at = *self.acked_at.lock().expect("quorum clock lock poisoned");
        at.map(|t| t.elapsed().as_millis() as u64)
    }

    /// Follows `raft`'s metrics into the clock until `cancel`.
    pub async fn track(
        self,
        raft: crate::control::types::Raft,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        crate::control::types::follow_metrics(raft, cancel, |m| {
            self.observe(
                (m.state == openraft::ServerState::Leader)
                    .then_some(m.millis_since_quorum_ack)
                    .flatten(),
            )
        })
        .await
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
    /// For a follower or learner: the quorum age its leader stamped that
    /// AppendEntries with (`None`: not stamped).
    pub leader_quorum_ms: Option<u64>,
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
    #[error(
        "leader {leader} has not heard from a quorum for {ms} ms (window {window_ms} ms): it \
         and this node may be cut off from the majority"
    )]
    LeaderWithoutQuorum {
        leader: NodeId,
        ms: u64,
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
    } else if let Some(ms) = view.leader_quorum_ms.filter(|ms| *ms > window_ms) {
        return Err(NotServing::LeaderWithoutQuorum {
            leader,
            ms,
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
            leader_quorum_ms: None,
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

    #[test]
    fn a_follower_of_a_leader_without_quorum_is_not_ready() {
        let mut v = view(Some(2));
        v.since_leader_contact = Some(Duration::from_millis(40));
        v.leader_quorum_ms = Some(300);
        assert_eq!(check(&v, W), Ok(()));
        v.leader_quorum_ms = Some(301);
        assert_eq!(
            check(&v, W),
            Err(NotServing::LeaderWithoutQuorum {
                leader: 2,
                ms: 301,
                window_ms: 300
            })
        );
        v.leader_quorum_ms = None;
        assert_eq!(check(&v, W), Ok(()), "an unstamped leader is believed");
    }

    #[tokio::test(start_paused = true)]
    async fn contact_is_per_leader() {
        let c = LeaderContact::default();
        assert_eq!(c.since(2), None);
        c.record(2, Some(12));
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(c.since(2), Some(Duration::from_millis(10)));
        assert_eq!(c.since_any(), Some(Duration::from_millis(10)));
        assert_eq!(c.leader_quorum_ms(2), Some(12));
        assert_eq!(c.since(3), None, "a newer leader has not been heard");
        assert_eq!(c.leader_quorum_ms(3), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_quorum_age_grows_between_metrics_updates() {
        let q = QuorumClock::default();
        assert_eq!(q.age_ms(), None);
        q.observe(Some(20));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(q.age_ms(), Some(520));
        q.observe(None);
        assert_eq!(q.age_ms(), None, "not leading");
    }
}
