//! `GET` / `PUT /v1/policy`: the replicated switching policy.
//!
//! The JSON shapes here are separate from the log's [`Policy`] and
//! [`PolicyUpdate`]: a profile range's `overlay_config` is a JSON patch
//! over the leader's configured defaults of its topology, resolved to a
//! full [`OverlayConfig`] before anything is proposed.
//!
//! A `PUT` body is decoded key by key ([`PolicyRequest::from_json`]) so that
//! an unknown key or a value of the wrong type is refused with its dotted
//! name (`thresholds.min_connectivity`, `profiles.mine.ranges[0].topology`)
//! as `invalid_policy`, like a value out of range.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::BadRequest;
use crate::model::custom_rule::CustomRuleSpec;
use crate::model::policy::ProfileRange;
use crate::model::{
    OverlayConfig, Policy, PolicyError, PolicyUpdate, Rejection, Thresholds, ThresholdsUpdate,
    Topology, WorkloadProfile,
};

/// The keys of a `PUT /v1/policy` body.
pub const POLICY_KEYS: [&str; 10] = [
    "cooldown_ms",
    "auto_switch",
    "history_retention",
    "monitor_interval_ms",
    "hold_rounds",
    "flap_window_ms",
    "thresholds",
    "profiles",
    "custom_rules",
    "disabled_rules",
];

/// The keys of `thresholds`.
pub const THRESHOLD_KEYS: [&str; 11] = [
    "small_cluster_max_nodes",
    "latency_p99_ms",
    "min_connectivity",
    "large_mesh_min_nodes",
    "max_partitions",
    "max_connection_load",
    "very_large_min_nodes",
    "max_bandwidth_utilization",
    "max_hops",
    "event_driven_share",
    "min_messages",
];

/// The rules' thresholds (names and ranges in
/// [`crate::model::Thresholds`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdsView {
    pub small_cluster_max_nodes: u32,
    pub latency_p99_ms: f64,
    pub min_connectivity: f64,
    pub large_mesh_min_nodes: u32,
    pub max_partitions: u32,
    pub max_connection_load: f64,
    pub very_large_min_nodes: u32,
    pub max_bandwidth_utilization: f64,
    pub max_hops: u32,
    pub event_driven_share: f64,
    pub min_messages: u64,
}

impl From<&Thresholds> for ThresholdsView {
    fn from(t: &Thresholds) -> Self {
        ThresholdsView {
            small_cluster_max_nodes: t.small_cluster_max_nodes,
            latency_p99_ms: t.latency_p99_ms,
            min_connectivity: t.min_connectivity,
            large_mesh_min_nodes: t.large_mesh_min_nodes,
            max_partitions: t.max_partitions,
            max_connection_load: t.max_connection_load,
            very_large_min_nodes: t.very_large_min_nodes,
            max_bandwidth_utilization: t.max_bandwidth_utilization,
            max_hops: t.max_hops,
            event_driven_share: t.event_driven_share,
            min_messages: t.min_messages,
        }
    }
}

impl ThresholdsView {
    /// `(name, value)` pairs in [`THRESHOLD_KEYS`] order, for tables.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (THRESHOLD_KEYS[0], self.small_cluster_max_nodes.to_string()),
            (THRESHOLD_KEYS[1], self.latency_p99_ms.to_string()),
            (THRESHOLD_KEYS[2], self.min_connectivity.to_string()),
            (THRESHOLD_KEYS[3], self.large_mesh_min_nodes.to_string()),
            (THRESHOLD_KEYS[4], self.max_partitions.to_string()),
            (THRESHOLD_KEYS[5], self.max_connection_load.to_string()),
            (THRESHOLD_KEYS[6], self.very_large_min_nodes.to_string()),
            (
                THRESHOLD_KEYS[7],
                self.max_bandwidth_utilization.to_string(),
            ),
            (THRESHOLD_KEYS[8], self.max_hops.to_string()),
            (THRESHOLD_KEYS[9], self.event_driven_share.to_string()),
            (THRESHOLD_KEYS[10], self.min_messages.to_string()),
        ]
    }
}

/// One size range of a profile as the API shows it: `overlay_config` is
/// the full parameter object (`null`: the leader's defaults at the time of
/// an `optimize`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRangeView {
    /// Inclusive upper bound; `null` for the last, unbounded range.
    pub max_nodes: Option<u32>,
    pub topology: Topology,
    pub overlay_config: Option<Value>,
}

/// A workload profile as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileView {
    pub description: String,
    pub ranges: Vec<ProfileRangeView>,
}

