//! The replicated policy: cooldown, history retention, the monitor's
//! schedule, the switching rules' thresholds and hysteresis, and the
//! operators' own workload profiles. Changed only through Raft
//! ([`PolicyUpdate`], which names the keys it changes); every value has a
//! documented range, checked by [`PolicyUpdate::check`] with an error that
//! names the key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::custom_rule::{check_disabled, check_rules, CustomRule};
use super::{OverlayConfig, Rejection, Topology};

/// Longest cooldown a policy may set: 7 days.
pub const MAX_COOLDOWN_MS: u64 = 7 * 24 * 3600 * 1000;
/// Largest history retention a policy may set.
pub const MAX_HISTORY_RETENTION: u32 = 100_000;
/// Shortest and longest monitor interval, ms.
pub const MONITOR_INTERVAL_RANGE_MS: (u64, u64) = (100, 24 * 3600 * 1000);
/// Largest `hold_rounds`.
pub const MAX_HOLD_ROUNDS: u32 = 1000;
/// Most user profiles in a policy.
pub const MAX_PROFILES: usize = 32;
/// Most size ranges in one profile.
pub const MAX_PROFILE_RANGES: usize = 16;
/// Longest profile name, bytes.
pub const MAX_PROFILE_NAME_LEN: usize = 64;
/// Names of the built-in rules, in the order they are evaluated
/// (`src/rules/`).
pub const BUILTIN_RULES: [&str; 4] = [
    "very_large_cluster",
    "large_mesh_strain",
    "small_cluster_degraded",
    "event_driven_workload",
];
/// Names of the built-in workload profiles (`src/rules/profiles.rs`); a
/// user profile may not take one.
pub const BUILTIN_PROFILES: [&str; 5] = [
    "low_latency",
    "high_throughput",
    "event_driven",
    "batch_processing",
    "realtime_gaming",
];

/// The thresholds of the four built-in rules (`src/rules/`), with the
/// design's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Rule `small_cluster_degraded` applies below this size. 1..=1_000_000.
    /// Design: 10.
    pub small_cluster_max_nodes: u32,
    /// Overlay RTT p99 above which a small HyParView cluster is degraded,
    /// ms. 0.001..=600_000. Design: 50.
    pub latency_p99_ms: f64,
    /// Connectivity score below which a small HyParView cluster is
    /// degraded. 0..=1. Design: 0.9.
    pub min_connectivity: f64,
    /// Rule `large_mesh_strain` applies above this size. 1..=1_000_000.
    /// Design: 20.
    pub large_mesh_min_nodes: u32,
    /// Partition events in a window above which a large full mesh is
    /// strained. 0..=1_000_000. Design: 2.
    pub max_partitions: u32,
    /// Connection load above which a large full mesh is strained. 0..=1.
    /// Design: 0.8.
    pub max_connection_load: f64,
    /// Rule `very_large_cluster` applies above this size. 1..=10_000_000.
    /// Design: 1,000.
    pub very_large_min_nodes: u32,
    /// Bandwidth utilization above which a very large cluster moves to
    /// client-server. 0..=1. Design: 0.8.
    pub max_bandwidth_utilization: f64,
    /// Broadcast hops above which a very large cluster moves to
    /// client-server. 1..=1000. Design: 8.
    pub max_hops: u32,
    /// Broadcast share at or above which the workload is event-driven.
    /// 0.5..=1. Design: 0.7.
    pub event_driven_share: f64,
    /// Fewest application messages in a window before the workload is
    /// classified (fewer: `mixed`). 1..=1_000_000_000. Guess: 100, so that
    /// a handful of messages does not decide.
    pub min_messages: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            small_cluster_max_nodes: 10,
            latency_p99_ms: 50.0,
            min_connectivity: 0.9,
            large_mesh_min_nodes: 20,
            max_partitions: 2,
            max_connection_load: 0.8,
            very_large_min_nodes: 1000,
            max_bandwidth_utilization: 0.8,
            max_hops: 8,
            event_driven_share: 0.7,
            min_messages: 100,
        }
    }
}

/// Changes to some thresholds (`None` keeps the value). Also the shape of
/// `[rules.thresholds]` in the node config (unknown keys refused there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsUpdate {
    pub small_cluster_max_nodes: Option<u32>,
    pub latency_p99_ms: Option<f64>,
    pub min_connectivity: Option<f64>,
    pub large_mesh_min_nodes: Option<u32>,
    pub max_partitions: Option<u32>,
    pub max_connection_load: Option<f64>,
    pub very_large_min_nodes: Option<u32>,
    pub max_bandwidth_utilization: Option<f64>,
    pub max_hops: Option<u32>,
    pub event_driven_share: Option<f64>,
    pub min_messages: Option<u64>,
}

