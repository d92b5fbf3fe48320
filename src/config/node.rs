//! [`NodeConfig`]: everything one `topod` node is started with.

use crate::executor::ExecutorConfig;
use crate::transport::TransportConfig;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use super::{
    ApiConfig, AppMetricsConfig, ConfigError, MonitorConfig, OverlayDefaults, RaftConfig,
    RulesConfig, StorageConfig, SwitchConfig,
};
use crate::control::types::NodeAddr;
use crate::model::{NodeId, OverlayConfig, Topology};

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "TOPOD_";
/// `TOPOD_*` variables that are not config keys (the config file path and
/// the log filter read by the binary); they are not refused as unknown.
pub const ENV_IGNORED: &[&str] = &["config", "log"];
/// Most initial voters (Raft voters beyond 7 only slow commits; the design
/// runs 3 or 5).
pub const MAX_INITIAL_VOTERS: usize = 7;
/// Longest cluster id.
const MAX_CLUSTER_ID_LEN: usize = 64;

/// One node's configuration. Keys without a default: `node_id`,
/// `cluster_id`, `api_addr`, `raft_addr`, `peer_addr`, `data_dir`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's Raft id, at least 1; unique in the cluster and never
    /// reused for another disk.
    pub node_id: NodeId,
    /// Name of the cluster, 1..=64 characters of `[a-z0-9-]`. Stored in the
    /// data dir and carried by every Raft RPC and peer handshake: a node
    /// never talks to, or starts on the data of, another cluster.
    pub cluster_id: String,
    /// HTTP admin API listener, `ip:port`. Port 0 picks a free port (the
    /// node reports the bound address).
    pub api_addr: SocketAddr,
    /// Raft RPC listener, `ip:port` (port 0 allowed).
    pub raft_addr: SocketAddr,
    /// Overlay peer transport listener, `ip:port` (port 0 allowed).
    pub peer_addr: SocketAddr,
    /// Directory of this node's sled database, cluster id and node UUID.
    /// Created if absent.
    pub data_dir: PathBuf,
    /// The voters that bootstrap a new cluster, at most 7, including this
    /// node if it is one of them. Empty: this node joins a running cluster
    /// as a learner (through `join`). Bootstrapping is idempotent: a node
    /// with existing data ignores this list. Default empty.
    #[serde(default)]
    pub initial_voters: Vec<VoterConfig>,
    /// API addresses (`ip:port`) of running members to ask for joining
    /// when `initial_voters` is empty and the data dir is new; tried in
    /// order. Default empty.
    #[serde(default)]
    pub join: Vec<SocketAddr>,
    /// `[raft]`.
    #[serde(default)]
    pub raft: RaftConfig,
    /// `[switch]`.
    #[serde(default)]
    pub switch: SwitchConfig,
    /// `[rules]`: seeds of the replicated policy's monitor and rule keys.
    #[serde(default)]
    pub rules: RulesConfig,
    /// `[monitor]`: this node's gathering settings while it leads.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// `[app_metrics]`: limits of the application's own metrics.
    #[serde(default)]
    pub app_metrics: AppMetricsConfig,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiConfig,
    /// `[storage]`.
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[overlay]`: default parameters per topology.
    #[serde(default)]
    pub overlay: OverlayDefaults,
    /// `[transport]`: the peer transport's limits and timings (and chaos
    /// mode, which enables the fault filter).
    #[serde(default)]
    pub transport: TransportConfig,
    /// `[executor]`: the overlay executor's timings and limits.
    #[serde(default)]
    pub executor: ExecutorConfig,
    /// `[advertise]`: addresses for the membership when they differ from
    /// the listeners (all unset by default: the bound addresses).
    #[serde(default)]
    pub advertise: super::AdvertiseConfig,
    /// `[security]`: certificates, API TLS and tokens, or `insecure`.
    #[serde(default)]
    pub security: super::SecurityConfig,
}

/// An initial voter: `{ id, api_addr, raft_addr, peer_addr }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoterConfig {
    /// Its node id, at least 1.
    pub id: NodeId,
    pub api_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub peer_addr: SocketAddr,
}

