//! Frozen types of log envelope `V1` and of storage format 1.
//!
//! `Envelope::V1` was released with these commands; they never change. A
//! node reads them (old log entries, old data dirs) and converts them to
//! the current types. Types that have not changed since `V1` (`Phase`,
//! `SwitchReason`, `OverlayConfig`, `Topology`, `CommandResponse`) are
//! shared; the day one of them changes, its `V1` shape is copied here
//! first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    policy, CommandResponse, HistoryRecord, NodeId, Outcome, OverlayConfig, Phase, SwitchReason,
    Topology, TopologyState, Transition, TransitionId,
};

/// `V1`'s commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    ProposeSwitch(ProposeSwitch),
    ReportPhase {
        id: TransitionId,
        node: NodeId,
        phase: Phase,
    },
    CommitSwitch {
        id: TransitionId,
        term: u64,
        missing: Vec<NodeId>,
    },
    AbortSwitch {
        id: TransitionId,
        term: u64,
        reason: String,
    },
    SetPolicy(PolicyUpdate),
}

/// `V1`'s proposal: no trigger, no term fence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposeSwitch {
    pub target: Topology,
    pub config: OverlayConfig,
    pub reason: SwitchReason,
    pub request_id: Option<String>,
    pub requested_by: String,
}

/// `V1`'s policy change: three keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyUpdate {
    pub cooldown_ms: Option<u64>,
    pub auto_switch: Option<bool>,
    pub history_retention: Option<u32>,
}

impl From<Command> for super::Command {
    fn from(c: Command) -> Self {
        match c {
            Command::ProposeSwitch(p) => super::Command::ProposeSwitch(super::ProposeSwitch {
                target: p.target,
                config: p.config,
                reason: p.reason,
                request_id: p.request_id,
                requested_by: p.requested_by,
                trigger: None,
                fence_term: None,
            }),
            Command::ReportPhase { id, node, phase } => {
                super::Command::ReportPhase { id, node, phase }
            }
            Command::CommitSwitch { id, term, missing } => {
                super::Command::CommitSwitch { id, term, missing }
            }
            Command::AbortSwitch { id, term, reason } => {
                super::Command::AbortSwitch { id, term, reason }
            }
            Command::SetPolicy(u) => super::Command::SetPolicy(policy::PolicyUpdate {
                cooldown_ms: u.cooldown_ms,
                auto_switch: u.auto_switch,
                history_retention: u.history_retention,
                ..Default::default()
            }),
        }
    }
}

/// Storage format 1's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub cooldown_ms: u64,
    pub auto_switch: bool,
    pub history_retention: u32,
}

/// Storage format 1's in-flight transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTransition {
    pub id: TransitionId,
    pub from: Topology,
    pub from_config: OverlayConfig,
    pub to: Topology,
    pub to_config: OverlayConfig,
    pub reason: SwitchReason,
    pub requested_by: String,
    pub proposed_at_ms: u64,
    pub members: Vec<NodeId>,
    pub reports: BTreeMap<NodeId, Phase>,
}

/// Storage format 1's history record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub id: TransitionId,
    pub from: Topology,
    pub to: Topology,
    pub reason: SwitchReason,
    pub requested_by: String,
    pub proposed_at_ms: u64,
    pub outcome: Outcome,
    pub members: Vec<NodeId>,
    pub reports: BTreeMap<NodeId, Phase>,
    pub health: BTreeMap<NodeId, Phase>,
}

/// Storage format 1's topology state (the history is stored beside it, or
/// inside it in a snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredState {
    pub topology: Topology,
    pub config: OverlayConfig,
    pub epoch: u64,
    pub current_instance: TransitionId,
    pub previous_config: Option<OverlayConfig>,
    pub in_flight: Option<StoredTransition>,
    pub policy: Policy,
    pub policy_set: bool,
    pub last_switch_ms: Option<u64>,
    pub last_stamp_ms: u64,
    pub history: VecDeque<StoredRecord>,
    pub requests: VecDeque<(String, CommandResponse)>,
}

impl From<StoredRecord> for HistoryRecord {
    fn from(r: StoredRecord) -> Self {
        HistoryRecord {
            id: r.id,
            from: r.from,
            to: r.to,
            reason: r.reason,
            requested_by: r.requested_by,
            proposed_at_ms: r.proposed_at_ms,
            outcome: r.outcome,
            members: r.members,
            reports: r.reports,
            health: r.health,
            trigger: None,
            request_id: None,
        }
    }
}

impl From<StoredState> for TopologyState {
    fn from(s: StoredState) -> Self {
        let policy = policy::Policy {
            cooldown_ms: s.policy.cooldown_ms,
            auto_switch: s.policy.auto_switch,
            history_retention: s.policy.history_retention,
            ..policy::Policy::default()
        };
        TopologyState {
            topology: s.topology,
            config: s.config,
            epoch: s.epoch,
            current_instance: s.current_instance,
            previous_config: s.previous_config,
            in_flight: s.in_flight.map(|t| Transition {
                id: t.id,
                from: t.from,
                from_config: t.from_config,
                to: t.to,
                to_config: t.to_config,
                reason: t.reason,
                requested_by: t.requested_by,
                proposed_at_ms: t.proposed_at_ms,
                members: t.members,
                reports: t.reports,
                trigger: None,
                request_id: None,
            }),
            policy,
            policy_set: s.policy_set,
            last_switch_ms: s.last_switch_ms,
            last_stamp_ms: s.last_stamp_ms,
            history: Arc::new(s.history.into_iter().map(HistoryRecord::from).collect()),
            requests: s.requests,
            tokens: Default::default(),
        }
    }
}
