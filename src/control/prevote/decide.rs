//! Pre-vote decisions, free of IO and clocks: what a voter answers, whether
//! the answers make a majority, and when a voter campaigns.

use std::collections::BTreeSet;

use openraft::LogId;
use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

use crate::model::NodeId;

/// "Would you vote for me?" — changes nothing on the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    /// The term the candidate would stand in (its current term + 1).
    pub term: u64,
    pub last_log_id: Option<LogId<NodeId>>,
}

/// Why a voter would not vote for the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The voter has heard from a leader (or, leading, from a quorum)
    /// within the leader lease.
    #[error("a leader is live")]
    LeaderLive,
    /// The candidate's last log id is behind the voter's.
    #[error("the candidate's log is behind")]
    LogBehind,
}

/// A voter's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteResponse {
    pub voter: NodeId,
    /// The voter's current term (for the candidate's logs).
    pub term: u64,
    pub refusal: Option<Refusal>,
}

impl PreVoteResponse {
    pub fn granted(&self) -> bool {
        self.refusal.is_none()
    }
}

/// What a voter knows when it answers, copied from Raft's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterView {
    pub me: NodeId,
    pub term: u64,
    pub is_leader: bool,
    /// As leader: ms since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Time since this node last accepted an AppendEntries from a leader
    /// (`None`: never since it started).
    pub since_leader_contact: Option<Duration>,
    pub last_log_id: Option<LogId<NodeId>>,
}

/// The voter's rule: yes only if openraft's own vote could be yes — no
/// live leader within `lease` (openraft refuses votes inside it) and a
/// log at least as new as its own (openraft's up-to-date check).
pub fn answer(view: &VoterView, req: &PreVoteRequest, lease: Duration) -> PreVoteResponse {
    let leader_live = if view.is_leader {
        view.millis_since_quorum_ack
            .is_some_and(|ms| Duration::from_millis(ms) <= lease)
    } else {
        view.since_leader_contact.is_some_and(|d| d <= lease)
    };
    let refusal = if leader_live {
        Some(Refusal::LeaderLive)
    } else if req.last_log_id < view.last_log_id {
        Some(Refusal::LogBehind)
    } else {
        None
    };
    PreVoteResponse {
        voter: view.me,
        term: view.term,
        refusal,
    }
}

/// Whether the voters in `granted` (the candidate itself included) are a
/// majority of every configuration in `joint` (one set normally, two during
/// a joint membership change). An empty configuration list is no majority.
pub fn tally(joint: &[BTreeSet<NodeId>], granted: &BTreeSet<NodeId>) -> bool {
    !joint.is_empty()
        && joint.iter().all(|config| {
            let yes = config.intersection(granted).count();
            yes * 2 > config.len()
        })
}

/// The timing openraft 0.9 uses for its own election timer when a leader
/// was known: `leader_lease` (= `election_timeout_max`) plus a timeout
/// drawn in `[election_timeout_min, election_timeout_max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
}

impl Timing {
    /// From the `[raft]` config's election timeouts.
    pub fn from_millis(min_ms: u64, max_ms: u64) -> Self {
        Timing {
            lease: Duration::from_millis(max_ms),
            election_min: Duration::from_millis(min_ms),
            election_max: Duration::from_millis(max_ms),
        }
    }

    /// The quiet time after which a voter campaigns; `draw` in `[0, 1)`.
    pub fn timeout(&self, draw: f64) -> Duration {
        let span = self.election_max.saturating_sub(self.election_min);
        self.lease + self.election_min + span.mul_f64(draw.clamp(0.0, 1.0))
    }
}

/// What the candidate side sees of its own node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateView {
    /// A voter in the effective membership.
    pub is_voter: bool,
    pub is_leader: bool,
    /// This node is the only voter: nobody to ask.
    pub only_voter: bool,
    pub since_leader_contact: Option<Duration>,
}

