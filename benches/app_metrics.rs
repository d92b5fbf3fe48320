//! Cost of recording an application metric on the hot path (issue 16):
//! `AppMetrics::gauge`, `counter` and `histogram` on a name already
//! known (the steady state: one uncontended mutex, a map lookup, a slot
//! update), with the registry holding 32 names (the default
//! `app_metrics.max_names`); and a first report of a new name, which
//! also runs the batch checks.
//!
//! Run: `cargo bench --bench app_metrics -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use topod::app_metrics::AppMetrics;

/// A registry full of names (10 gauges, 10 counters, 12 histograms).
fn full() -> AppMetrics {
    let m = AppMetrics::new(32);
    for i in 0..10 {
        m.gauge(&format!("app.gauge_{i}"), 1.0)
            .expect("valid gauge");
        m.counter(&format!("app.counter_{i}"), 1)
            .expect("valid counter");
    }
    for i in 0..12 {
        m.histogram(&format!("app.latency_{i}_ms"), 10.0)
            .expect("valid sample");
    }
    m
}

fn bench(c: &mut Criterion) {
    let m = full();
    let mut v = 0.0_f64;
    c.bench_function("app gauge set (known name)", |b| {
        b.iter(|| {
            v += 0.5;
            m.gauge(black_box("app.gauge_7"), black_box(v))
        })
    });
    c.bench_function("app counter add (known name)", |b| {
        b.iter(|| m.counter(black_box("app.counter_7"), black_box(3)))
    });
    let mut ms = 0.0_f64;
    c.bench_function("app histogram record (known name)", |b| {
        b.iter(|| {
            ms = (ms + 7.3) % 900.0;
            m.histogram(black_box("app.latency_7_ms"), black_box(ms))
        })
    });
    c.bench_function("app gauge set (first report of a name)", |b| {
        b.iter_batched(
            || AppMetrics::new(32),
            |fresh| fresh.gauge(black_box("app.gauge_new"), black_box(1.0)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
