//! The switching rules: a pure function of (the cluster's state, the
//! monitor's metrics, the policy, the previous evaluations) to a decision
//! with an explanation.
//!
//! No IO, no clock (`now_ms` is passed in, the leader's stamp clock). The
//! monitor (`src/monitor/`) calls [`evaluate`] once per round; the
//! simulator and the table tests call the same function.

pub mod profiles;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{ClusterMetrics, Policy, Topology, TopologyState, TransitionId};

/// Names of the built-in rules, in the order they are evaluated.
pub const RULES: [&str; 4] = [
    "very_large_cluster",
    "large_mesh_strain",
    "small_cluster_degraded",
    "event_driven_workload",
];

/// What the rules need to know about the cluster besides its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleContext {
    /// The leader's clock, unix ms.
    pub now_ms: u64,
    /// The current topology.
    pub current: Topology,
    /// A transition in flight, if any.
    #[serde(default)]
    pub in_flight: Option<TransitionId>,
    /// When the last switch committed, unix ms.
    #[serde(default)]
    pub last_switch_ms: Option<u64>,
    /// When the cluster last left each topology (a committed switch away
    /// from it), unix ms: the flap window's input.
    #[serde(default)]
    pub left_at_ms: BTreeMap<Topology, u64>,
    /// Whether servers can be designated for `client_server` (configured
    /// servers or voters exist).
    #[serde(default = "yes")]
    pub servers_available: bool,
}

fn yes() -> bool {
    true
}

impl RuleContext {
    /// The context of `state` at `now_ms`.
    pub fn from_state(state: &TopologyState, now_ms: u64, servers_available: bool) -> Self {
        let mut left_at_ms = BTreeMap::new();
        for r in state.history.iter() {
            if let crate::model::Outcome::Committed { at_ms, .. } = r.outcome {
                left_at_ms.insert(r.from, at_ms);
            }
        }
        RuleContext {
            now_ms,
            current: state.topology,
            in_flight: state.in_flight.as_ref().map(|t| t.id),
            last_switch_ms: state.last_switch_ms,
            left_at_ms,
            servers_available,
        }
    }
}

/// What the rules remember between rounds: for each rule, the consecutive
/// rounds it has held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMemory {
    pub consecutive: BTreeMap<String, u32>,
}

/// Why a rule that held long enough did not switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeferReason {
    /// The cooldown after the last switch has not passed.
    Cooldown { remaining_ms: u64 },
    /// A transition is in flight.
    TransitionInFlight { id: TransitionId },
    /// `client_server` needs servers and none can be designated.
    NoServers,
    /// The target was left less than `flap_window_ms` ago.
    FlapWindow { left_ms_ago: u64 },
    /// `auto_switch` is off in the policy: the decision is shown, not
    /// carried out.
    AutoSwitchOff,
}

/// The rules' decision of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    Stay,
    Switch {
        target: Topology,
        rule: String,
        explanation: String,
    },
    Deferred {
        target: Topology,
        rule: String,
        why: DeferReason,
    },
}

/// One rule's evaluation in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEvaluation {
    pub rule: String,
    /// Whether its condition holds this round.
    pub holds: bool,
    /// The topology it switches to.
    pub target: Topology,
    /// Consecutive rounds it has held, this one included.
    pub consecutive: u32,
    /// The figures it looked at, by metric name.
    pub figures: BTreeMap<String, f64>,
    /// Why it holds or not, in words.
    pub why: String,
}

/// The result of one round's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rules: Vec<RuleEvaluation>,
    pub decision: Decision,
    /// Every rule and why it held or not, one line each.
    pub explanation: String,
    /// The memory to pass to the next round.
    pub memory: RuleMemory,
}

/// Evaluates the rules for one round.
pub fn evaluate(
    ctx: &RuleContext,
    metrics: &ClusterMetrics,
    policy: &Policy,
    memory: &RuleMemory,
) -> Evaluation {
    let _ = (ctx, metrics, policy);
    Evaluation {
        rules: Vec::new(),
        decision: Decision::Stay,
        explanation: String::new(),
        memory: memory.clone(),
    }
}

/// The workload of a window in which the nodes sent `broadcasts`
/// application broadcasts and `direct` point-to-point messages.
pub fn classify_workload(
    broadcasts: u64,
    direct: u64,
    thresholds: &crate::model::Thresholds,
) -> crate::model::metrics::Workload {
    use crate::model::WorkloadPattern;
    let messages = broadcasts + direct;
    let share = if messages == 0 {
        0.0
    } else {
        broadcasts as f64 / messages as f64
    };
    let pattern = if messages < thresholds.min_messages {
        WorkloadPattern::Mixed
    } else if share >= thresholds.event_driven_share {
        WorkloadPattern::EventDriven
    } else if share <= 1.0 - thresholds.event_driven_share {
        WorkloadPattern::RequestResponse
    } else {
        WorkloadPattern::Mixed
    };
    crate::model::metrics::Workload {
        pattern,
        broadcast_share: share,
        messages,
    }
}
