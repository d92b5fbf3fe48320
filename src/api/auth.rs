//! Who may call which admin API route: each request gets a [`Principal`]
//! (a cluster node by its certificate, or a bearer token's role), and each
//! route requires an [`Access`] ([`required`], one table for every route).
//!
//! - A request with [`PeerNode`] (a valid node certificate of this
//!   cluster, inserted by the TLS listener) is a cluster node: allowed
//!   everything an `admin` token is, and the only caller allowed to post
//!   phase reports — for itself only ([`report_allowed`]).
//! - Otherwise `Authorization: Bearer <token>` is hashed and looked up in
//!   this node's applied state; its expiry is checked against the wall
//!   clock. A token the node has not applied yet (created a moment ago on
//!   the leader) is refused until it has.
//! - No or an unknown, revoked or expired token: 401 `unauthenticated`
//!   with `WWW-Authenticate: Bearer`. A role below the route's: 403
//!   `forbidden`. Both are refused before the handler runs: nothing
//!   changes.
//!
//! Enforcement is on when `ApiContext::require_tokens` is; otherwise every
//! request is [`Principal::Unchecked`] (as with `security.insecure`).
//!
//! | method | route | access |
//! |---|---|---|
//! | GET | `/livez`, `/readyz`, `/ui`, `/ui/...` | open |
//! | GET | `/metrics` | open, or `read` with `security.metrics = "read"` |
//! | GET | `/v1/topology`, `/v1/topology/history`, `/v1/monitor`, `/v1/events` | read |
//! | GET | `/v1/transitions`, `/v1/transitions/{id}` | read |
//! | GET | `/v1/cluster/status`, `/v1/cluster/members`, `/v1/cluster/links` | read |
//! | GET | `/v1/node/identity`, `/v1/node/stats`, `/v1/node/summary`, `/v1/node/faults`, `/v1/node/deliveries` | read |
//! | GET | `/v1/policy` | read |
//! | GET | `/v1/cluster/snapshot` (carries the token hashes) | admin |
//! | GET | `/v1/tokens` | admin |
//! | POST | `/v1/topology/switch`, `/v1/topology/optimize` | operator |
//! | PUT | `/v1/policy` (policy, rules, profiles) | operator |
//! | POST | `/v1/node/app-metrics` (feeds the rules) | operator |
//! | POST | `/v1/cluster/members`, `/v1/cluster/members/{id}/promote` | admin |
//! | DELETE | `/v1/cluster/members/{id}` | admin |
//! | PUT, DELETE | `/v1/node/faults` | admin |
//! | POST | `/v1/node/broadcast` (chaos) | admin |
//! | POST | `/v1/tokens`; DELETE `/v1/tokens/{name}` | admin |
//! | POST | `/v1/transitions/{id}/reports` | node only |
//! | any other | (not listed: a route added without a decision) | admin |

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use axum::middleware::Next;

use super::context::ApiContext;
use super::types::{codes, ErrorBody};
use crate::config::MetricsAccess;
use crate::model::token::{hash_secret, Role, Tokens};
use crate::model::NodeId;
use crate::security::token::MAX_TOKEN_BYTES;
use crate::security::PeerNode;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// `/metrics`: open or `read`, by `security.metrics`.
    Metrics,
    /// A token of this role or above, or a node.
    Role(Role),
    /// A cluster node only (phase reports).
    Node,
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Tokens are not enforced on this node: nobody was asked.
    Unchecked,
    /// An open route, no credentials looked at.
    Anonymous,
    /// A cluster node, by its certificate.
    Node(NodeId),
    /// A bearer token.
    Token { name: String, role: Role },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// 401: no token, or one that is wrong, revoked or expired.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a valid token whose role is too weak, or a report for another
    /// node.
    #[error("{0}")]
    Forbidden(String),
}

