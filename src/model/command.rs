//! Commands of the Raft log (the switch protocol) and their typed responses.
//!
//! A log entry's application payload is the postcard encoding of an
//! [`Envelope`]. `Envelope::V1` is frozen (its commands are in
//! [`super::v1`]); a changed command becomes a new envelope variant, never
//! an edit of a released one. `V2` is frozen too ([`super::v2`]); `V3`
//! carries today's [`Command`] and is what this build writes, but for the
//! commands that need `V4` (report batches) or `V5` (tokens): see
//! [`Command::log_version`].

use serde::{Deserialize, Serialize};

use super::policy::PolicyUpdate;
use super::token::NewToken;
use super::{ClusterMetrics, NodeId, OverlayConfig, Topology, TransitionId};

/// The versioned unit written to the log. The leader stamps it with its
/// wall clock (unix ms, never going backwards); the state machine takes all
/// time from this stamp so that applying is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Envelope {
    /// Released first; frozen. Read, never written.
    V1 {
        /// Leader's timestamp, unix milliseconds.
        stamp_ms: u64,
        command: super::v1::Command,
    },
    /// Adds a proposal's trigger and term fence, the monitor's and rules'
    /// policy keys and user workload profiles. Frozen. Read, never
    /// written.
    V2 {
        /// Leader's timestamp, unix milliseconds.
        stamp_ms: u64,
        command: super::v2::Command,
    },
    /// Adds the policy's custom rules and disabled built-in rules.
    /// Applied by the same rules as `V2`. Written for every command but
    /// [`Command::ReportPhases`].
    V3 {
        /// Leader's timestamp, unix milliseconds.
        stamp_ms: u64,
        command: Command,
    },
    /// Adds [`Command::ReportPhases`], the only command written in it: a
    /// build that does not know `V4` stops at such an entry, so the leader
    /// writes one only when every member has said it reads `V4`
    /// ([`LOG_VERSION`], `control::log_versions`). Applied by the same
    /// rules as `V2`.
    V4 {
        /// Leader's timestamp, unix milliseconds.
        stamp_ms: u64,
        command: Command,
    },
    /// Adds [`Command::CreateToken`] and [`Command::RevokeToken`], the only
    /// commands written in it; written, like `V4`, only when every member
    /// has said it reads `V5` (an older build would stop at the entry).
    /// Applied by the same rules as `V2`.
    V5 {
        /// Leader's timestamp, unix milliseconds.
        stamp_ms: u64,
        command: Command,
    },
    /// Adds [`Command::Batch`], the only command written in it; written,
    /// like `V4`, only when every member has said it reads `V6`. Applied by
    /// the same rules as `V2`.
    V6 {
        /// Leader's timestamp, unix milliseconds.
        stamp_ms: u64,
        command: Command,
    },
}

/// The newest envelope this build reads and writes (`V6`), announced to
/// the leader on every Raft RPC answer.
pub const LOG_VERSION: u32 = 6;

/// An envelope that cannot be decoded. Applying stops at such an entry:
/// skipping it would make nodes diverge.
#[derive(Debug, thiserror::Error)]
#[error("log entry is not a known envelope ({len} bytes): {source}")]
pub struct EnvelopeError {
    pub len: usize,
    #[source]
    pub source: postcard::Error,
}

impl Envelope {
    /// The envelope this build writes for `command`.
    pub fn new(stamp_ms: u64, command: Command) -> Self {
        match command.log_version() {
            6 => Envelope::V6 { stamp_ms, command },
            5 => Envelope::V5 { stamp_ms, command },
            4 => Envelope::V4 { stamp_ms, command },
            _ => Envelope::V3 { stamp_ms, command },
        }
    }

    /// The rules this envelope's command is applied by.
    pub fn rules(&self) -> super::state::Rules {
        match self {
            Envelope::V1 { .. } => super::state::Rules::V1,
            Envelope::V2 { .. }
            | Envelope::V3 { .. }
            | Envelope::V4 { .. }
            | Envelope::V5 { .. }
            | Envelope::V6 { .. } => super::state::Rules::V2,
        }
    }