/// One size range of a workload profile: clusters of up to `max_nodes`
/// members (and more than the previous range's) prefer `topology`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRange {
    /// Inclusive upper bound of the range; `None` for the last, unbounded
    /// range.
    pub max_nodes: Option<u32>,
    pub topology: Topology,
    /// The overlay parameters this profile wants (`None`: the leader's
    /// configured defaults for `topology`).
    pub config: Option<OverlayConfig>,
}

/// A workload profile: size ranges in ascending order, the last unbounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadProfile {
    /// What the profile is for (shown to operators).
    pub description: String,
    pub ranges: Vec<ProfileRange>,
}

impl WorkloadProfile {
    /// The range that covers a cluster of `nodes` members.
    pub fn range_for(&self, nodes: u32) -> Option<&ProfileRange> {
        self.ranges
            .iter()
            .find(|r| r.max_nodes.is_none_or(|m| nodes <= m))
    }

    /// Checks the ranges: at least one, at most [`MAX_PROFILE_RANGES`],
    /// ascending bounds, the last unbounded, configs that match their
    /// topology and are valid. `key` prefixes the error's key.
    pub fn check(&self, key: &str) -> Result<(), PolicyError> {
        if self.ranges.is_empty() || self.ranges.len() > MAX_PROFILE_RANGES {
            return invalid(
                format!("{key}.ranges"),
                format!(
                    "must hold 1..={MAX_PROFILE_RANGES} ranges, got {}",
                    self.ranges.len()
                ),
            );
        }
        let mut below = 0u32;
        for (i, r) in self.ranges.iter().enumerate() {
            let last = i + 1 == self.ranges.len();
            let at = format!("{key}.ranges[{i}]");
            match r.max_nodes {
                None if !last => {
                    return invalid(
                        format!("{at}.max_nodes"),
                        "is missing: only the last range is unbounded".into(),
                    )
                }
                Some(_) if last => {
                    return invalid(
                        format!("{at}.max_nodes"),
                        "must be absent: the last range is unbounded".into(),
                    )
                }
                Some(m) if m <= below && i > 0 => {
                    return invalid(
                        format!("{at}.max_nodes"),
                        format!("{m} must exceed the previous range's {below}"),
                    )
                }
                Some(0) => return invalid(format!("{at}.max_nodes"), "must be at least 1".into()),
                Some(m) => below = m,
                None => {}
            }
            if let Some(c) = &r.config {
                if c.topology() != r.topology {
                    return invalid(
                        format!("{at}.config"),
                        format!("is for {} but the topology is {}", c.topology(), r.topology),
                    );
                }
                c.validate()
                    .or_else(|e| invalid(format!("{at}.config"), e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// The replicated policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Minimum time between an automatic switch and the previous committed
    /// switch, ms. 0..=7 days.
    pub cooldown_ms: u64,
    /// Whether the monitor may propose switches on its own.
    pub auto_switch: bool,
    /// Transitions kept in the history (oldest dropped first).
    /// 1..=100_000.
    pub history_retention: u32,
    /// Period of the leader's monitor rounds, ms. 100..=86_400_000.
    /// Design: 60 s.
    pub monitor_interval_ms: u64,
    /// Consecutive rounds a rule must hold before it acts. 1..=1000.
    /// Guess: 3, so that one noisy round never switches.
    pub hold_rounds: u32,
    /// A rule that would return to a topology left less than this long ago
    /// is deferred, ms. 0..=7 days. Guess: 15 minutes (three default
    /// cooldowns).
    pub flap_window_ms: u64,
    pub thresholds: Thresholds,
    /// The operators' own workload profiles, by name (never a built-in
    /// name).
    pub profiles: BTreeMap<String, WorkloadProfile>,
    /// The operators' own rules, evaluated after the built-in ones in this
    /// order (at most 64, names unique).
    pub custom_rules: Vec<CustomRule>,
    /// Built-in rules turned off, by name (each of [`BUILTIN_RULES`] at
    /// most once).
    pub disabled_rules: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            // Guess: long enough that a switch settles and its metrics are
            // seen before the next automatic one.
            cooldown_ms: 300_000,
            auto_switch: false,
            history_retention: 1000,
            monitor_interval_ms: 60_000,
            hold_rounds: 3,
            flap_window_ms: 900_000,
            thresholds: Thresholds::default(),
            profiles: BTreeMap::new(),
            custom_rules: Vec::new(),
            disabled_rules: Vec::new(),
        }
    }
}

/// A change to some fields of the policy (`None` keeps the current value;
/// inside `thresholds` too). `profiles` sets the named profiles (`None`
/// deletes one) and keeps the others. `custom_rules` and `disabled_rules`
/// replace the whole list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyUpdate {
    pub cooldown_ms: Option<u64>,
    pub auto_switch: Option<bool>,
    pub history_retention: Option<u32>,
    pub monitor_interval_ms: Option<u64>,
    pub hold_rounds: Option<u32>,
    pub flap_window_ms: Option<u64>,
    pub thresholds: ThresholdsUpdate,
    pub profiles: BTreeMap<String, Option<WorkloadProfile>>,
    pub custom_rules: Option<Vec<CustomRule>>,
    pub disabled_rules: Option<Vec<String>>,
}

/// A policy value outside its range; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct PolicyError {
    /// Dotted key, e.g. `thresholds.min_connectivity`.
    pub key: String,
    pub reason: String,
}

impl From<PolicyError> for Rejection {
    fn from(e: PolicyError) -> Self {
        Rejection::InvalidPolicy {
            detail: e.to_string(),
        }
    }
}

fn invalid(key: impl Into<String>, reason: String) -> Result<(), PolicyError> {
    Err(PolicyError {
        key: key.into(),
        reason,
    })
}

fn check_u64(key: &str, v: Option<u64>, min: u64, max: u64) -> Result<(), PolicyError> {
    match v {
        Some(v) if v < min || v > max => invalid(key, format!("{v} is outside {min}..={max}")),
        _ => Ok(()),
    }
}

fn check_f64(key: &str, v: Option<f64>, min: f64, max: f64) -> Result<(), PolicyError> {
    match v {
        Some(v) if !v.is_finite() || v < min || v > max => {
            invalid(key, format!("{v} is outside {min}..={max}"))
        }
        _ => Ok(()),
    }
}

impl ThresholdsUpdate {
    /// Whether no threshold is set.
    pub fn is_empty(&self) -> bool {
        *self == ThresholdsUpdate::default()
    }

