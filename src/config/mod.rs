//! The node config: a TOML file plus `TOPOD_*` environment variables.
//!
//! [`NodeConfig::load`] merges, lowest first: the built-in defaults, the
//! TOML file, then environment variables with prefix `TOPOD_` whose nested
//! keys are split on `__` (`TOPOD_NODE_ID=2`,
//! `TOPOD_RAFT__HEARTBEAT_MS=100`, `TOPOD_OVERLAY__HYPARVIEW__ACTIVE_VIEW=4`).
//! Tables merge key by key, so a file may set a single key of a table.
//! Unknown keys are an error naming the key, and [`NodeConfig::validate`]
//! checks every limit; its error names the key too.
//!
//! ```toml
//! node_id = 1
//! cluster_id = "dev"
//! api_addr = "127.0.0.1:7101"
//! raft_addr = "127.0.0.1:7201"
//! peer_addr = "127.0.0.1:7301"
//! data_dir = "data/node1"
//! initial_voters = [{ id = 1, api_addr = "127.0.0.1:7101", raft_addr = "127.0.0.1:7201", peer_addr = "127.0.0.1:7301" }]
//!
//! [raft]
//! heartbeat_ms = 50
//! ```

mod advertise;
mod dev;
mod error;
mod node;
mod overlay;
mod raft;
mod rules;
mod sections;
mod security;

#[cfg(test)]
mod tests;

pub use advertise::AdvertiseConfig;
pub use dev::{DEV_CLUSTER_ID, DEV_MAX_NODES, DEV_VOTERS};
pub use error::ConfigError;
pub use node::{NodeConfig, VoterConfig, ENV_IGNORED, ENV_PREFIX, MAX_INITIAL_VOTERS};
pub use overlay::OverlayDefaults;
pub use raft::RaftConfig;
pub use rules::{AppMetricsConfig, MonitorConfig, RulesConfig};
pub use sections::{
    determine_initial_topology, ApiConfig, InitialTopology, StorageConfig, SwitchConfig,
    AUTO_HYPARVIEW_MIN_NODES,
};
pub use security::{MetricsAccess, SecurityConfig};

/// `Invalid` naming `key` unless `min <= value <= max`.
pub(crate) fn check_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(
            key,
            format!("is {value}, outside {min}..={max}"),
        ));
    }
    Ok(())
}