    /// The leader's stamp and the command, in today's types.
    pub fn into_parts(self) -> (u64, Command) {
        match self {
            Envelope::V1 { stamp_ms, command } => (stamp_ms, command.into()),
            Envelope::V2 { stamp_ms, command } => (stamp_ms, command.into()),
            Envelope::V3 { stamp_ms, command }
            | Envelope::V4 { stamp_ms, command }
            | Envelope::V5 { stamp_ms, command }
            | Envelope::V6 { stamp_ms, command } => (stamp_ms, command),
        }
    }

    /// Postcard bytes of this envelope.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("envelopes are plain data")
    }

    /// Decodes postcard bytes; refuses trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let err = |source| EnvelopeError {
            len: bytes.len(),
            source,
        };
        let (env, rest) = postcard::take_from_bytes::<Envelope>(bytes).map_err(err)?;
        if !rest.is_empty() {
            return Err(err(postcard::Error::DeserializeBadEncoding));
        }
        Ok(env)
    }
}

/// What the switch protocol writes to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Start a transition to `target`.
    ProposeSwitch(ProposeSwitch),
    /// A node's report on a transition: before the cut-over (`Prepared`,
    /// `Failed`) or after it (`Verified`, `Unhealthy`).
    ReportPhase {
        id: TransitionId,
        node: NodeId,
        phase: Phase,
    },
    /// The leader's coordinator decided to cut over. `term` fences the
    /// decision: it must equal the term of the entry carrying it.
    CommitSwitch {
        id: TransitionId,
        term: u64,
        /// Members that had not reported and were not live.
        missing: Vec<NodeId>,
    },
    /// The leader's coordinator gave up on the transition.
    AbortSwitch {
        id: TransitionId,
        term: u64,
        reason: String,
    },
    /// Change the replicated policy.
    SetPolicy(PolicyUpdate),
    /// Several nodes' phase reports in one entry (the leader batches those
    /// that arrive within a short window); each is applied exactly as a
    /// [`Command::ReportPhase`] of its own, in order. Envelope `V4` only.
    ReportPhases { reports: Vec<PhaseReport> },
    /// Store an admin API token (its hash only). `initial`: the one-time
    /// initial admin token of `security.initial_admin_token_file`, refused
    /// once one was ever stored. Envelope `V5` only.
    CreateToken { token: NewToken, initial: bool },
    /// Remove the token `name`: requests with it get 401 from the moment
    /// a node applies this. Envelope `V5` only.
    RevokeToken { name: String },
    /// Several clients' commands in one entry: the leader's proposer
    /// gathers the writes that arrive while earlier ones are being
    /// committed (group commit, `control::proposer`), so concurrent writes
    /// cost one log append and one flush per batch instead of one each.
    /// Applied in order, each exactly as an entry of its own with the
    /// entry's stamp and term; only commands that do not depend on their
    /// entry's index go in one ([`Command::batchable`]). Envelope `V6`
    /// only.
    Batch { commands: Vec<Command> },
}

impl Command {
    /// The envelope version this command is written in: a leader writes it
    /// only when every member reads that version (`control::log_versions`).
    pub fn log_version(&self) -> u32 {
        match self {
            Command::Batch { .. } => 6,
            Command::CreateToken { .. } | Command::RevokeToken { .. } => 5,
            Command::ReportPhases { .. } => 4,
            _ => 3,
        }
    }
}

impl Command {
    /// Whether this command may go in a [`Command::Batch`]: its effect
    /// must not depend on the index of its entry, which all commands of a
    /// batch share. A proposal's transition id is its entry's index, so
    /// `ProposeSwitch` goes alone; batches do not nest (nor go
    /// `ReportPhases`, a batch of its own).
    pub fn batchable(&self) -> bool {
        !matches!(
            self,
            Command::ProposeSwitch(_) | Command::ReportPhases { .. } | Command::Batch { .. }
        )
    }
}

/// One report of a [`Command::ReportPhases`] batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub id: TransitionId,
    pub node: NodeId,
    pub phase: Phase,
}

/// Payload of [`Command::ProposeSwitch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposeSwitch {
    pub target: Topology,
    /// The effective overlay config of `target`.
    pub config: OverlayConfig,
    pub reason: SwitchReason,
    /// Client idempotency key: a repeated id gets the first answer.
    pub request_id: Option<String>,
    /// Who asked (e.g. `api@node2`, `coordinator`), for the history.
    pub requested_by: String,
    /// What made the monitor decide (automatic switches), kept in the
    /// history record.
    pub trigger: Option<Trigger>,
    /// The term the proposal was decided in: when set, the state machine
    /// refuses it if the entry was appended in another term
    /// (`stale_term`), so a deposed leader's late decision is fenced.
    pub fence_term: Option<u64>,
}

