//! `POST /v1/topology/optimize`: switch to what a workload profile prefers
//! at the current cluster size (the design's `optimize_for_workload`).
//!
//! [`plan`] is the pure part: profile and member count in, the chosen
//! range, topology, effective config and the explanation out. The handler
//! (`src/api/optimize.rs`) proposes the switch it describes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SwitchRequest;
use super::{BadRequest, TransitionStatus, TransitionView, DEFAULT_WAIT_TIMEOUT_MS};
use crate::model::state::MAX_REQUEST_ID_LEN;
use crate::model::{OverlayConfig, Topology, TopologyState, TransitionId, WorkloadProfile};

/// Error code of a profile name that is neither built in nor a user
/// profile (400; the message lists the known ones).
pub const UNKNOWN_WORKLOAD: &str = "unknown_workload";

/// Body of `POST /v1/topology/optimize`, e.g. `{"workload":"event_driven"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeRequest {
    /// A built-in or user profile name.
    pub workload: String,
    /// Answer once the transition is committed or aborted (200 with the
    /// final view) instead of 202 at acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// How long `wait` waits, ms, 1..=[`super::MAX_WAIT_TIMEOUT_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_ms: Option<u64>,
    /// Idempotency key, at most 128 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl OptimizeRequest {
    /// A plain request for `workload`.
    pub fn new(workload: impl Into<String>) -> Self {
        OptimizeRequest {
            workload: workload.into(),
            wait: None,
            wait_timeout_ms: None,
            request_id: None,
        }
    }

    /// Whether the client waits for the decision.
    pub fn waits(&self) -> bool {
        self.wait.unwrap_or(false)
    }

    /// Checks the wait timeout and request id (the same limits as a
    /// switch); returns the wait deadline.
    pub fn check(&self) -> Result<Duration, BadRequest> {
        if let Some(id) = &self.request_id {
            if id.is_empty() || id.len() > MAX_REQUEST_ID_LEN {
                return Err(BadRequest::new(format!(
                    "request_id must be 1..={MAX_REQUEST_ID_LEN} bytes, got {}",
                    id.len()
                )));
            }
        }
        SwitchRequest {
            wait_timeout_ms: Some(self.wait_timeout_ms.unwrap_or(DEFAULT_WAIT_TIMEOUT_MS)),
            ..SwitchRequest::new(Topology::FullMesh)
        }
        .wait_timeout()
    }
}

/// What a profile asks for at a cluster size.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizePlan {
    pub target: Topology,
    /// The effective overlay config (the profile's, or the leader's
    /// defaults of `target`).
    pub config: OverlayConfig,
    /// Index of the chosen range in the profile.
    pub range: usize,
    /// Which range and why that topology, in words.
    pub why: String,
    /// Whether the cluster already runs `target` with `config`.
    pub already_current: bool,
}

/// The range of `profile` covering `node_count` members, the topology and
/// config it prefers, and whether that is already current in `state`.
/// `None` only for a profile without ranges (never a checked one).
pub fn plan(
    name: &str,
    profile: &WorkloadProfile,
    node_count: u32,
    state: &TopologyState,
    defaults: impl FnOnce(Topology) -> OverlayConfig,
) -> Option<OptimizePlan> {
    let (range, r) = profile
        .ranges
        .iter()
        .enumerate()
        .find(|(_, r)| r.max_nodes.is_none_or(|m| node_count <= m))?;
    let lower = match range {
        0 => 1,
        i => profile.ranges[i - 1].max_nodes.map_or(1, |m| m + 1),
    };
    let bounds = match r.max_nodes {
        Some(m) => format!("{lower}..={m} members"),
        None => format!("{lower} or more members"),
    };
    let (config, source) = match &r.config {
        Some(c) => (c.clone(), "the profile's overlay config"),
        None => (defaults(r.topology), "the leader's configured defaults"),
    };
    let already_current = state.topology == r.topology && state.config == config;
    let mut why = format!(
        "profile `{name}` range {range} ({bounds}) covers {node_count} members and prefers {} with {source}",
        r.topology
    );
    if !profile.description.is_empty() {
        why.push_str(&format!(" ({})", profile.description));
    }
    if already_current {
        why.push_str("; the cluster already runs it");
    }
    Some(OptimizePlan {
        target: r.topology,
        config,
        range,
        why,
        already_current,
    })
}

