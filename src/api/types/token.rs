//! Bodies of the token routes (`/v1/tokens`). A token's secret appears in
//! exactly one answer, [`CreatedToken`], the one that made it; no view
//! carries a secret or a hash.

use serde::{Deserialize, Serialize};

use crate::model::token::{Role, TokenRecord};

/// Longest expiry accepted, ms: ten years.
pub const MAX_EXPIRES_IN_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Unique; letters, digits, `.`, `_`, `-`; 1..=64 bytes.
    pub name: String,
    pub role: Role,
    /// The token expires this long after the leader creates it, ms
    /// (1..=10 years). Absent with `expires_at_ms` too: never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
    /// The token expires at this wall-clock time, unix ms (a time already
    /// past makes a token that is refused at once). Not with
    /// `expires_in_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl CreateTokenRequest {
    /// The expiry as unix ms, for a leader whose clock reads `now_ms`.
    pub fn expiry(&self, now_ms: u64) -> Result<Option<u64>, super::BadRequest> {
        match (self.expires_in_ms, self.expires_at_ms) {
            (Some(_), Some(_)) => Err(super::BadRequest::new(
                "give expires_in_ms or expires_at_ms, not both",
            )),
            (Some(d), None) if d == 0 || d > MAX_EXPIRES_IN_MS => Err(super::BadRequest::new(
                format!("expires_in_ms must be 1..={MAX_EXPIRES_IN_MS}, got {d}"),
            )),
            (Some(d), None) => Ok(Some(now_ms.saturating_add(d))),
            (None, at) => Ok(at),
        }
    }
}

/// One token in `GET /v1/tokens`: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub name: String,
    pub role: Role,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms; `null`: never.
    pub expires_ms: Option<u64>,
}

impl From<&TokenRecord> for TokenView {
    fn from(r: &TokenRecord) -> Self {
        TokenView {
            name: r.name.clone(),
            role: r.role,
            created_ms: r.created_ms,
            expires_ms: r.expires_ms,
        }
    }
}

/// `GET /v1/tokens`: every token, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensView {
    pub tokens: Vec<TokenView>,
}

/// 201 answer of `POST /v1/tokens`: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The bearer token: `Authorization: Bearer <token>`. Not stored
    /// anywhere (the cluster keeps its SHA-256 hash).
    pub token: String,
}

/// 200 answer of `DELETE /v1/tokens/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedToken {
    pub revoked: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(inn: Option<u64>, at: Option<u64>) -> CreateTokenRequest {
        CreateTokenRequest {
            name: "ci".into(),
            role: Role::Operator,
            expires_in_ms: inn,
            expires_at_ms: at,
        }
    }

    #[test]
    fn expiry_from_a_duration_or_a_time() {
        assert_eq!(req(None, None).expiry(10), Ok(None));
        assert_eq!(req(Some(5), None).expiry(10), Ok(Some(15)));
        assert_eq!(req(None, Some(3)).expiry(10), Ok(Some(3)));
        assert!(req(Some(5), Some(3)).expiry(10).is_err());
        assert!(req(Some(0), None).expiry(10).is_err());
        assert!(req(Some(MAX_EXPIRES_IN_MS + 1), None).expiry(10).is_err());
    }

    #[test]
    fn views_never_carry_a_hash_and_requests_refuse_unknown_fields() {
        let rec = TokenRecord {
            name: "ci".into(),
            role: Role::Read,
            hash: [9; 32],
            created_ms: 1,
            expires_ms: None,
        };
        let json = serde_json::to_value(TokenView::from(&rec)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name":"ci","role":"read","created_ms":1,"expires_ms":null})
        );
        let bad =
            serde_json::from_str::<CreateTokenRequest>(r#"{"name":"a","role":"read","hash":"x"}"#);
        assert!(bad.is_err());
        let unknown_role =
            serde_json::from_str::<CreateTokenRequest>(r#"{"name":"a","role":"root"}"#);
        assert!(unknown_role.is_err());
    }
}
