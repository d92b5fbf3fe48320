//! Application metrics: what a node says about the figures its embedding
//! application reported ([`AppSummary`], in the node summary), and their
//! aggregate across the members ([`AppAggregate`], in the monitor's round,
//! `GET /v1/monitor` and the metrics block of `GET /v1/topology`), and the
//! rule for their names ([`check_name`]).
//!
//! # Why the aggregates are not in [`super::ClusterMetrics`]
//!
//! `ClusterMetrics` is stored in the Raft log inside a proposal's
//! `Trigger` (envelope `V2`) and in the history records. Adding a field to
//! it would change the encoding of released log entries and of the stored
//! history. The aggregates stay beside it instead (`MonitorRound::app`);
//! what an automatic switch saw is kept in the trigger's explanation,
//! which names each figure a rule looked at with its value
//! (`app.checkout_latency_ms.p99 300.0 > 250`). Only the policy's new keys
//! (custom rules, disabled built-ins) change a stored encoding: they come
//! with envelope `V3` and storage format 3 (see `super::v2`).
//!
//! These types are JSON only (never postcard): they may use tagged enums.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest metric name, bytes.
pub const MAX_APP_NAME_LEN: usize = 64;

/// Checks a metric name: `[a-z][a-z0-9_.]*`, 1..=64 bytes. The error says
/// what is wrong (the caller names the metric).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_APP_NAME_LEN {
        return Err(format!(
            "a metric name is 1..={MAX_APP_NAME_LEN} bytes, this one is {}",
            name.len()
        ));
    }
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err("a metric name matches [a-z][a-z0-9_.]*".to_string())
    }
}

/// The kind of an application metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    Gauge,
    Counter,
    Histogram,
}

impl AppKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AppKind::Gauge => "gauge",
            AppKind::Counter => "counter",
            AppKind::Histogram => "histogram",
        }
    }
}

/// One metric on one node over the summary's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppSummary {
    /// The last value set (at any time), and the largest set in the window
    /// (the last value when none was set in it).
    Gauge { last: f64, max: f64 },
    /// The count since the node started, and its increase per second over
    /// the window.
    Counter { total: u64, rate_per_s: f64 },
    /// Samples in the window and their median and 99th percentile
    /// (`None` when the window holds no sample).
    Histogram {
        count: u64,
        p50: Option<f64>,
        p99: Option<f64>,
    },
}

impl AppSummary {
    pub fn kind(&self) -> AppKind {
        match self {
            AppSummary::Gauge { .. } => AppKind::Gauge,
            AppSummary::Counter { .. } => AppKind::Counter,
            AppSummary::Histogram { .. } => AppKind::Histogram,
        }
    }
}

/// A node's application metrics, by name.
pub type AppSummaries = BTreeMap<String, AppSummary>;

/// One metric combined across the members that report it.
///
/// Each node contributes one value per statistic: a gauge its `last`
/// (its window `max` for `max`), a counter its `rate_per_s`, a histogram
/// its `p50` (for `p50`) and its `p99` (for `p99` and `max`); `sum` adds
/// the gauges' `last`, the counters' rates (the cluster's rate) or the
/// histograms' sample counts. `p50` is the median over the nodes, `p99`
/// the 99th percentile by nearest rank (in a small cluster, the worst
/// node). A histogram with no sample in the window does not count as
/// reporting; nor does a node that reports the name with another kind
/// than the lowest-numbered reporting node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppAggregate {
    pub kind: AppKind,
    /// Members reporting it this round.
    pub nodes: u32,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub sum: f64,
}

impl AppAggregate {
    /// The statistic called `agg` (one of
    /// [`super::expr::APP_AGGREGATES`]).
    pub fn get(&self, agg: &str) -> Option<f64> {
        Some(match agg {
            "p50" => self.p50,
            "p99" => self.p99,
            "max" => self.max,
            "sum" => self.sum,
            "nodes" => f64::from(self.nodes),
            _ => return None,
        })
    }
}

/// The cluster's application metrics of one round, by name.
pub type AppAggregates = BTreeMap<String, AppAggregate>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern_and_the_length_limit() {
        for ok in ["app.checkout_latency_ms", "a", "x9.y_z", &"a".repeat(64)] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "App.x", "9a", ".a", "a-b", "a b", "é", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
