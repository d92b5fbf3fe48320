//! The conditions of the operators' own rules ([`CustomRule`] in the
//! policy): the current topology against `from` and `switch_to`, then the
//! `when` expression on this round's cluster and application metrics.
//! Like the built-in conditions, a condition looks at one round only; the
//! hysteresis, priority and gates are the same for both kinds.

use crate::model::expr::{self, figure};
use crate::model::{AppAggregates, ClusterMetrics, CustomRule, Topology};

use super::builtin::Condition;

/// The condition of `rule` this round. A `when` that does not parse (the
/// policy check refuses it, so only a policy written by another build
/// could hold one) does not hold and says why.
pub(crate) fn condition(
    rule: &CustomRule,
    current: Topology,
    metrics: &ClusterMetrics,
    app: &AppAggregates,
) -> Condition {
    let not_holding = |why: String| Condition {
        holds: false,
        target: rule.switch_to,
        figures: Default::default(),
        why,
    };
    if current == rule.switch_to {
        return not_holding(format!("current is already {}", rule.switch_to));
    }
    if !rule.from.is_empty() && !rule.from.contains(&current) {
        let from: Vec<&str> = rule.from.iter().map(|t| t.as_str()).collect();
        return not_holding(format!(
            "current is {current}, not one of {}",
            from.join(", ")
        ));
    }
    let parsed = match expr::parse(&rule.when) {
        Ok(e) => e,
        Err(e) => return not_holding(format!("`when` does not parse: {e}")),
    };
    let out = parsed.eval(&|name| figure(metrics, app, name));
    Condition {
        holds: out.holds,
        target: rule.switch_to,
        figures: out.figures,
        why: out.why,
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{
        AppAggregate, AppAggregates, AppKind, ClusterMetrics, CustomRule, Policy, Topology,
    };
    use crate::rules::{evaluate_with_app, Decision, RuleContext, RuleMemory};

    fn ctx(current: Topology) -> RuleContext {
        RuleContext {
            now_ms: 1_000_000,
            current,
            in_flight: None,
            last_switch_ms: None,
            left_at_ms: Default::default(),
            servers_available: true,
        }
    }

    fn policy() -> Policy {
        Policy {
            auto_switch: true,
            hold_rounds: 3,
            custom_rules: vec![CustomRule {
                name: "checkout_slow".into(),
                when: "app.checkout_latency_ms.p99 > 250 and node_count >= 3".into(),
                hold_rounds: Some(2),
                from: vec![Topology::HyParView],
                switch_to: Topology::FullMesh,
            }],
            disabled_rules: vec!["small_cluster_degraded".into()],
            ..Policy::default()
        }
    }

    fn app(p99: f64) -> AppAggregates {
        AppAggregates::from([(
            "app.checkout_latency_ms".to_string(),
            AppAggregate {
                kind: AppKind::Histogram,
                nodes: 3,
                p50: 20.0,
                p99,
                max: p99,
                sum: 30.0,
            },
        )])
    }

    #[test]
    fn a_custom_rule_holds_its_own_rounds_then_switches_with_the_figures() {
        let m = ClusterMetrics {
            node_count: 3,
            live_nodes: 3,
            // Would make small_cluster_degraded hold, but it is disabled.
            connectivity_score: 0.1,
            ..Default::default()
        };
        let p = policy();
        let c = ctx(Topology::HyParView);
        let first = evaluate_with_app(&c, &m, &app(300.0), &p, &RuleMemory::default());
        assert_eq!(first.decision, Decision::Stay);
        assert!(first
            .rules
            .iter()
            .all(|r| r.rule != "small_cluster_degraded"));
        let second = evaluate_with_app(&c, &m, &app(300.0), &p, &first.memory);
        match &second.decision {
            Decision::Switch {
                target,
                rule,
                explanation,
            } => {
                assert_eq!(*target, Topology::FullMesh);
                assert_eq!(rule, "checkout_slow");
                assert!(
                    explanation.contains(
                        "checkout_slow: holds 2/2 rounds (app.checkout_latency_ms.p99 300.0 > 250 \
                         and node_count 3.0 >= 3)"
                    ),
                    "{explanation}"
                );
                assert!(
                    explanation.contains("disabled: small_cluster_degraded"),
                    "{explanation}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Recovered: it stops holding and its count returns to 0.
        let third = evaluate_with_app(&c, &m, &app(100.0), &p, &second.memory);
        assert_eq!(third.decision, Decision::Stay);
        assert_eq!(third.memory.consecutive["checkout_slow"], 0);
    }

    #[test]
    fn an_unreported_metric_or_another_topology_does_not_hold_and_says_so() {
        let m = ClusterMetrics {
            node_count: 3,
            ..Default::default()
        };
        let p = policy();
        let e = evaluate_with_app(
            &ctx(Topology::HyParView),
            &m,
            &AppAggregates::new(),
            &p,
            &RuleMemory::default(),
        );
        let r = e.rules.iter().find(|r| r.rule == "checkout_slow").unwrap();
        assert!(!r.holds);
        assert_eq!(
            r.why,
            "not reported by any node: app.checkout_latency_ms.p99"
        );
        let e = evaluate_with_app(
            &ctx(Topology::PubSub),
            &m,
            &app(900.0),
            &p,
            &RuleMemory::default(),
        );
        let r = e.rules.iter().find(|r| r.rule == "checkout_slow").unwrap();
        assert!(!r.holds);
        assert_eq!(r.why, "current is pub_sub, not one of hyparview");
    }
}
