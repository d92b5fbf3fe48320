//! [`Registry`]: a node's application metrics, sans-IO (the caller passes
//! `now`, the time since the registry was created).
//!
//! Each name has one kind (gauge, counter or histogram, fixed by its first
//! report) and a ring of [`SLOTS`] slots of [`SLOT`] each (10 minutes, the
//! longest summary window), created as reports arrive: a slot holds a
//! gauge's largest value, a counter's increase, or a fixed-size log-scale
//! histogram ([`LogHistogram`], values in hundredths, ≤ 12.5 % relative
//! error) of the samples recorded in it. At most `max_names` names; a
//! batch that would add more, or holds a bad name or value, is refused
//! whole: nothing of it is recorded.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::executor::histogram::LogHistogram;
use crate::model::app::{check_name, AppKind, AppSummaries, AppSummary};

/// Length of one slot.
pub const SLOT: Duration = Duration::from_secs(10);
/// Slots kept per name: 10 minutes.
pub const SLOTS: usize = 60;
/// Histogram buckets: hundredths up to 2^27 (values up to ≈ 1.3 million).
const HIST_BUCKETS: usize = 200;
/// Histogram values are stored in hundredths.
const HIST_SCALE: f64 = 100.0;
/// Most histogram samples in one batch.
pub const MAX_BATCH_SAMPLES: usize = 10_000;

/// A batch of reports (`POST /v1/node/app-metrics`, or one call of the
/// embedding handle).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Gauges to set.
    pub gauges: BTreeMap<String, f64>,
    /// Counters to increase.
    pub counters: BTreeMap<String, u64>,
    /// Samples to add to histograms.
    pub histograms: BTreeMap<String, Vec<f64>>,
}

/// A refused report. Nothing of the batch was recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppMetricsError {
    #[error("metric `{name}`: {reason}")]
    BadName { name: String, reason: String },
    #[error("metric `{name}`: value {value} is not finite")]
    NotFinite { name: String, value: f64 },
    #[error("metric `{name}`: histogram sample {value} is negative")]
    Negative { name: String, value: f64 },
    #[error(
        "the report would make {would_have} metric names on this node, over \
         app_metrics.max_names = {limit}"
    )]
    TooManyNames { limit: usize, would_have: usize },
    #[error("metric `{name}` is a {registered}, reported as a {reported}")]
    KindMismatch {
        name: String,
        registered: &'static str,
        reported: &'static str,
    },
    #[error("metric `{name}` would be exported as `{exported}`, which `{other}` already is")]
    ExportClash {
        name: String,
        other: String,
        exported: String,
    },
    #[error("the report holds {samples} histogram samples, over the limit of {limit}")]
    TooManySamples { samples: usize, limit: usize },
}

#[derive(Debug, Clone)]
struct Slot {
    index: u64,
    max: f64,
    increase: u64,
    hist: Option<Box<LogHistogram<HIST_BUCKETS>>>,
}

#[derive(Debug, Clone)]
struct Series {
    kind: AppKind,
    first_seen: Duration,
    last: f64,
    total: u64,
    slots: VecDeque<Slot>,
}

impl Series {
    fn slot(&mut self, now: Duration) -> &mut Slot {
        let index = now.as_secs() / SLOT.as_secs();
        if self.slots.back().is_none_or(|s| s.index != index) {
            if self.slots.len() == SLOTS {
                self.slots.pop_front();
            }
            self.slots.push_back(Slot {
                index,
                max: f64::NEG_INFINITY,
                increase: 0,
                hist: None,
            });
        }
        // Just pushed or found: the back exists.
        self.slots.back_mut().expect("a slot was pushed")
    }
}

/// The exported name of a metric: `topod_app_` and the name without its
/// `app.` prefix, dots as underscores.
pub fn exported_name(name: &str) -> String {
    let base = name.strip_prefix("app.").unwrap_or(name);
    format!("topod_app_{}", base.replace('.', "_"))
}

/// A node's application metrics.
#[derive(Debug, Clone)]
pub struct Registry {
    max_names: usize,
    series: BTreeMap<String, Series>,
    /// Exported name -> metric name, to refuse two names that export alike.
    exported: BTreeMap<String, String>,
}