/// Where an optimize request stands: the transition's status, or
/// `already_current` when nothing needed to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizeStatus {
    AlreadyCurrent,
    InProgress,
    Committed,
    Aborted,
}

impl From<TransitionStatus> for OptimizeStatus {
    fn from(s: TransitionStatus) -> Self {
        match s {
            TransitionStatus::InProgress => OptimizeStatus::InProgress,
            TransitionStatus::Committed => OptimizeStatus::Committed,
            TransitionStatus::Aborted => OptimizeStatus::Aborted,
        }
    }
}

impl OptimizeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OptimizeStatus::AlreadyCurrent => "already_current",
            OptimizeStatus::InProgress => "in_progress",
            OptimizeStatus::Committed => "committed",
            OptimizeStatus::Aborted => "aborted",
        }
    }
}

/// Answer of `POST /v1/topology/optimize`: 202 when a transition was
/// accepted, 200 with `transition` when waiting, 200 with status
/// `already_current` (and no transition) when nothing needed to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizeAnswer {
    pub workload: String,
    /// Members counted when choosing the range.
    pub node_count: u32,
    /// The topology the profile prefers at that size.
    pub topology: Topology,
    pub status: OptimizeStatus,
    /// The transition started (absent when already current).
    pub transition_id: Option<TransitionId>,
    /// The final transition (only with `wait`).
    pub transition: Option<TransitionView>,
    /// Which range and why that topology.
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::ProfileRange;
    use crate::model::HyParViewConfig;

    fn profile() -> WorkloadProfile {
        WorkloadProfile {
            description: "test".into(),
            ranges: vec![
                ProfileRange {
                    max_nodes: Some(4),
                    topology: Topology::FullMesh,
                    config: None,
                },
                ProfileRange {
                    max_nodes: None,
                    topology: Topology::HyParView,
                    config: Some(OverlayConfig::HyParView(HyParViewConfig {
                        active_view: 3,
                        ..HyParViewConfig::default()
                    })),
                },
            ],
        }
    }

    #[test]
    fn picks_the_range_covering_the_member_count() {
        let state = TopologyState::default();
        let p = plan("p", &profile(), 4, &state, OverlayConfig::default_for).unwrap();
        assert_eq!((p.target, p.range), (Topology::FullMesh, 0));
        assert!(p.already_current, "the default state runs full_mesh");
        assert!(p.why.contains("range 0 (1..=4 members)"), "{}", p.why);
        assert!(p.why.contains("leader's configured defaults"), "{}", p.why);

        let p = plan("p", &profile(), 5, &state, OverlayConfig::default_for).unwrap();
        assert_eq!((p.target, p.range), (Topology::HyParView, 1));
        assert!(!p.already_current);
        assert_eq!(p.config, profile().ranges[1].config.clone().unwrap());
        assert!(p.why.contains("range 1 (5 or more members)"), "{}", p.why);
        assert!(p.why.contains("profile's overlay config"), "{}", p.why);
    }

    #[test]
    fn the_same_topology_with_another_config_is_not_current() {
        let mut state = TopologyState {
            topology: Topology::HyParView,
            config: OverlayConfig::default_for(Topology::HyParView),
            ..TopologyState::default()
        };
        let p = plan("p", &profile(), 9, &state, OverlayConfig::default_for).unwrap();
        assert_eq!(p.target, Topology::HyParView);
        assert!(!p.already_current, "active_view 3 is not the default 5");
        state.config = profile().ranges[1].config.clone().unwrap();
        let p = plan("p", &profile(), 9, &state, OverlayConfig::default_for).unwrap();
        assert!(p.already_current);
        assert!(p.why.ends_with("the cluster already runs it"), "{}", p.why);
    }

    #[test]
    fn wait_timeout_and_request_id_limits() {
        let mut r = OptimizeRequest::new("x");
        assert_eq!(
            r.check().unwrap(),
            Duration::from_millis(DEFAULT_WAIT_TIMEOUT_MS)
        );
        r.wait_timeout_ms = Some(0);
        assert!(r.check().is_err());
        r.wait_timeout_ms = None;
        r.request_id = Some(String::new());
        assert!(r.check().unwrap_err().message.contains("request_id"));
    }
}
