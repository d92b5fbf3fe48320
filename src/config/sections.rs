//! `[switch]`, `[api]` and `[storage]`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check_range, ConfigError};
use crate::model::state::{MAX_COOLDOWN_MS, MAX_HISTORY_RETENTION};
use crate::model::{Policy, Topology};

/// Switching settings. `cooldown_ms`, `auto_switch` and
/// `history_retention` seed the replicated policy when the cluster is
/// bootstrapped; afterwards the policy changes only through the API
/// (`PUT /v1/policy`), and these keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchConfig {
    /// Minimum time between a committed switch and the next automatic one,
    /// ms. 0..=604_800_000 (7 days). Default 300_000 (`Policy::default`).
    pub cooldown_ms: u64,
    /// How long the coordinator waits for every live member to report
    /// `Prepared` before aborting, ms. 100..=600_000. Default 10_000
    /// (guess: forming a HyParView of thousands takes a few shuffle rounds).
    pub prepare_timeout_ms: u64,
    /// Whether the monitor may propose switches on its own. Default false
    /// (`Policy::default`: an operator opts in).
    pub auto_switch: bool,
    /// Transitions kept in the history. 1..=100_000. Default 1000
    /// (`Policy::default`).
    pub history_retention: u32,
    /// The topology a new cluster starts with: a topology name, or `auto`
    /// to pick by the node count at bootstrap (see [`InitialTopology`]).
    /// Default `full_mesh` (the state machine's initial state; right for
    /// the small clusters a cluster starts as).
    pub initial_topology: InitialTopology,
    /// How long the leader gathers phase and health reports before writing
    /// them as one log entry, ms; 0 writes each report alone. 0..=1000.
    /// Default 20: the reports of a switch arrive within a few ms of each
    /// other, so one switch on N members writes a handful of entries
    /// instead of 2N.
    pub report_batch_window_ms: u64,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        let p = Policy::default();
        SwitchConfig {
            cooldown_ms: p.cooldown_ms,
            prepare_timeout_ms: 10_000,
            auto_switch: p.auto_switch,
            history_retention: p.history_retention,
            initial_topology: InitialTopology::Fixed(Topology::FullMesh),
            report_batch_window_ms: 20,
        }
    }
}

/// `switch.initial_topology`: a fixed topology, or `auto`: fewer than
/// [`AUTO_HYPARVIEW_MIN_NODES`] members start on `full_mesh`, more on
/// `hyparview` (the design's `determine_initial_topology`). The count is
/// the membership when the one-time setup runs on the first leader, i.e.
/// the initial voters (learners join later and do not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialTopology {
    Auto,
    Fixed(Topology),
}

/// Clusters of at least this many members start on `hyparview` under
/// `initial_topology = "auto"` (the design's threshold).
pub const AUTO_HYPARVIEW_MIN_NODES: usize = 10;

/// The design's `determine_initial_topology`: by the node count at
/// bootstrap.
pub fn determine_initial_topology(node_count: usize) -> Topology {
    if node_count < AUTO_HYPARVIEW_MIN_NODES {
        Topology::FullMesh
    } else {
        Topology::HyParView
    }
}

impl InitialTopology {
    /// The topology to start with for `node_count` members.
    pub fn resolve(self, node_count: usize) -> Topology {
        match self {
            InitialTopology::Auto => determine_initial_topology(node_count),
            InitialTopology::Fixed(t) => t,
        }
    }
}

impl Serialize for InitialTopology {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InitialTopology::Auto => s.serialize_str("auto"),
            InitialTopology::Fixed(t) => s.serialize_str(t.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for InitialTopology {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name == "auto" {
            return Ok(InitialTopology::Auto);
        }
        name.parse().map(InitialTopology::Fixed).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown initial topology `{name}`: expected auto, full_mesh, hyparview, \
                 client_server or pub_sub"
            ))
        })
    }
}

