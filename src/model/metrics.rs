//! Measured figures: one node's summary of itself ([`NodeSummary`], served at
//! `GET /v1/node/summary` and gathered by the leader's monitor) and the
//! cluster's performance metrics derived from all summaries
//! ([`ClusterMetrics`], the design's `performance_metrics`).
//!
//! [`ClusterMetrics`] travels in the Raft log (the figures that triggered an
//! automatic switch are kept in its history record), so it is plain data
//! that postcard encodes: no `skip_serializing_if`, no `flatten`, no
//! `serde_json::Value`. Field names are the JSON API's.

use serde::{Deserialize, Serialize};

use super::{NodeId, Topology};

/// Longest link list a summary carries (a `client_server` server with more
/// clients reports the first ones only, and says so in `links_truncated`).
pub const MAX_SUMMARY_LINKS: usize = 10_000;

/// A median and a 99th percentile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
}

/// Broadcast hop counts: median and maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HopCount {
    pub p50: f64,
    pub max: u32,
}

/// A rate in and out, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct InOut {
    #[serde(rename = "in")]
    pub inbound: f64,
    #[serde(rename = "out")]
    pub outbound: f64,
}

/// What the application traffic looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadPattern {
    /// Application broadcasts dominate: their share of the messages is at
    /// least the policy's `event_driven_share`, over at least
    /// `min_messages` messages.
    EventDriven,
    /// Point-to-point messages dominate: the broadcast share is at most
    /// `1 - event_driven_share`, over at least `min_messages` messages.
    RequestResponse,
    /// Neither dominates, or too few messages to tell.
    #[default]
    Mixed,
}

impl WorkloadPattern {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadPattern::EventDriven => "event_driven",
            WorkloadPattern::RequestResponse => "request_response",
            WorkloadPattern::Mixed => "mixed",
        }
    }
}

/// The cluster's workload in the monitor's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub pattern: WorkloadPattern,
    /// Application broadcasts / all application messages sent, 0–1 (0 when
    /// none were sent).
    pub broadcast_share: f64,
    /// Application messages sent in the window, all nodes.
    pub messages: u64,
}

/// The cluster's performance metrics of one monitor round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMetrics {
    /// Members of the Raft membership (voters and learners).
    pub node_count: u32,
    /// Members whose summary the leader received this round.
    pub live_nodes: u32,
    /// Overlay round-trip time over every node's peers, ms.
    pub latency_ms: Percentiles,
    /// Links up / links the topology expects, 0–1; 0 when the overlay graph
    /// assembled from every node's links is split.
    pub connectivity_score: f64,
    /// Partition events in the window: members unreachable from the leader,
    /// plus one per extra component of the overlay graph.
    pub partition_count: u32,
    /// Whole-cluster bytes per second in and out.
    pub bandwidth_bytes_per_s: InOut,
    /// The busiest node's bytes per second (in + out).
    pub peak_node_bytes_per_s: f64,
    /// `peak_node_bytes_per_s` / `link_capacity_bytes_per_s`, 0–1 (can
    /// exceed 1 when the configured capacity is too low).
    pub bandwidth_utilization: f64,
    /// The deepest send queue on any node, frames.
    pub max_queue_depth: u64,
    /// Hops of the broadcasts received in the window.
    pub hop_count: HopCount,
    /// Connection load, 0–1: the larger of the busiest node's links over
    /// `max_links_per_node` and its CPU share of one core.
    pub connection_load: f64,
    pub workload: Workload,
}

/// One node's summary of itself over a sliding window. Fixed size apart
/// from `links` (bounded by [`MAX_SUMMARY_LINKS`]), which the leader needs
/// to assemble the overlay graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: NodeId,
    /// Length of the window the figures cover, ms.
    pub window_ms: u64,
    /// The overlay the node currently runs (`None` before it built one).
    pub topology: Option<Topology>,
    /// Its instance (the transition id that created it).
    pub instance: u64,
    /// Overlay RTT over the node's peers in the window, ms (`None`: no
    /// sample).
    pub rtt_ms: Option<Percentiles>,
    /// Overlay links up.
    pub links_up: u32,
    /// Links the topology expects this node to have.
    pub links_expected: u32,
    /// The peers of its current overlay links (at most
    /// [`MAX_SUMMARY_LINKS`]).
    pub links: Vec<NodeId>,
    /// Whether `links` was cut at [`MAX_SUMMARY_LINKS`].
    pub links_truncated: bool,
    /// Link disconnects in the window.
    pub disconnects: u64,
    pub bytes_per_s: InOut,
    pub messages_per_s: InOut,
    /// Deepest send queue of any of its links, frames.
    pub max_queue_depth: u64,
    /// Application broadcasts this node sent in the window.
    pub app_broadcasts: u64,
    /// Application point-to-point messages this node sent in the window.
    pub app_direct: u64,
    /// Hops of the broadcasts it received in the window (`None`: none).
    pub hops: Option<HopCount>,
    /// Process CPU time over wall time in the window (1.0 = one core busy).
    pub cpu_share: f64,
    /// Transport links open (overlay and direct).
    pub link_count: u32,
    /// The application's own metrics over the window, by name
    /// (`crate::app_metrics`; absent from a node that predates them).
    #[serde(default)]
    pub app: super::AppSummaries,
}