impl Registry {
    /// An empty registry holding at most `max_names` names.
    pub fn new(max_names: usize) -> Self {
        Registry {
            max_names,
            series: BTreeMap::new(),
            exported: BTreeMap::new(),
        }
    }

    /// The names registered.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Checks a whole batch against the registry: names, values, kinds,
    /// the name limit. Records nothing.
    pub fn check(&self, batch: &Batch) -> Result<(), AppMetricsError> {
        let samples: usize = batch.histograms.values().map(Vec::len).sum();
        if samples > MAX_BATCH_SAMPLES {
            return Err(AppMetricsError::TooManySamples {
                samples,
                limit: MAX_BATCH_SAMPLES,
            });
        }
        let mut new: BTreeMap<&str, AppKind> = BTreeMap::new();
        let mut new_exported: BTreeMap<String, &str> = BTreeMap::new();
        let entries = batch
            .gauges
            .iter()
            .map(|(n, v)| (n, AppKind::Gauge, std::slice::from_ref(v)))
            .chain(
                batch
                    .counters
                    .keys()
                    .map(|n| (n, AppKind::Counter, &[][..])),
            )
            .chain(
                batch
                    .histograms
                    .iter()
                    .map(|(n, v)| (n, AppKind::Histogram, v.as_slice())),
            );
        for (name, kind, values) in entries {
            check_name(name).map_err(|reason| AppMetricsError::BadName {
                name: name.clone(),
                reason,
            })?;
            for &value in values {
                if !value.is_finite() {
                    return Err(AppMetricsError::NotFinite {
                        name: name.clone(),
                        value,
                    });
                }
                if kind == AppKind::Histogram && value < 0.0 {
                    return Err(AppMetricsError::Negative {
                        name: name.clone(),
                        value,
                    });
                }
            }
            let registered = self.series.get(name.as_str()).map(|s| s.kind);
            let earlier = new.get(name.as_str()).copied();
            if let Some(r) = registered.or(earlier) {
                if r != kind {
                    return Err(AppMetricsError::KindMismatch {
                        name: name.clone(),
                        registered: r.as_str(),
                        reported: kind.as_str(),
                    });
                }
                continue;
            }
            let exported = exported_name(name);
            let other = self
                .exported
                .get(&exported)
                .map(String::as_str)
                .or_else(|| new_exported.get(&exported).copied());
            if let Some(other) = other {
                return Err(AppMetricsError::ExportClash {
                    name: name.clone(),
                    other: other.to_string(),
                    exported,
                });
            }
            new.insert(name, kind);
            new_exported.insert(exported, name);
        }
        let would_have = self.series.len() + new.len();
        if would_have > self.max_names {
            return Err(AppMetricsError::TooManyNames {
                limit: self.max_names,
                would_have,
            });
        }
        Ok(())
    }

    /// Records a batch at `now`, or refuses it whole.
    pub fn record(&mut self, now: Duration, batch: &Batch) -> Result<(), AppMetricsError> {
        self.check(batch)?;
        for (name, &v) in &batch.gauges {
            self.gauge_unchecked(now, name, v);
        }
        for (name, &n) in &batch.counters {
            self.counter_unchecked(now, name, n);
        }
        for (name, samples) in &batch.histograms {
            let s = self.series_mut(now, name, AppKind::Histogram);
            let hist = s.slot(now).hist.get_or_insert_with(Default::default);
            for &v in samples {
                hist.record(scaled(v));
            }
        }
        Ok(())
    }

    /// Sets a gauge (one metric: the hot path of the embedding handle).
    pub fn gauge(&mut self, now: Duration, name: &str, value: f64) -> Result<(), AppMetricsError> {
        if !self.known(name, AppKind::Gauge) {
            let mut b = Batch::default();
            b.gauges.insert(name.to_string(), value);
            return self.record(now, &b);
        }
        if !value.is_finite() {
            return Err(AppMetricsError::NotFinite {
                name: name.to_string(),
                value,
            });
        }
        self.gauge_unchecked(now, name, value);
        Ok(())
    }

