//! Scenario files (TOML): the size, timing, network and events of a run.
//!
//! Every key has a default (the issue's benchmark scenario), so a file
//! names only what it changes. Unknown keys are refused with their name.
//!
//! ```toml
//! topology = "pub_sub"        # full_mesh | hyparview | client_server | pub_sub | all
//! nodes = 1000
//! rounds = 30
//! seed = 7
//! contacts = 100              # bootstrap contacts new nodes join through
//! sender = "fixed"            # fixed | random
//! loss = 0.0
//! [latency]
//! kind = "uniform"            # fixed { ms } | uniform { min_ms, max_ms } | regions { matrix, jitter_ms }
//! min_ms = 10
//! max_ms = 50
//! [overlay.pub_sub]           # parameter overrides per topology
//! ihave_timeout_ms = 50
//! [[events]]
//! round = 5
//! action = "fail"             # fail { fraction } | partition { groups } | heal | churn { joins, leaves }
//! fraction = 0.5
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::latency::LatencyModel;
use super::SimError;
use crate::model::{OverlayConfig, Topology};

/// Which topologies a run simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TopologyChoice {
    #[value(name = "full_mesh")]
    FullMesh,
    #[serde(rename = "hyparview")]
    #[value(name = "hyparview")]
    HyParView,
    #[value(name = "client_server")]
    ClientServer,
    #[value(name = "pub_sub")]
    PubSub,
    /// The four, side by side.
    All,
}

impl TopologyChoice {
    /// The topologies this choice covers.
    pub fn topologies(self) -> Vec<Topology> {
        match self {
            TopologyChoice::FullMesh => vec![Topology::FullMesh],
            TopologyChoice::HyParView => vec![Topology::HyParView],
            TopologyChoice::ClientServer => vec![Topology::ClientServer],
            TopologyChoice::PubSub => vec![Topology::PubSub],
            TopologyChoice::All => Topology::ALL.to_vec(),
        }
    }
}

impl From<Topology> for TopologyChoice {
    fn from(t: Topology) -> Self {
        match t {
            Topology::FullMesh => TopologyChoice::FullMesh,
            Topology::HyParView => TopologyChoice::HyParView,
            Topology::ClientServer => TopologyChoice::ClientServer,
            Topology::PubSub => TopologyChoice::PubSub,
        }
    }
}

/// Who broadcasts each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SenderMode {
    /// One node, chosen from the seed, every round (never failed).
    Fixed,
    /// A different random running node each round.
    Random,
}

/// What happens at the start of a round, before its broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stop `fraction` of the running nodes at once (crash, nobody told).
    Fail,
    /// Split the running nodes into `groups` random sides.
    Partition,
    /// Remove every partition.
    Heal,
    /// `leaves` nodes leave gracefully and `joins` new nodes join.
    Churn,
}

/// One scenario event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEvent {
    /// Round (1-based) at whose start it happens.
    pub round: u32,
    /// What happens.
    pub action: Action,
    /// `fail`: fraction of running nodes, 0.0..1.0.
    pub fraction: Option<f64>,
    /// `partition`: number of sides, 2..=16.
    pub groups: Option<u16>,
    /// `churn`: nodes joining, 0..=100_000.
    pub joins: Option<u32>,
    /// `churn`: nodes leaving, 0..=100_000.
    pub leaves: Option<u32>,
}

