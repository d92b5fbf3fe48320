//! Application metrics: the figures the embedding application (or a local
//! process, through `POST /v1/node/app-metrics`) reports about itself —
//! gauges, counters and latency histograms such as
//! `app.checkout_latency_ms` — so that operators' custom rules can switch
//! on them.
//!
//! This module owns a node's [`AppMetrics`] handle (what
//! `Node::metrics()` returns): a [`Registry`] (sans-IO, `registry`) behind
//! a small lock, with tokio's clock. It is read three ways:
//! - the node summary (`GET /v1/node/summary`) carries each metric over
//!   the window ([`AppMetrics::summary`]; gauge: last and max, counter:
//!   rate, histogram: p50/p99), which the leader's monitor combines across
//!   the members (`monitor::derive::aggregate_app`);
//! - `/metrics` exports them as `topod_app_*` ([`AppMetrics::render`]):
//!   one series per name, at most `app_metrics.max_names`, no labels;
//! - custom rules name the aggregates (`app.checkout_latency_ms.p99`).
//!
//! Cost on the hot path: one uncontended mutex and a map lookup by name
//! (BENCHMARKS.md has the figure); a new name also checks the batch rules.

mod exposition;
mod registry;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::AppSummaries;

pub use registry::{
    exported_name, AppMetricsError, Batch, Registry, MAX_BATCH_SAMPLES, SLOT, SLOTS,
};

/// Default of `app_metrics.max_names`.
pub const DEFAULT_MAX_NAMES: usize = 32;

/// A node's application metrics; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct AppMetrics {
    inner: Arc<Mutex<Registry>>,
    start: Instant,
}

impl AppMetrics {
    /// An empty set of at most `max_names` names.
    pub fn new(max_names: usize) -> Self {
        AppMetrics {
            inner: Arc::new(Mutex::new(Registry::new(max_names))),
            start: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every registry operation leaves it consistent before it can
        // panic (checks come first), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sets gauge `name` to `value`.
    pub fn gauge(&self, name: &str, value: f64) -> Result<(), AppMetricsError> {
        let now = self.now();
        self.lock().gauge(now, name, value)
    }

    /// Increases counter `name` by `by`.
    pub fn counter(&self, name: &str, by: u64) -> Result<(), AppMetricsError> {
        let now = self.now();
        self.lock().counter(now, name, by)
    }

    /// Adds a sample (e.g. a latency in ms, non-negative) to histogram
    /// `name`.
    pub fn histogram(&self, name: &str, value: f64) -> Result<(), AppMetricsError> {
        let now = self.now();
        self.lock().histogram(now, name, value)
    }

    /// Records a batch, or refuses it whole.
    pub fn record(&self, batch: &Batch) -> Result<(), AppMetricsError> {
        let now = self.now();
        self.lock().record(now, batch)
    }

    /// Every metric over the last `window`.
    pub fn summary(&self, window: Duration) -> AppSummaries {
        let now = self.now();
        self.lock().summary(now, window)
    }

    /// The Prometheus text of every metric (histograms over the last
    /// minute).
    pub fn render(&self) -> String {
        exposition::render(&self.summary(Duration::from_secs(60)))
    }
}

#[cfg(test)]
mod tests;
