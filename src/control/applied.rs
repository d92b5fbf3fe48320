//! The applied state as the state machine publishes it.

use std::sync::Arc;

use tokio::sync::watch;

use super::types::{LogId, StoredMembership};
use crate::model::{NodeId, TopologyState};

/// What the state machine has applied, published on a `watch` channel after
/// every apply. Readers take the latest value: a node that catches up skips
/// intermediate states.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub state: TopologyState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl Applied {
    /// Index of the last applied entry (0 when none).
    pub fn applied_index(&self) -> u64 {
        self.last_applied.map_or(0, |l| l.index)
    }

    /// Voter and learner ids of the effective membership.
    pub fn members(&self) -> Vec<NodeId> {
        self.membership
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Receiver side of the applied-state channel.
pub type AppliedRx = watch::Receiver<Arc<Applied>>;
