//! `GET /v1/monitor`: the last round of the leader's monitor.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::monitor::MonitorRound;

/// The leader's last monitor round (`round` is `null` before its first
/// round). A follower forwards the request to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorView {
    pub round: Option<Arc<MonitorRound>>,
}
