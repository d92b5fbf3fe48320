//! Idle heartbeats to learners, thinned (issue 15, "cheap idling").
//! openraft 0.9 heartbeats every member every `heartbeat_ms`: at 100
//! members an idle leader sends 2,000 RPCs a second, nearly all to
//! learners, which need them only to learn a new commit index and to know
//! the leader lives. The gate (pure; one per replication stream) lets a
//! heartbeat to a learner through when it carries news — entries, a vote
//! or a commit index other than the last one sent — or when the last one
//! that reached it is `interval` old; the others are answered `Success`
//! locally, which is what the learner would answer: nothing changed since
//! the last heartbeat it acknowledged (same vote, same `prev_log_id`).
//! Voters get every heartbeat (their leases and elections depend on it).

use std::time::{Duration, Instant};

use openraft::{LogId, Vote};

use crate::model::NodeId;

/// What makes two heartbeats alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatKey {
    pub vote: Vote<NodeId>,
    pub prev_log_id: Option<LogId<NodeId>>,
    pub leader_commit: Option<LogId<NodeId>>,
}

/// The gate of one target.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatGate {
    /// The last heartbeat that reached the target, and when.
    last: Option<(HeartbeatKey, Instant)>,
}

impl HeartbeatGate {
    /// Whether to send an AppendEntries with `entries` entries and `key`
    /// to a target that `is_learner`, at `now`, with idle heartbeats
    /// thinned to one per `interval` (zero: no thinning).
    pub fn should_send(
        &self,
        now: Instant,
        is_learner: bool,
        entries: usize,
        key: &HeartbeatKey,
        interval: Duration,
    ) -> bool {
        if !is_learner || entries > 0 || interval.is_zero() {
            return true;
        }
        match &self.last {
            Some((last, at)) => last != key || now.saturating_duration_since(*at) >= interval,
            None => true,
        }
    }

    /// Records a heartbeat the target acknowledged (`Success`).
    pub fn delivered(&mut self, now: Instant, key: HeartbeatKey) {
        self.last = Some((key, now));
    }

    /// Forgets the last one (after a failed or refused RPC the next
    /// heartbeat goes through).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn key(commit: u64) -> HeartbeatKey {
        let log = |i| Some(LogId::new(CommittedLeaderId::new(2, 1), i));
        HeartbeatKey {
            vote: Vote::new_committed(2, 1),
            prev_log_id: log(10),
            leader_commit: log(commit),
        }
    }

    const IDLE: Duration = Duration::from_millis(250);

    #[test]
    fn idle_heartbeats_to_a_learner_go_once_per_interval() {
        let t0 = Instant::now();
        let mut g = HeartbeatGate::default();
        assert!(g.should_send(t0, true, 0, &key(10), IDLE), "the first goes");
        g.delivered(t0, key(10));
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!g.should_send(at(50), true, 0, &key(10), IDLE));
        assert!(!g.should_send(at(249), true, 0, &key(10), IDLE));
        assert!(g.should_send(at(250), true, 0, &key(10), IDLE));
    }

    #[test]
    fn news_always_goes_and_voters_get_every_heartbeat() {
        let t0 = Instant::now();
        let mut g = HeartbeatGate::default();
        g.delivered(t0, key(9));
        let soon = t0 + Duration::from_millis(10);
        assert!(
            g.should_send(soon, true, 0, &key(10), IDLE),
            "a new commit index"
        );
        assert!(g.should_send(soon, true, 3, &key(9), IDLE), "entries");
        let mut newer = key(9);
        newer.vote = Vote::new_committed(3, 2);
        assert!(g.should_send(soon, true, 0, &newer, IDLE), "a new leader");
        assert!(g.should_send(soon, false, 0, &key(9), IDLE), "a voter");
        assert!(
            g.should_send(soon, true, 0, &key(9), Duration::ZERO),
            "thinning off"
        );
        g.reset();
        assert!(
            g.should_send(soon, true, 0, &key(9), IDLE),
            "after a failure"
        );
    }
}

/// The voters of the current membership, for the RPC clients to tell
/// learners apart; followed from Raft's metrics by [`Voters::track`].
/// Unknown (before the first metrics) means "treat everyone as a voter".
#[derive(Debug, Clone, Default)]
pub struct Voters {
    ids: std::sync::Arc<std::sync::RwLock<Option<std::collections::BTreeSet<NodeId>>>>,
}

impl Voters {
    /// Whether `id` is known not to be a voter.
    pub fn is_learner(&self, id: NodeId) -> bool {
        let ids = self.ids.read().unwrap_or_else(|e| e.into_inner());
        ids.as_ref().is_some_and(|v| !v.contains(&id))
    }

    /// Sets the voters (tests and [`Voters::track`]).
    pub fn set(&self, voters: std::collections::BTreeSet<NodeId>) {
        *self.ids.write().unwrap_or_else(|e| e.into_inner()) = Some(voters);
    }

    /// Follows `raft`'s membership until `cancel`.
    pub async fn track(
        self,
        raft: crate::control::types::Raft,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        crate::control::types::follow_metrics(raft, cancel, |m| {
            self.set(m.membership_config.membership().voter_ids().collect())
        })
        .await
    }
}
