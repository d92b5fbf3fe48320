//! What can go wrong in `topoctl`. Each error displays as
//! `<code>: <message>`; the binary prints `error: ` before it and exits 1.

use crate::api::types::{BadRequest, ErrorBody};
use crate::model::TransitionId;

/// A failed `topoctl` command. Whether the cluster changed: an `Api` error
/// answered by the server means nothing was written; `Timeout` and
/// `WaitTimeout` mean the outcome is unknown (a write may still apply).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with an error body.
    #[error("{code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        code: String,
        message: String,
    },
    /// No endpoint accepted a connection; one entry per endpoint tried.
    #[error("unreachable: no endpoint answered ({})", format_attempts(.attempts))]
    Unreachable { attempts: Vec<(String, String)> },
    /// The request got no complete answer in time.
    #[error("timeout: {endpoint} did not answer within {after_ms} ms")]
    Timeout { endpoint: String, after_ms: u64 },
    /// The connection failed mid-request.
    #[error("network_error: {endpoint}: {message}")]
    Network { endpoint: String, message: String },
    /// The answer was not what the API promises (bad JSON, too large).
    #[error("bad_response: {endpoint}: {message}")]
    BadResponse { endpoint: String, message: String },
    /// The request was refused before it was sent.
    #[error("{}: {}", .0.code, .0.message)]
    BadRequest(#[from] BadRequest),
    /// The simulation could not run (bad scenario or arguments).
    #[error("simulation: {0}")]
    Simulate(#[from] crate::sim::SimError),
    /// `switch --wait`: the transition was aborted (rolled back).
    #[error("transition_aborted: transition {id} aborted: {reason}")]
    Aborted { id: TransitionId, reason: String },
    /// `switch --wait`: still undecided at the deadline.
    #[error("timeout: transition {id} is still in progress after {after_ms} ms")]
    WaitTimeout { id: TransitionId, after_ms: u64 },
    /// `rules check|set`: the rule file is not valid; nothing was sent.
    #[error("invalid_rules: {file}: {} error(s):{}", .problems.len(), format_problems(.problems))]
    Rules {
        file: String,
        problems: Vec<super::rules::Problem>,
    },
    /// A backup file could not be read or is not a usable backup.
    #[error("invalid_backup: {0}")]
    Backup(#[from] crate::control::store::BackupError),
    /// A local file could not be read or written.
    #[error("file: {path}: {message}")]
    File { path: String, message: String },
    /// Writing the output failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

fn format_problems(problems: &[super::rules::Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

fn format_attempts(attempts: &[(String, String)]) -> String {
    attempts
        .iter()
        .map(|(e, m)| format!("{e}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl CliError {
    /// The error as the server's JSON error body (for `--json` output).
    pub fn to_body(&self) -> ErrorBody {
        let text = self.to_string();
        let (code, message) = text.split_once(": ").unwrap_or(("error", &text));
        ErrorBody::new(code, message)
    }

    /// An API error from a decoded body.
    pub(crate) fn from_body(status: u16, body: ErrorBody) -> Self {
        let hint = match status {
            401 => {
                " (give an admin API token: --token T, TOPOCTL_TOKEN, or --data-dir DIR holding admin.token; `topod dev` writes ./data/admin.token)"
            }
            403 => " (use a token with the role this names: `topoctl token create --role ...`)",
            _ => "",
        };
        CliError::Api {
            status,
            code: body.error.code,
            message: format!("{}{hint}", body.error.message),
        }
    }
}