/// A whole run's description. Defaults: the issue's benchmark scenario at
/// 1,000 nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Topology, or `all` to compare the four.
    pub topology: TopologyChoice,
    /// Nodes joined before the rounds. 1..=100_000 (full mesh: ..=2_000).
    pub nodes: u32,
    /// Broadcast rounds. 1..=10_000.
    pub rounds: u32,
    /// Seed of everything random in the run.
    pub seed: u64,
    /// Bootstrap contacts: nodes 2..=contacts join through node 1, later
    /// nodes through a random one of the first `contacts` (at most
    /// `nodes` count). 1..=100_000.
    pub contacts: u32,
    /// Who broadcasts.
    pub sender: SenderMode,
    /// Client-server: nodes 1..=servers are the servers. 1..=64. Design:
    /// the voters, 3 or 5; default 5.
    pub servers: u32,
    /// Time between two joins, ms. 0..=60_000. Guess: 1 ms.
    pub join_interval_ms: u64,
    /// Time from the last join to the first round, ms. 0..=3_600_000.
    /// Guess: 30 s (three HyParView shuffle periods).
    pub settle_ms: u64,
    /// Time given to each broadcast round, ms. 1..=3_600_000. Guess: 2 s
    /// (LDH 20 × 50 ms plus IHAVE and GRAFT timeouts).
    pub round_interval_ms: u64,
    /// Failed send → `PeerDown` delay, ms; absent: one link latency.
    pub detection_delay_ms: Option<u64>,
    /// Probability that a message is lost, 0.0..=1.0.
    pub loss: f64,
    /// Fraction of nodes that fail at once at the start of round
    /// `fail_round` (`--fail`), 0.0..=0.99.
    pub fail: Option<f64>,
    /// Round at whose start `fail` applies; earlier rounds warm up (e.g.
    /// let Plumtree build its tree). 1..=rounds. Default 1.
    pub fail_round: u32,
    /// Per-link latency.
    pub latency: LatencyModel,
    /// Parameter overrides per topology name (keys as in the overlay
    /// configs).
    pub overlay: BTreeMap<String, toml::Value>,
    /// Events at the start of rounds.
    pub events: Vec<ScenarioEvent>,
    /// A live switch under a broadcast stream instead of rounds (see
    /// [`super::switch`]).
    pub switch: Option<super::switch::SwitchScenario>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            topology: TopologyChoice::PubSub,
            nodes: 1000,
            rounds: 30,
            seed: 7,
            contacts: 100,
            sender: SenderMode::Fixed,
            servers: 5,
            join_interval_ms: 1,
            settle_ms: 30_000,
            round_interval_ms: 2_000,
            detection_delay_ms: None,
            loss: 0.0,
            fail: None,
            fail_round: 1,
            latency: LatencyModel::default(),
            overlay: BTreeMap::new(),
            events: Vec::new(),
            switch: None,
        }
    }
}

