//! Transitions as the API shows them: one [`TransitionView`] per history
//! record, with the live reports while the transition is in flight, and
//! pages of the history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    HistoryRecord, NodeId, Outcome, Phase, SwitchReason, Topology, TopologyState, Transition,
    TransitionId,
};

/// History records per page when `limit` is absent.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;
/// Largest `limit` served; larger values are clamped (bounds the response).
pub const MAX_HISTORY_LIMIT: usize = 1000;

/// Where a transition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionStatus {
    InProgress,
    Committed,
    Aborted,
}

impl TransitionStatus {
    /// `in_progress`, `committed` or `aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionStatus::InProgress => "in_progress",
            TransitionStatus::Committed => "committed",
            TransitionStatus::Aborted => "aborted",
        }
    }

    /// Whether the transition is decided (committed or aborted).
    pub fn is_final(self) -> bool {
        self != TransitionStatus::InProgress
    }
}

/// Why a switch was proposed: `{"kind":"manual"}`,
/// `{"kind":"auto","rule":".."}`, `{"kind":"workload","profile":".."}`,
/// `{"kind":"rollback","of":12}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReasonView {
    Manual,
    Auto { rule: String },
    Workload { profile: String },
    Rollback { of: TransitionId },
}

impl From<&SwitchReason> for ReasonView {
    fn from(r: &SwitchReason) -> Self {
        match r {
            SwitchReason::Manual => ReasonView::Manual,
            SwitchReason::Auto { rule } => ReasonView::Auto { rule: rule.clone() },
            SwitchReason::Workload { profile } => ReasonView::Workload {
                profile: profile.clone(),
            },
            SwitchReason::Rollback { of } => ReasonView::Rollback { of: *of },
        }
    }
}

/// A node's report: `{"phase":"prepared"}`,
/// `{"phase":"failed","reason":".."}`, `{"phase":"verified"}`,
/// `{"phase":"unhealthy","reason":".."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum PhaseView {
    Prepared,
    Failed { reason: String },
    Verified,
    Unhealthy { reason: String },
}

impl From<&Phase> for PhaseView {
    fn from(p: &Phase) -> Self {
        match p {
            Phase::Prepared => PhaseView::Prepared,
            Phase::Failed { reason } => PhaseView::Failed {
                reason: reason.clone(),
            },
            Phase::Verified => PhaseView::Verified,
            Phase::Unhealthy { reason } => PhaseView::Unhealthy {
                reason: reason.clone(),
            },
        }
    }
}

/// One transition (`GET /v1/transitions/{id}`, history entries, the
/// in-flight one of [`super::TopologyInfo`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionView {
    /// The log index of the accepted proposal.
    pub id: TransitionId,
    pub from: Topology,
    pub to: Topology,
    pub reason: ReasonView,
    /// Who asked, e.g. `api@node2` or `coordinator`.
    pub requested_by: String,
    /// Leader's stamp of the proposal, unix ms.
    pub proposed_at_ms: u64,
    pub status: TransitionStatus,
    /// Leader's stamp of the commit or abort, unix ms.
    pub decided_at_ms: Option<u64>,
    /// Members the commit went ahead without (empty unless committed).
    pub missing: Vec<NodeId>,
    /// Why it was aborted (only when aborted).
    pub abort_reason: Option<String>,
    /// The epoch the commit started (only when committed).
    pub epoch: Option<u64>,
    /// Members that must prepare. Known only while in flight (empty after).
    pub members: Vec<NodeId>,
    /// Prepare reports so far. Known only while in flight (empty after).
    pub reports: BTreeMap<NodeId, PhaseView>,
    /// Post-cut-over health reports.
    pub health: BTreeMap<NodeId, PhaseView>,
    /// The idempotency key the proposal carried, if any
    /// (`GET /v1/transitions?request_id=` finds it).
    #[serde(default)]
    pub request_id: Option<String>,
    /// For an automatic switch: the monitor's metrics and the rules'
    /// explanation that triggered it.
    #[serde(default)]
    pub trigger: Option<TriggerView>,
}

/// The figures and reasoning behind an automatic switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerView {
    pub metrics: crate::model::ClusterMetrics,
    /// One line per rule, then the decision.
    pub explanation: String,
}