/// The access `method path` requires (`path` as routed, with `{id}`
/// placeholders). See the table in the module doc.
pub fn required(method: &Method, path: &str) -> Access {
    use Access::*;
    let read = Role(crate::model::Role::Read);
    let operator = Role(crate::model::Role::Operator);
    let admin = Role(crate::model::Role::Admin);
    match (method.as_str(), path) {
        ("GET", "/livez" | "/readyz" | "/ui") => Open,
        ("GET", p) if p.starts_with("/ui/") => Open,
        ("GET", "/metrics") => Metrics,
        ("GET", "/v1/cluster/snapshot" | "/v1/tokens") => admin,
        (
            "GET",
            "/v1/topology"
            | "/v1/topology/history"
            | "/v1/monitor"
            | "/v1/events"
            | "/v1/transitions"
            | "/v1/transitions/{id}"
            | "/v1/cluster/status"
            | "/v1/cluster/members"
            | "/v1/cluster/links"
            | "/v1/node/identity"
            | "/v1/node/stats"
            | "/v1/node/summary"
            | "/v1/node/faults"
            | "/v1/node/deliveries"
            | "/v1/policy",
        ) => read,
        ("POST", "/v1/topology/switch" | "/v1/topology/optimize" | "/v1/node/app-metrics") => {
            operator
        }
        ("PUT", "/v1/policy") => operator,
        ("POST", "/v1/transitions/{id}/reports") => Node,
        _ => admin,
    }
}

