//! The error body every failing request gets:
//! `{"error":{"code":"snake_case","message":"..."}}`.

use serde::{Deserialize, Serialize};

use crate::model::{NodeId, Rejection};

/// Error codes of the API besides the state machine's rejections (whose
/// codes come from [`Rejection::code`]: `already_current`,
/// `transition_in_progress`, `cooldown_active`, `unknown_topology`,
/// `stale_transition`, `invalid_config`, `invalid_policy`).
pub mod codes {
    /// 400: the body is not valid JSON for the route, or a field is unknown
    /// or out of range.
    pub const BAD_REQUEST: &str = "bad_request";
    /// 400: an application-metrics report was refused (bad name, value,
    /// kind, or over `app_metrics.max_names`); nothing of it was recorded.
    pub const INVALID_APP_METRICS: &str = "invalid_app_metrics";
    /// 415: the request has a body that is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 413: the body exceeds `api.max_body_bytes`.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 404: no such route, transition or member.
    pub const NOT_FOUND: &str = "not_found";
    /// 405: the route exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 503: no leader is known right now; retry.
    pub const NO_LEADER: &str = "no_leader";
    /// 503: a forwarded write reached a node that is not the leader (one
    /// hop only); the body carries a [`super::LeaderHint`] when known.
    pub const NOT_LEADER: &str = "not_leader";
    /// 504: the request (or `wait`) did not finish within its timeout. The
    /// write may still take effect.
    pub const TIMEOUT: &str = "timeout";
    /// 503: this node leads but has not heard from a quorum within the
    /// election timeout (it may be cut off from the majority); no leader
    /// hint. Retry on another node.
    pub const NO_QUORUM: &str = "no_quorum";
    /// 409: a membership change is already in progress.
    pub const MEMBERSHIP_IN_PROGRESS: &str = "membership_in_progress";
    /// 404: a promote names a node that is not a learner of the cluster.
    pub const LEARNER_NOT_FOUND: &str = "learner_not_found";
    /// 409: the change would leave the cluster without voters.
    pub const EMPTY_MEMBERSHIP: &str = "empty_membership";
    /// 409: a join names a node id the cluster knows under another UUID
    /// (its data dir was wiped, or another node took its id); nothing
    /// changed. Remove the member first.
    pub const NODE_UUID_MISMATCH: &str = "node_uuid_mismatch";
    /// 500: storage or another internal failure; the node stops serving.
    pub const INTERNAL: &str = "internal";
    /// 503: this node stopped (SIGTERM) while the request waited for an
    /// outcome; the write was accepted and goes on: ask another node (the
    /// transition id or request id is in the message).
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// 409: the node runs no data plane (started with a control-plane-only
    /// executor), so it has no stats or fault filter.
    pub const NO_DATA_PLANE: &str = "no_data_plane";
    /// 409: fault rules are refused because `transport.chaos` is off;
    /// nothing changed.
    pub const CHAOS_DISABLED: &str = "chaos_disabled";
    /// 502: forwarding to the leader failed.
    pub const FORWARD_FAILED: &str = "forward_failed";
    /// 401: no bearer token, or one that is wrong, revoked or expired
    /// (with `WWW-Authenticate: Bearer`); nothing changed.
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// 403: the token's role is too weak for the route, or a node reported
    /// a phase for another node; nothing changed.
    pub const FORBIDDEN: &str = "forbidden";
    /// 409: a token command needs log envelope `V5`, which a member does
    /// not read yet (a rolling upgrade in progress); nothing changed.
    pub const UPGRADE_IN_PROGRESS: &str = "upgrade_in_progress";
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Code and human-readable message of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// snake_case, stable: clients match on it.
    pub code: String,
    /// For humans; may change between versions.
    pub message: String,
    /// The leader as far as the answering node knows (with `no_leader` /
    /// `not_leader`). Absent from the JSON when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<LeaderHint>,
}

/// Where the leader is, for a client to retry there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    pub id: NodeId,
    /// `host:port` of the leader's API, when its address is known.
    pub api_addr: Option<String>,
}

impl ErrorBody {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                leader: None,
            },
        }
    }

    /// Adds the leader hint.
    pub fn with_leader(mut self, hint: LeaderHint) -> Self {
        self.error.leader = Some(hint);
        self
    }
}

impl From<&Rejection> for ErrorBody {
    fn from(r: &Rejection) -> Self {
        ErrorBody::new(r.code(), r.to_string())
    }
}

/// A request refused before anything was proposed (answer 400 unless the
/// code says otherwise). Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BadRequest {
    /// One of [`codes`] or a [`Rejection::code`].
    pub code: &'static str,
    pub message: String,
}

impl BadRequest {
    /// A `bad_request` error.
    pub fn new(message: impl Into<String>) -> Self {
        BadRequest {
            code: codes::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<BadRequest> for ErrorBody {
    fn from(e: BadRequest) -> Self {
        ErrorBody::new(e.code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody::from(&Rejection::CooldownActive { remaining_ms: 5 });
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"error": {"code": "cooldown_active",
                "message": "automatic switches are in cooldown for another 5 ms"}})
        );
        let hinted = ErrorBody::new(codes::NOT_LEADER, "ask node 2").with_leader(LeaderHint {
            id: 2,
            api_addr: Some("127.0.0.1:7102".into()),
        });
        assert_eq!(
            serde_json::to_value(&hinted).unwrap(),
            json!({"error": {"code": "not_leader", "message": "ask node 2",
                "leader": {"id": 2, "api_addr": "127.0.0.1:7102"}}})
        );
    }

    #[test]
    fn error_body_decodes_without_leader() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"x","message":"y"}}"#).unwrap();
        assert_eq!(body, ErrorBody::new("x", "y"));
    }
}
