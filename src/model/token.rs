//! The admin API's bearer tokens as the replicated state holds them: a
//! name, a [`Role`], the SHA-256 hash of the secret (never the secret), the
//! creation stamp and an optional expiry; and the pure rules that create
//! and revoke them ([`Tokens::create`], [`Tokens::revoke`]).
//!
//! Tokens are written by [`super::Command::CreateToken`] and
//! [`super::Command::RevokeToken`] (envelope `V5`), so every node holds the
//! same records and any node can check a request's token against its own
//! applied state. The secret is generated on the leader
//! (`security::token`), shown once to whoever asked, and only its hash
//! reaches the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Rejection;

/// Most tokens the state holds (guess: a handful of people and CI jobs per
/// cluster; the bound keeps the state and every snapshot small).
pub const MAX_TOKENS: usize = 1024;
/// Longest token name, bytes.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// What a token may do. Ordered: each role can do what the ones before it
/// can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every `GET`.
    Read,
    /// `read`, and switch, optimize, policy, rules, canary.
    Operator,
    /// `operator`, and membership, tokens, faults, chaos.
    Admin,
}

impl Role {
    /// The role's name (`read`, `operator`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `read`, `operator`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (expected read, operator or admin)")]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Role::Read),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// SHA-256 of a token's whole secret string.
pub type TokenHash = [u8; 32];

/// The hash stored for `secret`.
pub fn hash_secret(secret: &str) -> TokenHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Payload of [`super::Command::CreateToken`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub hash: TokenHash,
    /// Unix ms after which the token is refused; `None`: never.
    pub expires_ms: Option<u64>,
}

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    pub hash: TokenHash,
    /// The leader's stamp of the entry that created it, unix ms.
    pub created_ms: u64,
    /// Unix ms after which the token is refused; `None`: never.
    pub expires_ms: Option<u64>,
}

impl TokenRecord {
    /// Whether the token is expired at wall-clock time `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|e| now_ms >= e)
    }
}

/// Every token of the cluster, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub records: BTreeMap<String, TokenRecord>,
    /// Whether the initial admin token (`security.initial_admin_token_file`)
    /// was ever stored: it is stored once, so revoking it is final even
    /// when the first voter restarts with the file still configured.
    pub initial_stored: bool,
}

/// Checks a token name: 1..=64 bytes of ASCII letters, digits, `.`, `_`,
/// `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TOKEN_NAME_LEN {
        return Err(format!(
            "token name must be 1 to {MAX_TOKEN_NAME_LEN} bytes, got {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "token name `{name}` has `{c}`: use letters, digits, `.`, `_` or `-`"
        ));
    }
    Ok(())
}

impl Tokens {
    /// Stores `token`, created at `now_ms`. `initial`: the one-time initial
    /// admin token, refused once one was ever stored. A rejection changes
    /// nothing.
    pub fn create(
        &mut self,
        now_ms: u64,
        token: &NewToken,
        initial: bool,
    ) -> Result<(), Rejection> {
        if initial && self.initial_stored {
            return Err(Rejection::InitialTokenStored);
        }
        check_name(&token.name).map_err(|detail| Rejection::InvalidToken { detail })?;
        if self.records.contains_key(&token.name) {
            return Err(Rejection::TokenExists {
                name: token.name.clone(),
            });
        }
        if self.records.values().any(|r| r.hash == token.hash) {
            return Err(Rejection::InvalidToken {
                detail: "a token with this secret already exists".into(),
            });
        }
        if self.records.len() >= MAX_TOKENS {
            return Err(Rejection::TooManyTokens { limit: MAX_TOKENS });
        }
        self.records.insert(
            token.name.clone(),
            TokenRecord {
                name: token.name.clone(),
                role: token.role,
                hash: token.hash,
                created_ms: now_ms,
                expires_ms: token.expires_ms,
            },
        );
        if initial {
            self.initial_stored = true;
        }
        Ok(())
    }

    /// Removes the token `name`. A rejection changes nothing.
    pub fn revoke(&mut self, name: &str) -> Result<(), Rejection> {
        match self.records.remove(name) {
            Some(_) => Ok(()),
            None => Err(Rejection::UnknownToken {
                name: name.to_string(),
            }),
        }
    }

    /// The token whose secret hashes to `hash`. A linear scan: the map is
    /// bounded by [`MAX_TOKENS`], and comparing hashes of 256-bit random
    /// secrets leaks nothing an attacker can use.
    pub fn find(&self, hash: &TokenHash) -> Option<&TokenRecord> {
        self.records.values().find(|r| &r.hash == hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, secret: &str) -> NewToken {
        NewToken {
            name: name.into(),
            role: Role::Operator,
            hash: hash_secret(secret),
            expires_ms: None,
        }
    }

    #[test]
    fn create_find_and_revoke() {
        let mut t = Tokens::default();
        t.create(5, &new("ci", "s1"), false).unwrap();
        let r = t.find(&hash_secret("s1")).unwrap();
        assert_eq!(
            (r.name.as_str(), r.role, r.created_ms),
            ("ci", Role::Operator, 5)
        );
        assert!(t.find(&hash_secret("s2")).is_none());
        t.revoke("ci").unwrap();
        assert!(t.find(&hash_secret("s1")).is_none());
        assert_eq!(
            t.revoke("ci"),
            Err(Rejection::UnknownToken { name: "ci".into() })
        );
    }

    #[test]
    fn refusals_change_nothing() {
        let mut t = Tokens::default();
        t.create(1, &new("ci", "s1"), false).unwrap();
        let before = t.clone();
        assert_eq!(
            t.create(2, &new("ci", "s2"), false),
            Err(Rejection::TokenExists { name: "ci".into() })
        );
        assert!(matches!(
            t.create(2, &new("other", "s1"), false),
            Err(Rejection::InvalidToken { .. })
        ));
        assert!(matches!(
            t.create(2, &new("bad name", "s3"), false),
            Err(Rejection::InvalidToken { .. })
        ));
        assert!(matches!(
            t.create(2, &new("", "s3"), false),
            Err(Rejection::InvalidToken { .. })
        ));
        assert_eq!(t, before);
    }

    #[test]
    fn the_initial_token_is_stored_once_even_after_its_revocation() {
        let mut t = Tokens::default();
        t.create(1, &new("initial-admin", "s1"), true).unwrap();
        t.revoke("initial-admin").unwrap();
        assert_eq!(
            t.create(2, &new("initial-admin", "s1"), true),
            Err(Rejection::InitialTokenStored)
        );
        assert!(t.records.is_empty());
    }

    #[test]
    fn the_number_of_tokens_is_bounded() {
        let mut t = Tokens::default();
        for i in 0..MAX_TOKENS {
            t.create(1, &new(&format!("t{i}"), &format!("s{i}")), false)
                .unwrap();
        }
        assert_eq!(
            t.create(1, &new("one-more", "x"), false),
            Err(Rejection::TooManyTokens { limit: MAX_TOKENS })
        );
    }

    #[test]
    fn expiry_is_inclusive_and_roles_are_ordered() {
        let mut r = TokenRecord {
            name: "x".into(),
            role: Role::Read,
            hash: hash_secret("x"),
            created_ms: 0,
            expires_ms: Some(100),
        };
        assert!(!r.expired_at(99));
        assert!(r.expired_at(100));
        r.expires_ms = None;
        assert!(!r.expired_at(u64::MAX));
        assert!(Role::Read < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
