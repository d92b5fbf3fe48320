//! Live switches in the simulator: every simulated node runs the
//! executor's own core ([`crate::executor::core::Core`]), with the control
//! plane reduced to its decisions — the leader (node 1) proposes, every
//! node prepares and reports, the leader commits when every live member
//! reported success (aborts on a failure or at the prepare deadline), and
//! each node cuts over and verifies — while a continuous stream of
//! broadcasts from random senders runs, with the scenario's latency,
//! loss, failures and partitions. [`run_switch`] answers the figures the
//! design's §6 asks of "graceful transitions at scale": time from the
//! proposal to every node steady on the new overlay, broadcasts lost and
//! duplicated at the application, prepare failures, and what the switch
//! cost in messages.
//!
//! # Layout
//! - this file: [`SwitchParams`], [`SwitchEvent`], [`run_switch`];
//! - `net` — the simulated cluster: cores, event queue, links, stream;
//! - `report` — [`SwitchReport`] and its table;
//! - `scenario` — `[switch]` of a scenario file ([`SwitchScenario`]).
//!
//! # Model
//! - Nodes build the `from` topology one `join_interval` apart (instance
//!   0), then settle for `settle_ms`; the stream starts 2 s before the
//!   first proposal (the baseline of the overhead figure) and stops 3 s
//!   before the end of the run (so repairs can finish).
//! - Control messages (prepare, reports, commit, abort) take the latency of
//!   the link between the leader and the node; a node cut off by a
//!   partition gets them, and its report reaches the leader, only after
//!   the partition heals (Raft retries).
//! - Transport: a frame takes its link's latency and is lost with
//!   probability `loss`; a link comes up one latency after a connect; the
//!   ends of a link to a failed node, or across a partition, are told it
//!   went down (and that redials fail) after `detection_ms`. A connect
//!   across a partition fails after `detection_ms` too, and comes up
//!   when it heals. Nodes fail by stopping.
//!
//! With `SIM_DEBUG` set in the environment, a run prints every delivery
//! owed and not made (broadcast, sender, time, node) and every node left
//! with no link on its current overlay, to stderr.

mod net;
mod report;
pub mod scenario;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use report::{FailureCount, Percentiles, SwitchOutcome, SwitchReport};
pub use scenario::{SwitchAction, SwitchEventSpec, SwitchScenario};

use super::latency::LatencyModel;
use super::SimError;
use crate::executor::ExecutorConfig;
use crate::model::{OverlayConfig, Topology};

/// Something the scenario does at `at_ms` after the first proposal.
#[derive(Debug, Clone, PartialEq)]
pub enum SwitchEvent {
    /// The leader proposes a switch to `to`.
    Switch { at_ms: u64, to: Topology },
    /// This fraction of the nodes (never the leader) stops at once.
    Fail { at_ms: u64, fraction: f64 },
    /// This fraction of the nodes (never the leader) is cut off from the
    /// rest.
    Partition { at_ms: u64, fraction: f64 },
    /// The partition heals.
    Heal { at_ms: u64 },
}

impl SwitchEvent {
    pub fn at_ms(&self) -> u64 {
        match self {
            SwitchEvent::Switch { at_ms, .. }
            | SwitchEvent::Fail { at_ms, .. }
            | SwitchEvent::Partition { at_ms, .. }
            | SwitchEvent::Heal { at_ms } => *at_ms,
        }
    }
}

/// A simulated live switch.
#[derive(Debug, Clone)]
pub struct SwitchParams {
    pub nodes: u32,
    pub seed: u64,
    pub latency: LatencyModel,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// The topology the nodes build first.
    pub from: Topology,
    /// Overlay configs by topology (defaults where absent).
    pub configs: Vec<OverlayConfig>,
    /// Client-server's servers: nodes `1..=servers` (the voters).
    pub servers: u32,
    /// Broadcasts per second of the stream.
    pub rate_per_s: f64,
    /// Nodes that broadcast (the first ones), 0: every node.
    pub senders: u32,
    pub join_interval_ms: u64,
    /// From the last build to the first proposal.
    pub settle_ms: u64,
    /// From the first proposal to the end of the run.
    pub run_ms: u64,
    /// Failed link → the ends are told, ms.
    pub detection_ms: u64,
    /// The switches and failures, by time from the first proposal (a
    /// `Switch` at 0 is the first proposal).
    pub events: Vec<SwitchEvent>,
    /// The executor's settings on every node.
    pub executor: ExecutorConfig,
}

