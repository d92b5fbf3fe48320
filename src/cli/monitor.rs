//! `topoctl monitor` and the metrics of `topoctl info`: pure functions
//! from the monitor's views to rows and lines.

use crate::api::types::{MonitorRoundEvent, TopologyEventView};
use crate::model::ClusterMetrics;
use crate::monitor::{MonitorRound, RoundAction};
use crate::rules::{Decision, DeferReason};

use super::render::{format_unix_ms, reason_text};

fn kv(k: impl ToString, v: impl ToString) -> Vec<String> {
    vec![k.to_string(), v.to_string()]
}

/// Key-value rows of the cluster metrics (keys prefixed `metrics.`).
pub fn metrics_rows(m: &ClusterMetrics) -> Vec<Vec<String>> {
    vec![
        kv(
            "metrics.nodes",
            format!("{} ({} live)", m.node_count, m.live_nodes),
        ),
        kv(
            "metrics.latency_ms",
            format!("p50 {:.2}, p99 {:.2}", m.latency_ms.p50, m.latency_ms.p99),
        ),
        kv(
            "metrics.connectivity_score",
            format!("{:.3}", m.connectivity_score),
        ),
        kv("metrics.partition_count", m.partition_count),
        kv(
            "metrics.bandwidth_bytes_per_s",
            format!(
                "in {:.0}, out {:.0}, peak node {:.0}",
                m.bandwidth_bytes_per_s.inbound,
                m.bandwidth_bytes_per_s.outbound,
                m.peak_node_bytes_per_s
            ),
        ),
        kv(
            "metrics.bandwidth_utilization",
            format!("{:.3}", m.bandwidth_utilization),
        ),
        kv("metrics.max_queue_depth", m.max_queue_depth),
        kv(
            "metrics.hop_count",
            format!("p50 {:.1}, max {}", m.hop_count.p50, m.hop_count.max),
        ),
        kv(
            "metrics.connection_load",
            format!("{:.3}", m.connection_load),
        ),
        kv(
            "metrics.workload",
            format!(
                "{} (broadcast share {:.2} of {} messages)",
                m.workload.pattern.as_str(),
                m.workload.broadcast_share,
                m.workload.messages
            ),
        ),
    ]
}

/// Why a decision was deferred, in words.
pub fn defer_text(why: &DeferReason) -> String {
    match why {
        DeferReason::Cooldown { remaining_ms } => format!("cooldown, {remaining_ms} ms left"),
        DeferReason::TransitionInFlight { id } => format!("transition {id} in flight"),
        DeferReason::NoServers => "no servers can be designated".to_string(),
        DeferReason::FlapWindow { left_ms_ago } => {
            format!("flap window: left it {left_ms_ago} ms ago")
        }
        DeferReason::AutoSwitchOff => "auto_switch is off".to_string(),
    }
}

/// The decision in one line.
pub fn decision_text(d: &Decision) -> String {
    match d {
        Decision::Stay => "stay".to_string(),
        Decision::Switch { target, rule, .. } => format!("switch to {target} ({rule})"),
        Decision::Deferred { target, rule, why } => {
            format!("deferred: {target} ({rule}), {}", defer_text(why))
        }
    }
}

/// The action in one line.
pub fn action_text(a: &RoundAction) -> String {
    match a {
        RoundAction::None => "none".to_string(),
        RoundAction::Proposed { id } => format!("proposed transition {id}"),
        RoundAction::Rejected { code, message } => format!("rejected: {code}: {message}"),
        RoundAction::Failed { error } => format!("failed: {error}"),
    }
}

/// Header of the rules table.
pub const RULES_HEADER: [&str; 5] = ["RULE", "HOLDS", "CONSECUTIVE", "TARGET", "WHY"];

/// One row per rule evaluation.
pub fn rule_rows(r: &MonitorRound) -> Vec<Vec<String>> {
    r.evaluation
        .rules
        .iter()
        .map(|e| {
            vec![
                e.rule.clone(),
                if e.holds { "yes" } else { "no" }.to_string(),
                e.consecutive.to_string(),
                e.target.to_string(),
                e.why.clone(),
            ]
        })
        .collect()
}

/// Key-value rows of a round (before its metrics and rules).
pub fn round_rows(r: &MonitorRound) -> Vec<Vec<String>> {
    let mut rows = vec![
        kv("round", r.round),
        kv("leader", format!("{} (term {})", r.leader, r.term)),
        kv("started", format_unix_ms(r.started_at_ms)),
        kv("duration_ms", r.duration_ms),
        kv(
            "asked",
            format!("{} ({} unreachable)", r.asked, r.unreachable.len()),
        ),
        kv("bytes_gathered", r.bytes_gathered),
    ];
    rows.extend(metrics_rows(&r.metrics));
    rows.push(kv("decision", decision_text(&r.evaluation.decision)));
    rows.push(kv("action", action_text(&r.action)));
    rows
}

/// One line per SSE event of `topoctl watch`.
pub fn topology_event_line(e: &TopologyEventView) -> String {
    let mut line = format!(
        "transition {} {}: {} -> {} ({})",
        e.transition_id,
        e.kind,
        e.from,
        e.to,
        reason_text(&e.reason)
    );
    if let Some(epoch) = e.epoch {
        line.push_str(&format!(", epoch {epoch}"));
    }
    if let Some(of) = e.reverted {
        line.push_str(&format!(", reverted {of}"));
    }
    if let Some(why) = &e.abort_reason {
        line.push_str(&format!(": {why}"));
    }
    line
}

/// A monitor round in one line.
pub fn round_event_line(r: &MonitorRoundEvent) -> String {
    let m = &r.metrics;
    format!(
        "monitor round {} (leader {}, term {}): {}/{} live, p99 {:.1} ms, connectivity {:.2}, \
         {}; decision {}; action {}",
        r.round,
        r.leader,
        r.term,
        m.live_nodes,
        m.node_count,
        m.latency_ms.p99,
        m.connectivity_score,
        m.workload.pattern.as_str(),
        decision_text(&r.decision),
        action_text(&r.action)
    )
}
