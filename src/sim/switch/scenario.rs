//! `[switch]` of a scenario file and `--switch FROM:TO`: the TOML shape of
//! a switch run ([`SwitchScenario`]), turned into [`SwitchParams`] with the
//! rest of the scenario (size, seed, latency, loss, servers, overlays).

use serde::{Deserialize, Serialize};

use super::{SwitchEvent, SwitchParams};
use crate::model::Topology;
use crate::sim::scenario::{Scenario, TopologyChoice};
use crate::sim::SimError;

/// What a switch event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchAction {
    /// The leader proposes a switch to `to`.
    Switch,
    /// `fraction` of the nodes stop at once.
    Fail,
    /// `fraction` of the nodes are cut off from the rest.
    Partition,
    /// The partition heals.
    Heal,
}

/// One `[[switch.events]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchEventSpec {
    /// Milliseconds after the first proposal.
    pub at_ms: u64,
    pub action: SwitchAction,
    /// `switch`: the target topology.
    pub to: Option<Topology>,
    /// `fail`, `partition`: fraction of the nodes, 0.0..0.5.
    pub fraction: Option<f64>,
}

/// `[switch]`: a live switch under a broadcast stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchScenario {
    /// The first switch's target, proposed at 0 (the scenario's
    /// `topology` is where it starts).
    pub to: Option<Topology>,
    /// Broadcasts a second, 0..=10_000.
    pub rate_per_s: f64,
    /// Nodes that broadcast (the first ones); 0: every node.
    pub senders: u32,
    /// From the last build to the first proposal, ms.
    pub settle_ms: u64,
    /// From the first proposal to the end, ms.
    pub run_ms: u64,
    /// `executor.probers` on every node (default: 32 from 1,000 nodes,
    /// else 0 = all).
    pub probers: Option<u64>,
    /// `executor.summary_peers` on every node (default 0 = all).
    pub summary_peers: Option<u64>,
    /// Failed link → the ends are told, ms.
    pub detection_ms: u64,
    pub events: Vec<SwitchEventSpec>,
}

impl Default for SwitchScenario {
    fn default() -> Self {
        SwitchScenario {
            to: None,
            rate_per_s: 100.0,
            senders: 0,
            settle_ms: 10_000,
            run_ms: 20_000,
            probers: None,
            summary_peers: None,
            detection_ms: 1_000,
            events: Vec::new(),
        }
    }
}

fn invalid(key: String, reason: impl Into<String>) -> SimError {
    SimError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl SwitchScenario {
    /// The run `scenario` and this table describe.
    pub fn params(&self, scenario: &Scenario) -> Result<SwitchParams, SimError> {
        let from = match scenario.topology {
            TopologyChoice::All => {
                return Err(invalid(
                    "topology".into(),
                    "a switch starts from one topology, not `all`",
                ))
            }
            t => t.topologies()[0],
        };
        let mut events = Vec::new();
        if let Some(to) = self.to {
            events.push(SwitchEvent::Switch { at_ms: 0, to });
        }
        for (i, e) in self.events.iter().enumerate() {
            let key = |k: &str| format!("switch.events[{i}].{k}");
            let fraction = || {
                e.fraction
                    .ok_or_else(|| invalid(key("fraction"), "required by this action"))
            };
            events.push(match e.action {
                SwitchAction::Switch => SwitchEvent::Switch {
                    at_ms: e.at_ms,
                    to: e
                        .to
                        .ok_or_else(|| invalid(key("to"), "required by action switch"))?,
                },
                SwitchAction::Fail => SwitchEvent::Fail {
                    at_ms: e.at_ms,
                    fraction: fraction()?,
                },
                SwitchAction::Partition => SwitchEvent::Partition {
                    at_ms: e.at_ms,
                    fraction: fraction()?,
                },
                SwitchAction::Heal => SwitchEvent::Heal { at_ms: e.at_ms },
            });
        }
        let first = events
            .iter()
            .find_map(|e| match e {
                SwitchEvent::Switch { to, .. } => Some(*to),
                _ => None,
            })
            .ok_or_else(|| invalid("switch.to".into(), "no switch is scheduled"))?;
        let mut p = SwitchParams::new(scenario.nodes, from, first);
        p.events = events;
        p.seed = scenario.seed;
        p.latency = scenario.latency.clone();
        p.loss = scenario.loss;
        p.servers = scenario.servers.min(scenario.nodes);
        p.join_interval_ms = scenario.join_interval_ms;
        p.rate_per_s = self.rate_per_s;
        p.senders = self.senders;
        p.settle_ms = self.settle_ms;
        p.run_ms = self.run_ms;
        p.detection_ms = self.detection_ms;
        if let Some(k) = self.probers {
            p.executor.probers = k;
        }
        if let Some(k) = self.summary_peers {
            p.executor.summary_peers = k;
        }
        let mut configs = Vec::new();
        for t in Topology::ALL {
            configs.push(scenario.overlay_config(t)?);
        }
        p.configs = configs;
        p.validate()?;
        Ok(p)
    }
}
