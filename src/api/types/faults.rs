//! `GET` / `PUT` / `DELETE /v1/node/faults`: the JSON form of the
//! transport's fault filter ([`FaultRules`]), local to the answering node.
//!
//! ```json
//! {"seed": 7, "rules": [
//!   {"peer": 2, "direction": "both", "drop_probability": 1.0},
//!   {"peer": 3, "direction": "outbound", "delay_ms": 100}]}
//! ```
//!
//! Rules are accepted only when the node runs with `transport.chaos =
//! true`; otherwise the writes answer 409 `chaos_disabled` and change
//! nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::BadRequest;
use crate::model::NodeId;
use crate::transport::{Direction, FaultRule, FaultRules};

/// Most rules in one set (a cluster of a few hundred nodes, both
/// directions, with room to spare).
pub const MAX_FAULT_RULES: usize = 1024;

/// Longest delay of a rule, ms (one minute: longer looks like a partition,
/// which `drop_probability: 1` expresses better).
pub const MAX_FAULT_DELAY_MS: u64 = 60_000;

/// Which frames a rule applies to, seen from the answering node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionView {
    /// Frames this node sends to the peer.
    Outbound,
    /// Frames this node receives from the peer.
    Inbound,
    #[default]
    Both,
}

impl DirectionView {
    pub fn as_str(&self) -> &'static str {
        match self {
            DirectionView::Outbound => "outbound",
            DirectionView::Inbound => "inbound",
            DirectionView::Both => "both",
        }
    }
}

impl From<DirectionView> for Direction {
    fn from(d: DirectionView) -> Self {
        match d {
            DirectionView::Outbound => Direction::Outbound,
            DirectionView::Inbound => Direction::Inbound,
            DirectionView::Both => Direction::Both,
        }
    }
}

impl From<Direction> for DirectionView {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Outbound => DirectionView::Outbound,
            Direction::Inbound => DirectionView::Inbound,
            Direction::Both => DirectionView::Both,
        }
    }
}

/// One rule: frames to and/or from `peer` are dropped with
/// `drop_probability`, the others delayed by `delay_ms` (order kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRuleView {
    pub peer: NodeId,
    /// Default `both`.
    #[serde(default)]
    pub direction: DirectionView,
    /// 0.0..=1.0; default 0.
    #[serde(default)]
    pub drop_probability: f64,
    /// 0..=[`MAX_FAULT_DELAY_MS`]; default 0.
    #[serde(default)]
    pub delay_ms: u64,
}

/// Body of `PUT /v1/node/faults`: the whole rule set, replacing the
/// installed one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
    /// At most [`MAX_FAULT_RULES`]; at most one rule per peer and
    /// direction.
    pub rules: Vec<FaultRuleView>,
    /// Seed of the drop decisions (a run replays from it); default 0.
    #[serde(default)]
    pub seed: u64,
}

/// Answer of every `/v1/node/faults` route: the rules installed now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultsView {
    pub node_id: NodeId,
    /// Whether this node accepts rules (`transport.chaos`).
    pub chaos_enabled: bool,
    /// Empty when none are installed.
    pub rules: Vec<FaultRuleView>,
    pub seed: u64,
}