/// The bearer token of an `Authorization` header value, if it is one.
fn bearer(value: &HeaderValue) -> Result<&str, Denied> {
    let bad = || {
        Denied::Unauthenticated(
            "the Authorization header must be `Bearer <token>` (topoctl: --token, \
             TOPOCTL_TOKEN or --data-dir)"
                .into(),
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(bad)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(bad());
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Denied::Unauthenticated(format!(
            "the bearer token is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    Ok(token)
}

/// What a request presented.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub peer: Option<PeerNode>,
    pub authorization: Option<&'a HeaderValue>,
}

/// The decision: who `creds` is, and whether that satisfies `access`,
/// against `tokens` at wall-clock time `now_ms`. Pure.
pub fn authorize(
    access: Access,
    metrics: MetricsAccess,
    creds: Credentials<'_>,
    tokens: &Tokens,
    now_ms: u64,
) -> Result<Principal, Denied> {
    let access = match (access, metrics) {
        (Access::Open, _) | (Access::Metrics, MetricsAccess::Open) => {
            return Ok(Principal::Anonymous)
        }
        (Access::Metrics, MetricsAccess::Read) => Access::Role(Role::Read),
        (a, _) => a,
    };
    if let Some(PeerNode(id)) = creds.peer {
        return Ok(Principal::Node(id));
    }
    let Some(value) = creds.authorization else {
        return Err(Denied::Unauthenticated(
            "this route needs a bearer token (Authorization: Bearer <token>; topoctl: \
             --token, TOPOCTL_TOKEN or --data-dir)"
                .into(),
        ));
    };
    let secret = bearer(value)?;
    let Some(record) = tokens.find(&hash_secret(secret)) else {
        return Err(Denied::Unauthenticated(
            "the bearer token is not known to this node (wrong or revoked)".into(),
        ));
    };
    if record.expired_at(now_ms) {
        return Err(Denied::Unauthenticated(format!(
            "token `{}` expired at {} ms (unix); create a new one",
            record.name,
            record.expires_ms.unwrap_or(0)
        )));
    }
    let needed = match access {
        Access::Role(r) => r,
        Access::Node => {
            return Err(Denied::Forbidden(
                "phase reports are accepted from cluster nodes (node certificates) only".into(),
            ))
        }
        Access::Open | Access::Metrics => unreachable!("answered above"),
    };
    if record.role < needed {
        return Err(Denied::Forbidden(format!(
            "token `{}` has role {}; this route needs {needed}",
            record.name, record.role
        )));
    }
    Ok(Principal::Token {
        name: record.name.clone(),
        role: record.role,
    })
}

/// Whether a phase report for `reported` may be accepted from `peer` (the
/// node certificate's id, if any): a node reports only for itself, and
/// straight to the leader (a secure follower does not forward reports, so
/// no node ever relays another's). Without a node certificate (an
/// insecure node) the report is accepted as before.
pub fn report_allowed(peer: Option<PeerNode>, reported: NodeId) -> bool {
    match peer {
        None => true,
        Some(PeerNode(p)) => reported == p,
    }
}

/// Wall clock, unix ms.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The 401/403 answer.
pub fn denied(ctx: &ApiContext, d: &Denied) -> Response<Body> {
    match d {
        Denied::Unauthenticated(m) => {
            let mut resp = ctx.error(
                StatusCode::UNAUTHORIZED,
                ErrorBody::new(codes::UNAUTHENTICATED, m.clone()),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"topod\""),
            );
            resp
        }
        Denied::Forbidden(m) => ctx.error(
            StatusCode::FORBIDDEN,
            ErrorBody::new(codes::FORBIDDEN, m.clone()),
        ),
    }
}

/// The middleware: decides, then either answers 401/403 or runs the
/// route with the [`Principal`] as a request extension.
pub async fn layer(
    State(ctx): State<Arc<ApiContext>>,
    mut req: Request,
    next: Next,
) -> Response<Body> {
    if !ctx.require_tokens {
        req.extensions_mut().insert(Principal::Unchecked);
        return next.run(req).await;
    }
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
    let access = required(req.method(), &path);
    let creds = Credentials {
        peer: req.extensions().get::<PeerNode>().copied(),
        authorization: req.headers().get(header::AUTHORIZATION),
    };
    let decided = {
        let applied = ctx.applied.borrow();
        authorize(
            access,
            ctx.metrics_access,
            creds,
            &applied.state.tokens,
            now_ms(),
        )
    };
    match decided {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(d) => {
            tracing::info!(
                method = %req.method(),
                path = %path,
                reason = %d,
                "admin API request refused"
            );
            denied(&ctx, &d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::token::NewToken;

    fn tokens() -> Tokens {
        let mut t = Tokens::default();
        for (name, role, expires) in [
            ("r", Role::Read, None),
            ("o", Role::Operator, None),
            ("a", Role::Admin, None),
            ("old", Role::Admin, Some(100)),
        ] {
            let token = NewToken {
                name: name.into(),
                role,
                hash: hash_secret(&format!("secret-{name}")),
                expires_ms: expires,
            };
            t.create(1, &token, false).unwrap();
        }
        t
    }

    fn ask(access: Access, auth: Option<&str>, now: u64) -> Result<Principal, Denied> {
        let value = auth.map(|a| HeaderValue::from_str(a).unwrap());
        authorize(
            access,
            MetricsAccess::Open,
            Credentials {
                peer: None,
                authorization: value.as_ref(),
            },
            &tokens(),
            now,
        )
    }

    fn unauth(r: Result<Principal, Denied>) -> bool {
        matches!(r, Err(Denied::Unauthenticated(_)))
    }

    fn forbidden(r: Result<Principal, Denied>) -> bool {
        matches!(r, Err(Denied::Forbidden(_)))
    }

    #[test]
    fn missing_wrong_malformed_and_expired_tokens_are_401() {
        let read = Access::Role(Role::Read);
        assert!(unauth(ask(read, None, 50)));
        assert!(unauth(ask(read, Some("Bearer nope"), 50)));
        assert!(unauth(ask(read, Some("Basic c2VjcmV0LXI="), 50)));
        assert!(unauth(ask(read, Some("Bearer "), 50)));
        assert!(unauth(ask(read, Some("secret-r"), 50)));
        assert!(ask(read, Some("Bearer secret-old"), 99).is_ok());
        assert!(unauth(ask(read, Some("Bearer secret-old"), 100)));
        let long = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert!(unauth(ask(read, Some(&long), 50)));
    }

    #[test]
    fn each_role_reaches_its_routes_and_no_more() {
        let cases = [
            ("r", Role::Read, true),
            ("r", Role::Operator, false),
            ("r", Role::Admin, false),
            ("o", Role::Read, true),
            ("o", Role::Operator, true),
            ("o", Role::Admin, false),
            ("a", Role::Read, true),
            ("a", Role::Operator, true),
            ("a", Role::Admin, true),
        ];
        for (name, needed, ok) in cases {
            let got = ask(
                Access::Role(needed),
                Some(&format!("bearer secret-{name}")),
                50,
            );
            if ok {
                assert!(
                    matches!(&got, Ok(Principal::Token { name: n, .. }) if n == name),
                    "{name} for {needed}: {got:?}"
                );
            } else {
                assert!(forbidden(got), "{name} for {needed}");
            }
        }
        // Reports: nodes only, whatever the token.
        assert!(forbidden(ask(Access::Node, Some("Bearer secret-a"), 50)));
        assert!(unauth(ask(Access::Node, None, 50)));
    }

    #[test]
    fn nodes_open_routes_and_metrics() {
        let t = tokens();
        let node = Credentials {
            peer: Some(PeerNode(3)),
            authorization: None,
        };
        let none = Credentials {
            peer: None,
            authorization: None,
        };
        for access in [Access::Role(Role::Admin), Access::Node] {
            assert_eq!(
                authorize(access, MetricsAccess::Open, node, &t, 0),
                Ok(Principal::Node(3))
            );
        }
        assert_eq!(
            authorize(Access::Open, MetricsAccess::Read, none, &t, 0),
            Ok(Principal::Anonymous)
        );
        assert_eq!(
            authorize(Access::Metrics, MetricsAccess::Open, none, &t, 0),
            Ok(Principal::Anonymous)
        );
        assert!(unauth(authorize(
            Access::Metrics,
            MetricsAccess::Read,
            none,
            &t,
            0
        )));
    }

    #[test]
    fn the_route_table() {
        let get = Method::GET;
        let (read, op, admin) = (
            Access::Role(Role::Read),
            Access::Role(Role::Operator),
            Access::Role(Role::Admin),
        );
        let table = [
            (&get, "/livez", Access::Open),
            (&get, "/readyz", Access::Open),
            (&get, "/ui/", Access::Open),
            (&get, "/ui/app.js", Access::Open),
            (&get, "/metrics", Access::Metrics),
            (&get, "/v1/topology", read),
            (&get, "/v1/transitions/{id}", read),
            (&get, "/v1/events", read),
            (&get, "/v1/node/faults", read),
            (&get, "/v1/cluster/snapshot", admin),
            (&get, "/v1/tokens", admin),
            (&Method::POST, "/v1/topology/switch", op),
            (&Method::POST, "/v1/topology/optimize", op),
            (&Method::PUT, "/v1/policy", op),
            (&Method::POST, "/v1/node/app-metrics", op),
            (&Method::POST, "/v1/cluster/members", admin),
            (&Method::POST, "/v1/cluster/members/{id}/promote", admin),
            (&Method::DELETE, "/v1/cluster/members/{id}", admin),
            (&Method::PUT, "/v1/node/faults", admin),
            (&Method::DELETE, "/v1/node/faults", admin),
            (&Method::POST, "/v1/node/broadcast", admin),
            (&Method::POST, "/v1/tokens", admin),
            (&Method::DELETE, "/v1/tokens/{name}", admin),
            (&Method::POST, "/v1/transitions/{id}/reports", Access::Node),
            (&Method::POST, "/v1/some/new/route", admin),
            (&Method::POST, "/livez", admin),
        ];
        for (m, p, want) in table {
            assert_eq!(required(m, p), want, "{m} {p}");
        }
    }

    #[test]
    fn a_node_reports_only_for_itself() {
        assert!(report_allowed(None, 4), "no certificate: as before");
        assert!(report_allowed(Some(PeerNode(4)), 4));
        assert!(!report_allowed(Some(PeerNode(4)), 5));
    }
}
