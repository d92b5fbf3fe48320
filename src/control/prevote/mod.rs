//! Pre-vote (Raft thesis §9.6) on top of openraft 0.9, which has none.
//!
//! openraft 0.9.25 lets a follower that hears no leader raise its term and
//! campaign. A voter cut off by a partition does that over and over; when
//! the partition heals, the leader's next heartbeat meets the higher term
//! (`AppendEntriesResponse::HigherVote`) and steps down, and the cluster
//! is without a leader for an election (BENCHMARKS.md "Chaos").
//!
//! With `raft.prevote = true` (the default) openraft's own election timer
//! is off (`Config::enable_elect = false`) and this module decides when
//! to campaign instead: after the same timeout openraft would use (leader
//! lease plus a randomised election timeout, [`Timing`]) without contact
//! from a leader, a voter asks the other voters whether they would vote for
//! it ([`PreVoteRequest`], route `/raft/prevote`) without anyone changing
//! its term. Only with a yes from a majority of every voter configuration
//! ([`tally`]) does it call `raft.trigger().elect()`, which openraft runs
//! even with its timer off. An isolated voter never gets that majority, so
//! its term stays where it was and its return costs nothing.
//!
//! A voter says yes ([`answer`]) only when its own vote could go the same
//! way in openraft: it has no live leader (no accepted AppendEntries for a
//! leader lease; a leader: no quorum acknowledgement for a lease) and the
//! candidate's log is not behind its own.
//!
//! - [`decide`]: the request and answer, the voter's rule and the
//!   candidate's [`Campaign`] timer, all pure;
//! - [`task`]: the loop that feeds [`Campaign`] from Raft's metrics and
//!   sends the requests.

pub mod decide;
pub mod task;

pub use decide::{answer, tally, Campaign, PreVoteRequest, PreVoteResponse, Refusal, Step, Timing};
