//! `[security]`: the node's certificate material (mutual TLS between
//! nodes, TLS on the admin API), the admin API's token settings, and the
//! explicit opt-out `insecure = true` for plain, unauthenticated operation.
//!
//! ```toml
//! [security]
//! ca_cert = "certs/ca.pem"        # the cluster CA (`topod certs init`)
//! cert = "certs/node-1.pem"       # this node's (`topod certs issue --node 1`)
//! key = "certs/node-1.key"
//! api_tls = true                  # TLS on the admin API too (default)
//! metrics = "open"                # or "read": /metrics needs a read token
//! initial_admin_token_file = "certs/admin.token"
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Who may scrape `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsAccess {
    /// Anyone who reaches the API listener (the default: scrapers seldom
    /// carry tokens).
    #[default]
    Open,
    /// A token with at least the `read` role.
    Read,
}

/// Security settings. With `insecure = false` (the default) a node needs
/// `ca_cert`, `cert` and `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Plain, unauthenticated operation: no TLS, no tokens, peers trusted by
    /// their cluster id header alone. Logged loudly at start-up. Default
    /// false.
    pub insecure: bool,
    /// PEM file of the cluster CA's certificate: a peer is accepted only
    /// with a certificate it signed.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of this node's certificate (signed by the cluster CA, its
    /// name carrying this node's id and the cluster id).
    pub cert: Option<PathBuf>,
    /// PEM file of this node's private key.
    pub key: Option<PathBuf>,
    /// TLS on the admin API listener (with the node certificate, or
    /// `api_cert`/`api_key`). Default true.
    pub api_tls: bool,
    /// The operator's own certificate for the admin API (PEM), instead of
    /// the node certificate. Needs `api_key`.
    pub api_cert: Option<PathBuf>,
    /// The private key of `api_cert` (PEM).
    pub api_key: Option<PathBuf>,
    /// Who may read `/metrics`. Default `open`.
    pub metrics: MetricsAccess,
    /// A file holding an admin token (one line) that the first voter
    /// stores, as a hash, when it initialises the cluster, so the first
    /// operator can get in (as Consul's initial management token). Unset:
    /// tokens are created with a node's certificate (`topod token create`).
    pub initial_admin_token_file: Option<PathBuf>,
    /// Warn this many days before a certificate expires. 1..=3650. Default
    /// 30.
    pub expiry_warning_days: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            insecure: false,
            ca_cert: None,
            cert: None,
            key: None,
            api_tls: true,
            api_cert: None,
            api_key: None,
            metrics: MetricsAccess::Open,
            initial_admin_token_file: None,
            expiry_warning_days: 30,
        }
    }
}

impl SecurityConfig {
    /// Whether the admin API asks for bearer tokens: on every secure node
    /// (a node calling another presents its certificate instead).
    pub fn require_tokens(&self) -> bool {
        !self.insecure
    }

    /// Plain operation, for tests of the unauthenticated mode.
    pub fn insecure() -> Self {
        SecurityConfig {
            insecure: true,
            ..SecurityConfig::default()
        }
    }

    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        super::check_range(
            "security.expiry_warning_days",
            self.expiry_warning_days,
            1,
            3650,
        )?;
        if self.api_cert.is_some() != self.api_key.is_some() {
            return Err(ConfigError::invalid(
                if self.api_cert.is_some() {
                    "security.api_key"
                } else {
                    "security.api_cert"
                },
                "security.api_cert and security.api_key go together",
            ));
        }
        Ok(())
    }
}
