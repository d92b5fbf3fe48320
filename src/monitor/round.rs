//! [`MonitorRound`]: what one monitor round saw and did, and the
//! [`MonitorHandle`] on which rounds are published.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::model::{ClusterMetrics, NodeId, TransitionId};
use crate::rules::Evaluation;

/// Rounds kept for `GET /v1/events` subscribers that fall behind.
pub const ROUND_EVENTS_CAPACITY: usize = 64;

/// What the monitor did with the round's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoundAction {
    /// Nothing to do (stay, or deferred).
    None,
    /// A switch was proposed and accepted as transition `id`.
    Proposed { id: TransitionId },
    /// The state machine refused the proposal (`code` as in API errors).
    Rejected { code: String, message: String },
    /// The proposal could not be written (lost leadership, timeout).
    Failed { error: String },
}

/// One monitor round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorRound {
    /// Rounds since this leader's monitor started, from 1.
    pub round: u64,
    /// The leader and its term.
    pub leader: NodeId,
    pub term: u64,
    /// When the round started, unix ms.
    pub started_at_ms: u64,
    /// How long gathering and evaluation took, ms.
    pub duration_ms: u64,
    /// Members asked and members that did not answer in time.
    pub asked: u32,
    pub unreachable: Vec<NodeId>,
    /// Bytes of summaries received.
    pub bytes_gathered: u64,
    pub metrics: ClusterMetrics,
    /// The application metrics across the members, by name.
    #[serde(default)]
    pub app: crate::model::AppAggregates,
    pub evaluation: Evaluation,
    pub action: RoundAction,
}

/// Where the monitor publishes its rounds: the last one (a watch) and a
/// stream of every round (a bounded broadcast; a slow subscriber is told
/// how many it missed).
#[derive(Debug, Clone)]
pub struct MonitorHandle {
    last: watch::Sender<Option<Arc<MonitorRound>>>,
    rounds: broadcast::Sender<Arc<MonitorRound>>,
}

impl Default for MonitorHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl MonitorHandle {
    pub fn new() -> Self {
        MonitorHandle {
            last: watch::Sender::new(None),
            rounds: broadcast::Sender::new(ROUND_EVENTS_CAPACITY),
        }
    }

    /// The last round this node's monitor ran (`None` before the first,
    /// and on a node that never led).
    pub fn last(&self) -> Option<Arc<MonitorRound>> {
        self.last.borrow().clone()
    }

    /// A receiver of every round from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<MonitorRound>> {
        self.rounds.subscribe()
    }

    /// Publishes a round (the monitor task only).
    pub fn publish(&self, round: MonitorRound) {
        let round = Arc::new(round);
        self.last.send_replace(Some(round.clone()));
        // No subscriber is not an error: nobody is watching.
        let _receivers = self.rounds.send(round);
    }
}
