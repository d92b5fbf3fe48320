//! Against oscillation: the consecutive-rounds count of each rule, and the
//! gates a rule that is ready must pass before it switches (transition in
//! flight, no servers, flap window, cooldown, `auto_switch`).
//!
//! The gates, in the order they are checked:
//!
//! 1. **transition in flight** — nothing can switch until it commits or
//!    aborts, and its outcome changes every other gate's input; it defers
//!    the first ready rule.
//! 2. **target gates**, which concern only one rule's target:
//!    `no_servers` (`client_server` without servers) and `flap_window`
//!    (the target was left less than `flap_window_ms` ago). A ready rule
//!    stopped here gives way to the next ready rule; when every ready rule
//!    is stopped, the first one is deferred with its reason.
//! 3. **cooldown** — `policy.cooldown_ms` after the last committed switch,
//!    measured as the state machine does (`now - last_switch_ms <
//!    cooldown_ms`, saturating), so the monitor never proposes what the
//!    state machine would refuse as `cooldown_active`.
//! 4. **`auto_switch` off** — last, so that the decision shown is the one
//!    the monitor would carry out if it were on: `auto_switch_off` only
//!    when nothing else stands in the way.

use super::{DeferReason, RuleContext, RuleEvaluation};
use crate::model::{Policy, Topology};

/// The rule's consecutive rounds after this one: one more when it holds,
/// 0 when it does not.
pub(crate) fn next_consecutive(previous: u32, holds: bool) -> u32 {
    if holds {
        previous.saturating_add(1)
    } else {
        0
    }
}

/// Rounds a rule must hold before it acts (`hold_rounds`, at least 1).
pub(crate) fn needed(policy: &Policy) -> u32 {
    policy.hold_rounds.max(1)
}

/// What the gates let through this round.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict<'a> {
    /// No rule is ready.
    Stay,
    Switch(&'a RuleEvaluation),
    Deferred(&'a RuleEvaluation, DeferReason),
}

/// Runs the gates over the rules in evaluation order.
pub(crate) fn gate<'a>(
    ctx: &RuleContext,
    policy: &Policy,
    rules: &'a [RuleEvaluation],
) -> Verdict<'a> {
    let mut ready = rules
        .iter()
        .filter(|e| e.holds && e.consecutive >= e.hold_rounds.max(1))
        .peekable();
    let Some(&first) = ready.peek() else {
        return Verdict::Stay;
    };
    if let Some(id) = ctx.in_flight {
        return Verdict::Deferred(first, DeferReason::TransitionInFlight { id });
    }
    let mut first_block = None;
    let mut chosen = None;
    for e in ready {
        match target_gate(ctx, policy, e.target) {
            None => {
                chosen = Some(e);
                break;
            }
            Some(why) => {
                first_block.get_or_insert((e, why));
            }
        }
    }
    let Some(chosen) = chosen else {
        return match first_block {
            Some((e, why)) => Verdict::Deferred(e, why),
            // Unreachable: `first` exists, so it was chosen or blocked.
            None => Verdict::Stay,
        };
    };
    if let Some(remaining_ms) = cooldown_remaining(ctx, policy) {
        return Verdict::Deferred(chosen, DeferReason::Cooldown { remaining_ms });
    }
    if !policy.auto_switch {
        return Verdict::Deferred(chosen, DeferReason::AutoSwitchOff);
    }
    Verdict::Switch(chosen)
}

/// The gates that concern `target` alone.
fn target_gate(ctx: &RuleContext, policy: &Policy, target: Topology) -> Option<DeferReason> {
    if target == Topology::ClientServer && !ctx.servers_available {
        return Some(DeferReason::NoServers);
    }
    let left = *ctx.left_at_ms.get(&target)?;
    let ago = ctx.now_ms.saturating_sub(left);
    (ago < policy.flap_window_ms).then_some(DeferReason::FlapWindow { left_ms_ago: ago })
}

/// Time left of the cooldown, if it has not passed.
fn cooldown_remaining(ctx: &RuleContext, policy: &Policy) -> Option<u64> {
    let elapsed = ctx.now_ms.saturating_sub(ctx.last_switch_ms?);
    (elapsed < policy.cooldown_ms).then(|| policy.cooldown_ms - elapsed)
}
