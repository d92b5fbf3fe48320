//! Generated configs for `topod dev`: a cluster on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use super::{
    ApiConfig, ConfigError, NodeConfig, OverlayDefaults, RaftConfig, StorageConfig, SwitchConfig,
    VoterConfig,
};
use crate::model::NodeId;

/// Nodes 1..=3 of a dev cluster are voters, the others learners.
pub const DEV_VOTERS: u64 = 3;
/// Largest dev node id: ports are `base + id - 1`, raft `+100`, peer
/// `+200`, so 100 nodes would collide.
pub const DEV_MAX_NODES: u64 = 99;
/// Cluster id of generated dev clusters.
pub const DEV_CLUSTER_ID: &str = "dev";

fn port(base: u16, offset: u64) -> Result<u16, ConfigError> {
    u64::from(base)
        .checked_add(offset)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            ConfigError::invalid(
                "api_base_port",
                format!("{base} leaves no room for the ports of the dev nodes"),
            )
        })
}

fn dev_voter(id: NodeId, base: u16) -> Result<VoterConfig, ConfigError> {
    let addr = |offset| -> Result<SocketAddr, ConfigError> {
        Ok(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            port(base, offset + id - 1)?,
        )))
    };
    Ok(VoterConfig {
        id,
        api_addr: addr(0)?,
        raft_addr: addr(100)?,
        peer_addr: addr(200)?,
    })
}

/// The monitor interval of a dev cluster, ms.
pub const DEV_MONITOR_INTERVAL_MS: u64 = 2_000;

impl NodeConfig {
    /// Node `node_id` of a dev cluster on 127.0.0.1 with the default three
    /// voters: API on `base_api_port + node_id - 1`, Raft 100 above, peer
    /// transport 200 above (7101/7201/7301 for node 1 with base 7101). Data
    /// in `<data_dir>/node<id>`. Nodes 1–3 bootstrap the cluster; higher
    /// ids join nodes 1–3 as learners. Use
    /// [`NodeConfig::with_cluster_size`] for clusters of 1 or 2 nodes.
    pub fn dev(node_id: NodeId, base_api_port: u16, data_dir: &Path) -> Result<Self, ConfigError> {
        if node_id == 0 || node_id > DEV_MAX_NODES {
            return Err(ConfigError::invalid(
                "node_id",
                format!("is {node_id}, outside 1..={DEV_MAX_NODES} for a dev cluster"),
            ));
        }
        let me = dev_voter(node_id, base_api_port)?;
        let config = NodeConfig {
            node_id,
            cluster_id: DEV_CLUSTER_ID.to_string(),
            api_addr: me.api_addr,
            raft_addr: me.raft_addr,
            peer_addr: me.peer_addr,
            data_dir: data_dir.join(format!("node{node_id}")),
            initial_voters: Vec::new(),
            join: Vec::new(),
            raft: RaftConfig::default(),
            switch: SwitchConfig::default(),
            // A dev cluster's monitor looks every 2 s, so that automatic
            // switches can be watched happening.
            rules: super::RulesConfig {
                monitor_interval_ms: Some(DEV_MONITOR_INTERVAL_MS),
                ..Default::default()
            },
            monitor: Default::default(),
            app_metrics: Default::default(),
            api: ApiConfig::default(),
            storage: StorageConfig::default(),
            overlay: OverlayDefaults::default(),
            transport: Default::default(),
            executor: Default::default(),
            advertise: Default::default(),
        };
        config.with_cluster_size(DEV_VOTERS.max(node_id))
    }

    /// Re-derives voters and join targets for a dev cluster of `nodes`
    /// nodes (voters: the first `min(nodes, 3)`), keeping the port layout.
    pub fn with_cluster_size(mut self, nodes: u64) -> Result<Self, ConfigError> {
        if nodes < self.node_id {
            return Err(ConfigError::invalid(
                "node_id",
                format!("{} is beyond a cluster of {nodes} nodes", self.node_id),
            ));
        }
        let base = u16::try_from(self.node_id - 1)
            .ok()
            .and_then(|offset| self.api_addr.port().checked_sub(offset))
            .ok_or_else(|| {
                ConfigError::invalid("api_addr", "does not follow the dev port layout")
            })?;
        let voters = (1..=nodes.min(DEV_VOTERS))
            .map(|id| dev_voter(id, base))
            .collect::<Result<Vec<_>, _>>()?;
        if self.node_id <= DEV_VOTERS {
            self.initial_voters = voters;
            self.join = Vec::new();
        } else {
            self.join = voters.iter().map(|v| v.api_addr).collect();
            self.initial_voters = Vec::new();
        }
        self.validate()?;
        Ok(self)
    }

    /// The configs of every node of a dev cluster of `nodes` nodes.
    pub fn dev_cluster(
        nodes: u64,
        base_api_port: u16,
        data_dir: &Path,
    ) -> Result<Vec<Self>, ConfigError> {
        (1..=nodes)
            .map(|id| NodeConfig::dev(id, base_api_port, data_dir)?.with_cluster_size(nodes))
            .collect()
    }
}
