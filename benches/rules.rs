//! Cost of the rules code, for the issue's figure "cost of one monitor
//! round ... from a benchmark of the gathering and rules code": one
//! `evaluate` call (four rules, hysteresis, gates, the explanation text)
//! on a quiet round and on a round that switches, and one
//! `classify_workload`. The rules see the cluster's aggregate metrics, so
//! their cost does not depend on the member count.
//!
//! Run: `cargo bench --bench rules` (about 20 s).

use std::collections::BTreeMap;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use topod::model::metrics::{HopCount, InOut, Percentiles, Workload};
use topod::model::{ClusterMetrics, Policy, Topology, WorkloadPattern};
use topod::rules::{classify_workload, evaluate, RuleContext, RuleMemory, RULES};

fn metrics(node_count: u32, p99: f64) -> ClusterMetrics {
    ClusterMetrics {
        node_count,
        live_nodes: node_count,
        latency_ms: Percentiles { p50: 2.0, p99 },
        connectivity_score: 0.97,
        partition_count: 0,
        bandwidth_bytes_per_s: InOut {
            inbound: 1e6,
            outbound: 1e6,
        },
        peak_node_bytes_per_s: 2e5,
        bandwidth_utilization: 0.2,
        max_queue_depth: 3,
        hop_count: HopCount { p50: 2.0, max: 4 },
        connection_load: 0.3,
        workload: Workload {
            pattern: WorkloadPattern::Mixed,
            broadcast_share: 0.4,
            messages: 5000,
        },
    }
}

fn ctx() -> RuleContext {
    let mut left_at_ms = BTreeMap::new();
    left_at_ms.insert(Topology::PubSub, 1_000_000);
    RuleContext {
        now_ms: 10_000_000,
        current: Topology::HyParView,
        in_flight: None,
        last_switch_ms: Some(1_000_000),
        left_at_ms,
        servers_available: true,
    }
}

fn bench(c: &mut Criterion) {
    let policy = Policy {
        auto_switch: true,
        ..Policy::default()
    };
    let ctx = ctx();
    let quiet = metrics(1000, 12.0);
    let degraded = metrics(5, 83.0);
    let memory = RuleMemory {
        consecutive: RULES.iter().map(|r| (r.to_string(), 2)).collect(),
    };
    c.bench_function("evaluate, quiet round (stay)", |b| {
        b.iter(|| evaluate(black_box(&ctx), black_box(&quiet), &policy, &memory))
    });
    c.bench_function("evaluate, degraded round (switch)", |b| {
        b.iter(|| evaluate(black_box(&ctx), black_box(&degraded), &policy, &memory))
    });
    c.bench_function("classify_workload", |b| {
        b.iter(|| classify_workload(black_box(7000), black_box(3000), &policy.thresholds))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
