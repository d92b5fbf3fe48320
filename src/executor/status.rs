//! [`ExecStatus`]: what the executor task publishes on a `watch` channel
//! after every change: its state as the contract names it, the links of
//! each running overlay, and counters. Tests, the API and benchmarks read
//! it; only the task writes it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{NodeId, Topology};

/// The executor's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecState {
    /// Nothing built yet.
    Starting,
    Steady {
        current: u64,
    },
    Preparing {
        current: u64,
        shadow: u64,
    },
    Draining {
        current: u64,
        old: u64,
    },
}

/// One running overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayStatus {
    pub instance: u64,
    pub topology: Topology,
    /// Standing overlay links (Plumtree: its HyParView active view).
    pub links: Vec<NodeId>,
    /// Plumtree's eager peers (pub_sub only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eager: Option<Vec<NodeId>>,
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecCounters {
    pub broadcasts_sent: u64,
    pub direct_sent: u64,
    pub delivered: u64,
    pub duplicates_dropped: u64,
    /// Frames for an overlay instance this node no longer runs.
    pub stale_frames_dropped: u64,
    pub undecodable_frames: u64,
    pub send_failures: u64,
    pub probes_ok: u64,
    pub probes_failed: u64,
    /// Broadcasts asked for again after a gap (gap repair).
    pub repairs_requested: u64,
    /// Own broadcasts resent on request.
    pub repairs_sent: u64,
    /// Broadcasts delivered through a repair (the overlay lost them).
    pub repaired: u64,
    /// Broadcasts given up: their origin no longer kept them.
    pub unrecoverable: u64,
}

/// Everything the executor publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecStatus {
    pub node: NodeId,
    pub incarnation: u32,
    pub state: ExecState,
    pub current: Option<OverlayStatus>,
    /// The shadow (preparing) or old (draining) overlay.
    pub other: Option<OverlayStatus>,
    /// The last instance that passed verification (prepare or verify).
    pub verified: Option<u64>,
    /// The last verification failure.
    pub last_failure: Option<String>,
    /// Latest round trip per peer, microseconds.
    pub rtt_us: BTreeMap<NodeId, u64>,
    pub counters: ExecCounters,
}