impl From<&WorkloadProfile> for ProfileView {
    fn from(p: &WorkloadProfile) -> Self {
        ProfileView {
            description: p.description.clone(),
            ranges: p
                .ranges
                .iter()
                .map(|r| ProfileRangeView {
                    max_nodes: r.max_nodes,
                    topology: r.topology,
                    overlay_config: r.config.as_ref().map(OverlayConfig::params_json),
                })
                .collect(),
        }
    }
}

/// The current policy: every key of [`Policy`], plus the names of the
/// built-in workload profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyView {
    /// Minimum time between a committed switch and the next automatic one,
    /// ms.
    pub cooldown_ms: u64,
    /// Whether the monitor may propose switches on its own.
    pub auto_switch: bool,
    /// Transitions kept in the history.
    pub history_retention: u32,
    /// Period of the leader's monitor rounds, ms.
    pub monitor_interval_ms: u64,
    /// Consecutive rounds a rule must hold before it acts.
    pub hold_rounds: u32,
    /// A return to a topology left less than this long ago is deferred, ms.
    pub flap_window_ms: u64,
    pub thresholds: ThresholdsView,
    /// The operators' own profiles, by name.
    pub profiles: BTreeMap<String, ProfileView>,
    /// Names of the built-in profiles (`src/rules/profiles.rs`).
    pub builtin_profiles: Vec<String>,
    /// The operators' own rules, in evaluation order.
    pub custom_rules: Vec<CustomRuleSpec>,
    /// Built-in rules turned off.
    pub disabled_rules: Vec<String>,
    /// Names of the built-in rules, in evaluation order.
    pub builtin_rules: Vec<String>,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        PolicyView {
            cooldown_ms: p.cooldown_ms,
            auto_switch: p.auto_switch,
            history_retention: p.history_retention,
            monitor_interval_ms: p.monitor_interval_ms,
            hold_rounds: p.hold_rounds,
            flap_window_ms: p.flap_window_ms,
            thresholds: (&p.thresholds).into(),
            profiles: p
                .profiles
                .iter()
                .map(|(k, v)| (k.clone(), v.into()))
                .collect(),
            builtin_profiles: crate::rules::profiles::builtin()
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            custom_rules: p.custom_rules.iter().map(CustomRuleSpec::from).collect(),
            disabled_rules: p.disabled_rules.clone(),
            builtin_rules: crate::model::policy::BUILTIN_RULES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// One range of a profile in a `PUT` body, e.g. `{"max_nodes": 10,
/// "topology": "full_mesh", "overlay_config": {"redial_ms": 500}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRangeRequest {
    /// Inclusive upper bound; absent on the last range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<u32>,
    pub topology: Topology,
    /// Keys of the topology's overlay config to override, over the
    /// leader's configured defaults (absent: the defaults when the profile
    /// is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay_config: Option<Value>,
}

/// A profile in a `PUT` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    #[serde(default)]
    pub description: String,
    pub ranges: Vec<ProfileRangeRequest>,
}

/// Changes to some thresholds (absent keys keep their value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_cluster_max_nodes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_connectivity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_mesh_min_nodes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_partitions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_load: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub very_large_min_nodes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bandwidth_utilization: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hops: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_driven_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_messages: Option<u64>,
}

impl ThresholdsRequest {
    /// Whether no threshold is set.
    pub fn is_empty(&self) -> bool {
        *self == ThresholdsRequest::default()
    }

    fn to_update(&self) -> ThresholdsUpdate {
        ThresholdsUpdate {
            small_cluster_max_nodes: self.small_cluster_max_nodes,
            latency_p99_ms: self.latency_p99_ms,
            min_connectivity: self.min_connectivity,
            large_mesh_min_nodes: self.large_mesh_min_nodes,
            max_partitions: self.max_partitions,
            max_connection_load: self.max_connection_load,
            very_large_min_nodes: self.very_large_min_nodes,
            max_bandwidth_utilization: self.max_bandwidth_utilization,
            max_hops: self.max_hops,
            event_driven_share: self.event_driven_share,
            min_messages: self.min_messages,
        }
    }
}

/// Body of `PUT /v1/policy`: the keys to change (absent ones keep their
/// value, inside `thresholds` too). `profiles` maps a name to a profile, or
/// to `null` to delete it; other user profiles are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_switch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_retention: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_rounds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_window_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "ThresholdsRequest::is_empty")]
    pub thresholds: ThresholdsRequest,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Option<ProfileRequest>>,
    /// Replaces the whole list of custom rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_rules: Option<Vec<CustomRuleSpec>>,
    /// Replaces the list of disabled built-in rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_rules: Option<Vec<String>>,
}