impl VoterConfig {
    /// Its addresses for the Raft membership. The UUID is learnt from the
    /// node itself (empty here).
    pub fn node_addr(&self) -> NodeAddr {
        NodeAddr {
            api_addr: self.api_addr.to_string(),
            raft_addr: self.raft_addr.to_string(),
            peer_addr: self.peer_addr.to_string(),
            node_uuid: String::new(),
        }
    }
}

/// The tables with defaults, merged under the file so that partial tables
/// keep the other keys' defaults.
#[derive(Serialize)]
struct Defaults {
    raft: RaftConfig,
    switch: SwitchConfig,
    rules: RulesConfig,
    monitor: MonitorConfig,
    app_metrics: AppMetricsConfig,
    api: ApiConfig,
    storage: StorageConfig,
    overlay: OverlayDefaults,
    transport: TransportConfig,
    executor: ExecutorConfig,
}

impl NodeConfig {
    /// Loads defaults, then the TOML file at `path` (if given; it must
    /// exist), then `TOPOD_*` environment variables, and validates.
    pub fn load(path: Option<&Path>) -> Result<NodeConfig, ConfigError> {
        Self::from_figment(Self::figment(path, ENV_PREFIX)?)
    }

    /// [`NodeConfig::load`] with `data_dir` set over the file and the
    /// environment (`topod restore --data-dir`).
    pub fn load_with_data_dir(
        path: Option<&Path>,
        data_dir: &Path,
    ) -> Result<NodeConfig, ConfigError> {
        Self::from_figment(
            Self::figment(path, ENV_PREFIX)?.merge(Serialized::default("data_dir", data_dir)),
        )
    }

    /// Like [`NodeConfig::load`] from TOML text instead of a file (still
    /// with the environment on top).
    pub fn from_toml_str(toml: &str) -> Result<NodeConfig, ConfigError> {
        Self::from_toml_str_with_env(toml, ENV_PREFIX)
    }

    /// [`NodeConfig::from_toml_str`] with another env prefix (tests use a
    /// prefix of their own, as the environment is shared by the process).
    pub(crate) fn from_toml_str_with_env(
        toml: &str,
        env_prefix: &str,
    ) -> Result<NodeConfig, ConfigError> {
        Self::from_figment(
            Self::base()
                .merge(Toml::string(toml))
                .merge(Self::env(env_prefix)),
        )
    }

