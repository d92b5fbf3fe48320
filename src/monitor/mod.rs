//! The leader's monitor: every `monitor_interval_ms` (replicated policy)
//! it gathers every member's [`crate::model::NodeSummary`], derives the
//! cluster's [`crate::model::ClusterMetrics`], evaluates the rules
//! (`src/rules/`) and proposes the switch they decide, fenced by its term.
//!
//! It runs only while its node leads. Each round is published on a
//! [`MonitorHandle`] (`GET /v1/monitor`, `GET /v1/events`).

pub mod round;

pub use round::{MonitorHandle, MonitorRound, RoundAction};
