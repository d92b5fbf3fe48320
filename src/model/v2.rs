//! Frozen types of log envelope `V2` and of storage format 2.
//!
//! `Envelope::V2` was released with these commands; they never change.
//! Issue 16 added two policy keys (`custom_rules`, `disabled_rules`), which
//! changed the encoding of [`super::PolicyUpdate`] (in the log) and of
//! [`super::Policy`] (in the stored state), so today's commands are written
//! as `Envelope::V3` and the data dir is at storage format 3. A node reads
//! `V2` entries and format-2 data dirs with these types and converts them
//! (the new keys empty). Types that did not change (`ProposeSwitch`,
//! `Trigger`, `ClusterMetrics`, `Transition`, `HistoryRecord`, ...) are
//! shared; the day one of them changes, its `V2` shape is copied here
//! first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::policy::{self, Thresholds, ThresholdsUpdate, WorkloadProfile};
use super::{
    CommandResponse, HistoryRecord, NodeId, OverlayConfig, Phase, ProposeSwitch, Topology,
    TopologyState, Transition, TransitionId,
};

/// `V2`'s commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// `V2`'s policy change: no custom rules, no disabled rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyUpdate {
    pub cooldown_ms: Option<u64>,
    pub auto_switch: Option<bool>,
    pub history_retention: Option<u32>,
    pub monitor_interval_ms: Option<u64>,
    pub hold_rounds: Option<u32>,
    pub flap_window_ms: Option<u64>,
    pub thresholds: ThresholdsUpdate,
    pub profiles: BTreeMap<String, Option<WorkloadProfile>>,
}

impl From<PolicyUpdate> for policy::PolicyUpdate {
    fn from(u: PolicyUpdate) -> Self {
        policy::PolicyUpdate {
            cooldown_ms: u.cooldown_ms,
            auto_switch: u.auto_switch,
            history_retention: u.history_retention,
            monitor_interval_ms: u.monitor_interval_ms,
            hold_rounds: u.hold_rounds,
            flap_window_ms: u.flap_window_ms,
            thresholds: u.thresholds,
            profiles: u.profiles,
            custom_rules: None,
            disabled_rules: None,
        }
    }
}

impl From<Command> for super::Command {
    fn from(c: Command) -> Self {
        match c {
            Command::ProposeSwitch(p) => super::Command::ProposeSwitch(p),
            Command::ReportPhase { id, node, phase } => {
                super::Command::ReportPhase { id, node, phase }
            }
            Command::CommitSwitch { id, term, missing } => {
                super::Command::CommitSwitch { id, term, missing }
            }
            Command::AbortSwitch { id, term, reason } => {
                super::Command::AbortSwitch { id, term, reason }
            }
            Command::SetPolicy(u) => super::Command::SetPolicy(u.into()),
        }
    }
}

/// Storage format 2's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub cooldown_ms: u64,
    pub auto_switch: bool,
    pub history_retention: u32,
    pub monitor_interval_ms: u64,
    pub hold_rounds: u32,
    pub flap_window_ms: u64,
    pub thresholds: Thresholds,
    pub profiles: BTreeMap<String, WorkloadProfile>,
}

impl From<Policy> for policy::Policy {
    fn from(p: Policy) -> Self {
        policy::Policy {
            cooldown_ms: p.cooldown_ms,
            auto_switch: p.auto_switch,
            history_retention: p.history_retention,
            monitor_interval_ms: p.monitor_interval_ms,
            hold_rounds: p.hold_rounds,
            flap_window_ms: p.flap_window_ms,
            thresholds: p.thresholds,
            profiles: p.profiles,
            custom_rules: Vec::new(),
            disabled_rules: Vec::new(),
        }
    }
}

/// Storage format 2's topology state (the history is stored beside it, or
/// inside it in a snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredState {
    pub topology: Topology,
    pub config: OverlayConfig,
    pub epoch: u64,
    pub current_instance: TransitionId,
    pub previous_config: Option<OverlayConfig>,
    pub in_flight: Option<Transition>,
    pub policy: Policy,
    pub policy_set: bool,
    pub last_switch_ms: Option<u64>,
    pub last_stamp_ms: u64,
    pub history: VecDeque<HistoryRecord>,
    pub requests: VecDeque<(String, CommandResponse)>,
}

impl From<StoredState> for TopologyState {
    fn from(s: StoredState) -> Self {
        TopologyState {
            topology: s.topology,
            config: s.config,
            epoch: s.epoch,
            current_instance: s.current_instance,
            previous_config: s.previous_config,
            in_flight: s.in_flight,
            policy: s.policy.into(),
            policy_set: s.policy_set,
            last_switch_ms: s.last_switch_ms,
            last_stamp_ms: s.last_stamp_ms,
            history: Arc::new(s.history),
            requests: s.requests,
            tokens: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_2_state_encodes_as_todays_did_before_the_new_keys() {
        // Format 2's bytes are today's with the two new keys cut off the
        // policy: decoding today's default state's bytes minus the two
        // empty lists (one byte each, at the policy's end) must fail, and
        // a format-2 state round-trips into today's with empty lists.
        let old = StoredState {
            topology: Topology::HyParView,
            config: OverlayConfig::default_for(Topology::HyParView),
            epoch: 2,
            current_instance: 5,
            previous_config: None,
            in_flight: None,
            policy: Policy {
                cooldown_ms: 7,
                auto_switch: true,
                history_retention: 9,
                monitor_interval_ms: 1000,
                hold_rounds: 2,
                flap_window_ms: 0,
                thresholds: Thresholds::default(),
                profiles: BTreeMap::new(),
            },
            policy_set: true,
            last_switch_ms: Some(4),
            last_stamp_ms: 4,
            history: VecDeque::new(),
            requests: VecDeque::new(),
        };
        let bytes = postcard::to_allocvec(&old).unwrap();
        let back: StoredState = postcard::from_bytes(&bytes).unwrap();
        let now = TopologyState::from(back);
        assert_eq!(now.policy.cooldown_ms, 7);
        assert_eq!(now.policy.hold_rounds, 2);
        assert!(now.policy.custom_rules.is_empty());
        assert_ne!(postcard::to_allocvec(&now).unwrap(), bytes);
    }
}