/// What the campaign loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing due; look again after this long (or when Raft's state
    /// changes).
    Wait(Duration),
    /// Ask the other voters.
    PreVote,
    /// Campaign now (only voter, or after a granted pre-vote).
    Elect,
}

/// The candidate side's timer: campaign after [`Timing::timeout`] without
/// leader contact, without an attempt of its own and without leading. The
/// quiet period starts when the timer is made (a restarted node waits a
/// full, randomised timeout, so restarted voters do not all campaign at
/// once) and again at every attempt and every poll while leading (a
/// deposed leader waits too).
#[derive(Debug, Clone)]
pub struct Campaign {
    timing: Timing,
    timeout: Duration,
    last_attempt: Instant,
    single_voter_elected: bool,
}

impl Campaign {
    /// A campaign timer started at `now`; `draw` in `[0, 1)` picks the
    /// first timeout.
    pub fn new(timing: Timing, now: Instant, draw: f64) -> Self {
        Campaign {
            timing,
            timeout: timing.timeout(draw),
            last_attempt: now,
            single_voter_elected: false,
        }
    }

    /// The current timeout (for logs and tests).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// What to do at `now`. An attempt (pre-vote or election) starts a
    /// new quiet period with a fresh timeout drawn from `draw`.
    pub fn poll(&mut self, now: Instant, view: &CandidateView, draw: f64) -> Step {
        if !view.is_voter || view.is_leader {
            self.last_attempt = now;
            self.single_voter_elected = false;
            return Step::Wait(self.timing.lease);
        }
        if view.only_voter && !self.single_voter_elected {
            // A single voter has nobody to wait for.
            self.single_voter_elected = true;
            self.attempt(now, draw);
            return Step::Elect;
        }
        let since_attempt = now.saturating_duration_since(self.last_attempt);
        let quiet = view
            .since_leader_contact
            .map_or(since_attempt, |c| c.min(since_attempt));
        match quiet {
            q if q < self.timeout => Step::Wait(self.timeout - q),
            _ => {
                self.attempt(now, draw);
                if view.only_voter {
                    Step::Elect
                } else {
                    Step::PreVote
                }
            }
        }
    }

    fn attempt(&mut self, now: Instant, draw: f64) {
        self.last_attempt = now;
        self.timeout = self.timing.timeout(draw);
    }
}

