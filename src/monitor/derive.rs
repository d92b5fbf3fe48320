//! From every member's [`NodeSummary`] to the cluster's
//! [`ClusterMetrics`]: a pure function, O(members + links).
//!
//! How each figure is combined (summaries carry percentiles, not samples):
//! - `latency_ms.p50` is the median of the nodes' RTT medians and
//!   `latency_ms.p99` the 99th percentile (nearest rank) of the nodes' p99s,
//!   so one slow node shows in the p99 of a small cluster;
//! - `connectivity_score` is Σ links up / Σ links expected over the nodes
//!   that answered (1 when none expects a link, or when no answering node
//!   runs an overlay yet), and 0 when the overlay
//!   graph assembled from every node's links has more than one component
//!   holding answering nodes;
//! - `partition_count` is the members that did not answer plus the extra
//!   components of that graph;
//! - bandwidth: totals in and out, the busiest node's in + out, and its
//!   share of `link_capacity_bytes_per_s`;
//! - `hop_count`: median of the nodes' medians, maximum of their maxima;
//! - `connection_load`: the busiest node's larger of links /
//!   `max_links_per_node` and CPU share of one core, capped at 1;
//! - the workload from the application broadcasts and point-to-point
//!   messages all nodes sent ([`crate::rules::classify_workload`]).
//!
//! [`aggregate_app`] combines the application metrics of the summaries
//! (how, in [`crate::model::AppAggregate`]'s doc).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::metrics::{HopCount, InOut, Percentiles};
use crate::model::{
    AppAggregate, AppAggregates, AppKind, AppSummary, ClusterMetrics, NodeId, NodeSummary,
    Thresholds,
};

/// Settings of the derivation that are not in the summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeriveSettings {
    /// A link's capacity, bytes/s (`monitor.link_capacity_bytes_per_s`).
    pub link_capacity_bytes_per_s: f64,
    /// Links that count as full load (`monitor.max_links_per_node`).
    pub max_links_per_node: f64,
}

/// The cluster metrics of one round. `members` is the membership,
/// `summaries` the answers received (members that did not answer are
/// simply absent), `unreachable` the members that did not answer.
pub fn derive(
    members: &[NodeId],
    summaries: &[NodeSummary],
    unreachable: &[NodeId],
    settings: &DeriveSettings,
    thresholds: &Thresholds,
) -> ClusterMetrics {
    let with_overlay: Vec<&NodeSummary> =
        summaries.iter().filter(|s| s.topology.is_some()).collect();
    let rtt: Vec<Percentiles> = with_overlay.iter().filter_map(|s| s.rtt_ms).collect();
    let latency_ms = Percentiles {
        p50: median(rtt.iter().map(|p| p.p50)),
        p99: nearest_rank(rtt.iter().map(|p| p.p99), 0.99),
    };
    let components = components(&with_overlay);
    let (up, expected) = with_overlay.iter().fold((0u64, 0u64), |(u, e), s| {
        (
            u + u64::from(s.links_up.min(s.links_expected)),
            e + u64::from(s.links_expected),
        )
    });
    let connectivity_score = if components > 1 {
        0.0
    } else if expected == 0 {
        1.0
    } else {
        up as f64 / expected as f64
    };
    let extra_components = components.saturating_sub(1) as u32;
    let bandwidth = InOut {
        inbound: summaries.iter().map(|s| s.bytes_per_s.inbound).sum(),
        outbound: summaries.iter().map(|s| s.bytes_per_s.outbound).sum(),
    };
    let peak = summaries
        .iter()
        .map(|s| s.bytes_per_s.inbound + s.bytes_per_s.outbound)
        .fold(0.0, f64::max);
    let hops: Vec<HopCount> = summaries.iter().filter_map(|s| s.hops).collect();
    let connection_load = summaries
        .iter()
        .map(|s| {
            let links = f64::from(s.link_count) / settings.max_links_per_node.max(1.0);
            links.max(s.cpu_share)
        })
        .fold(0.0, f64::max)
        .min(1.0);
    let broadcasts: u64 = summaries.iter().map(|s| s.app_broadcasts).sum();
    let direct: u64 = summaries.iter().map(|s| s.app_direct).sum();
    ClusterMetrics {
        node_count: members.len() as u32,
        live_nodes: summaries.len() as u32,
        latency_ms,
        connectivity_score,
        partition_count: unreachable.len() as u32 + extra_components,
        bandwidth_bytes_per_s: bandwidth,
        peak_node_bytes_per_s: peak,
        bandwidth_utilization: peak / settings.link_capacity_bytes_per_s.max(1.0),
        max_queue_depth: summaries
            .iter()
            .map(|s| s.max_queue_depth)
            .max()
            .unwrap_or(0),
        hop_count: HopCount {
            p50: median(hops.iter().map(|h| h.p50)),
            max: hops.iter().map(|h| h.max).max().unwrap_or(0),
        },
        connection_load,
        workload: crate::rules::classify_workload(broadcasts, direct, thresholds),
    }
}

