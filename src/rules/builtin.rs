//! The conditions of the four built-in rules: each looks at the current
//! topology, the metrics and the policy's thresholds and says whether it
//! holds, on which figures, and why, in words. No hysteresis here (that is
//! [`super::hysteresis`]): a condition only looks at this round.
//!
//! Comparisons are strict, as in the issue: a figure equal to its
//! threshold does not make a rule hold. A figure that is NaN never makes a
//! rule hold (every comparison with NaN is false).

use std::collections::BTreeMap;

use crate::model::{ClusterMetrics, Thresholds, Topology, WorkloadPattern};

use super::explain::{Cmp, Num};
use super::RuleContext;

/// One rule's condition this round.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub holds: bool,
    pub target: Topology,
    /// The figures it looked at, by metric name.
    pub figures: BTreeMap<String, f64>,
    /// Why it holds or not (the text inside the explanation's brackets).
    pub why: String,
}

/// The condition of the rule called `rule` (one of [`super::RULES`]);
/// `None` for a name that is not a built-in rule.
pub(crate) fn condition(
    rule: &str,
    ctx: &RuleContext,
    m: &ClusterMetrics,
    t: &Thresholds,
) -> Option<Condition> {
    Some(match rule {
        "small_cluster_degraded" => small_cluster_degraded(ctx.current, m, t),
        "large_mesh_strain" => large_mesh_strain(ctx.current, m, t),
        "very_large_cluster" => very_large_cluster(ctx.current, m, t),
        "event_driven_workload" => event_driven_workload(ctx.current, m, t),
        _ => return None,
    })
}

/// Rule 1: a small HyParView cluster with bad latency or connectivity
/// moves to a full mesh (one hop to everyone, every link watched).
fn small_cluster_degraded(current: Topology, m: &ClusterMetrics, t: &Thresholds) -> Condition {
    let size = Cmp::lt(
        "node_count",
        Num::Int(m.node_count.into()),
        Num::Int(t.small_cluster_max_nodes.into()),
    );
    let figures = [
        Cmp::gt(
            "latency_ms.p99",
            Num::Float(m.latency_ms.p99),
            Num::Limit(t.latency_p99_ms),
        ),
        Cmp::lt(
            "connectivity_score",
            Num::Float(m.connectivity_score),
            Num::Limit(t.min_connectivity),
        ),
    ];
    combine(
        Topology::FullMesh,
        current_is(current, Topology::HyParView),
        size,
        &figures,
    )
}

/// Rule 2: a large full mesh with partitions or connection load moves to
/// HyParView (a fixed number of links per node).
fn large_mesh_strain(current: Topology, m: &ClusterMetrics, t: &Thresholds) -> Condition {
    let size = Cmp::gt(
        "node_count",
        Num::Int(m.node_count.into()),
        Num::Int(t.large_mesh_min_nodes.into()),
    );
    let figures = [
        Cmp::gt(
            "partition_count",
            Num::Int(m.partition_count.into()),
            Num::Int(t.max_partitions.into()),
        ),
        Cmp::gt(
            "connection_load",
            Num::Float(m.connection_load),
            Num::Limit(t.max_connection_load),
        ),
    ];
    combine(
        Topology::HyParView,
        current_is(current, Topology::FullMesh),
        size,
        &figures,
    )
}

/// Rule 3: a very large cluster with bandwidth or hop trouble moves to
/// client-server (bounded hops, servers carry the fan-out). Whether
/// servers can be designated is not part of the condition: a rule that
/// holds without servers is deferred (`no_servers`), so the operator sees
/// that it would act.
fn very_large_cluster(current: Topology, m: &ClusterMetrics, t: &Thresholds) -> Condition {
    let size = Cmp::gt(
        "node_count",
        Num::Int(m.node_count.into()),
        Num::Int(t.very_large_min_nodes.into()),
    );
    let figures = [
        Cmp::gt(
            "bandwidth_utilization",
            Num::Float(m.bandwidth_utilization),
            Num::Limit(t.max_bandwidth_utilization),
        ),
        Cmp::gt(
            "hop_count.max",
            Num::Int(m.hop_count.max.into()),
            Num::Int(t.max_hops.into()),
        ),
    ];
    combine(
        Topology::ClientServer,
        current_is_not(current, Topology::ClientServer),
        size,
        &figures,
    )
}

/// Rule 4: an event-driven workload moves to pub_sub (a Plumtree
/// broadcast tree sends each payload once per node). The pattern is the
/// monitor's classification ([`super::classify_workload`] with the same
/// thresholds), shown with the share and the message count behind it.
fn event_driven_workload(current: Topology, m: &ClusterMetrics, t: &Thresholds) -> Condition {
    let w = &m.workload;
    let mut figures = BTreeMap::new();
    figures.insert("workload.broadcast_share".to_string(), w.broadcast_share);
    // Message counts stay far below 2^53: exact as f64.
    figures.insert("workload.messages".to_string(), w.messages as f64);
    let share = Num::Float(w.broadcast_share);
    let needs = Num::Limit(t.event_driven_share);
    let (holds, why) = match current_is_not(current, Topology::PubSub) {
        Err(why) => (false, why),
        Ok(()) if w.pattern == WorkloadPattern::EventDriven => (
            true,
            format!(
                "workload.pattern event_driven (broadcast_share {share} >= {needs} over {} messages)",
                w.messages
            ),
        ),
        Ok(()) => (
            false,
            format!(
                "workload.pattern {}, not event_driven (broadcast_share {share} over {} messages; \
                 needs >= {needs} over >= {})",
                w.pattern.as_str(),
                w.messages,
                t.min_messages
            ),
        ),
    };
    Condition {
        holds,
        target: Topology::PubSub,
        figures,
        why,
    }
}

fn current_is(current: Topology, wanted: Topology) -> Result<(), String> {
    if current == wanted {
        Ok(())
    } else {
        Err(format!("current is {current}, not {wanted}"))
    }
}

fn current_is_not(current: Topology, target: Topology) -> Result<(), String> {
    if current == target {
        Err(format!("current is already {target}"))
    } else {
        Ok(())
    }
}

/// A rule holds when its topology check passes, its size comparison holds
/// and at least one of its figures does. The why lists the topology check
/// when it fails; else the size and the figures that hold, or (when none
/// does, or the size fails) every comparison with the relation it has.
fn combine(
    target: Topology,
    topology: Result<(), String>,
    size: Cmp,
    figures: &[Cmp],
) -> Condition {
    let mut map = BTreeMap::new();
    for c in std::iter::once(&size).chain(figures) {
        map.insert(c.name.to_string(), c.value.as_f64());
    }
    let any = figures.iter().any(|c| c.holds);
    let (holds, why) = match topology {
        Err(why) => (false, why),
        Ok(()) if !size.holds => (false, size.text()),
        Ok(()) => {
            let shown = figures.iter().filter(|c| c.holds == any);
            let parts: Vec<String> = std::iter::once(size.text())
                .chain(shown.map(Cmp::text))
                .collect();
            (any, parts.join(", "))
        }
    };
    Condition {
        holds,
        target,
        figures: map,
        why,
    }
}