    /// The figment `load` extracts from: defaults, file, then environment
    /// variables starting with `env_prefix`.
    pub(crate) fn figment(path: Option<&Path>, env_prefix: &str) -> Result<Figment, ConfigError> {
        let mut figment = Self::base();
        if let Some(path) = path {
            std::fs::metadata(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        Ok(figment.merge(Self::env(env_prefix)))
    }

    fn base() -> Figment {
        Figment::from(Serialized::defaults(Defaults {
            raft: RaftConfig::default(),
            switch: SwitchConfig::default(),
            rules: RulesConfig::default(),
            monitor: MonitorConfig::default(),
            app_metrics: AppMetricsConfig::default(),
            api: ApiConfig::default(),
            storage: StorageConfig::default(),
            overlay: OverlayDefaults::default(),
            transport: TransportConfig::default(),
            executor: ExecutorConfig::default(),
        }))
    }

    pub(super) fn env(prefix: &str) -> Env {
        Env::prefixed(prefix).ignore(ENV_IGNORED).split("__")
    }

    fn from_figment(figment: Figment) -> Result<NodeConfig, ConfigError> {
        let config: NodeConfig = figment.extract().map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(ConfigError::invalid("node_id", "must be at least 1"));
        }
        self.validate_cluster_id()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "must not be empty"));
        }
        self.advertise.validate()?;
        self.validate_voters()?;
        self.raft.validate()?;
        self.switch.validate()?;
        self.rules.validate()?;
        self.monitor.validate()?;
        self.app_metrics.validate()?;
        self.api.validate()?;
        self.storage.validate()?;
        self.overlay.validate()?;
        self.transport.validate()?;
        self.executor.validate()?;
        self.security.validate()?;
        Ok(())
    }

    fn validate_cluster_id(&self) -> Result<(), ConfigError> {
        let id = &self.cluster_id;
        let ok_chars = id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if id.is_empty() || id.len() > MAX_CLUSTER_ID_LEN || !ok_chars {
            return Err(ConfigError::invalid(
                "cluster_id",
                format!("`{id}` must be 1..={MAX_CLUSTER_ID_LEN} characters of [a-z0-9-]"),
            ));
        }
        Ok(())
    }

    fn validate_voters(&self) -> Result<(), ConfigError> {
        let key = "initial_voters";
        let voters = &self.initial_voters;
        if voters.len() > MAX_INITIAL_VOTERS {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "lists {} voters, at most {MAX_INITIAL_VOTERS}",
                    voters.len()
                ),
            ));
        }
        let mut ids = BTreeSet::new();
        for v in voters {
            if v.id == 0 || !ids.insert(v.id) {
                return Err(ConfigError::invalid(
                    key,
                    format!("id {} is 0 or listed twice", v.id),
                ));
            }
            if v.id == self.node_id {
                self.check_own_entry(v)?;
            } else if [v.api_addr, v.raft_addr, v.peer_addr]
                .iter()
                .any(|a| a.port() == 0)
            {
                return Err(ConfigError::invalid(
                    key,
                    format!("voter {} has port 0: other nodes could not reach it", v.id),
                ));
            }
        }
        if !voters.is_empty() && !ids.contains(&self.node_id) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "does not list node_id {}: a node that joins later leaves \
                     initial_voters empty and sets `join`",
                    self.node_id
                ),
            ));
        }
        Ok(())
    }

    /// This node's own voter entry must repeat its addresses: a mismatch is
    /// almost always a copy-paste error that would split the cluster.
    fn check_own_entry(&self, v: &VoterConfig) -> Result<(), ConfigError> {
        for (name, listed, own) in [
            ("api_addr", v.api_addr, self.advertised_api_addr()),
            ("raft_addr", v.raft_addr, self.advertised_raft_addr()),
            ("peer_addr", v.peer_addr, self.advertised_peer_addr()),
        ] {
            if listed != own {
                return Err(ConfigError::invalid(
                    "initial_voters",
                    format!(
                        "entry of this node ({}) has {name} {listed} but this node's {name} \
                         (advertise.{name}, else {name}) is {own}",
                        v.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The configured default parameters of `topology` (the `[overlay]`
    /// tables over the model's defaults).
    pub fn overlay_default(&self, topology: Topology) -> OverlayConfig {
        self.overlay.default_for(topology)
    }

    /// Whether this node bootstraps the cluster (it is an initial voter).
    pub fn is_initial_voter(&self) -> bool {
        self.initial_voters.iter().any(|v| v.id == self.node_id)
    }

    /// The API address other nodes use: `advertise.api_addr`, else
    /// `api_addr`.
    pub fn advertised_api_addr(&self) -> SocketAddr {
        self.advertise.api_addr.unwrap_or(self.api_addr)
    }

    /// The Raft address other nodes use.
    pub fn advertised_raft_addr(&self) -> SocketAddr {
        self.advertise.raft_addr.unwrap_or(self.raft_addr)
    }

    /// The peer address other nodes use.
    pub fn advertised_peer_addr(&self) -> SocketAddr {
        self.advertise.peer_addr.unwrap_or(self.peer_addr)
    }

    /// This node's addresses for the Raft membership, with its UUID (the
    /// advertised ones).
    pub fn node_addr(&self, node_uuid: impl Into<String>) -> NodeAddr {
        NodeAddr {
            api_addr: self.advertised_api_addr().to_string(),
            raft_addr: self.advertised_raft_addr().to_string(),
            peer_addr: self.advertised_peer_addr().to_string(),
            node_uuid: node_uuid.into(),
        }
    }
}