    fn check(&self) -> Result<(), PolicyError> {
        let u = |v: Option<u32>| v.map(u64::from);
        check_u64(
            "thresholds.small_cluster_max_nodes",
            u(self.small_cluster_max_nodes),
            1,
            1_000_000,
        )?;
        check_f64(
            "thresholds.latency_p99_ms",
            self.latency_p99_ms,
            0.001,
            600_000.0,
        )?;
        check_f64(
            "thresholds.min_connectivity",
            self.min_connectivity,
            0.0,
            1.0,
        )?;
        check_u64(
            "thresholds.large_mesh_min_nodes",
            u(self.large_mesh_min_nodes),
            1,
            1_000_000,
        )?;
        check_u64(
            "thresholds.max_partitions",
            u(self.max_partitions),
            0,
            1_000_000,
        )?;
        check_f64(
            "thresholds.max_connection_load",
            self.max_connection_load,
            0.0,
            1.0,
        )?;
        check_u64(
            "thresholds.very_large_min_nodes",
            u(self.very_large_min_nodes),
            1,
            10_000_000,
        )?;
        check_f64(
            "thresholds.max_bandwidth_utilization",
            self.max_bandwidth_utilization,
            0.0,
            1.0,
        )?;
        check_u64("thresholds.max_hops", u(self.max_hops), 1, 1000)?;
        check_f64(
            "thresholds.event_driven_share",
            self.event_driven_share,
            0.5,
            1.0,
        )?;
        check_u64(
            "thresholds.min_messages",
            self.min_messages,
            1,
            1_000_000_000,
        )?;
        Ok(())
    }

    fn apply(&self, t: &mut Thresholds) {
        fn set<T: Copy>(dst: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *dst = v;
            }
        }
        set(&mut t.small_cluster_max_nodes, self.small_cluster_max_nodes);
        set(&mut t.latency_p99_ms, self.latency_p99_ms);
        set(&mut t.min_connectivity, self.min_connectivity);
        set(&mut t.large_mesh_min_nodes, self.large_mesh_min_nodes);
        set(&mut t.max_partitions, self.max_partitions);
        set(&mut t.max_connection_load, self.max_connection_load);
        set(&mut t.very_large_min_nodes, self.very_large_min_nodes);
        set(
            &mut t.max_bandwidth_utilization,
            self.max_bandwidth_utilization,
        );
        set(&mut t.max_hops, self.max_hops);
        set(&mut t.event_driven_share, self.event_driven_share);
        set(&mut t.min_messages, self.min_messages);
    }
}

impl PolicyUpdate {
    /// Whether the update sets nothing.
    pub fn is_empty(&self) -> bool {
        *self == PolicyUpdate::default()
    }

