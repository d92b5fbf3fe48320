//! The switching rules: a pure function of (the cluster's state, the
//! monitor's metrics, the policy, the previous evaluations) to a decision
//! with an explanation.
//!
//! No IO, no clock (`now_ms` is passed in, the leader's stamp clock). The
//! monitor (`src/monitor/`) calls [`evaluate`] once per round; the
//! simulator and the table tests call the same function. Workload
//! classification ([`classify_workload`]) and the workload profiles
//! ([`profiles`]) live here too.
//!
//! # A round
//!
//! 1. Every rule of [`RULES`] is evaluated, in that order, every round
//!    (`builtin`): whether its condition holds on this round's figures,
//!    which figures it looked at, and why, in words. The result is a
//!    [`RuleEvaluation`] per rule, always four.
//! 2. Hysteresis (`hysteresis`): a rule's `consecutive` count is the
//!    previous round's (from [`RuleMemory`]) plus one when it holds, and 0
//!    when it does not. A rule is *ready* once `consecutive >=
//!    hold_rounds`. The new counts are the returned memory, to pass to the
//!    next round; counts keep running while a ready rule is deferred, so it
//!    acts in the first round the gates let it.
//! 3. Priority: the ready rules are taken in [`RULES`] order, and only one
//!    acts: the first ready rule that passes the gates. The order puts
//!    scale first, then strain, then degradation, then preference:
//!    `very_large_cluster` (a cluster of thousands cannot afford what the
//!    others would pick), `large_mesh_strain` (a full mesh that is failing
//!    now), `small_cluster_degraded` (a small cluster that performs badly),
//!    `event_driven_workload` (a better fit for the traffic, not a fault).
//!    With the default thresholds rules 1 and 2 never hold together (fewer
//!    than 10 and more than 20 nodes); rule 3 and rule 4 can.
//! 4. Gates, in this order (details in `hysteresis`): a transition in
//!    flight (defers the first ready rule); the target's own gates,
//!    `no_servers` and `flap_window` (a rule stopped there gives way to the
//!    next ready one; if all are stopped, the first is deferred); the
//!    cooldown; `auto_switch` off (last, so the decision shown is what
//!    would be carried out).
//!
//! Every rule's target differs from the topology its condition requires
//! (or excludes), so once its switch commits the rule stops holding and
//! its count returns to 0.
//!
//! # The explanation
//!
//! One line per rule in [`RULES`] order, then the decision (format in
//! `explain`):
//!
//! ```text
//! small_cluster_degraded: holds 2/3 rounds (node_count 5 < 10, latency_ms.p99 83.0 > 50)
//! large_mesh_strain: does not hold (current is hyparview, not full_mesh)
//! decision: stay
//! ```
//!
//! A `Switch` carries the same text (it goes into the history record's
//! trigger).

mod builtin;
mod context;
mod custom;
mod explain;
mod hysteresis;
pub mod profiles;
mod workload;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{AppAggregates, ClusterMetrics, Policy, Topology, TransitionId};

pub use context::RuleContext;
pub use workload::classify_workload;

use hysteresis::Verdict;

/// Names of the built-in rules, in the order they are evaluated.
pub const RULES: [&str; 4] = crate::model::policy::BUILTIN_RULES;

/// What the rules remember between rounds: for each rule, the consecutive
/// rounds it has held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMemory {
    pub consecutive: BTreeMap<String, u32>,
}

/// Why a rule that held long enough did not switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeferReason {
    /// The cooldown after the last switch has not passed.
    Cooldown { remaining_ms: u64 },
    /// A transition is in flight.
    TransitionInFlight { id: TransitionId },
    /// `client_server` needs servers and none can be designated.
    NoServers,
    /// The target was left less than `flap_window_ms` ago.
    FlapWindow { left_ms_ago: u64 },
    /// `auto_switch` is off in the policy: the decision is shown, not
    /// carried out.
    AutoSwitchOff,
}

/// The rules' decision of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    Stay,
    Switch {
        target: Topology,
        rule: String,
        explanation: String,
    },
    Deferred {
        target: Topology,
        rule: String,
        why: DeferReason,
    },
}