impl SwitchParams {
    /// A switch from `from` to `to` on `nodes` nodes with the defaults of
    /// the benchmark: 10–50 ms links, a stream of 100 broadcasts a
    /// second from random senders; at a thousand nodes and more, 32
    /// probers (summaries still go to every member: sampled summaries left
    /// a node that was cut off early unrepaired in the simulator).
    pub fn new(nodes: u32, from: Topology, to: Topology) -> Self {
        let big = nodes >= 1000;
        SwitchParams {
            nodes,
            seed: 7,
            latency: LatencyModel::default(),
            loss: 0.0,
            from,
            configs: Vec::new(),
            servers: 5.min(nodes),
            rate_per_s: 100.0,
            senders: 0,
            join_interval_ms: 1,
            settle_ms: 10_000,
            run_ms: 20_000,
            detection_ms: 1_000,
            events: vec![SwitchEvent::Switch { at_ms: 0, to }],
            executor: ExecutorConfig {
                probers: if big { 32 } else { 0 },
                summary_peers: 0,
                ..ExecutorConfig::default()
            },
        }
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |key: &str, reason: String| {
            Err(SimError::Invalid {
                key: key.into(),
                reason,
            })
        };
        if !(2..=super::scenario::MAX_NODES).contains(&self.nodes) {
            return bad(
                "nodes",
                format!(
                    "{} is outside 2..={}",
                    self.nodes,
                    super::scenario::MAX_NODES
                ),
            );
        }
        let full_mesh = self.from == Topology::FullMesh
            || self.events.iter().any(|e| {
                matches!(
                    e,
                    SwitchEvent::Switch {
                        to: Topology::FullMesh,
                        ..
                    }
                )
            });
        if full_mesh && self.nodes > super::scenario::MAX_FULL_MESH_NODES {
            return Err(SimError::TooLarge {
                topology: Topology::FullMesh,
                nodes: self.nodes,
                limit: super::scenario::MAX_FULL_MESH_NODES,
            });
        }
        if !(0.0..=1.0).contains(&self.loss) {
            return bad("loss", format!("{} is outside 0.0..=1.0", self.loss));
        }
        if !(0.0..=10_000.0).contains(&self.rate_per_s) {
            return bad(
                "rate",
                format!("{} is outside 0..=10000 per second", self.rate_per_s),
            );
        }
        if self.servers == 0 || self.servers > self.nodes {
            return bad(
                "servers",
                format!("{} is outside 1..={}", self.servers, self.nodes),
            );
        }
        if !self
            .events
            .iter()
            .any(|e| matches!(e, SwitchEvent::Switch { .. }))
        {
            return bad("switch", "no switch is scheduled".into());
        }
        for e in &self.events {
            if e.at_ms() >= self.run_ms {
                return bad(
                    "events",
                    format!(
                        "an event at {} ms is past the run ({} ms)",
                        e.at_ms(),
                        self.run_ms
                    ),
                );
            }
            if let SwitchEvent::Fail { fraction, .. } | SwitchEvent::Partition { fraction, .. } = e
            {
                if !(0.0..0.5).contains(fraction) {
                    return bad("events", format!("fraction {fraction} is outside 0.0..0.5"));
                }
            }
        }
        if let Some(e) = self.latency.validate().err() {
            return bad(&e.0, e.1);
        }
        self.executor.validate().map_err(|e| SimError::Invalid {
            key: "executor".into(),
            reason: e.to_string(),
        })
    }

    fn config(&self, topology: Topology) -> OverlayConfig {
        self.configs
            .iter()
            .find(|c| c.topology() == topology)
            .cloned()
            .unwrap_or_else(|| OverlayConfig::default_for(topology))
    }
}

/// Runs the switch scenario `p` describes.
pub fn run_switch(p: &SwitchParams) -> Result<SwitchReport, SimError> {
    p.validate()?;
    let started = std::time::Instant::now();
    let mut net = net::Net::new(p);
    net.run();
    let mut report = net.report();
    report.wall_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
