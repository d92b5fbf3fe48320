//! What a simulation run reports: one [`RoundReport`] per broadcast round
//! and a [`Summary`]. Field names are the command's JSON contract.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::overlay::PeerId;

/// Figures of one broadcast round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundReport {
    /// 1-based round number.
    pub round: u32,
    /// The node that broadcast.
    pub sender: PeerId,
    /// Nodes that were running before the broadcast and still are at the
    /// end of the round (the ones expected to deliver).
    pub live: u64,
    /// Fraction of `live` that delivered.
    pub reliability: f64,
    /// `live` nodes that did not deliver.
    pub missed: u64,
    /// Relative message redundancy: payload messages / (delivered − 1) − 1.
    pub rmr: f64,
    /// Last delivery hop: the largest hop count of a delivery.
    pub ldh: u32,
    /// Median delivery latency, simulated ms.
    pub latency_p50_ms: f64,
    /// 99th percentile delivery latency, simulated ms.
    pub latency_p99_ms: f64,
    /// Messages carrying the payload sent during the round.
    pub payload_messages: u64,
    /// IHAVE / GRAFT / PRUNE sent during the round.
    pub gossip_messages: u64,
    /// Membership messages sent during the round.
    pub membership_messages: u64,
    /// Mean standing links per running node at the round's end.
    pub links_per_node_mean: f64,
    /// Largest number of standing links of a node.
    pub links_per_node_max: usize,
    /// Whether the overlay graph over running nodes is connected.
    pub connected: bool,
    /// Connected components of the overlay graph.
    pub components: usize,
    /// Deliveries of the same broadcast twice at a node (must be 0).
    pub duplicates: u64,
}

/// A named invariant and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvariantResult {
    /// Checker name.
    pub name: &'static str,
    /// When it was checked: `after_settle` or `end`.
    pub when: &'static str,
    /// Whether it held.
    pub holds: bool,
    /// The violation, if any.
    pub detail: Option<String>,
}

/// Figures over all rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Mean reliability over the rounds.
    pub reliability: f64,
    /// Lowest reliability of a round.
    pub min_reliability: f64,
    /// Sum of `missed` over the rounds.
    pub missed: u64,
    /// Mean RMR over all rounds, the first included.
    pub rmr: f64,
    /// RMR of the first round alone.
    pub first_round_rmr: f64,
    /// Largest LDH over the rounds.
    pub ldh: u32,
    /// Median delivery latency over every delivery of every round, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile delivery latency over every delivery, ms.
    pub latency_p99_ms: f64,
    /// Links per node at the end (mean).
    pub links_per_node_mean: f64,
    /// Links per node at the end (max).
    pub links_per_node_max: usize,
    /// In-degree → number of nodes, at the end.
    pub in_degree: BTreeMap<usize, usize>,
    /// Whether the graph is connected at the end.
    pub connected: bool,
    /// Components at the end.
    pub components: usize,
    /// Reliability of the first broadcast after the first failure event
    /// (`--fail`, issued at the moment of removal), else of the first
    /// round.
    pub first_round_reliability: f64,
    /// Mean reliability of the rounds after that one (`None` if none).
    pub later_reliability: Option<f64>,
    /// Simulated ms from the first failure event until the graph was
    /// connected and a broadcast had reached every live node (`None`: no
    /// failure, or never healed within the run). Granularity: rounds.
    pub healing_time_ms: Option<f64>,
    /// Mean payload messages per broadcast.
    pub payload_per_broadcast: f64,
    /// Mean gossip (IHAVE/GRAFT/PRUNE) messages per broadcast round.
    pub gossip_per_broadcast: f64,
    /// Mean membership messages per broadcast round.
    pub membership_per_round: f64,
    /// Duplicate deliveries over the run (must be 0).
    pub duplicates: u64,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Topology simulated.
    pub topology: String,
    /// Nodes joined before the rounds.
    pub nodes: u32,
    /// Seed of the run.
    pub seed: u64,
    /// `fixed` or `random`.
    pub sender: String,
    /// Invariant checks after settling and at the end.
    pub invariants: Vec<InvariantResult>,
    /// One entry per broadcast round.
    pub rounds: Vec<RoundReport>,
    /// Figures over the rounds.
    pub summary: Summary,
    /// Messages sent over the whole run (joins included), by kind.
    pub messages_by_kind: BTreeMap<&'static str, u64>,
    /// Simulated time at the end, ms.
    pub simulated_ms: f64,
    /// Events the simulator processed.
    pub events: u64,
}

/// The `q` quantile (0.0..=1.0) of ascending `sorted` µs values, in ms.
pub fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// RMR of a round: payload / (delivered − 1) − 1; 0 when at most one
/// node delivered.
pub fn rmr(payload: u64, delivered: u64) -> f64 {
    if delivered <= 1 {
        return 0.0;
    }
    payload as f64 / (delivered - 1) as f64 - 1.0
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

impl Summary {
    /// Summarises `rounds`; `all_latencies_us` is every delivery latency of
    /// the run; `failure_round` the first round that began with a failure.
    pub fn of(
        rounds: &[RoundReport],
        mut all_latencies_us: Vec<u64>,
        failure_round: Option<u32>,
        healing_time_ms: Option<f64>,
        in_degree: BTreeMap<usize, usize>,
    ) -> Summary {
        all_latencies_us.sort_unstable();
        let last = rounds.last();
        let first_idx = failure_round
            .and_then(|r| rounds.iter().position(|x| x.round == r))
            .unwrap_or(0);
        let later: Vec<f64> = rounds
            .iter()
            .skip(first_idx + 1)
            .map(|r| r.reliability)
            .collect();
        Summary {
            reliability: mean(rounds.iter().map(|r| r.reliability)),
            min_reliability: rounds.iter().map(|r| r.reliability).fold(1.0, f64::min),
            missed: rounds.iter().map(|r| r.missed).sum(),
            rmr: mean(rounds.iter().map(|r| r.rmr)),
            first_round_rmr: rounds.first().map_or(0.0, |r| r.rmr),
            ldh: rounds.iter().map(|r| r.ldh).max().unwrap_or(0),
            latency_p50_ms: quantile_ms(&all_latencies_us, 0.5),
            latency_p99_ms: quantile_ms(&all_latencies_us, 0.99),
            links_per_node_mean: last.map_or(0.0, |r| r.links_per_node_mean),
            links_per_node_max: last.map_or(0, |r| r.links_per_node_max),
            in_degree,
            connected: last.is_some_and(|r| r.connected),
            components: last.map_or(0, |r| r.components),
            first_round_reliability: rounds.get(first_idx).map_or(0.0, |r| r.reliability),
            later_reliability: (!later.is_empty()).then(|| mean(later.into_iter())),
            healing_time_ms,
            payload_per_broadcast: mean(rounds.iter().map(|r| r.payload_messages as f64)),
            gossip_per_broadcast: mean(rounds.iter().map(|r| r.gossip_messages as f64)),
            membership_per_round: mean(rounds.iter().map(|r| r.membership_messages as f64)),
            duplicates: rounds.iter().map(|r| r.duplicates).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmr_of_a_perfect_tree_is_zero_and_of_double_sends_one() {
        assert_eq!(rmr(9, 10), 0.0);
        assert_eq!(rmr(18, 10), 1.0);
        assert_eq!(rmr(5, 1), 0.0);
    }

    #[test]
    fn quantiles_pick_ranks() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 51.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