/// Whether granted pre-votes may still start an election. The grants
/// describe the cluster when they were given; while the answers came in
/// (the slowest bounded by the RPC deadline) a leader may have been
/// elected. A leader heard from since the ask, a term that moved, or this
/// node leading makes them stale: electing on them would depose that
/// leader, the very thing pre-vote exists to prevent.
pub fn grants_still_hold(
    asked_term: u64,
    asked_ago: Duration,
    now: &CandidateView,
    term_now: u64,
) -> bool {
    !now.is_leader
        && now.is_voter
        && term_now == asked_term
        && now.since_leader_contact.is_none_or(|c| c > asked_ago)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log(term: u64, index: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    fn follower(contact_ms: Option<u64>, last: Option<LogId<NodeId>>) -> VoterView {
        VoterView {
            me: 2,
            term: 4,
            is_leader: false,
            millis_since_quorum_ack: None,
            since_leader_contact: contact_ms.map(Duration::from_millis),
            last_log_id: last,
        }
    }

    fn req(last: Option<LogId<NodeId>>) -> PreVoteRequest {
        PreVoteRequest {
            candidate: 3,
            term: 5,
            last_log_id: last,
        }
    }

    const LEASE: Duration = Duration::from_millis(300);

    #[test]
    fn a_follower_with_a_live_leader_refuses() {
        let a = answer(&follower(Some(40), log(4, 10)), &req(log(4, 10)), LEASE);
        assert_eq!(a.refusal, Some(Refusal::LeaderLive));
        assert_eq!((a.voter, a.term), (2, 4));
        // At the lease's edge it is still live (openraft: now <= utime + lease).
        let a = answer(&follower(Some(300), log(4, 10)), &req(log(4, 10)), LEASE);
        assert_eq!(a.refusal, Some(Refusal::LeaderLive));
    }

    #[test]
    fn a_follower_without_a_leader_grants_an_up_to_date_candidate() {
        let a = answer(&follower(Some(301), log(4, 10)), &req(log(4, 10)), LEASE);
        assert!(a.granted());
        let a = answer(&follower(None, log(4, 10)), &req(log(5, 2)), LEASE);
        assert!(
            a.granted(),
            "a newer term's entry is newer whatever the index"
        );
    }

    #[test]
    fn a_candidate_behind_is_refused() {
        let a = answer(&follower(None, log(4, 10)), &req(log(4, 9)), LEASE);
        assert_eq!(a.refusal, Some(Refusal::LogBehind));
        let a = answer(&follower(None, log(4, 10)), &req(log(3, 50)), LEASE);
        assert_eq!(a.refusal, Some(Refusal::LogBehind));
        let a = answer(&follower(None, log(1, 1)), &req(None), LEASE);
        assert_eq!(a.refusal, Some(Refusal::LogBehind));
    }

    #[test]
    fn a_leader_refuses_while_a_quorum_acknowledges_it() {
        let mut v = follower(None, log(4, 10));
        v.is_leader = true;
        v.millis_since_quorum_ack = Some(60);
        assert_eq!(
            answer(&v, &req(log(4, 10)), LEASE).refusal,
            Some(Refusal::LeaderLive)
        );
        v.millis_since_quorum_ack = Some(900);
        assert!(answer(&v, &req(log(4, 10)), LEASE).granted());
        v.millis_since_quorum_ack = None;
        assert!(answer(&v, &req(log(4, 10)), LEASE).granted());
    }

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn tally_needs_a_majority_of_every_configuration() {
        let one = vec![set(&[1, 2, 3])];
        assert!(!tally(&one, &set(&[1])));
        assert!(tally(&one, &set(&[1, 3])));
        assert!(!tally(&one, &set(&[1, 9, 8])), "non-voters do not count");
        let four = vec![set(&[1, 2, 3, 4])];
        assert!(!tally(&four, &set(&[1, 2])), "half is no majority");
        let joint = vec![set(&[1, 2, 3]), set(&[3, 4, 5])];
        assert!(!tally(&joint, &set(&[1, 2, 3])));
        assert!(tally(&joint, &set(&[1, 3, 4])));
        assert!(!tally(&[], &set(&[1])));
        assert!(tally(&[set(&[1])], &set(&[1])));
    }

    fn timing() -> Timing {
        Timing::from_millis(150, 300)
    }

    #[test]
    fn timeout_is_lease_plus_a_drawn_election_timeout() {
        let t = timing();
        assert_eq!(t.timeout(0.0), Duration::from_millis(450));
        assert_eq!(t.timeout(0.5), Duration::from_millis(525));
        assert_eq!(t.timeout(2.0), Duration::from_millis(600), "draw clamped");
    }

    fn view(contact_ms: Option<u64>) -> CandidateView {
        CandidateView {
            is_voter: true,
            is_leader: false,
            only_voter: false,
            since_leader_contact: contact_ms.map(Duration::from_millis),
        }
    }

    /// A timer started long enough ago that only contact matters.
    fn started(now: Instant) -> Campaign {
        Campaign::new(timing(), now - Duration::from_secs(10), 0.0)
    }

    #[test]
    fn a_follower_in_contact_waits_for_the_rest_of_its_timeout() {
        let now = Instant::now();
        let mut c = started(now);
        assert_eq!(
            c.poll(now, &view(Some(100)), 0.0),
            Step::Wait(Duration::from_millis(350))
        );
    }

    #[test]
    fn silence_past_the_timeout_asks_for_pre_votes_then_waits_a_new_timeout() {
        let now = Instant::now();
        let mut c = started(now);
        assert_eq!(c.poll(now, &view(Some(450)), 1.0), Step::PreVote);
        assert_eq!(c.timeout(), Duration::from_millis(600), "redrawn");
        // The attempt restarts the quiet period although the leader is
        // still silent.
        let later = now + Duration::from_millis(100);
        assert_eq!(
            c.poll(later, &view(Some(550)), 0.0),
            Step::Wait(Duration::from_millis(500))
        );
        let later = now + Duration::from_millis(600);
        assert_eq!(c.poll(later, &view(Some(1050)), 0.0), Step::PreVote);
    }

    #[test]
    fn a_restarted_node_waits_one_timeout_from_its_start() {
        let start = Instant::now();
        let mut c = Campaign::new(timing(), start, 0.2);
        assert_eq!(
            c.poll(start, &view(None), 0.0),
            Step::Wait(Duration::from_millis(480))
        );
        assert_eq!(
            c.poll(start + Duration::from_millis(480), &view(None), 0.0),
            Step::PreVote
        );
    }

    #[test]
    fn leaders_and_learners_never_campaign() {
        let now = Instant::now();
        let mut c = started(now);
        let mut v = view(None);
        v.is_leader = true;
        assert_eq!(c.poll(now, &v, 0.0), Step::Wait(Duration::from_millis(300)));
        let mut v = view(None);
        v.is_voter = false;
        assert_eq!(c.poll(now, &v, 0.0), Step::Wait(Duration::from_millis(300)));
    }

    #[test]
    fn a_single_voter_elects_at_once_then_after_each_timeout() {
        let now = Instant::now();
        let mut c = Campaign::new(timing(), now, 0.0);
        let mut v = view(None);
        v.only_voter = true;
        assert_eq!(c.poll(now, &v, 0.0), Step::Elect);
        assert_eq!(
            c.poll(now + Duration::from_millis(50), &v, 0.0),
            Step::Wait(Duration::from_millis(400))
        );
        assert_eq!(
            c.poll(now + Duration::from_millis(450), &v, 0.0),
            Step::Elect
        );
    }

    #[test]
    fn a_deposed_leader_waits_a_timeout_from_its_last_poll_as_leader() {
        let now = Instant::now();
        let mut c = started(now);
        let mut v = view(None);
        v.is_leader = true;
        c.poll(now, &v, 0.0);
        let deposed = now + Duration::from_millis(100);
        assert_eq!(
            c.poll(deposed, &view(Some(5_000)), 0.0),
            Step::Wait(Duration::from_millis(350))
        );
        assert_eq!(
            c.poll(now + Duration::from_millis(450), &view(Some(5_000)), 0.0),
            Step::PreVote
        );
    }

    fn candidate(contact_ms: Option<u64>) -> CandidateView {
        CandidateView {
            is_voter: true,
            is_leader: false,
            only_voter: false,
            since_leader_contact: contact_ms.map(Duration::from_millis),
        }
    }

    #[test]
    fn grants_go_stale_when_a_leader_is_heard_or_the_term_moves_meanwhile() {
        let asked = Duration::from_millis(400);
        // Last contact before the ask (or never): the grants hold.
        assert!(grants_still_hold(7, asked, &candidate(Some(900)), 7));
        assert!(grants_still_hold(7, asked, &candidate(None), 7));
        // A leader elected while the answers came in was heard from.
        assert!(!grants_still_hold(7, asked, &candidate(Some(100)), 7));
        assert!(!grants_still_hold(7, asked, &candidate(Some(400)), 7));
        // The term moved (a vote request of another candidate was granted).
        assert!(!grants_still_hold(7, asked, &candidate(Some(900)), 8));
        // Leading or no longer a voter.
        let mut leader = candidate(None);
        leader.is_leader = true;
        assert!(!grants_still_hold(7, asked, &leader, 7));
        let mut learner = candidate(None);
        learner.is_voter = false;
        assert!(!grants_still_hold(7, asked, &learner, 7));
    }
}
