//! The explanation's words: comparisons of a figure with its threshold
//! ([`Cmp`]), number formatting, one line per rule and the decision line.
//!
//! Format (one line each, rules in evaluation order, then the decision):
//!
//! ```text
//! very_large_cluster: does not hold (node_count 5 <= 1000)
//! large_mesh_strain: does not hold (current is hyparview, not full_mesh)
//! small_cluster_degraded: holds 2/3 rounds (node_count 5 < 10, latency_ms.p99 83.0 > 50)
//! event_driven_workload: does not hold (workload.pattern mixed, not event_driven (...))
//! decision: stay
//! ```

use std::fmt;

use super::{DeferReason, RuleEvaluation};
use crate::model::Topology;

/// A number shown in an explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    /// A count (`node_count 5`).
    Int(u64),
    /// A measured figure: shown with a decimal point and at most three
    /// decimals (`83.0`, `0.95`), more when needed to tell it from its
    /// threshold.
    Float(f64),
    /// A configured threshold: shown as written (`50`, `0.9`).
    Limit(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            // Counts here are u32 widened, exact as f64.
            Num::Int(v) => v as f64,
            Num::Float(v) | Num::Limit(v) => v,
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Num::Int(v) => write!(f, "{v}"),
            Num::Float(v) => f.write_str(&short_float(v)),
            Num::Limit(v) => write!(f, "{v}"),
        }
    }
}

/// `v` with at most three decimals, trailing zeros cut but one kept.
fn short_float(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:.3}");
    let trimmed = s.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

/// `v` in full (shortest exact form), with a decimal point.
fn full_float(v: f64) -> String {
    let s = format!("{v}");
    if v.is_finite() && !s.contains('.') && !s.contains('e') {
        format!("{s}.0")
    } else {
        s
    }
}

/// The relation a rule needs between a figure and its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Gt,
    Lt,
}

/// One comparison of a figure with its threshold, and its result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmp {
    pub name: &'static str,
    pub value: Num,
    pub limit: Num,
    pub op: Op,
    pub holds: bool,
}

impl Cmp {
    /// `value > limit`, strictly.
    pub fn gt(name: &'static str, value: Num, limit: Num) -> Self {
        let holds = value.as_f64() > limit.as_f64();
        Cmp {
            name,
            value,
            limit,
            op: Op::Gt,
            holds,
        }
    }

    /// `value < limit`, strictly.
    pub fn lt(name: &'static str, value: Num, limit: Num) -> Self {
        let holds = value.as_f64() < limit.as_f64();
        Cmp {
            name,
            value,
            limit,
            op: Op::Lt,
            holds,
        }
    }

    /// `name value op limit`, with the relation that is true: the rule's
    /// (`>`) when it holds, its negation (`<=`) when not.
    pub fn text(&self) -> String {
        let op = match (self.op, self.holds) {
            (Op::Gt, true) => ">",
            (Op::Gt, false) => "<=",
            (Op::Lt, true) => "<",
            (Op::Lt, false) => ">=",
        };
        let limit = self.limit.to_string();
        let mut value = self.value.to_string();
        // 0.8999 shown as 0.9 next to a threshold of 0.9 would read wrong.
        if let Num::Float(v) = self.value {
            if value == limit && v != self.limit.as_f64() {
                value = full_float(v);
            }
        }
        format!("{} {value} {op} {limit}", self.name)
    }
}

/// The line of one rule.
pub(crate) fn rule_line(e: &RuleEvaluation) -> String {
    let hold_rounds = e.hold_rounds;
    if e.holds && e.consecutive <= hold_rounds {
        format!(
            "{}: holds {}/{} rounds ({})",
            e.rule, e.consecutive, hold_rounds, e.why
        )
    } else if e.holds {
        format!(
            "{}: holds {} rounds, {} needed ({})",
            e.rule, e.consecutive, hold_rounds, e.why
        )
    } else {
        format!("{}: does not hold ({})", e.rule, e.why)
    }
}

/// What a deferral means, in words.
pub(crate) fn defer_text(why: &DeferReason, target: Topology, flap_window_ms: u64) -> String {
    match why {
        DeferReason::Cooldown { remaining_ms } => {
            format!("cooldown after the last switch, {remaining_ms} ms left")
        }
        DeferReason::TransitionInFlight { id } => format!("transition {id} in flight"),
        DeferReason::NoServers => "no servers can be designated for client_server".to_string(),
        DeferReason::FlapWindow { left_ms_ago } => format!(
            "{target} was left {left_ms_ago} ms ago, inside the flap window of {flap_window_ms} ms"
        ),
        DeferReason::AutoSwitchOff => {
            "auto_switch is off in the policy (shown, not carried out)".to_string()
        }
    }
}
