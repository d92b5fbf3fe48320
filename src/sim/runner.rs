//! Runs one [`Scenario`] for one topology: staggered joins, settling,
//! broadcast rounds with the scenario's events, and the report.

use std::time::Duration;

use bytes::Bytes;
use rand::seq::{IteratorRandom, SliceRandom};
use rand::Rng;

use super::engine::{Engine, Network};
use super::graph::Graph;
use super::invariants::{self, Violation};
use super::latency::mix64;
use super::report::{quantile_ms, rmr, InvariantResult, Report, RoundReport, Summary};
use super::scenario::{Action, Scenario, SenderMode, MAX_FULL_MESH_NODES};
use super::SimError;
use crate::model::{OverlayConfig, Topology};
use crate::overlay::any::AnyOverlay;
use crate::overlay::{Command, MessageId, PeerId};

/// A simulation of one topology, settled and ready for rounds.
pub struct Run {
    /// The engine with every node joined.
    pub engine: Engine<AnyOverlay>,
    scenario: Scenario,
    topology: Topology,
    active_max: Option<usize>,
    fixed_sender: PeerId,
    seq: u64,
    invariants: Vec<InvariantResult>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Run {
    /// Builds the nodes, joins them one `join_interval_ms` apart and runs
    /// `settle_ms` past the last join.
    pub fn settle(scenario: &Scenario, topology: Topology) -> Result<Run, SimError> {
        scenario.validate()?;
        if topology == Topology::FullMesh && scenario.nodes > MAX_FULL_MESH_NODES {
            return Err(SimError::TooLarge {
                topology,
                nodes: scenario.nodes,
                limit: MAX_FULL_MESH_NODES,
            });
        }
        let config = scenario.overlay_config(topology)?;
        let active_max = match &config {
            OverlayConfig::HyParView(h) => Some(h.active_view as usize),
            OverlayConfig::PubSub(p) => Some(p.hyparview.active_view as usize),
            _ => None,
        };
        let servers: Vec<PeerId> = (1..=u64::from(scenario.servers.min(scenario.nodes))).collect();
        let seed = scenario.seed;
        AnyOverlay::new(&config, 1, seed, &servers)?;
        let factory = Box::new(move |id: PeerId| {
            AnyOverlay::new(&config, id, mix64(seed ^ id), &servers)
                .expect("the config was validated by building node 1")
        });
        let net = Network {
            latency: scenario.latency.clone(),
            seed,
            loss: scenario.loss,
            detection_delay: scenario.detection_delay_ms.map(Duration::from_millis),
        };
        let mut engine = Engine::new(net, seed, factory);
        let step = Duration::from_millis(scenario.join_interval_ms);
        let contacts = u64::from(scenario.contacts.min(scenario.nodes));
        let mut at = Duration::ZERO;
        for id in 1..=u64::from(scenario.nodes) {
            let via = match id {
                1 => vec![],
                _ if id <= contacts => vec![1],
                _ => vec![engine.rng().gen_range(1..=contacts)],
            };
            engine.schedule_join(at, id, via);
            at += step;
        }
        engine.run_until(at + Duration::from_millis(scenario.settle_ms));
        let fixed_sender = random_live(&mut engine).unwrap_or(1);
        let mut run = Run {
            engine,
            scenario: scenario.clone(),
            topology,
            active_max,
            fixed_sender,
            seq: 0,
            invariants: Vec::new(),
        };
        run.check_invariants("after_settle");
        Ok(run)
    }

    /// The invariants that apply to this topology, checked now.
    pub fn check(&self) -> Vec<(&'static str, Result<(), Violation>)> {
        let graph = Graph::of(&self.engine);
        let mut checks = vec![("overlay_connected", invariants::overlay_connected(&graph))];
        if let Some(max) = self.active_max {
            checks.push((
                "active_views_symmetric",
                invariants::active_views_symmetric(&graph, &self.engine.in_flight()),
            ));
            checks.push((
                "active_views_within_bounds",
                invariants::active_views_within_bounds(&graph, max),
            ));
        }
        checks
    }

    /// Plumtree's eager-link tree check (only meaningful in steady state
    /// with one sender); `None` for other topologies.
    pub fn check_eager_tree(&self) -> Option<Result<(), Violation>> {
        if self.topology != Topology::PubSub {
            return None;
        }
        let eager = Graph::from_links(&self.engine, |p| p.eager_peers().unwrap_or_default());
        Some(invariants::eager_links_form_spanning_tree(
            &eager,
            &self.engine.in_flight(),
        ))
    }

    fn check_invariants(&mut self, when: &'static str) {
        let mut checks = self.check();
        let steady = self.scenario.sender == SenderMode::Fixed
            && self.scenario.events.is_empty()
            && self.scenario.fail.is_none();
        if when == "end" && steady {
            if let Some(tree) = self.check_eager_tree() {
                checks.push(("eager_links_form_spanning_tree", tree));
            }
        }
        for (name, result) in checks {
            self.invariants.push(InvariantResult {
                name,
                when,
                holds: result.is_ok(),
                detail: result.err().map(|v| v.detail),
            });
        }
    }

    /// Applies the events of `round`; returns whether a failure happened.
    fn apply_events(&mut self, round: u32) -> bool {
        let mut failed = false;
        if round == self.scenario.fail_round {
            if let Some(f) = self.scenario.fail {
                self.fail_fraction(f);
                failed = true;
            }
        }
        let events: Vec<_> = self
            .scenario
            .events
            .iter()
            .filter(|e| e.round == round)
            .cloned()
            .collect();
        for e in events {
            match e.action {
                Action::Fail => {
                    self.fail_fraction(e.fraction.unwrap_or(0.0));
                    failed = true;
                }
                Action::Partition => self.partition(e.groups.unwrap_or(2)),
                Action::Heal => self.engine.set_groups(None),
                Action::Churn => self.churn(e.joins.unwrap_or(0), e.leaves.unwrap_or(0)),
            }
        }
        // Let joins scheduled for now run before the broadcast.
        let now = self.engine.now();
        self.engine.run_until(now);
        failed
    }

    /// Running nodes other than the fixed sender, in random order.
    fn victims(&mut self, count: usize) -> Vec<PeerId> {
        let keep = self.fixed_sender;
        let candidates: Vec<PeerId> = self.engine.live().filter(|id| *id != keep).collect();
        let rng = engine_rng(&mut self.engine);
        let mut chosen = candidates.into_iter().choose_multiple(rng, count);
        chosen.sort_unstable();
        chosen
    }

    fn fail_fraction(&mut self, fraction: f64) {
        let count = (self.engine.live_count() as f64 * fraction).floor() as usize;
        for id in self.victims(count) {
            self.engine.remove(id);
        }
    }

    fn partition(&mut self, groups: u16) {
        let bound = self.engine.id_bound() as usize;
        let rng = engine_rng(&mut self.engine);
        let sides: Vec<u16> = (0..bound).map(|_| rng.gen_range(0..groups)).collect();
        self.engine.set_groups(Some(sides));
    }

    fn churn(&mut self, joins: u32, leaves: u32) {
        for id in self.victims(leaves as usize) {
            self.engine.command(id, Command::Leave);
            self.engine.remove(id);
        }
        let now = self.engine.now();
        for _ in 0..joins {
            let id = self.engine.id_bound().max(1);
            let contact = random_live(&mut self.engine);
            self.engine
                .schedule_join(now, id, contact.into_iter().collect());
            // Reserve the id at once so the next joiner gets another.
            self.engine.run_until(now);
        }
    }

    fn pick_sender(&mut self) -> PeerId {
        match self.scenario.sender {
            SenderMode::Fixed => self.fixed_sender,
            SenderMode::Random => {
                let start = self.engine.now();
                let eligible: Vec<PeerId> = self
                    .engine
                    .live()
                    .filter(|id| self.engine.joined_at(*id).is_some_and(|t| t < start))
                    .collect();
                let rng = engine_rng(&mut self.engine);
                eligible
                    .into_iter()
                    .choose(rng)
                    .unwrap_or(self.fixed_sender)
            }
        }
    }

    /// One broadcast round: its figures, and its delivery latencies (µs).
    pub fn round(&mut self, round: u32) -> (RoundReport, Vec<u64>) {
        let sender = self.pick_sender();
        let start = self.engine.now();
        self.seq += 1;
        let id = MessageId {
            origin: sender,
            incarnation: 0,
            seq: self.seq,
        };
        self.engine.reset_counters();
        self.engine.track(id);
        let payload = Bytes::from(round.to_be_bytes().to_vec());
        self.engine
            .command(sender, Command::Broadcast { id, payload });
        self.engine
            .run_until(start + Duration::from_millis(self.scenario.round_interval_ms));
        let live: Vec<PeerId> = self
            .engine
            .live()
            .filter(|id| self.engine.joined_at(*id).is_some_and(|t| t < start))
            .collect();
        let t = &self.engine.tracker;
        let delivered = live.iter().filter(|id| t.delivered(**id)).count() as u64;
        let mut latencies = t.latencies_us.clone();
        latencies.sort_unstable();
        let c = self.engine.counters;
        let graph = Graph::of(&self.engine);
        let (mean, max) = graph.links_per_node();
        let components = graph.components();
        let n = live.len() as u64;
        let report = RoundReport {
            round,
            sender,
            live: n,
            reliability: if n == 0 {
                1.0
            } else {
                delivered as f64 / n as f64
            },
            missed: n - delivered,
            rmr: rmr(c.payload, t.count),
            ldh: t.max_hops,
            latency_p50_ms: quantile_ms(&latencies, 0.5),
            latency_p99_ms: quantile_ms(&latencies, 0.99),
            payload_messages: c.payload,
            gossip_messages: c.gossip,
            membership_messages: c.membership,
            links_per_node_mean: mean,
            links_per_node_max: max,
            connected: components <= 1,
            components,
            duplicates: t.duplicates,
        };
        (report, latencies)
    }

    /// Runs every round and reports.
    pub fn run(mut self) -> Report {
        let mut rounds = Vec::new();
        let mut all_latencies = Vec::new();
        let mut failure: Option<(u32, Duration)> = None;
        let mut healing = None;
        for r in 1..=self.scenario.rounds {
            let failed_now = self.apply_events(r);
            if failed_now && failure.is_none() {
                failure = Some((r, self.engine.now()));
            }
            let (report, latencies) = self.round(r);
            if let Some((_, at)) = failure {
                if healing.is_none() && report.connected && report.missed == 0 {
                    healing = Some(ms(self.engine.tracker.last_delivery.saturating_sub(at)));
                }
            }
            all_latencies.extend(latencies);
            rounds.push(report);
        }
        self.check_invariants("end");
        let in_degree = Graph::of(&self.engine).in_degree_histogram();
        let summary = Summary::of(
            &rounds,
            all_latencies,
            failure.map(|(r, _)| r),
            healing,
            in_degree,
        );
        Report {
            topology: self.topology.to_string(),
            nodes: self.scenario.nodes,
            seed: self.scenario.seed,
            sender: match self.scenario.sender {
                SenderMode::Fixed => "fixed".into(),
                SenderMode::Random => "random".into(),
            },
            invariants: self.invariants,
            rounds,
            summary,
            messages_by_kind: self.engine.kinds(),
            simulated_ms: ms(self.engine.now()),
            events: self.engine.events,
        }
    }
}

/// A running node chosen by the engine's RNG.
fn random_live(engine: &mut Engine<AnyOverlay>) -> Option<PeerId> {
    let live: Vec<PeerId> = engine.live().collect();
    live.choose(engine.rng()).copied()
}

fn engine_rng(engine: &mut Engine<AnyOverlay>) -> &mut rand_chacha::ChaCha8Rng {
    engine.rng()
}

/// Settles and runs `scenario` for `topology`.
pub fn run_scenario(scenario: &Scenario, topology: Topology) -> Result<Report, SimError> {
    Ok(Run::settle(scenario, topology)?.run())
}