/// Most nodes a run may have (memory bound).
pub const MAX_NODES: u32 = 100_000;
/// Most nodes of a full-mesh run: its state grows with the square of the
/// size (2,000 nodes ≈ 4 million member entries).
pub const MAX_FULL_MESH_NODES: u32 = 2_000;

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> SimError {
    SimError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

fn range<T: PartialOrd + std::fmt::Display>(key: &str, v: T, lo: T, hi: T) -> Result<(), SimError> {
    if v < lo || v > hi {
        return Err(invalid(key, format!("{v} is outside {lo}..={hi}")));
    }
    Ok(())
}

impl Scenario {
    /// Parses a TOML scenario; the error names the bad key.
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| SimError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks every field; the error names the first bad key.
    pub fn validate(&self) -> Result<(), SimError> {
        range("nodes", self.nodes, 1, MAX_NODES)?;
        range("rounds", self.rounds, 1, 10_000)?;
        range("contacts", self.contacts, 1, MAX_NODES)?;
        range("servers", self.servers, 1, 64)?;
        range("join_interval_ms", self.join_interval_ms, 0, 60_000)?;
        range("settle_ms", self.settle_ms, 0, 3_600_000)?;
        range("round_interval_ms", self.round_interval_ms, 1, 3_600_000)?;
        if let Some(d) = self.detection_delay_ms {
            range("detection_delay_ms", d, 0, 60_000)?;
        }
        range("loss", self.loss, 0.0, 1.0)?;
        range("fail_round", self.fail_round, 1, self.rounds)?;
        if let Some(f) = self.fail {
            range("fail", f, 0.0, 0.99)?;
        }
        self.latency
            .validate()
            .map_err(|(key, reason)| invalid(key, reason))?;
        for name in self.overlay.keys() {
            self.overlay_config(
                name.parse()
                    .map_err(|_| invalid(format!("overlay.{name}"), "not a topology name"))?,
            )?;
        }
        for (i, e) in self.events.iter().enumerate() {
            self.validate_event(i, e)?;
        }
        Ok(())
    }

    fn validate_event(&self, i: usize, e: &ScenarioEvent) -> Result<(), SimError> {
        let key = |k: &str| format!("events[{i}].{k}");
        range(&key("round"), e.round, 1, self.rounds)?;
        let need = |k: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(invalid(
                    key(k),
                    format!("required by action {:?}", e.action),
                ))
            }
        };
        match e.action {
            Action::Fail => {
                need("fraction", e.fraction.is_some())?;
                range(&key("fraction"), e.fraction.unwrap_or(0.0), 0.0, 0.99)
            }
            Action::Partition => {
                need("groups", e.groups.is_some())?;
                range(&key("groups"), e.groups.unwrap_or(0), 2, 16)
            }
            Action::Heal => Ok(()),
            Action::Churn => {
                need("joins", e.joins.is_some() || e.leaves.is_some())?;
                range(&key("joins"), e.joins.unwrap_or(0), 0, MAX_NODES)?;
                range(&key("leaves"), e.leaves.unwrap_or(0), 0, MAX_NODES)
            }
        }
    }

    /// The effective overlay config of `topology`: defaults patched with
    /// `[overlay.<topology>]`.
    pub fn overlay_config(&self, topology: Topology) -> Result<OverlayConfig, SimError> {
        let base = OverlayConfig::default_for(topology);
        let Some(patch) = self.overlay.get(topology.as_str()) else {
            return Ok(base);
        };
        let json = serde_json::to_value(patch)
            .map_err(|e| invalid(format!("overlay.{topology}"), e.to_string()))?;
        OverlayConfig::patched(&base, &json)
            .map_err(|e| invalid(format!("overlay.{}", e.key), e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, SimError> {
        Scenario::from_toml(text, "test.toml")
    }

    #[test]
    fn full_file_parses() {
        let s = parse(
            r#"
            topology = "hyparview"
            nodes = 200
            sender = "random"
            [latency]
            kind = "fixed"
            ms = 20
            [overlay.hyparview]
            active_view = 4
            [[events]]
            round = 3
            action = "partition"
            groups = 2
            [[events]]
            round = 5
            action = "heal"
            "#,
        )
        .unwrap();
        assert_eq!(s.topology, TopologyChoice::HyParView);
        assert_eq!(s.latency, LatencyModel::Fixed { ms: 20 });
        assert_eq!(s.events.len(), 2);
        let OverlayConfig::HyParView(h) = s.overlay_config(Topology::HyParView).unwrap() else {
            panic!("wrong topology")
        };
        assert_eq!(h.active_view, 4);
    }

    #[test]
    fn example_scenario_file_is_valid() {
        let text = include_str!("../../examples/scenarios/failures.toml");
        let s = parse(text).unwrap();
        assert_eq!(s.events.len(), 4);
        assert!(matches!(s.latency, LatencyModel::Regions { .. }));
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let err = parse("nodez = 5").unwrap_err().to_string();
        assert!(err.contains("nodez"), "{err}");
    }

    #[test]
    fn unknown_event_key_is_named() {
        let err = parse("[[events]]\nround = 1\naction = \"fail\"\nfractoin = 0.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fractoin"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let key = |text: &str| match parse(text).unwrap_err() {
            SimError::Invalid { key, .. } => key,
            other => panic!("unexpected {other}"),
        };
        assert_eq!(key("loss = 1.5"), "loss");
        assert_eq!(
            key("[[events]]\nround = 1\naction = \"fail\""),
            "events[0].fraction"
        );
        assert_eq!(
            key("[overlay.pub_sub]\nihave_timeout_ms = 0"),
            "overlay.pub_sub.ihave_timeout_ms"
        );
        assert_eq!(key("[overlay.ring]\nx = 1"), "overlay.ring");
        assert_eq!(
            key("[latency]\nkind = \"uniform\"\nmin_ms = 60\nmax_ms = 50"),
            "latency.max_ms"
        );
        let err = parse("[overlay.pub_sub]\nfanout = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fanout"), "{err}");
    }
}
