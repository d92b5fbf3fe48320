//! Parameters of each overlay protocol, as agreed through the Raft log.
//!
//! An [`OverlayConfig`] is the *effective* configuration of one topology:
//! the node that proposes a switch fills in every field (from its config
//! file's defaults, overridden by the request), so that every node applies
//! exactly the same parameters. Durations are whole milliseconds (`_ms`).
//! `src/overlay/` builds its protocol configs from these.

use serde::{Deserialize, Serialize};

use super::{NodeId, Topology};

/// A parameter outside its documented range; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid overlay parameter `{key}`: {reason}")]
pub struct ConfigError {
    /// Dotted key, e.g. `hyparview.active_view`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

fn check_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            key,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(())
}

/// Full mesh has no parameters: every member links to every member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullMeshConfig {}

/// HyParView parameters. Defaults from Leitão, Pereira, Rodrigues,
/// "HyParView: a membership protocol for reliable gossip-based broadcast",
/// DSN 2007, section 5 (active 5, passive 30, ARWL 6, PRWL 3, ka 3, kp 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HyParViewConfig {
    /// Maximum active view size (links kept open). 1..=64. Paper: 5.
    pub active_view: u32,
    /// Maximum passive view size (known, not linked). 1..=1024. Paper: 30.
    pub passive_view: u32,
    /// Active random walk length: FORWARD_JOIN TTL. 1..=32. Paper: 6.
    pub arwl: u32,
    /// Passive random walk length: FORWARD_JOIN adds the joiner to the
    /// passive view when its TTL equals this. 1..=arwl. Paper: 3.
    pub prwl: u32,
    /// Active-view peers sent in a SHUFFLE (at most the active view's
    /// size are sent). 0..=64. Paper: 3.
    pub shuffle_ka: u32,
    /// Passive-view peers sent in a SHUFFLE (at most the passive view's
    /// size are sent). 0..=1024. Paper: 4.
    pub shuffle_kp: u32,
    /// TTL of the SHUFFLE random walk. 1..=32. Guess: the ARWL (6).
    pub shuffle_ttl: u32,
    /// Period between SHUFFLEs, ms. 100..=3_600_000. Guess: 10 s (the
    /// paper leaves it open; iroh-gossip uses 60 s).
    pub shuffle_interval_ms: u64,
    /// How long a NEIGHBOR request may stay unanswered before the next
    /// passive candidate is tried, ms. 10..=60_000. Guess: 500 ms.
    pub neighbor_timeout_ms: u64,
}

impl Default for HyParViewConfig {
    fn default() -> Self {
        HyParViewConfig {
            active_view: 5,
            passive_view: 30,
            arwl: 6,
            prwl: 3,
            shuffle_ka: 3,
            shuffle_kp: 4,
            shuffle_ttl: 6,
            shuffle_interval_ms: 10_000,
            neighbor_timeout_ms: 500,
        }
    }
}

impl HyParViewConfig {
    /// Checks every field; the error names the first bad key under `prefix`.
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{prefix}.{name}");
        check_range(&k("active_view"), self.active_view.into(), 1, 64)?;
        check_range(&k("passive_view"), self.passive_view.into(), 1, 1024)?;
        check_range(&k("arwl"), self.arwl.into(), 1, 32)?;
        check_range(&k("prwl"), self.prwl.into(), 1, self.arwl.into())?;
        check_range(&k("shuffle_ka"), self.shuffle_ka.into(), 0, 64)?;
        check_range(&k("shuffle_kp"), self.shuffle_kp.into(), 0, 1024)?;
        check_range(&k("shuffle_ttl"), self.shuffle_ttl.into(), 1, 32)?;
        check_range(
            &k("shuffle_interval_ms"),
            self.shuffle_interval_ms,
            100,
            3_600_000,
        )?;
        check_range(
            &k("neighbor_timeout_ms"),
            self.neighbor_timeout_ms,
            10,
            60_000,
        )?;
        Ok(())
    }
}

/// Client-server parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientServerConfig {
    /// Node ids acting as servers. Empty means "the Raft voters", resolved
    /// by the proposer before the switch enters the log. At most 64.
    pub servers: Vec<NodeId>,
    /// Servers each client keeps links to (k). 1..=16. Design default: 2.
    pub links_per_client: u32,
}

impl Default for ClientServerConfig {
    fn default() -> Self {
        ClientServerConfig {
            servers: Vec::new(),
            links_per_client: 2,
        }
    }
}

