//! Writes commands to the Raft log on the leader.
//!
//! The proposer stamps each command with the leader's wall clock, never
//! going backwards (the max of the clock, its own last stamp and the last
//! applied stamp, which covers a new leader whose clock is behind), wraps it
//! in an `Envelope` (today `V2`), and waits until the entry is committed and applied.
//! It never forwards: a follower gets [`WriteError::ForwardToLeader`] and the
//! API layer forwards the request.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, RaftError};

use super::applied::AppliedRx;
use super::types::{LogPayload, NodeAddr, Raft};
use crate::model::{Command, CommandResponse, Envelope, NodeId};

/// Why a write did not reach the state machine. No state changed in any
/// case, except `Timeout`, where the entry may still commit later.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// This node is not the leader; the leader, if known.
    #[error("this node is not the leader (leader: {leader:?})")]
    ForwardToLeader {
        leader: Option<NodeId>,
        leader_addr: Option<NodeAddr>,
    },
    /// Raft stopped (storage error or shutdown).
    #[error("raft has stopped: {0}")]
    Fatal(String),
    /// The write did not finish in time; it may still commit.
    #[error("write not applied within {0:?}; it may still commit")]
    Timeout(Duration),
    /// Any other refusal by Raft.
    #[error("raft refused the write: {0}")]
    Refused(String),
}

/// Stamps and writes commands on the leader.
pub struct Proposer {
    raft: Raft,
    applied: AppliedRx,
    last_stamp: Mutex<u64>,
    timeout: Duration,
}

impl Proposer {
    /// A proposer writing through `raft`; writes give up after `timeout`.
    pub fn new(raft: Raft, applied: AppliedRx, timeout: Duration) -> Self {
        Proposer {
            raft,
            applied,
            last_stamp: Mutex::new(0),
            timeout,
        }
    }

    fn stamp(&self) -> u64 {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let applied = self.applied.borrow().state.last_stamp_ms;
        let mut last = self.last_stamp.lock().expect("stamp lock poisoned");
        *last = clock.max(*last).max(applied);
        *last
    }

    /// Writes `command` and returns the state machine's answer.
    pub async fn write(&self, command: Command) -> Result<CommandResponse, WriteError> {
        let started = std::time::Instant::now();
        let payload = LogPayload::new(&Envelope::new(self.stamp(), command));
        let result = tokio::time::timeout(self.timeout, self.raft.client_write(payload)).await;
        let outcome = match result {
            Err(_) => Err(WriteError::Timeout(self.timeout)),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(WriteError::ForwardToLeader {
                    leader: f.leader_id,
                    leader_addr: f.leader_node,
                })
            }
            Ok(Err(RaftError::APIError(e))) => Err(WriteError::Refused(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Fatal(e.to_string())),
        };
        match &outcome {
            Ok(_) => {
                metrics::counter!("topod_proposals_committed_total").increment(1);
                metrics::histogram!("topod_commit_seconds").record(started.elapsed().as_secs_f64());
            }
            Err(WriteError::ForwardToLeader { .. }) => {}
            Err(_) => metrics::counter!("topod_proposals_failed_total").increment(1),
        }
        outcome
    }

    /// How long a write may take before it is given up.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether this node currently believes it is the leader.
    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.current_leader == Some(m.id)
    }
}