/// A refused policy value: 400 `invalid_policy` naming the key.
fn invalid(key: impl Into<String>, reason: impl Into<String>) -> BadRequest {
    policy_error(PolicyError {
        key: key.into(),
        reason: reason.into(),
    })
}

fn policy_error(e: PolicyError) -> BadRequest {
    let r = Rejection::from(e);
    BadRequest {
        code: r.code(),
        message: r.to_string(),
    }
}

/// Decodes `value` as `T`, the error naming `key`.
fn field<T: DeserializeOwned>(key: &str, value: &Value) -> Result<T, BadRequest> {
    serde_json::from_value(value.clone()).map_err(|e| invalid(key, e.to_string()))
}

/// Refuses keys of `obj` not in `known`, naming the first one.
fn known_keys(prefix: &str, obj: &Map<String, Value>, known: &[&str]) -> Result<(), BadRequest> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            format!("{prefix}{k}"),
            format!("unknown key; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn object<'a>(key: &str, value: &'a Value) -> Result<&'a Map<String, Value>, BadRequest> {
    value
        .as_object()
        .ok_or_else(|| invalid(key, "must be a JSON object"))
}

impl PolicyRequest {
    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        *self == PolicyRequest::default()
    }

    /// Decodes a `PUT` body key by key: an unknown key or a wrongly typed
    /// value is `invalid_policy` naming it.
    pub fn from_json(body: &Value) -> Result<Self, BadRequest> {
        let obj = body
            .as_object()
            .ok_or_else(|| BadRequest::new("invalid JSON body: expected a JSON object"))?;
        known_keys("", obj, &POLICY_KEYS)?;
        let mut r = PolicyRequest::default();
        for (k, v) in obj {
            match k.as_str() {
                "cooldown_ms" => r.cooldown_ms = Some(field(k, v)?),
                "auto_switch" => r.auto_switch = Some(field(k, v)?),
                "history_retention" => r.history_retention = Some(field(k, v)?),
                "monitor_interval_ms" => r.monitor_interval_ms = Some(field(k, v)?),
                "hold_rounds" => r.hold_rounds = Some(field(k, v)?),
                "flap_window_ms" => r.flap_window_ms = Some(field(k, v)?),
                "thresholds" => r.thresholds = thresholds_from_json(v)?,
                "profiles" => {
                    for (name, p) in object("profiles", v)? {
                        let key = format!("profiles.{name}");
                        let profile = match p {
                            Value::Null => None,
                            p => Some(profile_from_json(&key, p)?),
                        };
                        r.profiles.insert(name.clone(), profile);
                    }
                }
                "custom_rules" => r.custom_rules = Some(custom_rules_from_json(v)?),
                "disabled_rules" => r.disabled_rules = Some(field(k, v)?),
                _ => unreachable!("known_keys refused other keys"),
            }
        }
        Ok(r)
    }

    /// The update to propose, checked (`PolicyUpdate::check`, the state
    /// machine's own check) before anything is written. `defaults` gives
    /// the leader's configured overlay defaults, over which a range's
    /// `overlay_config` patch is resolved.
    pub fn to_update(
        &self,
        defaults: impl Fn(Topology) -> OverlayConfig,
    ) -> Result<PolicyUpdate, BadRequest> {
        if self.is_empty() {
            return Err(BadRequest::new(format!(
                "set at least one of {}",
                POLICY_KEYS.join(", ")
            )));
        }
        let mut profiles = BTreeMap::new();
        for (name, p) in &self.profiles {
            let resolved = match p {
                None => None,
                Some(p) => Some(resolve_profile(&format!("profiles.{name}"), p, &defaults)?),
            };
            profiles.insert(name.clone(), resolved);
        }
        let update = PolicyUpdate {
            cooldown_ms: self.cooldown_ms,
            auto_switch: self.auto_switch,
            history_retention: self.history_retention,
            monitor_interval_ms: self.monitor_interval_ms,
            hold_rounds: self.hold_rounds,
            flap_window_ms: self.flap_window_ms,
            thresholds: self.thresholds.to_update(),
            profiles,
            custom_rules: self
                .custom_rules
                .as_ref()
                .map(|rules| rules.iter().cloned().map(Into::into).collect()),
            disabled_rules: self.disabled_rules.clone(),
        };
        update.check().map_err(policy_error)?;
        Ok(update)
    }
}