/// One rule's evaluation in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEvaluation {
    pub rule: String,
    /// Whether its condition holds this round.
    pub holds: bool,
    /// The topology it switches to.
    pub target: Topology,
    /// Consecutive rounds it has held, this one included.
    pub consecutive: u32,
    /// Rounds it must hold before it acts (the policy's `hold_rounds`, or
    /// a custom rule's own).
    pub hold_rounds: u32,
    /// The figures it looked at, by metric name.
    pub figures: BTreeMap<String, f64>,
    /// Why it holds or not, in words.
    pub why: String,
}

/// The result of one round's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rules: Vec<RuleEvaluation>,
    pub decision: Decision,
    /// Every rule and why it held or not, one line each.
    pub explanation: String,
    /// The memory to pass to the next round.
    pub memory: RuleMemory,
}

/// Evaluates the rules for one round on the network's figures alone (no
/// application metric is reported): see [`evaluate_with_app`].
pub fn evaluate(
    ctx: &RuleContext,
    metrics: &ClusterMetrics,
    policy: &Policy,
    memory: &RuleMemory,
) -> Evaluation {
    evaluate_with_app(ctx, metrics, &AppAggregates::new(), policy, memory)
}

/// Evaluates the rules for one round: every enabled built-in rule's
/// condition, then every custom rule's in the policy's order (so a
/// built-in rule that is ready takes priority), the hysteresis, the
/// priority and the gates (see the module doc). `app` holds the round's
/// application metrics across the members, which custom rules may name.
pub fn evaluate_with_app(
    ctx: &RuleContext,
    metrics: &ClusterMetrics,
    app: &AppAggregates,
    policy: &Policy,
    memory: &RuleMemory,
) -> Evaluation {
    let hold_rounds = hysteresis::needed(policy);
    let mut next = RuleMemory::default();
    let mut evaluated = |rule: &str, c: builtin::Condition, hold: u32| {
        let previous = memory.consecutive.get(rule).copied().unwrap_or(0);
        let consecutive = hysteresis::next_consecutive(previous, c.holds);
        next.consecutive.insert(rule.to_string(), consecutive);
        RuleEvaluation {
            rule: rule.to_string(),
            holds: c.holds,
            target: c.target,
            consecutive,
            hold_rounds: hold,
            figures: c.figures,
            why: c.why,
        }
    };
    let mut rules: Vec<RuleEvaluation> = Vec::new();
    for &rule in RULES.iter() {
        if policy.disabled_rules.iter().any(|d| d == rule) {
            continue;
        }
        if let Some(c) = builtin::condition(rule, ctx, metrics, &policy.thresholds) {
            rules.push(evaluated(rule, c, hold_rounds));
        }
    }
    for rule in &policy.custom_rules {
        let c = custom::condition(rule, ctx.current, metrics, app);
        let hold = rule.hold_rounds.unwrap_or(hold_rounds).max(1);
        rules.push(evaluated(&rule.name, c, hold));
    }
    let mut lines: Vec<String> = rules.iter().map(explain::rule_line).collect();
    if !policy.disabled_rules.is_empty() {
        lines.push(format!("disabled: {}", policy.disabled_rules.join(", ")));
    }
    let verdict = hysteresis::gate(ctx, policy, &rules);
    lines.push(decision_line(&verdict, policy.flap_window_ms));
    let explanation = lines.join("\n");
    let decision = match verdict {
        Verdict::Stay => Decision::Stay,
        Verdict::Switch(e) => Decision::Switch {
            target: e.target,
            rule: e.rule.clone(),
            explanation: explanation.clone(),
        },
        Verdict::Deferred(e, why) => Decision::Deferred {
            target: e.target,
            rule: e.rule.clone(),
            why,
        },
    };
    Evaluation {
        rules,
        decision,
        explanation,
        memory: next,
    }
}

fn decision_line(verdict: &Verdict<'_>, flap_window_ms: u64) -> String {
    match verdict {
        Verdict::Stay => "decision: stay".to_string(),
        Verdict::Switch(e) => format!(
            "decision: switch to {} ({} held {}/{} rounds)",
            e.target, e.rule, e.consecutive, e.hold_rounds
        ),
        Verdict::Deferred(e, why) => format!(
            "decision: deferred {} to {}: {}",
            e.rule,
            e.target,
            explain::defer_text(why, e.target, flap_window_ms)
        ),
    }
}