    /// Increases a counter.
    pub fn counter(&mut self, now: Duration, name: &str, by: u64) -> Result<(), AppMetricsError> {
        if !self.known(name, AppKind::Counter) {
            let mut b = Batch::default();
            b.counters.insert(name.to_string(), by);
            return self.record(now, &b);
        }
        self.counter_unchecked(now, name, by);
        Ok(())
    }

    /// Adds a histogram sample.
    pub fn histogram(
        &mut self,
        now: Duration,
        name: &str,
        value: f64,
    ) -> Result<(), AppMetricsError> {
        if !self.known(name, AppKind::Histogram) || !value.is_finite() || value < 0.0 {
            let mut b = Batch::default();
            b.histograms.insert(name.to_string(), vec![value]);
            return self.record(now, &b);
        }
        let s = self.series_mut(now, name, AppKind::Histogram);
        s.slot(now)
            .hist
            .get_or_insert_with(Default::default)
            .record(scaled(value));
        Ok(())
    }

    fn known(&self, name: &str, kind: AppKind) -> bool {
        self.series.get(name).is_some_and(|s| s.kind == kind)
    }

    fn gauge_unchecked(&mut self, now: Duration, name: &str, v: f64) {
        let s = self.series_mut(now, name, AppKind::Gauge);
        s.last = v;
        let slot = s.slot(now);
        slot.max = slot.max.max(v);
    }

    fn counter_unchecked(&mut self, now: Duration, name: &str, n: u64) {
        let s = self.series_mut(now, name, AppKind::Counter);
        s.total = s.total.saturating_add(n);
        let slot = s.slot(now);
        slot.increase = slot.increase.saturating_add(n);
    }

    /// The series of `name`, created when absent (the caller checked the
    /// batch).
    fn series_mut(&mut self, now: Duration, name: &str, kind: AppKind) -> &mut Series {
        if !self.series.contains_key(name) {
            self.exported.insert(exported_name(name), name.to_string());
            self.series.insert(
                name.to_string(),
                Series {
                    kind,
                    first_seen: now,
                    last: 0.0,
                    total: 0,
                    slots: VecDeque::new(),
                },
            );
        }
        self.series.get_mut(name).expect("inserted above")
    }

    /// Every metric over the `window` ending at `now`: the slots that end
    /// after `now - window`. A counter's rate divides by the time the
    /// window covers since the name was first seen, at least one slot.
    pub fn summary(&self, now: Duration, window: Duration) -> AppSummaries {
        let from = now.saturating_sub(window).as_secs() / SLOT.as_secs();
        self.series
            .iter()
            .map(|(name, s)| {
                let slots = s.slots.iter().filter(|sl| sl.index >= from);
                let summary = match s.kind {
                    AppKind::Gauge => {
                        let max = slots.map(|sl| sl.max).fold(f64::NEG_INFINITY, f64::max);
                        AppSummary::Gauge {
                            last: s.last,
                            max: if max.is_finite() { max } else { s.last },
                        }
                    }
                    AppKind::Counter => {
                        let increase: u64 = slots.map(|sl| sl.increase).sum();
                        let covered = window
                            .min(now.saturating_sub(s.first_seen))
                            .max(SLOT)
                            .as_secs_f64();
                        AppSummary::Counter {
                            total: s.total,
                            rate_per_s: increase as f64 / covered,
                        }
                    }
                    AppKind::Histogram => {
                        let mut merged = LogHistogram::<HIST_BUCKETS>::default();
                        for sl in slots {
                            if let Some(h) = &sl.hist {
                                merged.merge(h);
                            }
                        }
                        AppSummary::Histogram {
                            count: merged.count(),
                            p50: merged.quantile(0.5).map(|v| v / HIST_SCALE),
                            p99: merged.quantile(0.99).map(|v| v / HIST_SCALE),
                        }
                    }
                };
                (name.clone(), summary)
            })
            .collect()
    }
}

fn scaled(v: f64) -> u64 {
    // Checked finite and non-negative; `as` saturates past u64::MAX.
    (v * HIST_SCALE).round() as u64
}
