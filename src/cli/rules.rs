//! `topoctl rules list|check FILE|set FILE`: the rule file (a TOML list
//! of `[[rules.custom]]` and an optional `disabled = [...]`), its local
//! check with the server's own checks, and the rows of `rules list`.
//!
//! The check reports every problem, not just the first: each rule is
//! decoded and checked on its own ([`CustomRule::check`], as
//! `PUT /v1/policy` does), then the list as a whole (count, duplicate
//! names) and `disabled` ([`check_disabled`]). A file that passes is
//! accepted by [`PolicyUpdate::check`], the check the server runs.

use std::path::Path;

use serde::Deserialize;

use crate::api::types::{PolicyRequest, PolicyView};
use crate::model::custom_rule::{
    check_disabled, check_rules, CustomRule, CustomRuleSpec, MAX_CUSTOM_RULES,
};
use crate::model::policy::PolicyError;
use crate::model::PolicyUpdate;

/// Largest rule file read, bytes (64 rules of at most 1 KiB of `when`
/// each fit many times over).
pub const MAX_RULES_FILE_BYTES: u64 = 1024 * 1024;

/// A checked rule file: what `rules set` sends.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesFile {
    /// The custom rules, in file order (the evaluation order).
    pub custom: Vec<CustomRuleSpec>,
    /// Built-in rules to turn off; `None` when the file does not say
    /// (`rules set` then leaves the policy's list as it is).
    pub disabled: Option<Vec<String>>,
}

impl RulesFile {
    /// The `PUT /v1/policy` body: `custom_rules` (always) and
    /// `disabled_rules` (when the file has `disabled`).
    pub fn request(&self) -> PolicyRequest {
        PolicyRequest {
            custom_rules: Some(self.custom.clone()),
            disabled_rules: self.disabled.clone(),
            ..PolicyRequest::default()
        }
    }
}

/// The shape of the file: `[[rules.custom]]` tables and `disabled` at the
/// top or in `[rules]`. Rules stay raw values so that each is decoded on
/// its own and its error names it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    rules: Section,
    disabled: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(default)]
    custom: Vec<toml::Value>,
    disabled: Option<Vec<String>>,
}

/// One problem in a rule file: the key it is about (`custom_rules.NAME`,
/// `custom_rules.NAME.when`, `custom_rules[2]`, `disabled_rules`, or
/// `file`) and what is wrong (a `when` error says the column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl From<PolicyError> for Problem {
    fn from(e: PolicyError) -> Self {
        Problem {
            key: e.key,
            reason: e.reason,
        }
    }
}

fn problem(key: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Parses and checks the text of a rule file; every problem found, in
/// file order, when it is not valid.
pub fn check_text(text: &str) -> Result<RulesFile, Vec<Problem>> {
    let shape: FileShape =
        toml::from_str(text).map_err(|e| vec![problem("file", e.to_string().trim_end())])?;
    let mut problems = Vec::new();
    let disabled = match (shape.disabled, shape.rules.disabled) {
        (Some(_), Some(_)) => {
            problems.push(problem(
                "disabled_rules",
                "`disabled` is given both at the top and in [rules]; keep one",
            ));
            None
        }
        (a, b) => a.or(b),
    };
    if shape.rules.custom.len() > MAX_CUSTOM_RULES {
        problems.push(problem(
            "custom_rules",
            format!(
                "at most {MAX_CUSTOM_RULES} rules, got {}",
                shape.rules.custom.len()
            ),
        ));
    }
    let mut custom = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (i, raw) in shape.rules.custom.into_iter().enumerate() {
        let key = match raw.get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("custom_rules.{name}"),
            None => format!("custom_rules[{i}]"),
        };
        let spec = match CustomRuleSpec::deserialize(raw) {
            Ok(spec) => spec,
            Err(e) => {
                problems.push(problem(key, e.to_string().trim_end()));
                continue;
            }
        };
        if let Err(e) = CustomRule::from(spec.clone()).check() {
            problems.push(e.into());
        } else if seen.contains(&spec.name) {
            problems.push(problem(key, "the name is used twice"));
        }
        seen.push(spec.name.clone());
        custom.push(spec);
    }
    if let Some(names) = &disabled {
        // One problem per bad name.
        for (i, n) in names.iter().enumerate() {
            if let Err(e) = check_disabled(std::slice::from_ref(n)) {
                problems.push(e.into());
            } else if names[..i].contains(n) {
                problems.push(problem("disabled_rules", format!("`{n}` is listed twice")));
            }
        }
    }
    if problems.is_empty() {
        // The server's own check of the whole update, so that a file that
        // passes here cannot be refused there for a rule-level reason.
        let rules: Vec<CustomRule> = custom.iter().cloned().map(Into::into).collect();
        let update = PolicyUpdate {
            custom_rules: Some(rules.clone()),
            disabled_rules: disabled.clone(),
            ..PolicyUpdate::default()
        };
        if let Err(e) = check_rules(&rules).and_then(|()| update.check()) {
            problems.push(e.into());
        }
    }
    if problems.is_empty() {
        Ok(RulesFile { custom, disabled })
    } else {
        Err(problems)
    }
}

/// Reads (at most [`MAX_RULES_FILE_BYTES`]) and checks a rule file.
pub fn check_file(path: &Path) -> Result<RulesFile, Vec<Problem>> {
    let read = || -> std::io::Result<String> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)?
            .take(MAX_RULES_FILE_BYTES + 1)
            .read_to_string(&mut text)?;
        Ok(text)
    };
    let text = read().map_err(|e| vec![problem("file", e.to_string())])?;
    if text.len() as u64 > MAX_RULES_FILE_BYTES {
        return Err(vec![problem(
            "file",
            format!("larger than {MAX_RULES_FILE_BYTES} bytes"),
        )]);
    }
    check_text(&text)
}

/// Header of the built-in rules' table of `rules list`.
pub const BUILTIN_HEADER: [&str; 2] = ["BUILT-IN RULE", "STATE"];
/// Header of the custom rules' table of `rules list`.
pub const CUSTOM_HEADER: [&str; 5] = ["CUSTOM RULE", "WHEN", "FROM", "SWITCH_TO", "HOLD_ROUNDS"];

/// One row per built-in rule, in evaluation order: enabled or disabled.
pub fn builtin_rows(p: &PolicyView) -> Vec<Vec<String>> {
    p.builtin_rules
        .iter()
        .map(|name| {
            let state = if p.disabled_rules.contains(name) {
                "disabled"
            } else {
                "enabled"
            };
            vec![name.clone(), state.to_string()]
        })
        .collect()
}

/// One row per custom rule, in evaluation order; `from` empty is "any",
/// an unset `hold_rounds` shows the policy's.
pub fn custom_rows(p: &PolicyView) -> Vec<Vec<String>> {
    p.custom_rules
        .iter()
        .map(|r| {
            let from = if r.from.is_empty() {
                "any".to_string()
            } else {
                r.from
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                r.name.clone(),
                r.when.clone(),
                from,
                r.switch_to.to_string(),
                match r.hold_rounds {
                    Some(h) => h.to_string(),
                    None => format!("{} (policy)", p.hold_rounds),
                },
            ]
        })
        .collect()
}
