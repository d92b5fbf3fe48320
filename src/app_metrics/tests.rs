use std::time::Duration;

use super::*;
use crate::model::AppSummary;

const S: fn(u64) -> Duration = Duration::from_secs;

fn batch() -> Batch {
    let mut b = Batch::default();
    b.gauges.insert("app.queue".into(), 4.0);
    b.counters.insert("app.orders_total".into(), 3);
    b.histograms
        .insert("app.checkout_latency_ms".into(), vec![10.0, 20.0, 300.0]);
    b
}

#[test]
fn a_batch_is_summarised_over_the_window() {
    let mut r = Registry::new(8);
    r.record(S(0), &batch()).unwrap();
    r.gauge(S(15), "app.queue", 9.0).unwrap();
    r.gauge(S(25), "app.queue", 2.0).unwrap();
    r.counter(S(25), "app.orders_total", 7).unwrap();
    let s = r.summary(S(29), S(60));
    assert_eq!(
        s["app.queue"],
        AppSummary::Gauge {
            last: 2.0,
            max: 9.0
        }
    );
    // 10 in 29 s since first seen.
    match &s["app.orders_total"] {
        AppSummary::Counter { total, rate_per_s } => {
            assert_eq!(*total, 10);
            assert!((rate_per_s - 10.0 / 29.0).abs() < 1e-9, "{rate_per_s}");
        }
        other => panic!("{other:?}"),
    }
    match &s["app.checkout_latency_ms"] {
        AppSummary::Histogram { count, p50, p99 } => {
            assert_eq!(*count, 3);
            let (p50, p99) = (p50.unwrap(), p99.unwrap());
            assert!((p50 - 20.0).abs() <= 20.0 * 0.125, "{p50}");
            assert!((p99 - 300.0).abs() <= 300.0 * 0.125, "{p99}");
        }
        other => panic!("{other:?}"),
    }
    // A window that starts after the first slot: the gauge's max is of the
    // last slot only, the histogram is empty, the counter saw 7 in a
    // slot (rates cover at least one slot).
    let s = r.summary(S(29), S(5));
    assert_eq!(
        s["app.queue"],
        AppSummary::Gauge {
            last: 2.0,
            max: 2.0
        }
    );
    assert_eq!(
        s["app.checkout_latency_ms"],
        AppSummary::Histogram {
            count: 0,
            p50: None,
            p99: None
        }
    );
    assert_eq!(
        s["app.orders_total"],
        AppSummary::Counter {
            total: 10,
            rate_per_s: 0.7
        }
    );
}

#[test]
fn too_many_names_bad_names_and_bad_values_record_nothing() {
    let mut r = Registry::new(3);
    r.gauge(S(0), "app.a", 1.0).unwrap();
    let before = r.summary(S(0), S(60));
    let e = r.record(S(1), &batch()).unwrap_err();
    assert_eq!(
        e,
        AppMetricsError::TooManyNames {
            limit: 3,
            would_have: 4
        }
    );
    assert!(e.to_string().contains("app_metrics.max_names = 3"), "{e}");
    let mut bad = batch();
    bad.gauges.insert("App.Bad".into(), 1.0);
    assert!(matches!(
        r.record(S(1), &bad),
        Err(AppMetricsError::BadName { name, .. }) if name == "App.Bad"
    ));
    let mut long = Batch::default();
    long.gauges.insert("a".repeat(65), 1.0);
    assert!(matches!(
        r.record(S(1), &long),
        Err(AppMetricsError::BadName { .. })
    ));
    let mut nan = Batch::default();
    nan.gauges.insert("app.a".into(), 5.0);
    nan.histograms
        .insert("app.h".into(), vec![1.0, f64::INFINITY]);
    assert!(matches!(
        r.record(S(1), &nan),
        Err(AppMetricsError::NotFinite { .. })
    ));
    assert!(matches!(
        r.gauge(S(1), "app.a", f64::NAN),
        Err(AppMetricsError::NotFinite { .. })
    ));
    assert!(matches!(
        r.histogram(S(1), "app.h", -1.0),
        Err(AppMetricsError::Negative { .. })
    ));
    assert!(matches!(
        r.counter(S(1), "app.a", 1),
        Err(AppMetricsError::KindMismatch { .. })
    ));
    let mut clash = Batch::default();
    clash.gauges.insert("app.a_b".into(), 1.0);
    clash.counters.insert("app.a.b".into(), 1);
    assert!(matches!(
        r.record(S(1), &clash),
        Err(AppMetricsError::ExportClash { .. })
    ));
    let mut many = Batch::default();
    many.histograms
        .insert("app.h".into(), vec![1.0; MAX_BATCH_SAMPLES + 1]);
    assert!(matches!(
        r.record(S(1), &many),
        Err(AppMetricsError::TooManySamples { .. })
    ));
    // Nothing of the refused batches was recorded: app.a is still 1.
    assert_eq!(r.summary(S(1), S(60)), before);
    assert_eq!(r.len(), 1);
}

#[test]
fn the_exposition_has_one_series_per_name_and_no_labels() {
    let mut r = Registry::new(8);
    r.record(S(0), &batch()).unwrap();
    let text = exposition::render(&r.summary(S(0), S(60)));
    assert!(
        text.contains("# TYPE topod_app_queue gauge\ntopod_app_queue 4\n"),
        "{text}"
    );
    assert!(text.contains("topod_app_orders_total 3\n"), "{text}");
    assert!(!text.contains("orders_total_total"), "{text}");
    assert!(
        text.contains("topod_app_checkout_latency_ms_count 3\n"),
        "{text}"
    );
    assert!(
        text.contains("topod_app_checkout_latency_ms{quantile=\"0.99\"}"),
        "{text}"
    );
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(series, 1 + 1 + 3);
}

#[tokio::test(start_paused = true)]
async fn the_handle_uses_the_tokio_clock() {
    let m = AppMetrics::new(4);
    m.counter("app.c", 5).unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    m.counter("app.c", 5).unwrap();
    match &m.summary(Duration::from_secs(60))["app.c"] {
        AppSummary::Counter { total, rate_per_s } => {
            assert_eq!(*total, 10);
            assert!((rate_per_s - 0.2).abs() < 1e-9, "{rate_per_s}");
        }
        other => panic!("{other:?}"),
    }
}