/// The median of `values` (0 when empty).
/// One node's contribution to an application metric's aggregate: its
/// values for p50, p99, max, and its part of the sum.
type NodeValues = (f64, f64, f64, f64);

/// Each application metric across the summaries that report it. A node
/// counts for a name when it reports it with the kind of the first
/// summary (in the order given) that does, and, for a histogram, has a
/// sample in the window. Bounded: the names are at most the summaries'
/// names, each node's capped by its `app_metrics.max_names`.
pub fn aggregate_app(summaries: &[NodeSummary]) -> AppAggregates {
    // Per name: the kind and each reporting node's (p50 value, p99 value,
    // max value, sum part).
    let mut by_name: BTreeMap<&str, (AppKind, Vec<NodeValues>)> = BTreeMap::new();
    for s in summaries {
        for (name, m) in &s.app {
            let entry = by_name
                .entry(name.as_str())
                .or_insert_with(|| (m.kind(), Vec::new()));
            if entry.0 != m.kind() {
                continue;
            }
            let values = match *m {
                AppSummary::Gauge { last, max } => (last, last, max, last),
                AppSummary::Counter { rate_per_s, .. } => {
                    (rate_per_s, rate_per_s, rate_per_s, rate_per_s)
                }
                AppSummary::Histogram {
                    count,
                    p50: Some(p50),
                    p99: Some(p99),
                } => (p50, p99, p99, count as f64),
                AppSummary::Histogram { .. } => continue,
            };
            entry.1.push(values);
        }
    }
    by_name
        .into_iter()
        .filter(|(_, (_, v))| !v.is_empty())
        .map(|(name, (kind, v))| {
            let agg = AppAggregate {
                kind,
                nodes: v.len() as u32,
                p50: median(v.iter().map(|x| x.0)),
                p99: nearest_rank(v.iter().map(|x| x.1), 0.99),
                max: v.iter().map(|x| x.2).fold(f64::NEG_INFINITY, f64::max),
                sum: v.iter().map(|x| x.3).sum(),
            };
            (name.to_string(), agg)
        })
        .collect()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    nearest_rank(values, 0.5)
}