impl ClientServerConfig {
    /// Checks every field; the error names the first bad key.
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        check_range(
            &format!("{prefix}.links_per_client"),
            self.links_per_client.into(),
            1,
            16,
        )?;
        if self.servers.len() > 64 {
            return Err(ConfigError::new(
                format!("{prefix}.servers"),
                format!("{} servers listed, at most 64", self.servers.len()),
            ));
        }
        let mut seen = self.servers.clone();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::new(
                format!("{prefix}.servers"),
                "a server is listed twice",
            ));
        }
        Ok(())
    }
}

/// Plumtree parameters. Defaults from Leitão, Pereira, Rodrigues,
/// "Epidemic Broadcast Trees", SRDS 2007 (optimization threshold 7, section
/// 4.5); the timeouts are the paper's "timer" left open, set here from
/// iroh-gossip's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlumtreeConfig {
    /// The HyParView layer below the tree.
    pub hyparview: HyParViewConfig,
    /// Time a node waits for a payload announced by IHAVE before it sends
    /// GRAFT, ms. 1..=60_000. iroh-gossip: 80 ms.
    pub ihave_timeout_ms: u64,
    /// Time between further GRAFTs to other announcers, ms. 1..=60_000.
    /// iroh-gossip: 40 ms.
    pub graft_timeout_ms: u64,
    /// Hop difference above which a lazy link replaces an eager one.
    /// 1..=64. Paper: 7.
    pub optimization_threshold: u32,
    /// Delivered message ids remembered (and payloads kept for GRAFT).
    /// 16..=1_000_000. Guess: 4096.
    pub message_cache: u32,
    /// IHAVE announcements are batched for this long, ms. 0..=1000.
    /// iroh-gossip: 5 ms.
    pub ihave_batch_ms: u64,
}

impl Default for PlumtreeConfig {
    fn default() -> Self {
        PlumtreeConfig {
            hyparview: HyParViewConfig::default(),
            ihave_timeout_ms: 80,
            graft_timeout_ms: 40,
            optimization_threshold: 7,
            message_cache: 4096,
            ihave_batch_ms: 5,
        }
    }
}

impl PlumtreeConfig {
    /// Checks every field; the error names the first bad key.
    pub fn validate_at(&self, prefix: &str) -> Result<(), ConfigError> {
        self.hyparview.validate_at(&format!("{prefix}.hyparview"))?;
        let k = |name: &str| format!("{prefix}.{name}");
        check_range(&k("ihave_timeout_ms"), self.ihave_timeout_ms, 1, 60_000)?;
        check_range(&k("graft_timeout_ms"), self.graft_timeout_ms, 1, 60_000)?;
        check_range(
            &k("optimization_threshold"),
            self.optimization_threshold.into(),
            1,
            64,
        )?;
        check_range(
            &k("message_cache"),
            self.message_cache.into(),
            16,
            1_000_000,
        )?;
        check_range(&k("ihave_batch_ms"), self.ihave_batch_ms, 0, 1000)?;
        Ok(())
    }
}

/// The effective configuration of one topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverlayConfig {
    FullMesh(FullMeshConfig),
    HyParView(HyParViewConfig),
    ClientServer(ClientServerConfig),
    PubSub(PlumtreeConfig),
}

impl OverlayConfig {
    /// The topology this config belongs to.
    pub fn topology(&self) -> Topology {
        match self {
            OverlayConfig::FullMesh(_) => Topology::FullMesh,
            OverlayConfig::HyParView(_) => Topology::HyParView,
            OverlayConfig::ClientServer(_) => Topology::ClientServer,
            OverlayConfig::PubSub(_) => Topology::PubSub,
        }
    }

    /// The built-in defaults of `topology`.
    pub fn default_for(topology: Topology) -> Self {
        match topology {
            Topology::FullMesh => OverlayConfig::FullMesh(FullMeshConfig::default()),
            Topology::HyParView => OverlayConfig::HyParView(HyParViewConfig::default()),
            Topology::ClientServer => OverlayConfig::ClientServer(ClientServerConfig::default()),
            Topology::PubSub => OverlayConfig::PubSub(PlumtreeConfig::default()),
        }
    }

