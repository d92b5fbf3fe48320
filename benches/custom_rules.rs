//! Cost of evaluating 50 custom rules in one monitor round (issue 16):
//! `rules::evaluate_with_app` with the four built-in rules and 50
//! operators' rules over 10 aggregated application metrics and the
//! cluster metrics, on a quiet round (no rule holds, every `when` is
//! evaluated) and on a round where the last rule holds long enough and
//! switches; the same call without custom rules is the baseline. Each
//! rule's `when` is parsed every round (the policy keeps the text), so
//! the figure includes parsing.
//!
//! Run: `cargo bench --bench custom_rules -- --warm-up-time 1 --measurement-time 3`.

use std::collections::BTreeMap;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use topod::model::metrics::{HopCount, InOut, Percentiles, Workload};
use topod::model::{
    AppAggregate, AppAggregates, AppKind, ClusterMetrics, CustomRule, Policy, Topology,
    WorkloadPattern,
};
use topod::rules::{evaluate_with_app, Decision, RuleContext, RuleMemory};

const RULES: usize = 50;
const APP_NAMES: usize = 10;

fn metrics() -> ClusterMetrics {
    ClusterMetrics {
        node_count: 40,
        live_nodes: 40,
        latency_ms: Percentiles {
            p50: 2.0,
            p99: 12.0,
        },
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

/// `app.svc_N_ms` histograms, p99 = `p99`, reported by every member.
fn app(p99: f64) -> AppAggregates {
    (0..APP_NAMES)
        .map(|i| {
            let a = AppAggregate {
                kind: AppKind::Histogram,
                nodes: 40,
                p50: 20.0,
                p99,
                max: p99 * 1.5,
                sum: 4000.0,
            };
            (format!("app.svc_{i}_ms"), a)
        })
        .collect()
}

/// 50 rules, each two to four comparisons joined by `and`/`or`/`not`,
/// each applying from the current topology (hyparview).
fn rules() -> Vec<CustomRule> {
    (0..RULES)
        .map(|i| {
            let m = format!("app.svc_{}_ms", i % APP_NAMES);
            let when = match i % 3 {
                0 => format!("{m}.p99 > {} and node_count >= 5", 250 + i),
                1 => format!(
                    "({m}.p99 > {} or {m}.max > 900) and not (latency_ms.p99 > 50)",
                    300 + i
                ),
                _ => format!(
                    "{m}.p50 > 100 and {m}.nodes >= 3 and connectivity_score > 0.5 or {m}.p99 > {}",
                    400 + i
                ),
            };
            CustomRule {
                name: format!("rule_{i}"),
                when,
                hold_rounds: Some(2),
                from: vec![Topology::HyParView, Topology::PubSub],
                switch_to: Topology::FullMesh,
            }
        })
        .collect()
}

fn ctx() -> RuleContext {
    RuleContext {
        now_ms: 10_000_000,
        current: Topology::HyParView,
        in_flight: None,
        last_switch_ms: Some(1_000_000),
        left_at_ms: BTreeMap::new(),
        servers_available: true,
    }
}

fn bench(c: &mut Criterion) {
    let mut policy = Policy {
        auto_switch: true,
        flap_window_ms: 0,
        ..Policy::default()
    };
    let ctx = ctx();
    let m = metrics();
    let quiet = app(120.0);
    let memory = RuleMemory::default();

    c.bench_function("evaluate_with_app, no custom rules (baseline)", |b| {
        b.iter(|| evaluate_with_app(black_box(&ctx), black_box(&m), &quiet, &policy, &memory))
    });

    policy.custom_rules = rules();
    assert_eq!(
        evaluate_with_app(&ctx, &m, &quiet, &policy, &memory).decision,
        Decision::Stay
    );
    c.bench_function("evaluate_with_app, 50 custom rules, quiet round", |b| {
        b.iter(|| evaluate_with_app(black_box(&ctx), black_box(&m), &quiet, &policy, &memory))
    });

    // `app.svc_9_ms` degrades: the five rules on it hold; the last one
    // (`app.svc_9_ms.p99 > 349 ...`) has held one round already and
    // switches this round.
    let mut slow = quiet.clone();
    if let Some(a) = slow.get_mut("app.svc_9_ms") {
        a.p99 = 500.0;
    }
    let held = RuleMemory {
        consecutive: [(format!("rule_{}", RULES - 1), 1)].into_iter().collect(),
    };
    let e = evaluate_with_app(&ctx, &m, &slow, &policy, &held);
    assert!(
        matches!(&e.decision, Decision::Switch { rule, .. } if rule == "rule_49"),
        "{:?}",
        e.decision
    );
    c.bench_function("evaluate_with_app, 50 custom rules, switching round", |b| {
        b.iter(|| evaluate_with_app(black_box(&ctx), black_box(&m), &slow, &policy, &held))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