impl SwitchConfig {
    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("switch.cooldown_ms", self.cooldown_ms, 0, MAX_COOLDOWN_MS)?;
        check_range(
            "switch.prepare_timeout_ms",
            self.prepare_timeout_ms,
            100,
            600_000,
        )?;
        check_range(
            "switch.history_retention",
            self.history_retention.into(),
            1,
            MAX_HISTORY_RETENTION.into(),
        )?;
        check_range(
            "switch.report_batch_window_ms",
            self.report_batch_window_ms,
            0,
            1_000,
        )?;
        Ok(())
    }

    /// The policy a new cluster starts with.
    /// The policy a new cluster starts with: these keys and `rules`'.
    pub fn initial_policy(&self, rules: &super::RulesConfig) -> Policy {
        let mut policy = Policy {
            cooldown_ms: self.cooldown_ms,
            auto_switch: self.auto_switch,
            history_retention: self.history_retention,
            ..Policy::default()
        };
        rules.apply_to(&mut policy);
        policy
    }

    /// The prepare deadline.
    pub fn prepare_timeout(&self) -> Duration {
        Duration::from_millis(self.prepare_timeout_ms)
    }
}

/// HTTP admin API settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest request body, bytes. 1024..=16 MiB. Default 64 KiB (guess:
    /// the largest request, a switch with a full overlay config, is < 4 KiB).
    pub max_body_bytes: u64,
    /// Deadline of a request that does not `wait`, including forwarding to
    /// the leader, ms. 100..=600_000. Default 10_000 (guess: several
    /// election timeouts, so a write survives one leader change).
    pub request_timeout_ms: u64,
    /// Both HTTP listeners (admin API and Raft RPC): the TLS handshake and
    /// each request's head must arrive within this, ms. 100..=60_000.
    /// Default 5_000 (a loopback or LAN client sends its head in < 1 ms;
    /// a slow-loris client is cut off after this).
    pub header_timeout_ms: u64,
    /// Both HTTP listeners: a request's body must arrive within this of its
    /// head, ms. 100..=600_000. Default 30_000 (a 16 MiB Raft body over a
    /// slow link).
    pub body_timeout_ms: u64,
    /// Both HTTP listeners: most connections open at once, each; one more
    /// is closed at once. 1..=65_536. Default 1_024 (a node at 200 peers
    /// holds a few pooled connections per peer).
    pub max_connections: u64,
    /// Both HTTP listeners: largest request head, bytes. 8_192..=1 MiB.
    /// Default 16_384.
    pub max_header_bytes: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 64 << 10,
            request_timeout_ms: 10_000,
            header_timeout_ms: 5_000,
            body_timeout_ms: 30_000,
            max_connections: 1_024,
            max_header_bytes: 16_384,
        }
    }
}

impl ApiConfig {
    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("api.max_body_bytes", self.max_body_bytes, 1024, 16 << 20)?;
        check_range(
            "api.request_timeout_ms",
            self.request_timeout_ms,
            100,
            600_000,
        )?;
        check_range("api.header_timeout_ms", self.header_timeout_ms, 100, 60_000)?;
        check_range("api.body_timeout_ms", self.body_timeout_ms, 100, 600_000)?;
        check_range("api.max_connections", self.max_connections, 1, 65_536)?;
        check_range(
            "api.max_header_bytes",
            self.max_header_bytes,
            8_192,
            1 << 20,
        )?;
        Ok(())
    }

    /// The limits of the listener `name` (`api`, `raft`).
    pub fn listener_limits(&self, name: &'static str) -> crate::security::listener::ListenerLimits {
        crate::security::listener::ListenerLimits {
            name,
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            max_header_bytes: self.max_header_bytes as usize,
        }
    }

    /// The request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// sled page cache, bytes. 1 MiB..=1 GiB. Default 8 MiB (the state is
    /// small and the log is compacted; sled's own 1 GiB default would
    /// reserve 5 GiB for five nodes on one machine).
    pub cache_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            cache_bytes: 8 << 20,
        }
    }
}

impl StorageConfig {
    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("storage.cache_bytes", self.cache_bytes, 1 << 20, 1 << 30)
    }
}
