//! The payloads of `GET /v1/events` (Server-Sent Events). Each SSE event
//! is named by its `kind`: `announced`, `prepared`, `committed`,
//! `aborted`, `rolled_back` (a [`TopologyEventView`]), `monitor_round` (a
//! [`MonitorRoundEvent`], while the node leads) and `lagged` (a
//! [`LaggedEvent`]: the client fell behind and missed some).

use serde::{Deserialize, Serialize};

use super::ReasonView;
use crate::model::{ClusterMetrics, Topology, TransitionId};
use crate::monitor::{MonitorRound, RoundAction};
use crate::node::events::TopologyEvent;
use crate::rules::Decision;

/// A topology event as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyEventView {
    /// `announced`, `prepared`, `committed`, `aborted` or `rolled_back`.
    pub kind: String,
    pub transition_id: TransitionId,
    pub from: Topology,
    pub to: Topology,
    pub reason: ReasonView,
    /// The epoch a commit or rollback started.
    #[serde(default)]
    pub epoch: Option<u64>,
    /// Why an aborted transition was given up.
    #[serde(default)]
    pub abort_reason: Option<String>,
    /// The transition a rollback reverted.
    #[serde(default)]
    pub reverted: Option<TransitionId>,
}

impl From<&TopologyEvent> for TopologyEventView {
    fn from(e: &TopologyEvent) -> Self {
        let t = e.transition();
        let mut v = TopologyEventView {
            kind: e.kind().to_string(),
            transition_id: t.id,
            from: t.from,
            to: t.to,
            reason: (&t.reason).into(),
            epoch: None,
            abort_reason: None,
            reverted: None,
        };
        match e {
            TopologyEvent::Announced(_) | TopologyEvent::Prepared(_) => {}
            TopologyEvent::Committed { epoch, .. } => v.epoch = Some(*epoch),
            TopologyEvent::Aborted { reason, .. } => v.abort_reason = Some(reason.clone()),
            TopologyEvent::RolledBack {
                reverted, epoch, ..
            } => {
                v.epoch = Some(*epoch);
                v.reverted = Some(*reverted);
            }
        }
        v
    }
}

/// A monitor round, compact: the round, its metrics, the decision and the
/// action (the rules' evaluations are in `GET /v1/monitor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorRoundEvent {
    pub round: u64,
    pub leader: u64,
    pub term: u64,
    pub started_at_ms: u64,
    pub metrics: ClusterMetrics,
    pub decision: Decision,
    pub action: RoundAction,
}

impl From<&MonitorRound> for MonitorRoundEvent {
    fn from(r: &MonitorRound) -> Self {
        MonitorRoundEvent {
            round: r.round,
            leader: r.leader,
            term: r.term,
            started_at_ms: r.started_at_ms,
            metrics: r.metrics.clone(),
            decision: r.evaluation.decision.clone(),
            action: r.action.clone(),
        }
    }
}

/// The client fell behind: `missed` events of `stream` (`topology` or
/// `monitor`) were dropped for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaggedEvent {
    pub stream: String,
    pub missed: u64,
}
