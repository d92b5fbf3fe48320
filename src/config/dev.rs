//! Generated configs for `topod dev`: a cluster on loopback, and the
//! operator's `--config` file and `TOPOD_*` variables layered on them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;

use super::{
    ApiConfig, ConfigError, NodeConfig, OverlayDefaults, RaftConfig, StorageConfig, SwitchConfig,
    VoterConfig,
};
use crate::model::NodeId;

/// Nodes 1..=3 of a dev cluster are voters, the others learners.
pub const DEV_VOTERS: u64 = 3;
/// Largest dev cluster. Ports are `base + id - 1`, raft `+stride`, peer
/// `+2 × stride`, with [`dev_port_stride`] 100 up to 100 nodes (7101 / 7201
/// / 7301 for node 1) and the next hundred above.
pub const DEV_MAX_NODES: u64 = 256;

/// The distance between a dev node's API, Raft and peer ports: 100 for
/// clusters of up to 100 nodes (the layout of every earlier release), then
/// the node count rounded up to a hundred, so no two ports collide.
pub fn dev_port_stride(nodes: u64) -> u64 {
    nodes.max(1).div_ceil(100) * 100
}

/// Keys `topod dev` lays out itself; a `--config` file or a `TOPOD_*`
/// variable that sets one to another value is refused, naming it.
const DEV_OWNED_KEYS: &[&str] = &[
    "node_id",
    "cluster_id",
    "api_addr",
    "raft_addr",
    "peer_addr",
    "data_dir",
    "initial_voters",
    "join",
];
/// The admin token file of a dev cluster, in its data dir.
pub const DEV_TOKEN_FILE: &str = "admin.token";
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

fn dev_voter(id: NodeId, base: u16, stride: u64) -> Result<VoterConfig, ConfigError> {
    let addr = |offset| -> Result<SocketAddr, ConfigError> {
        Ok(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            port(base, offset + id - 1)?,
        )))
    };
    Ok(VoterConfig {
        id,
        api_addr: addr(0)?,
        raft_addr: addr(stride)?,
        peer_addr: addr(2 * stride)?,
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
        let me = dev_voter(
            node_id,
            base_api_port,
            dev_port_stride(DEV_VOTERS.max(node_id)),
        )?;
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
            // Certificates and the admin token `topod dev` creates under the
            // data dir on its first start (`crate::dev`), so that a dev
            // cluster runs secure too; `topoctl` finds both there by itself
            // (`--data-dir`, default `./data`).
            security: super::SecurityConfig {
                initial_admin_token_file: Some(data_dir.join(DEV_TOKEN_FILE)),
                ..crate::security::certs::security_config(
                    &crate::security::certs::CertDir(data_dir.join("certs")),
                    node_id,
                )
            },
        };
        config.with_cluster_size(DEV_VOTERS.max(node_id))
    }

    /// Re-derives this node's ports, the voters and the join targets for a
    /// dev cluster of `nodes` nodes (voters: the first `min(nodes, 3)`),
    /// with the port stride of that size.
    pub fn with_cluster_size(mut self, nodes: u64) -> Result<Self, ConfigError> {
        if nodes < self.node_id {
            return Err(ConfigError::invalid(
                "node_id",
                format!("{} is beyond a cluster of {nodes} nodes", self.node_id),
            ));
        }
        if nodes > DEV_MAX_NODES {
            return Err(ConfigError::invalid(
                "nodes",
                format!("{nodes} is more than a dev cluster's {DEV_MAX_NODES}"),
            ));
        }
        let stride = dev_port_stride(nodes);
        let base = u16::try_from(self.node_id - 1)
            .ok()
            .and_then(|offset| self.api_addr.port().checked_sub(offset))
            .ok_or_else(|| {
                ConfigError::invalid("api_addr", "does not follow the dev port layout")
            })?;
        let me = dev_voter(self.node_id, base, stride)?;
        self.raft_addr = me.raft_addr;
        self.peer_addr = me.peer_addr;
        let voters = (1..=nodes.min(DEV_VOTERS))
            .map(|id| dev_voter(id, base, stride))
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
        if nodes > DEV_MAX_NODES {
            return Err(ConfigError::invalid(
                "nodes",
                format!("{nodes} is more than a dev cluster's {DEV_MAX_NODES}"),
            ));
        }
        (1..=nodes)
            .map(|id| NodeConfig::dev(id, base_api_port, data_dir)?.with_cluster_size(nodes))
            .collect()
    }

    /// This dev config with the operator's `--config` file (if any) and
    /// the `TOPOD_*` variables (those starting with `env_prefix`) on top,
    /// as `topod run` layers them over its defaults: chaos mode, Raft
    /// timing, rules and every other table can be set on a dev cluster.
    /// The keys the dev layout owns (ids, addresses, data dir, voters,
    /// join targets) stay the layout's: setting one to another value is an
    /// error naming it.
    pub fn layered(self, file: Option<&Path>, env_prefix: &str) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(&self));
        if let Some(path) = file {
            std::fs::metadata(path).map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment.merge(NodeConfig::env(env_prefix));
        let layered: NodeConfig = figment.extract().map_err(ConfigError::from_figment)?;
        let (mine, theirs) = (
            serde_json::to_value(&self).expect("a config serializes"),
            serde_json::to_value(&layered).expect("a config serializes"),
        );
        if let Some(key) = DEV_OWNED_KEYS
            .iter()
            .find(|k| mine.get(**k) != theirs.get(**k))
        {
            return Err(ConfigError::invalid(
                *key,
                "is laid out by `topod dev` (ids, ports, data dir, voters); remove it from the \
                 --config file and the TOPOD_* variables",
            ));
        }
        layered.validate()?;
        Ok(layered)
    }
}
