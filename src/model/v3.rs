//! Frozen types of storage format 3.
//!
//! Issue 12 added the admin API's tokens to the replicated state
//! ([`TopologyState::tokens`]), which changed the stored state's encoding:
//! the data dir is at storage format 4. A node reads format-3 data dirs
//! with [`StoredState`] and converts them (no tokens). Log envelopes need
//! nothing: the token commands are new, in `Envelope::V5`, and every other
//! command is unchanged. The types inside the state did not change and are
//! shared.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    CommandResponse, HistoryRecord, OverlayConfig, Policy, Topology, TopologyState, Transition,
    TransitionId,
};

/// Storage format 3's topology state (the history is stored beside it, or
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
            policy: s.policy,
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
    fn a_format_3_state_is_todays_without_the_tokens() {
        let today = TopologyState {
            epoch: 3,
            last_stamp_ms: 77,
            ..TopologyState::default()
        };
        let old = StoredState {
            topology: today.topology,
            config: today.config.clone(),
            epoch: 3,
            current_instance: 0,
            previous_config: None,
            in_flight: None,
            policy: today.policy.clone(),
            policy_set: false,
            last_switch_ms: None,
            last_stamp_ms: 77,
            history: VecDeque::new(),
            requests: VecDeque::new(),
        };
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        let new_bytes = postcard::to_allocvec(&today).unwrap();
        // Today's encoding is format 3's followed by the (empty) tokens.
        assert!(new_bytes.starts_with(&old_bytes));
        assert_ne!(new_bytes, old_bytes);
        assert_eq!(TopologyState::from(old), today);
    }
}
