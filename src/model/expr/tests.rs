use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn m(name: &str) -> Operand {
    Operand::Metric(name.into())
}

fn cmp(left: Operand, op: CmpOp, right: Operand) -> Expr {
    Expr::Cmp { left, op, right }
}

fn lookup(figures: &[(&str, f64)]) -> impl Fn(&str) -> Option<f64> {
    let map: BTreeMap<String, f64> = figures.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    move |name| map.get(name).copied()
}

#[test]
fn precedence_not_then_and_then_or() {
    let a = || cmp(m("node_count"), CmpOp::Gt, Operand::Num(1.0));
    let b = || cmp(m("live_nodes"), CmpOp::Lt, Operand::Num(2.0));
    let c = || cmp(m("latency_ms.p99"), CmpOp::Ge, Operand::Num(3.5));
    let cases: Vec<(&str, Expr)> = vec![
        (
            "node_count > 1 or live_nodes < 2 and latency_ms.p99 >= 3.5",
            Expr::Or(
                Box::new(a()),
                Box::new(Expr::And(Box::new(b()), Box::new(c()))),
            ),
        ),
        (
            "(node_count > 1 or live_nodes < 2) and latency_ms.p99 >= 3.5",
            Expr::And(
                Box::new(Expr::Or(Box::new(a()), Box::new(b()))),
                Box::new(c()),
            ),
        ),
        (
            "not node_count > 1 and live_nodes < 2",
            Expr::And(Box::new(Expr::Not(Box::new(a()))), Box::new(b())),
        ),
        (
            "not (node_count > 1 and live_nodes < 2)",
            Expr::Not(Box::new(Expr::And(Box::new(a()), Box::new(b())))),
        ),
        (
            "node_count > 1 and live_nodes < 2 and latency_ms.p99 >= 3.5",
            Expr::And(
                Box::new(Expr::And(Box::new(a()), Box::new(b()))),
                Box::new(c()),
            ),
        ),
        (
            "1 < node_count",
            cmp(Operand::Num(1.0), CmpOp::Lt, m("node_count")),
        ),
        (
            "app.checkout_latency_ms.p99 != -2.25",
            cmp(
                m("app.checkout_latency_ms.p99"),
                CmpOp::Ne,
                Operand::Num(-2.25),
            ),
        ),
        (
            "  node_count<=1",
            cmp(m("node_count"), CmpOp::Le, Operand::Num(1.0)),
        ),
        (
            "node_count == 3",
            cmp(m("node_count"), CmpOp::Eq, Operand::Num(3.0)),
        ),
    ];
    for (src, want) in cases {
        assert_eq!(parse(src), Ok(want), "{src}");
    }
}

#[test]
fn every_error_names_its_position() {
    use ExprErrorKind as K;
    let unexpected = |expected, found: &str| K::Unexpected {
        expected,
        found: found.into(),
    };
    let cases: Vec<(&str, usize, ExprErrorKind)> = vec![
        ("node_count > 1 & x", 15, K::UnexpectedChar('&')),
        ("node_count = 1", 11, K::UnexpectedChar('=')),
        ("node_count > 1é", 14, K::UnexpectedChar('é')),
        ("node_count > 1.2.3", 13, K::BadNumber("1.2.3".into())),
        ("node_count > 5x", 13, K::BadNumber("5x".into())),
        ("node_count > -", 13, K::BadNumber("-".into())),
        ("nodes_count > 1", 0, K::UnknownMetric("nodes_count".into())),
        (
            "latency_ms.p95 > 1",
            0,
            K::UnknownMetric("latency_ms.p95".into()),
        ),
        ("app.x.p95 > 1", 0, K::UnknownMetric("app.x.p95".into())),
        (
            "checkout.p99 > 1",
            0,
            K::UnknownMetric("checkout.p99".into()),
        ),
        (
            "node_count > 1 and app.p99 > 1",
            19,
            K::UnknownMetric("app.p99".into()),
        ),
        (
            "",
            0,
            unexpected("a comparison (a metric or a number)", "the end"),
        ),
        (
            "node_count",
            10,
            unexpected("a comparison operator (> >= < <= == !=)", "the end"),
        ),
        (
            "node_count >",
            12,
            unexpected("a metric or a number", "the end"),
        ),
        (
            "node_count > and",
            13,
            unexpected("a metric or a number", "`and`"),
        ),
        (
            "(node_count > 1",
            15,
            unexpected("`)` or an operator", "the end"),
        ),
        (
            "node_count > 1)",
            14,
            unexpected("`and`, `or` or the end", "`)`"),
        ),
        (
            "node_count > 1 node_count",
            15,
            unexpected("`and`, `or` or the end", "metric `node_count`"),
        ),
        (
            "node_count > 1 and",
            18,
            unexpected("a comparison (a metric or a number)", "the end"),
        ),
        (
            "1 > 2",
            4,
            unexpected("a metric on one side of the comparison", "two numbers"),
        ),
        (
            "node_count > 1 > 2",
            15,
            unexpected("`and`, `or` or the end", "`>`"),
        ),
    ];
    for (src, pos, kind) in cases {
        assert_eq!(parse(src), Err(ExprError { pos, kind }), "{src}");
    }
    let long = format!("node_count > {}", "1".repeat(MAX_EXPR_LEN));
    assert_eq!(parse(&long).unwrap_err().kind, K::TooLong);
    let deep = format!("{}node_count > 1", "not ".repeat(MAX_EXPR_DEPTH + 1));
    assert_eq!(
        parse(&deep).unwrap_err(),
        ExprError {
            pos: 4 * MAX_EXPR_DEPTH,
            kind: K::TooDeep
        }
    );
    assert_eq!(
        parse("nodes_count > 1").unwrap_err().to_string(),
        "at column 1: unknown metric `nodes_count`"
    );
}