/// `custom_rules`: a list of rules, each decoded on its own so that the
/// error names it (`custom_rules[2]` or `custom_rules.NAME`).
fn custom_rules_from_json(v: &Value) -> Result<Vec<CustomRuleSpec>, BadRequest> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid("custom_rules", "must be a JSON array"))?;
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let key = match r.get("name").and_then(Value::as_str) {
                Some(name) => format!("custom_rules.{name}"),
                None => format!("custom_rules[{i}]"),
            };
            field(&key, r)
        })
        .collect()
}

fn thresholds_from_json(v: &Value) -> Result<ThresholdsRequest, BadRequest> {
    let obj = object("thresholds", v)?;
    known_keys("thresholds.", obj, &THRESHOLD_KEYS)?;
    let mut t = ThresholdsRequest::default();
    for (k, v) in obj {
        let key = format!("thresholds.{k}");
        let key = key.as_str();
        match k.as_str() {
            "small_cluster_max_nodes" => t.small_cluster_max_nodes = Some(field(key, v)?),
            "latency_p99_ms" => t.latency_p99_ms = Some(field(key, v)?),
            "min_connectivity" => t.min_connectivity = Some(field(key, v)?),
            "large_mesh_min_nodes" => t.large_mesh_min_nodes = Some(field(key, v)?),
            "max_partitions" => t.max_partitions = Some(field(key, v)?),
            "max_connection_load" => t.max_connection_load = Some(field(key, v)?),
            "very_large_min_nodes" => t.very_large_min_nodes = Some(field(key, v)?),
            "max_bandwidth_utilization" => t.max_bandwidth_utilization = Some(field(key, v)?),
            "max_hops" => t.max_hops = Some(field(key, v)?),
            "event_driven_share" => t.event_driven_share = Some(field(key, v)?),
            "min_messages" => t.min_messages = Some(field(key, v)?),
            _ => unreachable!("known_keys refused other keys"),
        }
    }
    Ok(t)
}

fn profile_from_json(key: &str, v: &Value) -> Result<ProfileRequest, BadRequest> {
    let obj = object(key, v)?;
    known_keys(&format!("{key}."), obj, &["description", "ranges"])?;
    let description = match obj.get("description") {
        Some(d) => field(&format!("{key}.description"), d)?,
        None => String::new(),
    };
    let ranges_key = format!("{key}.ranges");
    let ranges = obj
        .get("ranges")
        .ok_or_else(|| invalid(&ranges_key, "is missing"))?
        .as_array()
        .ok_or_else(|| invalid(&ranges_key, "must be a JSON array"))?;
    let mut out = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        let at = format!("{ranges_key}[{i}]");
        let obj = object(&at, r)?;
        known_keys(
            &format!("{at}."),
            obj,
            &["max_nodes", "topology", "overlay_config"],
        )?;
        let topology = obj
            .get("topology")
            .ok_or_else(|| invalid(format!("{at}.topology"), "is missing"))?;
        out.push(ProfileRangeRequest {
            max_nodes: match obj.get("max_nodes") {
                None | Some(Value::Null) => None,
                Some(m) => Some(field(&format!("{at}.max_nodes"), m)?),
            },
            topology: field(&format!("{at}.topology"), topology)?,
            overlay_config: obj.get("overlay_config").filter(|c| !c.is_null()).cloned(),
        });
    }
    Ok(ProfileRequest {
        description,
        ranges: out,
    })
}

/// A profile with each range's `overlay_config` patch resolved over
/// `defaults`; a patch key the topology does not have is refused naming
/// the range.
fn resolve_profile(
    key: &str,
    p: &ProfileRequest,
    defaults: &impl Fn(Topology) -> OverlayConfig,
) -> Result<WorkloadProfile, BadRequest> {
    let mut ranges = Vec::with_capacity(p.ranges.len());
    for (i, r) in p.ranges.iter().enumerate() {
        let config = match &r.overlay_config {
            None => None,
            Some(patch) => Some(
                OverlayConfig::patched(&defaults(r.topology), patch).map_err(|e| {
                    invalid(format!("{key}.ranges[{i}].overlay_config"), e.to_string())
                })?,
            ),
        };
        ranges.push(ProfileRange {
            max_nodes: r.max_nodes,
            topology: r.topology,
            config,
        });
    }
    Ok(WorkloadProfile {
        description: p.description.clone(),
        ranges,
    })
}
