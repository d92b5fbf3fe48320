//! [`CustomRule`]: an operator's own switching rule, kept in the replicated
//! policy beside the four built-in ones, and its check at policy write.
//!
//! The rule keeps its `when` expression as text (what the operator wrote,
//! shown back as is); it is parsed and checked ([`super::expr::parse`])
//! when the policy is written, so a stored rule always parses. Postcard
//! encodes it inside the policy (log and state): plain fields only.

use serde::{Deserialize, Serialize};

use super::policy::{PolicyError, BUILTIN_RULES, MAX_HOLD_ROUNDS};
use super::Topology;

/// Most custom rules in a policy.
pub const MAX_CUSTOM_RULES: usize = 64;
/// Longest rule name, bytes.
pub const MAX_RULE_NAME_LEN: usize = 64;

/// A user-defined rule: when `when` holds for `hold_rounds` rounds (the
/// policy's when unset) and the current topology is one of `from` (any
/// when empty), switch to `switch_to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomRule {
    /// 1..=64 bytes of a-z, 0-9 and _, not a built-in rule's name.
    pub name: String,
    /// The condition, in the `when` language (`super::expr`), at most
    /// 1024 bytes.
    pub when: String,
    /// Consecutive rounds it must hold; 1..=1000. `None`: the policy's
    /// `hold_rounds`.
    pub hold_rounds: Option<u32>,
    /// The topologies it applies from (empty: any but `switch_to`).
    pub from: Vec<Topology>,
    pub switch_to: Topology,
}

impl CustomRule {
    /// Checks the rule; the error's key is `custom_rules.NAME` (or
    /// `.when`, `.from`, `.hold_rounds`) and a `when` error says the
    /// column.
    pub fn check(&self) -> Result<(), PolicyError> {
        let key = format!("custom_rules.{}", self.name);
        let fail = |key: String, reason: String| Err(PolicyError { key, reason });
        if self.name.is_empty()
            || self.name.len() > MAX_RULE_NAME_LEN
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return fail(
                key,
                format!("a rule name is 1..={MAX_RULE_NAME_LEN} bytes of a-z, 0-9 and _"),
            );
        }
        if BUILTIN_RULES.contains(&self.name.as_str()) {
            return fail(key, format!("`{}` is a built-in rule", self.name));
        }
        if let Err(e) = super::expr::parse(&self.when) {
            return fail(format!("{key}.when"), e.to_string());
        }
        if let Some(h) = self.hold_rounds {
            if h == 0 || h > MAX_HOLD_ROUNDS {
                return fail(
                    format!("{key}.hold_rounds"),
                    format!("{h} is outside 1..={MAX_HOLD_ROUNDS}"),
                );
            }
        }
        if self.from.contains(&self.switch_to) {
            return fail(
                format!("{key}.from"),
                format!(
                    "the rule switches to {} but requires it as the current topology: \
                     it could never act",
                    self.switch_to
                ),
            );
        }
        for (i, t) in self.from.iter().enumerate() {
            if self.from[..i].contains(t) {
                return fail(format!("{key}.from"), format!("{t} is listed twice"));
            }
        }
        Ok(())
    }
}

/// Checks a whole list: at most [`MAX_CUSTOM_RULES`], names unique, each
/// rule valid.
pub fn check_rules(rules: &[CustomRule]) -> Result<(), PolicyError> {
    if rules.len() > MAX_CUSTOM_RULES {
        return Err(PolicyError {
            key: "custom_rules".into(),
            reason: format!("at most {MAX_CUSTOM_RULES} rules, got {}", rules.len()),
        });
    }
    for (i, r) in rules.iter().enumerate() {
        r.check()?;
        if rules[..i].iter().any(|o| o.name == r.name) {
            return Err(PolicyError {
                key: format!("custom_rules.{}", r.name),
                reason: "the name is used twice".into(),
            });
        }
    }
    Ok(())
}

/// Checks `disabled_rules`: built-in names only, each once.
pub fn check_disabled(names: &[String]) -> Result<(), PolicyError> {
    for (i, n) in names.iter().enumerate() {
        if !BUILTIN_RULES.contains(&n.as_str()) {
            return Err(PolicyError {
                key: "disabled_rules".into(),
                reason: format!(
                    "`{n}` is not a built-in rule (built-in: {})",
                    BUILTIN_RULES.join(", ")
                ),
            });
        }
        if names[..i].contains(n) {
            return Err(PolicyError {
                key: "disabled_rules".into(),
                reason: format!("`{n}` is listed twice"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, when: &str) -> CustomRule {
        CustomRule {
            name: name.into(),
            when: when.into(),
            hold_rounds: None,
            from: vec![Topology::HyParView],
            switch_to: Topology::FullMesh,
        }
    }

    #[test]
    fn a_bad_rule_is_refused_naming_the_rule_and_the_position() {
        let e = rule(
            "checkout_slow",
            "app.checkout_latency_ms.p99 > 250 and nodes > 1",
        )
        .check()
        .unwrap_err();
        assert_eq!(e.key, "custom_rules.checkout_slow.when");
        assert_eq!(e.reason, "at column 39: unknown metric `nodes`");
        let mut r = rule("x", "node_count > 1");
        r.from.push(Topology::FullMesh);
        assert_eq!(r.check().unwrap_err().key, "custom_rules.x.from");
        let e = rule("small_cluster_degraded", "node_count > 1")
            .check()
            .unwrap_err();
        assert_eq!(e.key, "custom_rules.small_cluster_degraded");
        let mut r = rule("x", "node_count > 1");
        r.hold_rounds = Some(0);
        assert_eq!(r.check().unwrap_err().key, "custom_rules.x.hold_rounds");
        assert!(rule("Bad-Name", "node_count > 1").check().is_err());
        let two = [rule("a", "node_count > 1"), rule("a", "node_count > 2")];
        assert_eq!(
            check_rules(&two).unwrap_err().reason,
            "the name is used twice"
        );
        assert_eq!(check_rules(&[rule("ok_1", "node_count > 1")]), Ok(()));
    }

    #[test]
    fn only_built_in_rules_can_be_disabled() {
        assert_eq!(check_disabled(&["large_mesh_strain".into()]), Ok(()));
        assert!(check_disabled(&["checkout_slow".into()]).is_err());
        assert!(check_disabled(&["large_mesh_strain".into(), "large_mesh_strain".into()]).is_err());
    }
}

/// A custom rule as written in `[[rules.custom]]` and in the JSON API
/// (`from` and `hold_rounds` optional). Never postcard-encoded: the policy
/// keeps [`CustomRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRuleSpec {
    pub name: String,
    pub when: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_rounds: Option<u32>,
    #[serde(default)]
    pub from: Vec<Topology>,
    pub switch_to: Topology,
}

impl From<CustomRuleSpec> for CustomRule {
    fn from(s: CustomRuleSpec) -> Self {
        CustomRule {
            name: s.name,
            when: s.when,
            hold_rounds: s.hold_rounds,
            from: s.from,
            switch_to: s.switch_to,
        }
    }
}

impl From<&CustomRule> for CustomRuleSpec {
    fn from(r: &CustomRule) -> Self {
        CustomRuleSpec {
            name: r.name.clone(),
            when: r.when.clone(),
            hold_rounds: r.hold_rounds,
            from: r.from.clone(),
            switch_to: r.switch_to,
        }
    }
}