impl FaultsView {
    /// The view of `rules` (`None`: nothing installed).
    pub fn new(node_id: NodeId, chaos_enabled: bool, rules: Option<&FaultRules>) -> Self {
        FaultsView {
            node_id,
            chaos_enabled,
            rules: rules
                .map(|r| {
                    r.rules
                        .iter()
                        .map(|r| FaultRuleView {
                            peer: r.peer,
                            direction: r.direction.into(),
                            drop_probability: r.drop_probability,
                            delay_ms: u64::try_from(r.delay.as_millis()).unwrap_or(u64::MAX),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            seed: rules.map_or(0, |r| r.seed),
        }
    }
}

impl FaultsRequest {
    /// The transport's rules, or a `bad_request` naming the first bad
    /// rule (`rules[i]`) and field. `me` is the answering node: a rule for
    /// itself is refused (it has no link to itself).
    pub fn to_rules(&self, me: NodeId) -> Result<FaultRules, BadRequest> {
        if self.rules.len() > MAX_FAULT_RULES {
            return Err(BadRequest::new(format!(
                "rules: {} rules, at most {MAX_FAULT_RULES}",
                self.rules.len()
            )));
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let at = |m: String| BadRequest::new(format!("rules[{i}].{m}"));
            if r.peer == me {
                return Err(at(format!("peer: {me} is this node")));
            }
            if !(0.0..=1.0).contains(&r.drop_probability) {
                return Err(at(format!(
                    "drop_probability: {} is outside 0..=1",
                    r.drop_probability
                )));
            }
            if r.delay_ms > MAX_FAULT_DELAY_MS {
                return Err(at(format!(
                    "delay_ms: {} is above {MAX_FAULT_DELAY_MS}",
                    r.delay_ms
                )));
            }
            if r.drop_probability == 0.0 && r.delay_ms == 0 {
                return Err(at(
                    "drop_probability: the rule neither drops (drop_probability > 0) nor \
                     delays (delay_ms > 0)"
                        .into(),
                ));
            }
            if !seen.insert((r.peer, r.direction)) {
                return Err(at(format!(
                    "direction: a second rule for peer {} direction {}",
                    r.peer,
                    r.direction.as_str()
                )));
            }
            out.push(FaultRule {
                peer: r.peer,
                direction: r.direction.into(),
                drop_probability: r.drop_probability,
                delay: Duration::from_millis(r.delay_ms),
            });
        }
        Ok(FaultRules {
            rules: out,
            seed: self.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<FaultsRequest, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn json_form_maps_to_the_transport_rules() {
        let req = parse(json!({"seed": 7, "rules": [
            {"peer": 2, "drop_probability": 1.0},
            {"peer": 3, "direction": "outbound", "delay_ms": 100}]}))
        .unwrap();
        let rules = req.to_rules(1).unwrap();
        assert_eq!(
            rules,
            FaultRules {
                seed: 7,
                rules: vec![
                    FaultRule {
                        peer: 2,
                        direction: Direction::Both,
                        drop_probability: 1.0,
                        delay: Duration::ZERO,
                    },
                    FaultRule {
                        peer: 3,
                        direction: Direction::Outbound,
                        drop_probability: 0.0,
                        delay: Duration::from_millis(100),
                    },
                ],
            }
        );
        let view = FaultsView::new(1, true, Some(&rules));
        assert_eq!(view.rules, req.rules);
        assert_eq!(view.seed, 7);
        assert_eq!(
            FaultsView::new(1, false, None),
            FaultsView {
                node_id: 1,
                chaos_enabled: false,
                rules: vec![],
                seed: 0
            }
        );
    }

    #[test]
    fn unknown_fields_and_bad_directions_are_named() {
        let e = parse(json!({"rules": [{"peer": 2, "drop": 1.0}]})).unwrap_err();
        assert!(e.contains("drop"), "{e}");
        let e = parse(json!({"rules": [], "colour": 1})).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = parse(json!({"rules": [{"peer": 2, "direction": "sideways"}]})).unwrap_err();
        assert!(e.contains("sideways"), "{e}");
        let e = parse(json!({"seed": 1})).unwrap_err();
        assert!(e.contains("rules"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_naming_rule_and_field() {
        type Case = (serde_json::Value, &'static str);
        let cases: [Case; 6] = [
            (
                json!({"peer": 2, "drop_probability": 1.5}),
                "rules[0].drop_probability",
            ),
            (
                json!({"peer": 2, "drop_probability": -0.1}),
                "rules[0].drop_probability",
            ),
            (json!({"peer": 2, "delay_ms": 60_001}), "rules[0].delay_ms"),
            (json!({"peer": 1, "delay_ms": 5}), "rules[0].peer"),
            (json!({"peer": 2}), "rules[0].drop_probability"),
            (json!({"peer": 2, "drop_probability": 0.0}), "neither drops"),
        ];
        for (rule, want) in cases {
            let req = parse(json!({"rules": [rule]})).unwrap();
            let e = req.to_rules(1).unwrap_err();
            assert!(e.message.contains(want), "{rule}: {e}");
            assert_eq!(e.code, "bad_request");
        }
        let dup = parse(json!({"rules": [
            {"peer": 2, "delay_ms": 5},
            {"peer": 2, "direction": "both", "drop_probability": 0.5}]}))
        .unwrap();
        let e = dup.to_rules(1).unwrap_err();
        assert!(e.message.starts_with("rules[1].direction"), "{e}");
        let many = FaultsRequest {
            rules: vec![
                FaultRuleView {
                    peer: 2,
                    direction: DirectionView::Both,
                    drop_probability: 0.5,
                    delay_ms: 0,
                };
                MAX_FAULT_RULES + 1
            ],
            seed: 0,
        };
        assert!(many.to_rules(1).unwrap_err().message.starts_with("rules:"));
    }
}
