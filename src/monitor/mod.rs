//! The leader's monitor: every `monitor_interval_ms` (replicated policy)
//! it gathers every member's [`crate::model::NodeSummary`], derives the
//! cluster's [`crate::model::ClusterMetrics`], evaluates the rules
//! (`src/rules/`) and proposes the switch they decide, fenced by its term.
//!
//! It runs only while its node leads. Each round is published on a
//! [`MonitorHandle`] (`GET /v1/monitor`, `GET /v1/events`).
//!
//! - [`derive`]: summaries → cluster metrics (pure).
//! - [`gather`]: fetching the summaries over HTTP, bounded concurrency and
//!   a per-member deadline.
//! - [`task`]: the leader-only loop.
//! - [`round`]: what a round saw and did; the handle rounds are published on.
//! - [`telemetry`]: the monitor's Prometheus series.

pub mod derive;
pub mod gather;
pub mod round;
pub mod task;
pub mod telemetry;

pub use round::{MonitorHandle, MonitorRound, RoundAction};
pub use task::{Monitor, MonitorSettings};
