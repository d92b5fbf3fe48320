//! `[rules]` (the monitor's schedule, hysteresis and rule thresholds that
//! seed the replicated policy at bootstrap) and `[monitor]` (this node's
//! own settings for gathering, used while it leads).
//!
//! `config/rules.toml` lists every `[rules]` key with its default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check_range, ConfigError};
use crate::model::custom_rule::CustomRuleSpec;
use crate::model::{Policy, PolicyUpdate, ThresholdsUpdate};

/// Seeds of the replicated policy's monitor and rule keys. Like the other
/// policy seeds in `[switch]`, they are read once, when the cluster is
/// bootstrapped; afterwards `PUT /v1/policy` changes them. Absent keys
/// keep the defaults of [`Policy::default`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Period of the monitor's rounds, ms. 100..=86_400_000. Default
    /// 60_000 (the design).
    pub monitor_interval_ms: Option<u64>,
    /// Consecutive rounds a rule must hold before it acts. 1..=1000.
    /// Default 3.
    pub hold_rounds: Option<u32>,
    /// Deferral of a return to a topology left less than this long ago,
    /// ms. 0..=604_800_000. Default 900_000.
    pub flap_window_ms: Option<u64>,
    /// `[rules.thresholds]`: the built-in rules' thresholds (names and
    /// ranges in `model::policy::Thresholds`).
    pub thresholds: ThresholdsUpdate,
    /// `[[rules.custom]]`: the operators' own rules (`name`, `when`,
    /// optional `hold_rounds` and `from`, `switch_to`; at most 64; checked
    /// like `PUT /v1/policy`'s `custom_rules`). Default none.
    pub custom: Vec<CustomRuleSpec>,
    /// Built-in rules turned off, by name. Default none.
    pub disabled: Vec<String>,
}

impl RulesConfig {
    /// The update these keys make to a default policy.
    pub fn update(&self) -> PolicyUpdate {
        PolicyUpdate {
            monitor_interval_ms: self.monitor_interval_ms,
            hold_rounds: self.hold_rounds,
            flap_window_ms: self.flap_window_ms,
            thresholds: self.thresholds.clone(),
            custom_rules: Some(self.custom.iter().cloned().map(Into::into).collect()),
            disabled_rules: Some(self.disabled.clone()),
            ..PolicyUpdate::default()
        }
    }

    /// Checks every key; the error names the first bad one (`rules.`…).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.update()
            .check()
            .map_err(|e| ConfigError::invalid(format!("rules.{}", e.key), e.reason))
    }

    /// Applies these keys to `policy`.
    pub fn apply_to(&self, policy: &mut Policy) {
        // Validated at load: apply cannot refuse an update without profiles.
        if let Err(e) = self.update().apply(policy) {
            tracing::error!(error = %e, "[rules] not applied");
        }
    }
}

/// `[app_metrics]`: this node's limits on the application's own metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppMetricsConfig {
    /// Most metric names this node keeps (a report that would add more is
    /// refused, naming this limit). 1..=1024. Default 32 (the issue: a
    /// handful of business figures, bounded `/metrics` series and summary
    /// size).
    pub max_names: u64,
}

impl Default for AppMetricsConfig {
    fn default() -> Self {
        AppMetricsConfig {
            max_names: crate::app_metrics::DEFAULT_MAX_NAMES as u64,
        }
    }
}

impl AppMetricsConfig {
    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("app_metrics.max_names", self.max_names, 1, 1024)
    }
}

/// This node's monitor settings (used while it is the leader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// A link's capacity, bytes/s, against which a node's traffic is the
    /// bandwidth utilization. 1..=10^12. Default 125_000_000 (1 Gbit/s).
    pub link_capacity_bytes_per_s: u64,
    /// Links per node that count as full connection load. 1..=1_000_000.
    /// Default 1_000 (guess: a few thousand TCP connections per process is
    /// where file descriptors and per-link buffers start to hurt).
    pub max_links_per_node: u64,
    /// Summaries gathered at once. 1..=1024. Default 32.
    pub gather_concurrency: u64,
    /// Deadline of one member's summary, ms. 10..=60_000. Default 1_000.
    pub gather_timeout_ms: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            link_capacity_bytes_per_s: 125_000_000,
            max_links_per_node: 1_000,
            gather_concurrency: 32,
            gather_timeout_ms: 1_000,
        }
    }
}

impl MonitorConfig {
    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "monitor.link_capacity_bytes_per_s",
            self.link_capacity_bytes_per_s,
            1,
            1_000_000_000_000,
        )?;
        check_range(
            "monitor.max_links_per_node",
            self.max_links_per_node,
            1,
            1_000_000,
        )?;
        check_range(
            "monitor.gather_concurrency",
            self.gather_concurrency,
            1,
            1024,
        )?;
        check_range(
            "monitor.gather_timeout_ms",
            self.gather_timeout_ms,
            10,
            60_000,
        )?;
        Ok(())
    }

    /// A member's summary deadline.
    pub fn gather_timeout(&self) -> Duration {
        Duration::from_millis(self.gather_timeout_ms)
    }
}