impl ProposeSwitch {
    /// A proposal with no trigger and no fence.
    pub fn new(
        target: Topology,
        config: OverlayConfig,
        reason: SwitchReason,
        request_id: Option<String>,
        requested_by: impl Into<String>,
    ) -> Self {
        ProposeSwitch {
            target,
            config,
            reason,
            request_id,
            requested_by: requested_by.into(),
            trigger: None,
            fence_term: None,
        }
    }
}

/// The figures and the explanation behind an automatic switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The monitor round's cluster metrics.
    pub metrics: ClusterMetrics,
    /// The rules' explanation: every rule and why it held or not.
    pub explanation: String,
}

/// Why a switch was proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwitchReason {
    /// An operator asked.
    Manual,
    /// A monitor rule fired.
    Auto { rule: String },
    /// A workload profile prefers the target.
    Workload { profile: String },
    /// The coordinator reverts transition `of` after a failed cut-over.
    Rollback { of: TransitionId },
}

impl SwitchReason {
    /// Whether the cooldown applies (automatic decisions only).
    pub fn is_automatic(&self) -> bool {
        matches!(
            self,
            SwitchReason::Auto { .. } | SwitchReason::Workload { .. }
        )
    }

    /// Short label for metrics (`manual`, `auto`, `workload`, `rollback`).
    pub fn label(&self) -> &'static str {
        match self {
            SwitchReason::Manual => "manual",
            SwitchReason::Auto { .. } => "auto",
            SwitchReason::Workload { .. } => "workload",
            SwitchReason::Rollback { .. } => "rollback",
        }
    }
}

/// A node's report on a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// The shadow overlay formed and passed verification.
    Prepared,
    /// The shadow overlay could not form or failed verification.
    Failed { reason: String },
    /// After the cut-over, the new overlay passed verification.
    Verified,
    /// After the cut-over, the new overlay is unhealthy.
    Unhealthy { reason: String },
}

impl Phase {
    /// Whether this is a report made before the cut-over.
    pub fn is_prepare_report(&self) -> bool {
        matches!(self, Phase::Prepared | Phase::Failed { .. })
    }
}

/// The state machine's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// A switch was accepted: transition `id` is `Preparing`.
    Accepted { id: TransitionId },
    /// A report, commit, abort or policy change took effect.
    Applied,
    /// Nothing changed.
    Rejected(Rejection),
    /// The answers to a [`Command::ReportPhases`], one per report, or to a
    /// [`Command::Batch`], one per command, in order.
    Batch(Vec<CommandResponse>),
}

/// Why a command was rejected. Rejections change no state (not even the
/// state machine's clock), except that a proposal's request id remembers
/// its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("{topology} with this overlay config is already the current topology")]
    AlreadyCurrent { topology: Topology },
    #[error("transition {id} is still in flight")]
    TransitionInProgress { id: TransitionId },
    #[error("automatic switches are in cooldown for another {remaining_ms} ms")]
    CooldownActive { remaining_ms: u64 },
    #[error("{detail}")]
    UnknownTopology { detail: String },
    #[error("{detail}")]
    StaleTransition { detail: String },
    #[error("invalid overlay config: {detail}")]
    InvalidConfig { detail: String },
    #[error("invalid policy: {detail}")]
    InvalidPolicy { detail: String },
    #[error("proposal decided in term {decided_in} but appended in term {appended_in}")]
    StaleTerm { decided_in: u64, appended_in: u64 },
    #[error("a token named `{name}` exists; revoke it first or choose another name")]
    TokenExists { name: String },
    #[error("no token named `{name}`")]
    UnknownToken { name: String },
    #[error("invalid token: {detail}")]
    InvalidToken { detail: String },
    #[error("the cluster holds the most tokens allowed ({limit}); revoke some first")]
    TooManyTokens { limit: usize },
    #[error("the initial admin token was already stored once")]
    InitialTokenStored,
    /// A command that must have an entry of its own inside a
    /// [`Command::Batch`] (no build writes one).
    #[error("this command cannot be applied inside a batch")]
    NotBatchable,
}

