//! The metric names a `when` expression may use, and their values in a
//! round ([`figure`]).

use crate::model::app::AppAggregates;
use crate::model::ClusterMetrics;

/// The cluster metrics, by the names the explanation uses.
pub const CLUSTER_METRICS: [&str; 16] = [
    "node_count",
    "live_nodes",
    "latency_ms.p50",
    "latency_ms.p99",
    "connectivity_score",
    "partition_count",
    "bandwidth_bytes_per_s.in",
    "bandwidth_bytes_per_s.out",
    "peak_node_bytes_per_s",
    "bandwidth_utilization",
    "max_queue_depth",
    "hop_count.p50",
    "hop_count.max",
    "connection_load",
    "workload.broadcast_share",
    "workload.messages",
];

/// The statistics of an application metric across the members
/// ([`crate::model::app::AppAggregate`]).
pub const APP_AGGREGATES: [&str; 5] = ["p50", "p99", "max", "sum", "nodes"];

/// What a metric name in an expression refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricRef<'a> {
    Cluster(&'a str),
    /// An application metric (`name`, e.g. `app.checkout_latency_ms`) and
    /// one of its aggregates (`agg`, e.g. `p99`).
    App {
        name: &'a str,
        agg: &'a str,
    },
}

/// The reference `name` makes, or `None` for an unknown metric: not a
/// cluster metric, and not `app.NAME.AGG` with a valid application metric
/// name and a known aggregate.
pub fn metric_ref(name: &str) -> Option<MetricRef<'_>> {
    if CLUSTER_METRICS.contains(&name) {
        return Some(MetricRef::Cluster(name));
    }
    let (metric, agg) = name.rsplit_once('.')?;
    let ok = metric.starts_with("app.")
        && metric.len() > "app.".len()
        && crate::model::app::check_name(metric).is_ok()
        && APP_AGGREGATES.contains(&agg);
    ok.then_some(MetricRef::App { name: metric, agg })
}

/// The value of the metric `name` this round: `None` for an application
/// metric no member reports (or an unknown name).
pub fn figure(m: &ClusterMetrics, app: &AppAggregates, name: &str) -> Option<f64> {
    let v = match metric_ref(name)? {
        MetricRef::App { name, agg } => return app.get(name)?.get(agg),
        MetricRef::Cluster(c) => match c {
            "node_count" => f64::from(m.node_count),
            "live_nodes" => f64::from(m.live_nodes),
            "latency_ms.p50" => m.latency_ms.p50,
            "latency_ms.p99" => m.latency_ms.p99,
            "connectivity_score" => m.connectivity_score,
            "partition_count" => f64::from(m.partition_count),
            "bandwidth_bytes_per_s.in" => m.bandwidth_bytes_per_s.inbound,
            "bandwidth_bytes_per_s.out" => m.bandwidth_bytes_per_s.outbound,
            "peak_node_bytes_per_s" => m.peak_node_bytes_per_s,
            "bandwidth_utilization" => m.bandwidth_utilization,
            // Queue depths and message counts stay far below 2^53.
            "max_queue_depth" => m.max_queue_depth as f64,
            "hop_count.p50" => m.hop_count.p50,
            "hop_count.max" => f64::from(m.hop_count.max),
            "connection_load" => m.connection_load,
            "workload.broadcast_share" => m.workload.broadcast_share,
            "workload.messages" => m.workload.messages as f64,
            _ => return None,
        },
    };
    Some(v)
}
