//! The monitor's Prometheus series. None has a label that grows with the
//! cluster: rules are a fixed, small set; outcomes three.

use super::round::{MonitorRound, RoundAction};
use crate::rules::Decision;

pub const ROUND_SECONDS: &str = "topod_monitor_round_seconds";
pub const ROUNDS: &str = "topod_monitor_rounds_total";
pub const UNREACHABLE: &str = "topod_monitor_unreachable_members";
pub const BYTES_GATHERED: &str = "topod_monitor_gathered_bytes";
pub const RULE_EVALUATIONS: &str = "topod_rule_evaluations_total";
pub const DECISIONS: &str = "topod_monitor_decisions_total";
pub const PROPOSALS: &str = "topod_monitor_proposals_total";

/// The cluster metrics exported as gauges `topod_cluster_<name>`.
const GAUGES: [(&str, &str); 15] = [
    ("node_count", "Members of the Raft membership"),
    ("live_nodes", "Members whose summary the leader received"),
    (
        "latency_p50_ms",
        "Overlay RTT, median over the nodes' medians, ms",
    ),
    (
        "latency_p99_ms",
        "Overlay RTT, p99 over the nodes' p99s, ms",
    ),
    (
        "connectivity_score",
        "Links up / links expected (0 when the overlay graph is split)",
    ),
    (
        "partition_count",
        "Members unreachable from the leader plus extra overlay components",
    ),
    (
        "bandwidth_in_bytes_per_s",
        "Bytes per second received by all nodes",
    ),
    (
        "bandwidth_out_bytes_per_s",
        "Bytes per second sent by all nodes",
    ),
    (
        "bandwidth_utilization",
        "Busiest node's traffic over the link capacity",
    ),
    ("max_queue_depth", "Deepest send queue on any node, frames"),
    ("hop_count_p50", "Broadcast hops, median"),
    ("hop_count_max", "Broadcast hops, maximum"),
    ("connection_load", "Busiest node's links or CPU share, 0-1"),
    (
        "broadcast_share",
        "Application broadcasts / application messages",
    ),
    (
        "workload_event_driven",
        "1 when the workload is event-driven",
    ),
];

/// Registers descriptions (idempotent).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        ROUND_SECONDS,
        Unit::Seconds,
        "Duration of one monitor round"
    );
    describe_counter!(ROUNDS, "Monitor rounds run on this node while it led");
    describe_gauge!(UNREACHABLE, "Members that did not answer the last round");
    describe_gauge!(
        BYTES_GATHERED,
        Unit::Bytes,
        "Bytes of summaries in the last round"
    );
    describe_counter!(
        RULE_EVALUATIONS,
        "Rule evaluations by rule and whether the rule held"
    );
    describe_counter!(
        DECISIONS,
        "Monitor decisions by outcome (stay, switch, deferred)"
    );
    describe_counter!(
        PROPOSALS,
        "Automatic switches proposed by outcome (accepted, rejected, failed)"
    );
    for (name, help) in GAUGES {
        describe_gauge!(format!("topod_cluster_{name}"), help);
    }
}

/// Records one round.
pub fn record(r: &MonitorRound) {
    metrics::histogram!(ROUND_SECONDS).record(r.duration_ms as f64 / 1000.0);
    metrics::counter!(ROUNDS).increment(1);
    metrics::gauge!(UNREACHABLE).set(r.unreachable.len() as f64);
    metrics::gauge!(BYTES_GATHERED).set(r.bytes_gathered as f64);
    for e in &r.evaluation.rules {
        let holds = if e.holds { "true" } else { "false" };
        metrics::counter!(RULE_EVALUATIONS, "rule" => e.rule.clone(), "holds" => holds)
            .increment(1);
    }
    let outcome = match r.evaluation.decision {
        Decision::Stay => "stay",
        Decision::Switch { .. } => "switch",
        Decision::Deferred { .. } => "deferred",
    };
    metrics::counter!(DECISIONS, "outcome" => outcome).increment(1);
    let proposal = match r.action {
        RoundAction::None => None,
        RoundAction::Proposed { .. } => Some("accepted"),
        RoundAction::Rejected { .. } => Some("rejected"),
        RoundAction::Failed { .. } => Some("failed"),
    };
    if let Some(p) = proposal {
        metrics::counter!(PROPOSALS, "outcome" => p).increment(1);
    }
    let m = &r.metrics;
    let values = [
        f64::from(m.node_count),
        f64::from(m.live_nodes),
        m.latency_ms.p50,
        m.latency_ms.p99,
        m.connectivity_score,
        f64::from(m.partition_count),
        m.bandwidth_bytes_per_s.inbound,
        m.bandwidth_bytes_per_s.outbound,
        m.bandwidth_utilization,
        m.max_queue_depth as f64,
        m.hop_count.p50,
        f64::from(m.hop_count.max),
        m.connection_load,
        m.workload.broadcast_share,
        f64::from(u8::from(
            m.workload.pattern == crate::model::WorkloadPattern::EventDriven,
        )),
    ];
    for ((name, _), v) in GAUGES.iter().zip(values) {
        metrics::gauge!(format!("topod_cluster_{name}")).set(v);
    }
}
