//! `[raft]`: timing and size limits of the Raft layer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check_range, ConfigError};

/// Raft settings. Defaults from openraft 0.9's `Config::default()` unless
/// said otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Leader heartbeat period, ms. 10..=10_000 and below
    /// `election_timeout_min_ms`. Default 50 (openraft).
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout, ms. 50..=60_000.
    /// Default 150 (openraft; the Raft paper's 150–300 ms range).
    pub election_timeout_min_ms: u64,
    /// Upper bound of the election timeout, ms; above the minimum, at most
    /// 120_000. Default 300 (openraft).
    pub election_timeout_max_ms: u64,
    /// Deadline of one Raft RPC (append, vote, one snapshot chunk), ms.
    /// 10..=60_000. Default 1000 (guess: far above a LAN round trip, short
    /// enough that a dead peer is noticed within a few heartbeats).
    pub rpc_timeout_ms: u64,
    /// Most entries in one append RPC. 1..=10_000. Default 300 (openraft).
    pub max_payload_entries: u64,
    /// Build a snapshot after this many entries since the last one.
    /// 1..=10_000_000. Default 5000 (openraft's `LogsSinceLast(5000)`).
    pub snapshot_logs_since_last: u64,
    /// Largest Raft RPC body accepted, bytes. 4 MiB..=1 GiB: it must hold
    /// `max_payload_entries` entries and a 3 MiB snapshot chunk. Default
    /// 16 MiB (guess: an entry is < 4 KiB, so 300 entries are ~1 MiB).
    pub rpc_max_body_bytes: u64,
    /// topod's pre-vote ([`crate::control::prevote`]): a voter campaigns
    /// only after a majority of voters say they would vote for it, so a
    /// voter cut off by a partition does not raise its term and depose the
    /// leader when it returns. `false` leaves elections to openraft 0.9's
    /// own timer (no pre-vote). Default true.
    pub prevote: bool,
    /// Idle heartbeats to learners at most this often, ms; 0 sends every
    /// heartbeat (`heartbeat_ms`). A heartbeat that carries news — a new
    /// commit index, a new vote, entries — always goes at once, so a
    /// learner applies as soon as before; only the idle ones are dropped,
    /// and with them most of an idle leader's RPCs to learners. 0 or
    /// `heartbeat_ms..=10000`. Default 250 (5× fewer than every 50 ms). A
    /// learner's readiness window is `max(election_timeout_max_ms, 2 ×
    /// this)`.
    pub learner_heartbeat_ms: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            rpc_timeout_ms: 1000,
            max_payload_entries: 300,
            snapshot_logs_since_last: 5000,
            rpc_max_body_bytes: 16 << 20,
            prevote: true,
            learner_heartbeat_ms: 250,
        }
    }
}

/// openraft's snapshot chunk size (its default, 3 MiB); the RPC body limit
/// must hold one.
const SNAPSHOT_CHUNK_BYTES: u64 = 3 << 20;
/// Smallest `rpc_max_body_bytes`: a snapshot chunk plus framing headroom.
const MIN_RPC_BODY_BYTES: u64 = 4 << 20;

impl RaftConfig {
    /// How long a learner may go without its leader's AppendEntries and
    /// still be ready: the election timeout, or two idle learner
    /// heartbeats if longer.
    pub fn learner_ready_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.election_timeout_max_ms
                .max(2 * self.learner_heartbeat_ms),
        )
    }

    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("raft.heartbeat_ms", self.heartbeat_ms, 10, 10_000)?;
        check_range(
            "raft.election_timeout_min_ms",
            self.election_timeout_min_ms,
            50,
            60_000,
        )?;
        check_range(
            "raft.election_timeout_max_ms",
            self.election_timeout_max_ms,
            51,
            120_000,
        )?;
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(ConfigError::invalid(
                "raft.election_timeout_min_ms",
                "must be below raft.election_timeout_max_ms",
            ));
        }
        if self.heartbeat_ms >= self.election_timeout_min_ms {
            return Err(ConfigError::invalid(
                "raft.heartbeat_ms",
                "must be below raft.election_timeout_min_ms",
            ));
        }
        if self.learner_heartbeat_ms != 0 {
            check_range(
                "raft.learner_heartbeat_ms",
                self.learner_heartbeat_ms,
                self.heartbeat_ms,
                10_000,
            )?;
        }
        check_range("raft.rpc_timeout_ms", self.rpc_timeout_ms, 10, 60_000)?;
        check_range(
            "raft.max_payload_entries",
            self.max_payload_entries,
            1,
            10_000,
        )?;
        check_range(
            "raft.snapshot_logs_since_last",
            self.snapshot_logs_since_last,
            1,
            10_000_000,
        )?;
        check_range(
            "raft.rpc_max_body_bytes",
            self.rpc_max_body_bytes,
            MIN_RPC_BODY_BYTES,
            1 << 30,
        )?;
        Ok(())
    }

    /// The per-RPC deadline.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// The openraft config for a cluster named `cluster_id`.
    pub fn to_openraft(&self, cluster_id: &str) -> Result<openraft::Config, ConfigError> {
        let mut c = openraft::Config {
            cluster_name: cluster_id.to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            max_payload_entries: self.max_payload_entries,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            // With pre-vote on, topod decides when to campaign.
            enable_elect: !self.prevote,
            ..Default::default()
        };
        c.snapshot_max_chunk_size = SNAPSHOT_CHUNK_BYTES;
        c.validate()
            .map_err(|e| ConfigError::invalid("raft", format!("refused by openraft: {e}")))
    }
}
