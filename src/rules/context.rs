//! [`RuleContext`]: what the rules need to know about the cluster besides
//! its metrics (current topology, transition in flight, switch times,
//! whether servers can be designated), built from the replicated state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Outcome, Topology, TopologyState, TransitionId};

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
    /// The context of `state` at `now_ms`. `left_at_ms` keeps, for each
    /// topology, the latest committed switch away from it that the
    /// history still holds (the history is oldest first).
    pub fn from_state(state: &TopologyState, now_ms: u64, servers_available: bool) -> Self {
        let mut left_at_ms = BTreeMap::new();
        for r in state.history.iter() {
            if let Outcome::Committed { at_ms, .. } = r.outcome {
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