/// The `q` quantile by nearest rank (0 when empty).
fn nearest_rank(values: impl Iterator<Item = f64>, q: f64) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Components of the overlay graph that hold at least one answering node.
/// Edges are the links every answering node reports (undirected: one side
/// reporting a link is enough); a linked member that did not answer joins
/// the component of the nodes linked to it.
fn components(summaries: &[&NodeSummary]) -> usize {
    let mut index: BTreeMap<NodeId, usize> = BTreeMap::new();
    let id_of = |n: NodeId, index: &mut BTreeMap<NodeId, usize>| {
        let next = index.len();
        *index.entry(n).or_insert(next)
    };
    let mut edges = Vec::new();
    for s in summaries {
        let a = id_of(s.node, &mut index);
        for &peer in &s.links {
            let b = id_of(peer, &mut index);
            edges.push((a, b));
        }
    }
    let mut parent: Vec<usize> = (0..index.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra] = rb;
        }
    }
    let roots: BTreeSet<usize> = summaries
        .iter()
        .map(|s| find(&mut parent, index[&s.node]))
        .collect();
    roots.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Topology, WorkloadPattern};

    fn settings() -> DeriveSettings {
        DeriveSettings {
            link_capacity_bytes_per_s: 1000.0,
            max_links_per_node: 10.0,
        }
    }

    fn summary(node: NodeId, links: &[NodeId], rtt: (f64, f64)) -> NodeSummary {
        NodeSummary {
            node,
            window_ms: 2000,
            topology: Some(Topology::FullMesh),
            instance: 0,
            rtt_ms: Some(Percentiles {
                p50: rtt.0,
                p99: rtt.1,
            }),
            links_up: links.len() as u32,
            links_expected: 2,
            links: links.to_vec(),
            link_count: links.len() as u32,
            ..NodeSummary::default()
        }
    }

    #[test]
    fn a_connected_mesh_scores_its_links() {
        let s = [
            summary(1, &[2, 3], (1.0, 2.0)),
            summary(2, &[1, 3], (3.0, 9.0)),
            summary(3, &[1], (2.0, 4.0)),
        ];
        let m = derive(&[1, 2, 3], &s, &[], &settings(), &Thresholds::default());
        assert_eq!(m.node_count, 3);
        assert_eq!(m.live_nodes, 3);
        assert_eq!(m.latency_ms.p50, 2.0);
        assert_eq!(m.latency_ms.p99, 9.0);
        assert!((m.connectivity_score - 5.0 / 6.0).abs() < 1e-9);
        assert_eq!(m.partition_count, 0);
        assert!((m.connection_load - 0.2).abs() < 1e-9);
    }

    #[test]
    fn a_split_graph_scores_zero_and_counts_as_a_partition() {
        let s = [
            summary(1, &[2], (1.0, 1.0)),
            summary(2, &[1], (1.0, 1.0)),
            summary(3, &[4], (1.0, 1.0)),
            summary(4, &[3], (1.0, 1.0)),
        ];
        let m = derive(
            &[1, 2, 3, 4, 5],
            &s,
            &[5],
            &settings(),
            &Thresholds::default(),
        );
        assert_eq!(m.connectivity_score, 0.0);
        assert_eq!(m.partition_count, 2, "one unreachable member, one split");
        assert_eq!(m.live_nodes, 4);
    }

    #[test]
    fn a_node_linked_through_a_silent_member_is_not_split() {
        // 1 - 3 - 2, with 3 not answering: one component.
        let s = [summary(1, &[3], (1.0, 1.0)), summary(2, &[3], (1.0, 1.0))];
        let m = derive(&[1, 2, 3], &s, &[3], &settings(), &Thresholds::default());
        assert!(m.connectivity_score > 0.0);
        assert_eq!(m.partition_count, 1);
    }

    #[test]
    fn bandwidth_queue_hops_and_workload() {
        let mut a = summary(1, &[2], (1.0, 1.0));
        a.bytes_per_s = InOut {
            inbound: 100.0,
            outbound: 700.0,
        };
        a.max_queue_depth = 7;
        a.hops = Some(HopCount { p50: 1.0, max: 3 });
        a.app_broadcasts = 90;
        a.app_direct = 5;
        a.cpu_share = 0.5;
        let mut b = summary(2, &[1], (1.0, 1.0));
        b.bytes_per_s = InOut {
            inbound: 50.0,
            outbound: 50.0,
        };
        b.hops = Some(HopCount { p50: 2.0, max: 5 });
        b.app_broadcasts = 10;
        let m = derive(&[1, 2], &[a, b], &[], &settings(), &Thresholds::default());
        assert_eq!(m.bandwidth_bytes_per_s.inbound, 150.0);
        assert_eq!(m.bandwidth_bytes_per_s.outbound, 750.0);
        assert_eq!(m.peak_node_bytes_per_s, 800.0);
        assert!((m.bandwidth_utilization - 0.8).abs() < 1e-9);
        assert_eq!(m.max_queue_depth, 7);
        assert_eq!(m.hop_count.max, 5);
        assert_eq!(m.hop_count.p50, 1.0);
        assert_eq!(m.connection_load, 0.5);
        assert_eq!(m.workload.messages, 105);
        assert_eq!(m.workload.pattern, WorkloadPattern::EventDriven);
    }

    #[test]
    fn no_answers_give_empty_figures_and_every_member_a_partition() {
        let m = derive(
            &[1, 2, 3],
            &[],
            &[1, 2, 3],
            &settings(),
            &Thresholds::default(),
        );
        assert_eq!(m.live_nodes, 0);
        assert_eq!(m.partition_count, 3);
        assert_eq!(m.connectivity_score, 1.0);
        assert_eq!(m.latency_ms, Percentiles::default());
    }

    #[test]
    fn app_metrics_are_combined_across_the_nodes_that_report_them() {
        use crate::model::{AppKind, AppSummary};
        let with = |node, app: Vec<(&str, AppSummary)>| {
            let mut s = summary(node, &[], (1.0, 1.0));
            s.app = app.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            s
        };
        let h = |p50, p99| AppSummary::Histogram {
            count: 10,
            p50: Some(p50),
            p99: Some(p99),
        };
        let summaries = vec![
            with(
                1,
                vec![
                    ("app.lat", h(10.0, 100.0)),
                    (
                        "app.q",
                        AppSummary::Gauge {
                            last: 1.0,
                            max: 5.0,
                        },
                    ),
                ],
            ),
            with(
                2,
                vec![
                    ("app.lat", h(20.0, 300.0)),
                    (
                        "app.q",
                        AppSummary::Counter {
                            total: 1,
                            rate_per_s: 9.0,
                        },
                    ),
                ],
            ),
            with(
                3,
                vec![
                    ("app.lat", h(30.0, 200.0)),
                    (
                        "app.o",
                        AppSummary::Counter {
                            total: 5,
                            rate_per_s: 2.5,
                        },
                    ),
                ],
            ),
            with(
                4,
                vec![(
                    "app.lat",
                    AppSummary::Histogram {
                        count: 0,
                        p50: None,
                        p99: None,
                    },
                )],
            ),
        ];
        let agg = aggregate_app(&summaries);
        let lat = &agg["app.lat"];
        assert_eq!(lat.kind, AppKind::Histogram);
        assert_eq!(lat.nodes, 3);
        assert_eq!(
            (lat.p50, lat.p99, lat.max, lat.sum),
            (20.0, 300.0, 300.0, 30.0)
        );
        // Node 2's counter named like node 1's gauge does not count.
        let q = &agg["app.q"];
        assert_eq!(
            (q.kind, q.nodes, q.max, q.sum),
            (AppKind::Gauge, 1, 5.0, 1.0)
        );
        assert_eq!(agg["app.o"].sum, 2.5);
        assert_eq!(agg.len(), 3);
    }
}
