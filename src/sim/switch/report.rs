//! [`SwitchReport`]: what a simulated switch run measured, as JSON keys
//! and as a table.

use std::io::Write;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use crate::model::Topology;
use crate::sim::SimError;

/// Milliseconds at the 50th and 99th percentile (0 without samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
}

impl Percentiles {
    /// Of sorted samples.
    pub fn of(sorted: &[u64]) -> Self {
        let at = |q: f64| {
            if sorted.is_empty() {
                return 0;
            }
            let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[i]
        };
        Percentiles {
            p50: at(0.5),
            p99: at(0.99),
        }
    }
}

/// One proposed transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchOutcome {
    pub id: u64,
    pub from: Topology,
    pub to: Topology,
    pub committed: bool,
    /// Live nodes steady on it at the end, of `expected`.
    pub settled: u32,
    pub expected: u32,
    /// From the proposal to each node steady on it, over the nodes.
    pub switch_ms: Percentiles,
    /// Nodes whose prepare failed.
    pub prepare_failures: u32,
    /// Nodes whose post-cut-over verify failed.
    pub verify_failures: u32,
    /// Frames (bytes) the switch cost beyond the baseline rate.
    pub overhead_messages: u64,
    pub overhead_bytes: u64,
    /// Why prepares and verifies failed: the first reason of each kind,
    /// with how many nodes failed that way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailureCount>,
}

/// Nodes that failed a check one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    /// The failure's kind (`not_formed`, `probe_missed`, ...).
    pub kind: String,
    pub nodes: u32,
    /// The text of the first one.
    pub example: String,
}

/// A whole run; the top-level figures are the first switch's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchReport {
    pub nodes: u32,
    pub seed: u64,
    pub from: Topology,
    pub to: Topology,
    pub committed: bool,
    pub switch_ms: Percentiles,
    /// Over every switch of the run.
    pub prepare_failures: u32,
    pub overhead_messages: u64,
    pub overhead_bytes: u64,
    /// Broadcasts of the stream.
    pub broadcasts: u64,
    /// Deliveries owed to live nodes that never happened.
    pub lost: u64,
    /// Deliveries of a broadcast a node had delivered before.
    pub duplicates: u64,
    /// Most nodes running two overlays at once.
    pub peak_two_overlays: u32,
    /// Frames a second before the first proposal (the stream and upkeep).
    pub baseline_messages_per_s: u64,
    pub probers: u64,
    pub summary_peers: u64,
    pub switches: Vec<SwitchOutcome>,
    /// Wall-clock time of the run.
    pub wall_ms: u64,
}

impl SwitchReport {
    /// The report as a table.
    pub fn write_table(&self, out: &mut dyn Write) -> Result<(), SimError> {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "switch",
            "committed",
            "settled",
            "switch p50 ms",
            "switch p99 ms",
            "prepare failures",
            "verify failures",
            "overhead msgs",
            "overhead bytes",
        ]);
        for s in &self.switches {
            t.add_row(vec![
                format!("{}: {} → {}", s.id, s.from, s.to),
                s.committed.to_string(),
                format!("{}/{}", s.settled, s.expected),
                s.switch_ms.p50.to_string(),
                s.switch_ms.p99.to_string(),
                s.prepare_failures.to_string(),
                s.verify_failures.to_string(),
                s.overhead_messages.to_string(),
                s.overhead_bytes.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "{} nodes, seed {}: {} broadcasts, {} lost, {} duplicates; peak {} nodes with two overlays; baseline {} frames/s; probers {}, summary peers {} (0: all); {} ms wall",
            self.nodes,
            self.seed,
            self.broadcasts,
            self.lost,
            self.duplicates,
            self.peak_two_overlays,
            self.baseline_messages_per_s,
            self.probers,
            self.summary_peers,
            self.wall_ms
        )?;
        Ok(())
    }
}