impl TransitionView {
    /// The view of `record`; `in_flight` supplies members and reports when
    /// it is the same transition (otherwise the record's own, kept when the
    /// transition ended).
    pub fn new(record: &HistoryRecord, in_flight: Option<&Transition>) -> Self {
        let (status, decided_at_ms, missing, abort_reason, epoch) = match &record.outcome {
            Outcome::InProgress => (TransitionStatus::InProgress, None, vec![], None, None),
            Outcome::Committed {
                at_ms,
                missing,
                epoch,
            } => (
                TransitionStatus::Committed,
                Some(*at_ms),
                missing.clone(),
                None,
                Some(*epoch),
            ),
            Outcome::Aborted { at_ms, reason } => (
                TransitionStatus::Aborted,
                Some(*at_ms),
                vec![],
                Some(reason.clone()),
                None,
            ),
        };
        let live = in_flight.filter(|t| t.id == record.id);
        TransitionView {
            id: record.id,
            from: record.from,
            to: record.to,
            reason: (&record.reason).into(),
            requested_by: record.requested_by.clone(),
            proposed_at_ms: record.proposed_at_ms,
            status,
            decided_at_ms,
            missing,
            abort_reason,
            epoch,
            members: live.map_or_else(|| record.members.clone(), |t| t.members.clone()),
            reports: phase_map(live.map_or(&record.reports, |t| &t.reports)),
            health: phase_map(&record.health),
            request_id: record.request_id.clone(),
            trigger: record.trigger.as_ref().map(|t| TriggerView {
                metrics: t.metrics.clone(),
                explanation: t.explanation.clone(),
            }),
        }
    }

    /// Transition `id` of `state`, if it is still in the history.
    pub fn lookup(state: &TopologyState, id: TransitionId) -> Option<Self> {
        state
            .record(id)
            .map(|r| TransitionView::new(r, state.in_flight.as_ref()))
    }

    /// The newest transition of `state` proposed with `request_id`.
    pub fn by_request(state: &TopologyState, request_id: &str) -> Option<Self> {
        state
            .record_by_request(request_id)
            .map(|r| TransitionView::new(r, state.in_flight.as_ref()))
    }

    /// The in-flight transition of `state`, if any.
    pub fn in_flight(state: &TopologyState) -> Option<Self> {
        let t = state.in_flight.as_ref()?;
        TransitionView::lookup(state, t.id)
    }

    /// Members whose prepare report is still missing (in flight only).
    pub fn waiting_for(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .copied()
            .filter(|n| !self.reports.contains_key(n))
            .collect()
    }
}

fn phase_map(m: &BTreeMap<NodeId, Phase>) -> BTreeMap<NodeId, PhaseView> {
    m.iter().map(|(n, p)| (*n, p.into())).collect()
}

/// Query of `GET /v1/transitions?request_id=X`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    pub request_id: String,
}

/// Query of `GET /v1/topology/history`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Records per page, 1..=[`MAX_HISTORY_LIMIT`] (clamped);
    /// default [`DEFAULT_HISTORY_LIMIT`].
    pub limit: Option<usize>,
    /// Only transitions with an id below this (the previous page's
    /// `next_before`).
    pub before: Option<TransitionId>,
}

impl HistoryQuery {
    /// The page size to serve.
    pub fn effective_limit(&self) -> usize {
        self.limit
            .unwrap_or(DEFAULT_HISTORY_LIMIT)
            .clamp(1, MAX_HISTORY_LIMIT)
    }
}

/// One page of the history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub transitions: Vec<TransitionView>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<TransitionId>,
}

impl HistoryPage {
    /// The page of `state`'s history that `query` asks for.
    pub fn new(state: &TopologyState, query: &HistoryQuery) -> Self {
        let records = state.history_page(query.effective_limit(), query.before);
        let next_before = records
            .last()
            .map(|r| r.id)
            .filter(|oldest| state.history.iter().any(|r| r.id < *oldest));
        HistoryPage {
            transitions: records
                .iter()
                .map(|r| TransitionView::new(r, state.in_flight.as_ref()))
                .collect(),
            next_before,
        }
    }
}