impl Rejection {
    /// The snake_case code used in API errors.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::AlreadyCurrent { .. } => "already_current",
            Rejection::TransitionInProgress { .. } => "transition_in_progress",
            Rejection::CooldownActive { .. } => "cooldown_active",
            Rejection::UnknownTopology { .. } => "unknown_topology",
            Rejection::StaleTransition { .. } => "stale_transition",
            Rejection::InvalidConfig { .. } => "invalid_config",
            Rejection::InvalidPolicy { .. } => "invalid_policy",
            Rejection::StaleTerm { .. } => "stale_term",
            Rejection::TokenExists { .. } => "token_exists",
            Rejection::UnknownToken { .. } => "unknown_token",
            Rejection::InvalidToken { .. } => "invalid_token",
            Rejection::TooManyTokens { .. } => "too_many_tokens",
            Rejection::InitialTokenStored => "initial_token_stored",
            Rejection::NotBatchable => "not_batchable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_refuses_garbage() {
        let env = Envelope::new(
            42,
            Command::ProposeSwitch(ProposeSwitch::new(
                Topology::HyParView,
                OverlayConfig::default_for(Topology::HyParView),
                SwitchReason::Rollback { of: 7 },
                Some("abc".into()),
                "test",
            )),
        );
        assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
        let mut bad = env.encode();
        bad.push(0);
        assert!(Envelope::decode(&bad).is_err());
        assert!(Envelope::decode(&[9, 9, 9]).is_err());
        assert!(Envelope::decode(&[]).is_err());
    }

    #[test]
    fn v1_entries_stay_readable() {
        let v1 = Envelope::V1 {
            stamp_ms: 5,
            command: crate::model::v1::Command::SetPolicy(crate::model::v1::PolicyUpdate {
                cooldown_ms: Some(9),
                auto_switch: None,
                history_retention: None,
            }),
        };
        // The bytes a V1 build wrote: variant 0, stamp, command.
        let bytes = v1.encode();
        assert_eq!(bytes[0], 0);
        let (stamp, command) = Envelope::decode(&bytes).unwrap().into_parts();
        assert_eq!(stamp, 5);
        assert_eq!(
            command,
            Command::SetPolicy(PolicyUpdate {
                cooldown_ms: Some(9),
                ..Default::default()
            })
        );
    }

    #[test]
    fn v2_entries_stay_readable_and_v3_is_written() {
        let v2 = Envelope::V2 {
            stamp_ms: 6,
            command: crate::model::v2::Command::SetPolicy(crate::model::v2::PolicyUpdate {
                hold_rounds: Some(4),
                ..Default::default()
            }),
        };
        let bytes = v2.encode();
        assert_eq!(bytes[0], 1);
        let (stamp, command) = Envelope::decode(&bytes).unwrap().into_parts();
        assert_eq!(stamp, 6);
        assert_eq!(
            command,
            Command::SetPolicy(PolicyUpdate {
                hold_rounds: Some(4),
                ..Default::default()
            })
        );
        let v3 = Envelope::new(1, Command::SetPolicy(PolicyUpdate::default()));
        assert_eq!(v3.encode()[0], 2);
        assert_eq!(v3.rules(), crate::model::state::Rules::V2);
    }

    #[test]
    fn token_commands_are_written_in_v5_only() {
        let create = Command::CreateToken {
            token: NewToken {
                name: "ci".into(),
                role: crate::model::token::Role::Operator,
                hash: [7; 32],
                expires_ms: Some(9),
            },
            initial: false,
        };
        let revoke = Command::RevokeToken { name: "ci".into() };
        for c in [create, revoke] {
            assert_eq!(c.log_version(), 5);
            let env = Envelope::new(3, c.clone());
            assert_eq!(env.encode()[0], 4, "variant index of V5");
            assert_eq!(env.rules(), crate::model::state::Rules::V2);
            assert_eq!(
                Envelope::decode(&env.encode()).unwrap().into_parts(),
                (3, c)
            );
        }
        let batch = Command::ReportPhases { reports: vec![] };
        assert_eq!(Envelope::new(1, batch).encode()[0], 3);
        assert_eq!(Command::SetPolicy(PolicyUpdate::default()).log_version(), 3);
    }
}
