//! The lexer and the recursive-descent parser of `when` expressions (the
//! grammar is in the module doc of [`super`]). Every error carries the
//! byte position of the token it concerns.

use super::{CmpOp, Expr, ExprError, ExprErrorKind, Operand, MAX_EXPR_DEPTH, MAX_EXPR_LEN};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    And,
    Or,
    Not,
    LParen,
    RParen,
    Cmp(CmpOp),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(v) => format!("number `{v}`"),
            Tok::Ident(s) => format!("metric `{s}`"),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Cmp(op) => format!("`{}`", op.as_str()),
            Tok::End => "the end".into(),
        }
    }
}

fn err<T>(pos: usize, kind: ExprErrorKind) -> Result<T, ExprError> {
    Err(ExprError { pos, kind })
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'>' | b'<' | b'=' | b'!' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'>', true) => CmpOp::Ge,
                    (b'>', false) => CmpOp::Gt,
                    (b'<', true) => CmpOp::Le,
                    (b'<', false) => CmpOp::Lt,
                    (b'=', true) => CmpOp::Eq,
                    (b'!', true) => CmpOp::Ne,
                    _ => return err(i, ExprErrorKind::UnexpectedChar(c as char)),
                };
                i += if eq { 2 } else { 1 };
                Tok::Cmp(op)
            }
            b'-' | b'0'..=b'9' | b'.' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                let text = &src[start..i];
                match number(text) {
                    Some(v) => Tok::Num(v),
                    None => return err(start, ExprErrorKind::BadNumber(text.to_string())),
                }
            }
            b'a'..=b'z' => {
                while i < b.len()
                    && (b[i].is_ascii_lowercase()
                        || b[i].is_ascii_digit()
                        || b[i] == b'_'
                        || b[i] == b'.')
                {
                    i += 1;
                }
                match &src[start..i] {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    name => Tok::Ident(name.to_string()),
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(i, ExprErrorKind::UnexpectedChar(ch));
            }
        };
        out.push((start, tok));
    }
    out.push((b.len(), Tok::End));
    Ok(out)
}

/// `-?digits(.digits)?`, finite.
fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &(usize, Tok) {
        // `lex` always ends with `End`, and `next` never moves past it.
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.peek().clone();
        if t.1 != Tok::End {
            self.at += 1;
        }
        t
    }

    fn unexpected<T>(&self, expected: &'static str) -> Result<T, ExprError> {
        let (pos, tok) = self.peek();
        err(
            *pos,
            ExprErrorKind::Unexpected {
                expected,
                found: tok.describe(),
            },
        )
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek().1 == Tok::Or {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while self.peek().1 == Tok::And {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        let (pos, tok) = self.peek().clone();
        match tok {
            Tok::Not | Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_EXPR_DEPTH {
                    return err(pos, ExprErrorKind::TooDeep);
                }
                self.next();
                let e = if tok == Tok::Not {
                    Expr::Not(Box::new(self.unary()?))
                } else {
                    let e = self.or()?;
                    if self.peek().1 != Tok::RParen {
                        return self.unexpected("`)` or an operator");
                    }
                    self.next();
                    e
                };
                self.depth -= 1;
                Ok(e)
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.operand("a comparison (a metric or a number)")?;
        let op = match self.peek().1 {
            Tok::Cmp(op) => op,
            _ => return self.unexpected("a comparison operator (> >= < <= == !=)"),
        };
        self.next();
        let right = self.operand("a metric or a number")?;
        if let (Operand::Num(_), Operand::Num(_)) = (&left, &right) {
            let pos = self.toks[self.at.saturating_sub(1)].0;
            return err(
                pos,
                ExprErrorKind::Unexpected {
                    expected: "a metric on one side of the comparison",
                    found: "two numbers".into(),
                },
            );
        }
        Ok(Expr::Cmp { left, op, right })
    }

    fn operand(&mut self, expected: &'static str) -> Result<Operand, ExprError> {
        let (pos, tok) = self.peek().clone();
        match tok {
            Tok::Num(v) => {
                self.next();
                Ok(Operand::Num(v))
            }
            Tok::Ident(name) => {
                if super::metric_ref(&name).is_none() {
                    return err(pos, ExprErrorKind::UnknownMetric(name));
                }
                self.next();
                Ok(Operand::Metric(name))
            }
            _ => self.unexpected(expected),
        }
    }
}

/// Parses and checks a `when` expression.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    if src.len() > MAX_EXPR_LEN {
        return err(MAX_EXPR_LEN, ExprErrorKind::TooLong);
    }
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.peek().1 != Tok::End {
        return p.unexpected("`and`, `or` or the end");
    }
    Ok(e)
}
