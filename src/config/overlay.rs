//! `[overlay]`: the default parameters of each topology on this node.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::model::{
    ClientServerConfig, FullMeshConfig, HyParViewConfig, OverlayConfig, PlumtreeConfig, Topology,
};

/// Per-topology defaults used when this node proposes a switch (the request
/// may override keys). Each table is the model's config struct; keys left
/// out keep the model's defaults (HyParView and Plumtree papers, see
/// [`crate::model::overlay_config`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverlayDefaults {
    /// `[overlay.hyparview]`.
    pub hyparview: HyParViewConfig,
    /// `[overlay.pub_sub]` (Plumtree, with its own `[overlay.pub_sub.hyparview]`).
    pub pub_sub: PlumtreeConfig,
    /// `[overlay.client_server]`.
    pub client_server: ClientServerConfig,
}

impl OverlayDefaults {
    /// The configured defaults of `topology`.
    pub fn default_for(&self, topology: Topology) -> OverlayConfig {
        match topology {
            Topology::FullMesh => OverlayConfig::FullMesh(FullMeshConfig::default()),
            Topology::HyParView => OverlayConfig::HyParView(self.hyparview.clone()),
            Topology::ClientServer => OverlayConfig::ClientServer(self.client_server.clone()),
            Topology::PubSub => OverlayConfig::PubSub(self.pub_sub.clone()),
        }
    }

    /// Checks every table; the error names the key, e.g.
    /// `overlay.hyparview.active_view`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for t in Topology::ALL {
            self.default_for(t).validate().map_err(|e| {
                ConfigError::invalid(
                    format!("overlay.{}", e.key),
                    format!("is invalid: {}", e.reason),
                )
            })?;
        }
        Ok(())
    }
}