#[test]
fn evaluation_table() {
    let figs = [
        ("node_count", 5.0),
        ("latency_ms.p99", 80.0),
        ("app.checkout_latency_ms.p99", 300.0),
    ];
    let cases = [
        (
            "app.checkout_latency_ms.p99 > 250 and node_count >= 5",
            true,
        ),
        ("app.checkout_latency_ms.p99 > 300", false),
        ("app.checkout_latency_ms.p99 >= 300", true),
        ("node_count == 5 and not latency_ms.p99 < 100", false),
        ("node_count != 5 or latency_ms.p99 <= 80", true),
        ("not (node_count > 9 or latency_ms.p99 > 90)", true),
        ("250 < app.checkout_latency_ms.p99", true),
    ];
    for (src, want) in cases {
        let e = parse(src).unwrap();
        assert_eq!(e.eval(&lookup(&figs)).holds, want, "{src}");
    }
}

#[test]
fn the_why_shows_each_figure_and_a_missing_metric_does_not_hold() {
    let e = parse("app.checkout_latency_ms.p99 > 250 and node_count >= 5").unwrap();
    let out = e.eval(&lookup(&[
        ("node_count", 5.0),
        ("app.checkout_latency_ms.p99", 312.5),
    ]));
    assert!(out.holds);
    assert_eq!(
        out.why,
        "app.checkout_latency_ms.p99 312.5 > 250 and node_count 5.0 >= 5"
    );
    assert_eq!(out.figures.len(), 2);
    // Unreported: does not hold even under `or` and `not`.
    let e = parse("not app.missing.p99 > 1 or node_count >= 5").unwrap();
    let out = e.eval(&lookup(&[("node_count", 5.0)]));
    assert!(!out.holds);
    assert_eq!(out.missing, vec!["app.missing.p99".to_string()]);
    assert_eq!(out.why, "not reported by any node: app.missing.p99");
}

fn metric() -> impl Strategy<Value = Operand> {
    prop_oneof![
        proptest::sample::select(CLUSTER_METRICS.to_vec()).prop_map(m),
        (
            "[a-z][a-z0-9_]{0,8}",
            proptest::sample::select(APP_AGGREGATES.to_vec())
        )
            .prop_map(|(n, a)| m(&format!("app.{n}.{a}"))),
    ]
}

fn number() -> impl Strategy<Value = Operand> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(|v| Operand::Num(v as f64)),
        (-1e9f64..1e9).prop_map(Operand::Num),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(vec![
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Eq,
        CmpOp::Ne,
    ])
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (metric(), op(), number()).prop_map(|(l, o, r)| cmp(l, o, r)),
        (number(), op(), metric()).prop_map(|(l, o, r)| cmp(l, o, r)),
        (metric(), op(), metric()).prop_map(|(l, o, r)| cmp(l, o, r)),
    ];
    leaf.prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
        ]
    })
}

proptest! {
    #[test]
    fn printing_and_parsing_gives_the_same_expression(e in expr()) {
        let text = e.to_string();
        prop_assert_eq!(parse(&text), Ok(e), "{}", text);
    }
}
