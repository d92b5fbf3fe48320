//! `GET /v1/topology`: the current topology of the cluster.

use serde::{Deserialize, Serialize};

use super::TransitionView;
use crate::model::{ClusterMetrics, NodeId, Topology, TopologyState, TransitionId};

/// The current topology, as the answering node has applied it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyInfo {
    pub topology: Topology,
    /// The parameters of the current topology (e.g. HyParView's view
    /// sizes), as a JSON object.
    pub overlay_config: serde_json::Value,
    /// Grows by one per committed switch.
    pub epoch: u64,
    /// Members of the cluster (voters and learners).
    pub node_count: usize,
    /// The leader as the answering node knows it.
    pub leader: Option<NodeId>,
    /// The transition being prepared, if any.
    pub in_flight: Option<TransitionView>,
    /// The transition that created the current overlay (0: bootstrap).
    pub current_instance: TransitionId,
    /// The answering node's links in its current overlay, ascending (empty
    /// without a data plane or before the first overlay is built).
    #[serde(default)]
    pub links: Vec<NodeId>,
    /// The cluster's performance metrics from the leader's last monitor
    /// round: `null` before the first round, and on a follower that could
    /// not fetch them from the leader's `GET /v1/monitor` within a short
    /// deadline (leader unknown, unreachable or slow).
    #[serde(default)]
    pub metrics: Option<ClusterMetrics>,
    /// The application metrics across the members in the same round, by
    /// name (empty when none is reported or `metrics` is `null`).
    #[serde(default)]
    pub app_metrics: crate::model::AppAggregates,
}

impl TopologyInfo {
    /// With this node's current overlay links (sorted here).
    pub fn with_links(mut self, mut links: Vec<NodeId>) -> Self {
        links.sort_unstable();
        self.links = links;
        self
    }

    /// With the monitor's last metrics.
    pub fn with_metrics(
        mut self,
        metrics: Option<(ClusterMetrics, crate::model::AppAggregates)>,
    ) -> Self {
        if let Some((m, app)) = metrics {
            self.metrics = Some(m);
            self.app_metrics = app;
        }
        self
    }

    /// The info of `state`, with facts from Raft (`node_count`, `leader`).
    pub fn new(state: &TopologyState, node_count: usize, leader: Option<NodeId>) -> Self {
        TopologyInfo {
            topology: state.topology,
            overlay_config: state.config.params_json(),
            epoch: state.epoch,
            node_count,
            leader,
            in_flight: TransitionView::in_flight(state),
            current_instance: state.current_instance,
            links: Vec::new(),
            metrics: None,
            app_metrics: Default::default(),
        }
    }
}