    /// Checks the parameters; the error names the key under the topology's
    /// name, e.g. `hyparview.active_view`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let prefix = self.topology().as_str();
        match self {
            OverlayConfig::FullMesh(_) => Ok(()),
            OverlayConfig::HyParView(c) => c.validate_at(prefix),
            OverlayConfig::ClientServer(c) => c.validate_at(prefix),
            OverlayConfig::PubSub(c) => c.validate_at(prefix),
        }
    }

    /// The parameters alone as JSON (for the HTTP API).
    pub fn params_json(&self) -> serde_json::Value {
        let v = match self {
            OverlayConfig::FullMesh(c) => serde_json::to_value(c),
            OverlayConfig::HyParView(c) => serde_json::to_value(c),
            OverlayConfig::ClientServer(c) => serde_json::to_value(c),
            OverlayConfig::PubSub(c) => serde_json::to_value(c),
        };
        v.expect("overlay configs are plain structs")
    }

    /// Builds the config of `topology` from `base` with the keys of `patch`
    /// (a JSON object) replaced. Unknown keys and wrong types are errors
    /// naming the key.
    pub fn patched(base: &OverlayConfig, patch: &serde_json::Value) -> Result<Self, ConfigError> {
        let prefix = base.topology().as_str();
        let serde_json::Value::Object(patch) = patch else {
            return Err(ConfigError::new(
                prefix,
                "overlay_config must be a JSON object",
            ));
        };
        let mut merged = base.params_json();
        merge_json(&mut merged, patch);
        let err = |e: serde_json::Error| ConfigError::new(prefix, e.to_string());
        let cfg = match base.topology() {
            Topology::FullMesh => {
                OverlayConfig::FullMesh(serde_json::from_value(merged).map_err(err)?)
            }
            Topology::HyParView => {
                OverlayConfig::HyParView(serde_json::from_value(merged).map_err(err)?)
            }
            Topology::ClientServer => {
                OverlayConfig::ClientServer(serde_json::from_value(merged).map_err(err)?)
            }
            Topology::PubSub => OverlayConfig::PubSub(serde_json::from_value(merged).map_err(err)?),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Recursive merge of JSON objects: keys of `patch` replace those of `base`;
/// keys absent from `base` are added (and then refused by
/// `deny_unknown_fields`).
fn merge_json(base: &mut serde_json::Value, patch: &serde_json::Map<String, serde_json::Value>) {
    let serde_json::Value::Object(base) = base else {
        return;
    };
    for (key, value) in patch {
        match (base.get_mut(key), value) {
            (Some(existing @ serde_json::Value::Object(_)), serde_json::Value::Object(inner)) => {
                merge_json(existing, inner)
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_valid_and_match_the_papers() {
        for t in Topology::ALL {
            OverlayConfig::default_for(t).validate().unwrap();
        }
        let h = HyParViewConfig::default();
        assert_eq!(
            (
                h.active_view,
                h.passive_view,
                h.arwl,
                h.prwl,
                h.shuffle_ka,
                h.shuffle_kp
            ),
            (5, 30, 6, 3, 3, 4)
        );
        assert_eq!(PlumtreeConfig::default().optimization_threshold, 7);
        assert_eq!(ClientServerConfig::default().links_per_client, 2);
    }

    #[test]
    fn validate_names_the_bad_key() {
        let h = HyParViewConfig {
            prwl: 9,
            ..Default::default()
        };
        let err = OverlayConfig::HyParView(h).validate().unwrap_err();
        assert_eq!(err.key, "hyparview.prwl");
        let mut p = PlumtreeConfig::default();
        p.hyparview.active_view = 0;
        let err = OverlayConfig::PubSub(p).validate().unwrap_err();
        assert_eq!(err.key, "pub_sub.hyparview.active_view");
        let c = ClientServerConfig {
            servers: vec![1, 1],
            links_per_client: 2,
        };
        let err = OverlayConfig::ClientServer(c).validate().unwrap_err();
        assert_eq!(err.key, "client_server.servers");
    }

    #[test]
    fn patch_overrides_keys_and_refuses_unknown_ones() {
        let base = OverlayConfig::default_for(Topology::PubSub);
        let patched =
            OverlayConfig::patched(&base, &json!({"hyparview": {"active_view": 2}})).unwrap();
        let OverlayConfig::PubSub(p) = &patched else {
            panic!("topology changed")
        };
        assert_eq!(p.hyparview.active_view, 2);
        assert_eq!(p.hyparview.passive_view, 30);

        let err = OverlayConfig::patched(&base, &json!({"fanout": 3})).unwrap_err();
        assert!(err.reason.contains("fanout"), "{err}");
        let err = OverlayConfig::patched(&base, &json!({"ihave_timeout_ms": "fast"})).unwrap_err();
        assert_eq!(err.key, "pub_sub");
        let err = OverlayConfig::patched(&base, &json!({"ihave_timeout_ms": 0})).unwrap_err();
        assert_eq!(err.key, "pub_sub.ihave_timeout_ms");
        assert!(OverlayConfig::patched(&base, &json!([1])).is_err());
    }

    #[test]
    fn postcard_round_trip() {
        for t in Topology::ALL {
            let c = OverlayConfig::default_for(t);
            let bytes = postcard::to_allocvec(&c).unwrap();
            assert_eq!(postcard::from_bytes::<OverlayConfig>(&bytes).unwrap(), c);
        }
    }
}
