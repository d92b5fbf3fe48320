//! The `when` language of user-defined rules: comparisons of metrics with
//! numbers, combined with `and`, `or`, `not` and parentheses.
//!
//! ```text
//! app.checkout_latency_ms.p99 > 250 and (node_count >= 5 or not live_nodes == node_count)
//! ```
//!
//! Grammar (`not` binds tightest, then `and`, then `or`; comparisons do
//! not chain):
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | operand cmp operand
//! operand := number | metric
//! cmp     := ">" | ">=" | "<" | "<=" | "==" | "!="
//! number  := "-"? digits ("." digits)?
//! metric  := [a-z][a-z0-9_.]*   (not a keyword)
//! ```
//!
//! A metric is a cluster metric ([`names::CLUSTER_METRICS`]) or an
//! application metric's aggregate across the members, `NAME.AGG` where
//! `NAME` starts with `app.` and `AGG` is one of [`names::APP_AGGREGATES`]
//! (`app.checkout_latency_ms.p99`). Both are checked when the expression
//! is parsed ([`parse`]); an error carries its byte position. An
//! application metric no node reports is not an error (it may be reported
//! later): a rule over it does not hold, and says so ([`Expr::eval`]).
//!
//! [`Expr`]'s `Display` prints an expression that parses back to the same
//! tree (a property test checks it); it parenthesises every `and`/`or`
//! below a different operator, so precedence is visible.

mod names;
mod parse;

use std::fmt;

pub use names::{figure, metric_ref, MetricRef, APP_AGGREGATES, CLUSTER_METRICS};
pub use parse::parse;

/// Longest `when` expression, bytes.
pub const MAX_EXPR_LEN: usize = 1024;
/// Deepest nesting of `not` and parentheses.
pub const MAX_EXPR_DEPTH: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// The comparison; false whenever a side is NaN (except `!=`, which
    /// is its negation: a NaN figure is never *equal*).
    pub fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

/// A side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Num(f64),
    Metric(String),
}

/// A parsed `when` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cmp {
        left: Operand,
        op: CmpOp,
        right: Operand,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// What went wrong, at [`ExprError::pos`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprErrorKind {
    #[error("unexpected character `{0}`")]
    UnexpectedChar(char),
    #[error("bad number `{0}`")]
    BadNumber(String),
    #[error("expected {expected}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
    },
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    #[error("the expression is longer than {MAX_EXPR_LEN} bytes")]
    TooLong,
    #[error("nested deeper than {MAX_EXPR_DEPTH} levels")]
    TooDeep,
}

/// A parse error: what and where (byte offset from 0; shown as the
/// 1-based column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {}: {kind}", .pos + 1)]
pub struct ExprError {
    pub pos: usize,
    pub kind: ExprErrorKind,
}

/// Whether an expression holds on a round's figures, and why in words.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprOutcome {
    pub holds: bool,
    /// Every metric the expression names with its value (absent: not
    /// reported).
    pub figures: std::collections::BTreeMap<String, f64>,
    /// Metrics the expression names that no node reports.
    pub missing: Vec<String>,
    /// The expression with each metric's value after its name
    /// (`app.x.p99 300.0 > 250 and node_count 3 >= 3`), or why it could not
    /// be evaluated.
    pub why: String,
}

impl Expr {
    /// Every metric named, in order of appearance (repeats kept).
    pub fn metrics(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit(&mut |o| {
            if let Operand::Metric(m) = o {
                out.push(m.as_str());
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Operand)) {
        match self {
            Expr::Cmp { left, right, .. } => {
                f(left);
                f(right);
            }
            Expr::Not(e) => e.visit(f),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.visit(f);
                b.visit(f);
            }
        }
    }

    /// Evaluates on the figures `lookup` gives (`None`: not reported). A
    /// metric that is not reported makes the whole expression not hold,
    /// whatever the rest says: a rule never acts on a figure it cannot see.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<f64>) -> ExprOutcome {
        let mut figures = std::collections::BTreeMap::new();
        let mut missing = Vec::new();
        for m in self.metrics() {
            match lookup(m) {
                Some(v) => {
                    figures.insert(m.to_string(), v);
                }
                None if !missing.iter().any(|x| x == m) => missing.push(m.to_string()),
                None => {}
            }
        }
        if !missing.is_empty() {
            let why = format!("not reported by any node: {}", missing.join(", "));
            return ExprOutcome {
                holds: false,
                figures,
                missing,
                why,
            };
        }
        let value = |o: &Operand| match o {
            Operand::Num(v) => *v,
            Operand::Metric(m) => figures.get(m).copied().unwrap_or(f64::NAN),
        };
        let holds = self.holds(&value);
        let why = Shown {
            expr: self,
            figures: &figures,
        }
        .to_string();
        ExprOutcome {
            holds,
            figures,
            missing,
            why,
        }
    }

    fn holds(&self, value: &dyn Fn(&Operand) -> f64) -> bool {
        match self {
            Expr::Cmp { left, op, right } => op.apply(value(left), value(right)),
            Expr::Not(e) => !e.holds(value),
            Expr::And(a, b) => a.holds(value) && b.holds(value),
            Expr::Or(a, b) => a.holds(value) || b.holds(value),
        }
    }

    fn fmt_with(
        &self,
        f: &mut fmt::Formatter<'_>,
        operand: &dyn Fn(&mut fmt::Formatter<'_>, &Operand) -> fmt::Result,
    ) -> fmt::Result {
        // A child `and`/`or` under another operator is parenthesised; so
        // is a left-nested chain's right side, so the tree reparses as is.
        let child = |f: &mut fmt::Formatter<'_>, e: &Expr, parent: &Expr, right: bool| {
            let wrap = match (parent, e) {
                (Expr::Not(_), Expr::And(..) | Expr::Or(..)) => true,
                (Expr::And(..), Expr::Or(..)) => true,
                (Expr::And(..), Expr::And(..)) | (Expr::Or(..), Expr::Or(..)) => right,
                _ => false,
            };
            if wrap {
                f.write_str("(")?;
                e.fmt_with(f, operand)?;
                f.write_str(")")
            } else {
                e.fmt_with(f, operand)
            }
        };
        match self {
            Expr::Cmp { left, op, right } => {
                operand(f, left)?;
                write!(f, " {} ", op.as_str())?;
                operand(f, right)
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                child(f, e, self, false)
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                child(f, a, self, false)?;
                f.write_str(if matches!(self, Expr::And(..)) {
                    " and "
                } else {
                    " or "
                })?;
                child(f, b, self, true)
            }
        }
    }
}

fn plain_operand(f: &mut fmt::Formatter<'_>, o: &Operand) -> fmt::Result {
    match o {
        Operand::Num(v) => write!(f, "{v}"),
        Operand::Metric(m) => f.write_str(m),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(f, &plain_operand)
    }
}

/// An expression shown with each metric's value.
struct Shown<'a> {
    expr: &'a Expr,
    figures: &'a std::collections::BTreeMap<String, f64>,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures = self.figures;
        self.expr.fmt_with(f, &|f, o| match o {
            Operand::Num(v) => write!(f, "{v}"),
            Operand::Metric(m) => match figures.get(m) {
                Some(v) => write!(f, "{m} {}", short(*v)),
                None => write!(f, "{m} ?"),
            },
        })
    }
}

/// A figure with at most three decimals, one kept (`83.0`, `0.95`).
fn short(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:.3}");
    let t = s.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests;
