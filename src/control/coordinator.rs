//! The leader's coordinator: moves an in-flight transition to its commit or
//! abort, and proposes a rollback when a cut-over turned out unhealthy.
//!
//! It runs on every node and acts only while its node leads. Its decisions
//! carry the term they were made in; the state machine refuses a decision
//! appended in another term, so a deposed leader's late proposal is fenced.
//! The prepare timeout is measured from when this leader first saw the
//! transition (a tokio `Instant` does not carry across leaders), so it
//! restarts after a leader change.

use std::sync::Arc;

use openraft::ServerState;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::applied::AppliedRx;
use super::liveness::Liveness;
use super::proposer::Proposer;
use super::types::Raft;
use crate::model::{
    Command, NodeId, Outcome, Phase, ProposeSwitch, SwitchReason, TopologyState, TransitionId,
};

/// Coordinator timing.
#[derive(Debug, Clone)]
pub struct CoordinatorSettings {
    /// How long members may take to report `Prepared`.
    pub prepare_timeout: Duration,
    /// A member that answered a Raft RPC within this window is live.
    pub live_window: Duration,
    /// Re-evaluation period when nothing is applied.
    pub tick: Duration,
}

/// When this leader first saw the in-flight transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub id: TransitionId,
    pub term: u64,
    pub since: Instant,
}

/// The coordinator's decision for the current state, if any.
///
/// `watch` is updated to follow the in-flight transition; `is_live` says
/// whether a member other than `me` is live.
pub fn decide(
    state: &TopologyState,
    me: NodeId,
    term: u64,
    now: Instant,
    prepare_timeout: Duration,
    watch: &mut Option<Watch>,
    is_live: impl Fn(NodeId) -> bool,
) -> Option<Command> {
    let Some(t) = &state.in_flight else {
        *watch = None;
        return rollback_decision(state);
    };
    let since = match watch {
        Some(w) if w.id == t.id && w.term == term => w.since,
        _ => {
            *watch = Some(Watch {
                id: t.id,
                term,
                since: now,
            });
            now
        }
    };
    if let Some((node, reason)) = t.failure() {
        return Some(Command::AbortSwitch {
            id: t.id,
            term,
            reason: format!("node {node} failed to prepare: {reason}"),
        });
    }
    let pending: Vec<NodeId> = t
        .members
        .iter()
        .copied()
        .filter(|n| t.reports.get(n) != Some(&Phase::Prepared))
        .collect();
    let live_pending = pending.iter().any(|&n| n == me || is_live(n));
    if !live_pending {
        return Some(Command::CommitSwitch {
            id: t.id,
            term,
            missing: pending,
        });
    }
    if now.duration_since(since) >= prepare_timeout {
        return Some(Command::AbortSwitch {
            id: t.id,
            term,
            reason: format!(
                "prepare timeout ({} ms): nodes {pending:?} did not report Prepared",
                prepare_timeout.as_millis()
            ),
        });
    }
    None
}

/// Prefix of the request ids of the coordinator's rollbacks, reserved:
/// the API refuses client request ids that start with it.
pub const ROLLBACK_REQUEST_PREFIX: &str = "rollback-of-";

/// The request id of the rollback of transition `of`.
pub fn rollback_request_id(of: TransitionId) -> String {
    format!("{ROLLBACK_REQUEST_PREFIX}{of}")
}

/// A rollback of the last committed transition if a node found it
/// unhealthy after the cut-over. A rollback is never itself rolled back,
/// and is proposed once: one that was aborted (a node could not prepare
/// it) is left to the operator, who sees both in the history — proposing
/// it again would only write its request id to the log on every tick.
fn rollback_decision(state: &TopologyState) -> Option<Command> {
    let of = state.current_instance;
    let record = state.record(of)?;
    if matches!(record.reason, SwitchReason::Rollback { .. })
        || !matches!(record.outcome, Outcome::Committed { .. })
    {
        return None;
    }
    let tried = state
        .history
        .iter()
        .any(|r| r.reason == SwitchReason::Rollback { of });
    // The state machine remembers a final (not retryable) answer to the
    // rollback's request id and would only replay it, a log entry per
    // applied change; a retryable one is not remembered, so a rollback
    // first refused `transition_in_progress` is proposed again.
    let request_id = rollback_request_id(of);
    let refused = state
        .requests
        .iter()
        .any(|(r, answer)| *r == request_id && !crate::model::state::is_retryable(answer));
    if tried || refused {
        return None;
    }
    let (node, reason) = record.health.iter().find_map(|(n, p)| match p {
        Phase::Unhealthy { reason } => Some((*n, reason)),
        _ => None,
    })?;
    let config = state.previous_config.clone()?;
    Some(Command::ProposeSwitch(ProposeSwitch::new(
        record.from,
        config,
        SwitchReason::Rollback { of },
        Some(request_id),
        format!("coordinator (node {node} unhealthy: {reason})"),
    )))
}

/// The coordinator task of one node.
pub struct Coordinator {
    pub raft: Raft,
    pub applied: AppliedRx,
    pub proposer: Arc<Proposer>,
    pub liveness: Liveness,
    pub me: NodeId,
    pub settings: CoordinatorSettings,
}

impl Coordinator {
    /// Runs until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = None;
        // When this node began leading in the current term. Liveness is
        // recorded from this node's own RPCs, and a new leader has sent
        // none to learners (they get no vote request) and may not have
        // heard back from every voter yet: until one live window has
        // passed, every member counts as live, so a transition it takes
        // over never goes ahead without a member that is merely unheard.
        let mut leading_since: Option<(u64, Instant)> = None;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                changed = self.applied.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
            }
            let (leading, term) = {
                let m = self.raft.metrics();
                let m = m.borrow();
                (m.state == ServerState::Leader, m.current_term)
            };
            if !leading {
                watch = None;
                leading_since = None;
                continue;
            }
            let since = match leading_since {
                Some((t, since)) if t == term => since,
                _ => {
                    let now = Instant::now();
                    leading_since = Some((term, now));
                    now
                }
            };
            let window = self.settings.live_window;
            let heard_everyone = since.elapsed() >= window;
            let applied = self.applied.borrow().clone();
            let live = |n| !heard_everyone || self.liveness.is_live(n, window);
            let decision = decide(
                &applied.state,
                self.me,
                term,
                Instant::now(),
                self.settings.prepare_timeout,
                &mut watch,
                live,
            );
            if let Some(command) = decision {
                tracing::info!(?command, term, "coordinator decision");
                match self.proposer.write(command).await {
                    Ok(answer) => tracing::debug!(?answer, "coordinator decision applied"),
                    Err(e) => tracing::warn!(error = %e, "coordinator decision not written"),
                }
            }
        }
    }
}