    /// Checks the limits of the fields it sets (`invalid_policy` naming
    /// the first bad key). The state machine applies only a valid update;
    /// the API checks before proposing, so a bad value writes nothing.
    pub fn check(&self) -> Result<(), PolicyError> {
        check_u64("cooldown_ms", self.cooldown_ms, 0, MAX_COOLDOWN_MS)?;
        check_u64(
            "history_retention",
            self.history_retention.map(u64::from),
            1,
            MAX_HISTORY_RETENTION.into(),
        )?;
        let (lo, hi) = MONITOR_INTERVAL_RANGE_MS;
        check_u64("monitor_interval_ms", self.monitor_interval_ms, lo, hi)?;
        check_u64(
            "hold_rounds",
            self.hold_rounds.map(u64::from),
            1,
            MAX_HOLD_ROUNDS.into(),
        )?;
        check_u64("flap_window_ms", self.flap_window_ms, 0, MAX_COOLDOWN_MS)?;
        self.thresholds.check()?;
        for (name, profile) in &self.profiles {
            let key = format!("profiles.{name}");
            if name.is_empty()
                || name.len() > MAX_PROFILE_NAME_LEN
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return invalid(
                    key,
                    format!("a profile name is 1..={MAX_PROFILE_NAME_LEN} bytes of a-z, 0-9 and _"),
                );
            }
            if BUILTIN_PROFILES.contains(&name.as_str()) {
                return invalid(key, format!("`{name}` is a built-in profile"));
            }
            if let Some(p) = profile {
                p.check(&key)?;
            }
        }
        if let Some(rules) = &self.custom_rules {
            check_rules(rules)?;
        }
        if let Some(names) = &self.disabled_rules {
            check_disabled(names)?;
        }
        Ok(())
    }

    /// Applies a checked update; the caller has run [`Self::check`]. Also
    /// checks the profile count of the result (`invalid_policy`, nothing
    /// changed).
    pub fn apply(&self, policy: &mut Policy) -> Result<(), PolicyError> {
        let mut profiles = policy.profiles.clone();
        for (name, p) in &self.profiles {
            match p {
                Some(p) => {
                    profiles.insert(name.clone(), p.clone());
                }
                None => {
                    profiles.remove(name);
                }
            }
        }
        if profiles.len() > MAX_PROFILES {
            return invalid(
                "profiles",
                format!(
                    "at most {MAX_PROFILES} user profiles, this update leaves {}",
                    profiles.len()
                ),
            );
        }
        policy.profiles = profiles;
        fn set<T: Copy>(dst: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *dst = v;
            }
        }
        set(&mut policy.cooldown_ms, self.cooldown_ms);
        set(&mut policy.auto_switch, self.auto_switch);
        set(&mut policy.history_retention, self.history_retention);
        set(&mut policy.monitor_interval_ms, self.monitor_interval_ms);
        set(&mut policy.hold_rounds, self.hold_rounds);
        set(&mut policy.flap_window_ms, self.flap_window_ms);
        self.thresholds.apply(&mut policy.thresholds);
        if let Some(rules) = &self.custom_rules {
            policy.custom_rules = rules.clone();
        }
        if let Some(names) = &self.disabled_rules {
            policy.disabled_rules = names.clone();
        }
        Ok(())
    }

    /// An update that sets every field to `policy`'s value (profiles
    /// included): what bootstrap writes.
    pub fn whole(policy: &Policy) -> Self {
        let t = &policy.thresholds;
        PolicyUpdate {
            cooldown_ms: Some(policy.cooldown_ms),
            auto_switch: Some(policy.auto_switch),
            history_retention: Some(policy.history_retention),
            monitor_interval_ms: Some(policy.monitor_interval_ms),
            hold_rounds: Some(policy.hold_rounds),
            flap_window_ms: Some(policy.flap_window_ms),
            thresholds: ThresholdsUpdate {
                small_cluster_max_nodes: Some(t.small_cluster_max_nodes),
                latency_p99_ms: Some(t.latency_p99_ms),
                min_connectivity: Some(t.min_connectivity),
                large_mesh_min_nodes: Some(t.large_mesh_min_nodes),
                max_partitions: Some(t.max_partitions),
                max_connection_load: Some(t.max_connection_load),
                very_large_min_nodes: Some(t.very_large_min_nodes),
                max_bandwidth_utilization: Some(t.max_bandwidth_utilization),
                max_hops: Some(t.max_hops),
                event_driven_share: Some(t.event_driven_share),
                min_messages: Some(t.min_messages),
            },
            profiles: policy
                .profiles
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            custom_rules: Some(policy.custom_rules.clone()),
            disabled_rules: Some(policy.disabled_rules.clone()),
        }
    }
}
