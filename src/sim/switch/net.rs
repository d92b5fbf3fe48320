//! The simulated cluster of a switch run: one executor core per node, the
//! event queue, links, the broadcast stream and the leader's decisions
//! (see the module docs of `super` for the model).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::report::{FailureCount, Percentiles, SwitchOutcome, SwitchReport};
use super::{ms, SwitchEvent, SwitchParams};
use crate::control::executor::ExecError;
use crate::executor::core::{Core, Input, Output, Seq, Token};
use crate::executor::ExecState;
use crate::model::{NodeId, Topology};

/// The channel of the stream.
const CHANNEL: &str = "stream";
/// The stream starts this long before the first proposal.
const BASELINE: Duration = Duration::from_secs(2);
/// The stream stops this long before the end of the run.
const TAIL: Duration = Duration::from_secs(3);
/// Token numbers: phase of the command in the low bits.
const PHASES: u64 = 8;

/// What happens at an instant.
enum Event {
    /// An input to a node's core.
    Node(NodeId, Input),
    /// A node's report of transition `id` reaches the leader.
    Report { id: u64, node: NodeId, ok: bool },
    /// The leader's prepare deadline for transition `id`.
    Deadline(u64),
    /// The next broadcast of the stream.
    Stream,
    /// A scenario event.
    Scenario(SwitchEvent),
}

/// What a command token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Build = 0,
    Prepare = 1,
    CutOver = 2,
    Verify = 3,
    Abort = 4,
}

/// One transition as the leader sees it.
struct Transition {
    id: u64,
    from: Topology,
    to: Topology,
    proposed: Duration,
    /// Live members at the proposal.
    members: BTreeSet<NodeId>,
    ok: BTreeSet<NodeId>,
    failed: BTreeSet<NodeId>,
    decided: Option<bool>,
    /// When each node was first steady on it.
    steady: BTreeMap<NodeId, Duration>,
    verify_failures: u32,
    /// Failure kind → (nodes, first text).
    failures: BTreeMap<&'static str, (u32, String)>,
    /// Frames sent from the proposal until every node was steady.
    frames_at_start: (u64, u64),
    frames_at_end: Option<(u64, u64)>,
    settled_at: Option<Duration>,
}

pub(super) struct Net<'a> {
    p: &'a SwitchParams,
    now: Duration,
    queue: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    cores: BTreeMap<NodeId, Core>,
    rng: ChaCha8Rng,
    links: BTreeSet<(NodeId, NodeId)>,
    /// Connects asked for across a partition: they come up when it heals.
    waiting: BTreeSet<(NodeId, NodeId)>,
    failed: BTreeSet<NodeId>,
    cut: BTreeSet<NodeId>,
    /// Control messages held for nodes behind a partition.
    held: Vec<(NodeId, Event)>,
    start: Duration,
    stream_end: Duration,
    end: Duration,
    /// Per broadcast: the nodes expected to deliver it.
    sent: Vec<BTreeSet<NodeId>>,
    /// Per broadcast: sender and time (debugging).
    sent_info: Vec<(NodeId, Duration)>,
    /// Per node: the broadcasts delivered, a bit each.
    got: BTreeMap<NodeId, Vec<u64>>,
    duplicates: u64,
    transitions: Vec<Transition>,
    next_id: u64,
    frames: u64,
    bytes: u64,
    baseline: (u64, u64),
    two: u32,
    peak_two: u32,
    out: Vec<Output>,
}

impl<'a> Net<'a> {
    pub fn new(p: &'a SwitchParams) -> Self {
        let members: BTreeSet<NodeId> = (1..=u64::from(p.nodes)).collect();
        let voters: Vec<NodeId> = (1..=u64::from(p.servers)).collect();
        let build_end = ms(p.join_interval_ms * u64::from(p.nodes));
        let start = build_end + ms(p.settle_ms);
        let mut net = Net {
            p,
            now: Duration::ZERO,
            queue: BTreeMap::new(),
            seq: 0,
            cores: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(p.seed ^ 0x5317_C400),
            links: BTreeSet::new(),
            waiting: BTreeSet::new(),
            failed: BTreeSet::new(),
            cut: BTreeSet::new(),
            held: Vec::new(),
            start,
            stream_end: start + ms(p.run_ms).saturating_sub(TAIL),
            end: start + ms(p.run_ms),
            sent: Vec::new(),
            sent_info: Vec::new(),
            got: BTreeMap::new(),
            duplicates: 0,
            transitions: Vec::new(),
            next_id: 1,
            frames: 0,
            bytes: 0,
            baseline: (0, 0),
            two: 0,
            peak_two: 0,
            out: Vec::new(),
        };
        for id in &members {
            let mut core = Core::new(*id, 1, p.executor.clone(), Seq::default());
            let mut out = Vec::new();
            core.handle(
                Duration::ZERO,
                Input::Members {
                    members: members.clone(),
                    voters: voters.clone(),
                },
                &mut out,
            );
            net.cores.insert(*id, core);
            let at = ms(p.join_interval_ms * (id - 1));
            let config = p.config(p.from);
            net.at(
                at,
                Event::Node(
                    *id,
                    Input::Build {
                        token: token_of(0, Phase::Build),
                        instance: 0,
                        topology: p.from,
                        config,
                    },
                ),
            );
        }
        if p.rate_per_s > 0.0 {
            net.at(start.saturating_sub(BASELINE), Event::Stream);
        }
        for e in &p.events {
            net.at(start + ms(e.at_ms()), Event::Scenario(e.clone()));
        }
        net
    }

    fn at(&mut self, when: Duration, e: Event) {
        self.seq += 1;
        self.queue.insert((when, self.seq), e);
    }

    fn lat(&self, a: NodeId, b: NodeId) -> Duration {
        self.p.latency.latency(self.p.seed, a, b)
    }

    fn reachable(&self, a: NodeId, b: NodeId) -> bool {
        !self.failed.contains(&a)
            && !self.failed.contains(&b)
            && self.cut.contains(&a) == self.cut.contains(&b)
    }

    pub fn run(&mut self) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.end {
                break;
            }
            let ((t, _), e) = entry.remove_entry();
            self.now = t;
            if self.now >= self.start.saturating_sub(BASELINE) && self.baseline == (0, 0) {
                self.baseline = (self.frames, self.bytes);
            }
            self.event(e);
        }
        self.now = self.end;
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Node(node, input) => self.input(node, input),
            Event::Report { id, node, ok } => self.on_report(id, node, ok),
            Event::Deadline(id) => self.decide(id, true),
            Event::Stream => self.stream(),
            Event::Scenario(s) => self.scenario(s),
        }
    }

    fn input(&mut self, node: NodeId, input: Input) {
        if self.failed.contains(&node) {
            return;
        }
        let Some(core) = self.cores.get_mut(&node) else {
            return;
        };
        let before = core.slots().other().is_some();
        let mut out = std::mem::take(&mut self.out);
        core.handle(self.now, input, &mut out);
        let after = core.slots().other().is_some();
        let state = core.state();
        match (before, after) {
            (false, true) => {
                self.two += 1;
                self.peak_two = self.peak_two.max(self.two);
            }
            (true, false) => self.two -= 1,
            _ => {}
        }
        for o in out.drain(..) {
            self.output(node, o);
        }
        self.out = out;
        if let ExecState::Steady { current } = state {
            let (now, marks) = (self.now, (self.frames, self.bytes));
            let failed = &self.failed;
            if let Some(t) = self.transitions.iter_mut().find(|t| t.id == current) {
                if !t.steady.contains_key(&node)
                    && t.steady.insert(node, now).is_none()
                    && t.settled_at.is_none()
                    && t.members
                        .iter()
                        .all(|n| failed.contains(n) || t.steady.contains_key(n))
                {
                    t.settled_at = Some(now);
                    t.frames_at_end = Some(marks);
                }
            }
        }
    }

    fn output(&mut self, node: NodeId, o: Output) {
        match o {
            Output::Send { to, frame, .. } => {
                self.frames += 1;
                self.bytes += frame.len() as u64;
                if !self.reachable(node, to) {
                    return;
                }
                if self.p.loss > 0.0 && self.rng.gen::<f64>() < self.p.loss {
                    return;
                }
                let t = self.now + self.lat(node, to);
                self.at(
                    t,
                    Event::Node(
                        to,
                        Input::Frame {
                            from: node,
                            payload: frame,
                        },
                    ),
                );
            }
            Output::Connect(peer) => {
                let key = (node.min(peer), node.max(peer));
                if self.links.contains(&key) {
                    return;
                }
                if self.failed.contains(&peer) {
                    let t = self.now + ms(self.p.detection_ms);
                    self.at(t, Event::Node(node, Input::SendFailed(peer)));
                } else if !self.reachable(node, peer) {
                    self.waiting.insert(key);
                    let t = self.now + ms(self.p.detection_ms);
                    self.at(t, Event::Node(node, Input::SendFailed(peer)));
                } else {
                    self.up(key);
                }
            }
            Output::Disconnect(_) => {}
            Output::Deliver {
                broadcast: true,
                payload,
                ..
            } => self.delivered(node, &payload),
            Output::Deliver { .. } => {}
            Output::Reply { token, result } => self.reply(node, token, result),
            Output::Sent { .. } => {}
            Output::ScheduleTimer { after, timer } => {
                let t = self.now + after;
                self.at(t, Event::Node(node, Input::Timer(timer)));
            }
        }
    }

    fn up(&mut self, key: (NodeId, NodeId)) {
        self.links.insert(key);
        let t = self.now + self.lat(key.0, key.1);
        self.at(t, Event::Node(key.0, Input::LinkUp(key.1)));
        self.at(t, Event::Node(key.1, Input::LinkUp(key.0)));
    }

    fn delivered(&mut self, node: NodeId, payload: &Bytes) {
        let Some(i) = payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
        else {
            return;
        };
        let bits = self.got.entry(node).or_default();
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        if bits[w] & b != 0 {
            self.duplicates += 1;
        }
        bits[w] |= b;
    }

    /// Sends a control message from the leader to `node` (held while a
    /// partition separates them).
    fn control(&mut self, node: NodeId, e: Event) {
        if self.cut.contains(&node) {
            self.held.push((node, e));
            return;
        }
        let t = self.now + self.lat(1, node);
        self.at(t, e);
    }

    fn reply(&mut self, node: NodeId, token: Token, result: Result<(), ExecError>) {
        let (id, phase) = (token.0 / PHASES, token.0 % PHASES);
        let ok = result.is_ok();
        if let Err(e) = &result {
            if phase == Phase::Prepare as u64 || phase == Phase::Verify as u64 {
                if let Some(t) = self.transitions.iter_mut().find(|t| t.id == id) {
                    let entry = t.failures.entry(kind(e)).or_insert((0, e.to_string()));
                    entry.0 += 1;
                }
            }
        }
        match phase {
            p if p == Phase::Prepare as u64 => {
                let e = Event::Report { id, node, ok };
                if self.cut.contains(&node) {
                    self.held.push((node, e));
                } else {
                    let t = self.now + self.lat(node, 1);
                    self.at(t, e);
                }
            }
            p if p == Phase::CutOver as u64 && ok => {
                let token = token_of(id, Phase::Verify);
                self.input(node, Input::Verify { token });
            }
            p if p == Phase::Verify as u64 && !ok => {
                if let Some(t) = self.transitions.iter_mut().find(|t| t.id == id) {
                    t.verify_failures += 1;
                }
            }
            _ => {}
        }
    }

    fn propose(&mut self, to: Topology) {
        let id = self.next_id;
        self.next_id += 1;
        let from = self
            .transitions
            .iter()
            .rev()
            .find(|t| t.decided == Some(true))
            .map_or(self.p.from, |t| t.to);
        let members: BTreeSet<NodeId> = self
            .cores
            .keys()
            .copied()
            .filter(|n| !self.failed.contains(n))
            .collect();
        self.transitions.push(Transition {
            id,
            from,
            to,
            proposed: self.now,
            members: members.clone(),
            ok: BTreeSet::new(),
            failed: BTreeSet::new(),
            decided: None,
            steady: BTreeMap::new(),
            verify_failures: 0,
            failures: BTreeMap::new(),
            frames_at_start: (self.frames, self.bytes),
            frames_at_end: None,
            settled_at: None,
        });
        let config = self.p.config(to);
        for n in members {
            let input = Input::Prepare {
                token: token_of(id, Phase::Prepare),
                id,
                topology: to,
                config: config.clone(),
            };
            self.control(n, Event::Node(n, input));
        }
        let cfg = &self.p.executor;
        let deadline = ms(cfg.form_timeout_ms + cfg.verify_timeout_ms + cfg.drain_grace_ms + 1_000);
        let t = self.now + deadline;
        self.at(t, Event::Deadline(id));
    }

    fn on_report(&mut self, id: u64, node: NodeId, ok: bool) {
        let Some(t) = self.transitions.iter_mut().find(|t| t.id == id) else {
            return;
        };
        if ok {
            t.ok.insert(node);
        } else {
            t.failed.insert(node);
        }
        self.decide(id, false);
    }

    /// The coordinator's rule: commit once every live member reported
    /// success; abort on a failure, or at the deadline.
    fn decide(&mut self, id: u64, deadline: bool) {
        let failed = &self.failed;
        let Some(t) = self.transitions.iter_mut().find(|t| t.id == id) else {
            return;
        };
        if t.decided.is_some() {
            return;
        }
        let live_missing = t
            .members
            .iter()
            .filter(|n| !failed.contains(n) && !t.ok.contains(n))
            .count();
        let commit = if !t.failed.is_empty() {
            false
        } else if live_missing == 0 {
            true
        } else if deadline {
            false
        } else {
            return;
        };
        t.decided = Some(commit);
        let members: Vec<NodeId> = t.members.iter().copied().collect();
        for n in members {
            let input = if commit {
                Input::CutOver {
                    token: token_of(id, Phase::CutOver),
                    id,
                }
            } else {
                Input::Abort {
                    token: token_of(id, Phase::Abort),
                    id,
                }
            };
            self.control(n, Event::Node(n, input));
        }
    }

    fn stream(&mut self) {
        if self.now >= self.stream_end {
            return;
        }
        let pool = if self.p.senders == 0 {
            self.p.nodes
        } else {
            self.p.senders.min(self.p.nodes)
        };
        let sender = u64::from(self.rng.gen_range(1..=pool));
        if !self.failed.contains(&sender) {
            let i = self.sent.len() as u64;
            let expected: BTreeSet<NodeId> = self
                .cores
                .keys()
                .copied()
                .filter(|n| !self.failed.contains(n))
                .collect();
            self.sent.push(expected);
            self.sent_info.push((sender, self.now));
            self.input(
                sender,
                Input::Broadcast {
                    channel: CHANNEL.into(),
                    data: Bytes::copy_from_slice(&i.to_le_bytes()),
                },
            );
        }
        let gap = Duration::from_secs_f64(1.0 / self.p.rate_per_s);
        let t = self.now + gap;
        self.at(t, Event::Stream);
    }

    fn pick(&mut self, fraction: f64) -> Vec<NodeId> {
        let candidates: Vec<NodeId> = self
            .cores
            .keys()
            .copied()
            .filter(|n| *n != 1 && !self.failed.contains(n) && !self.cut.contains(n))
            .collect();
        let k = ((self.cores.len() as f64) * fraction).round() as usize;
        let mut chosen = BTreeSet::new();
        while chosen.len() < k.min(candidates.len()) {
            chosen.insert(candidates[self.rng.gen_range(0..candidates.len())]);
        }
        chosen.into_iter().collect()
    }

    fn scenario(&mut self, e: SwitchEvent) {
        match e {
            SwitchEvent::Switch { to, .. } => self.propose(to),
            SwitchEvent::Fail { fraction, .. } => {
                for n in self.pick(fraction) {
                    self.failed.insert(n);
                    self.links_down(|a, b| a == n || b == n);
                }
            }
            SwitchEvent::Partition { fraction, .. } => {
                let side = self.pick(fraction);
                self.cut.extend(side);
                let cut = self.cut.clone();
                self.links_down(move |a, b| cut.contains(&a) != cut.contains(&b));
            }
            SwitchEvent::Heal { .. } => {
                self.cut.clear();
                for key in std::mem::take(&mut self.waiting) {
                    if self.reachable(key.0, key.1) && !self.links.contains(&key) {
                        self.up(key);
                    }
                }
                for (node, e) in std::mem::take(&mut self.held) {
                    let t = self.now + self.lat(1, node);
                    self.at(t, e);
                }
            }
        }
    }

    /// Links for which `gone(a, b)` are down: both live ends are told
    /// after the detection delay, and a connect across is kept waiting.
    fn links_down(&mut self, gone: impl Fn(NodeId, NodeId) -> bool) {
        let down: Vec<(NodeId, NodeId)> = self
            .links
            .iter()
            .copied()
            .filter(|(a, b)| gone(*a, *b))
            .collect();
        let t = self.now + ms(self.p.detection_ms);
        for key in down {
            self.links.remove(&key);
            for (me, peer) in [(key.0, key.1), (key.1, key.0)] {
                if !self.failed.contains(&me) {
                    self.at(t, Event::Node(me, Input::LinkDown { peer, failed: true }));
                    // The transport's redials fail too.
                    self.at(t, Event::Node(me, Input::SendFailed(peer)));
                }
            }
            if !self.failed.contains(&key.0) && !self.failed.contains(&key.1) {
                self.waiting.insert(key);
            }
        }
    }

    pub fn report(&mut self) -> SwitchReport {
        if std::env::var_os("SIM_DEBUG").is_some() {
            for (id, c) in &self.cores {
                let (cur, _) = c.overlay_status();
                if cur.as_ref().is_some_and(|c| c.links.is_empty()) {
                    eprintln!(
                        "node {id}: no links on {:?} (state {:?})",
                        cur.map(|c| c.topology),
                        c.state()
                    );
                }
            }
        }
        let live: BTreeSet<NodeId> = self
            .cores
            .keys()
            .copied()
            .filter(|n| !self.failed.contains(n))
            .collect();
        let mut lost = 0u64;
        for (i, expected) in self.sent.iter().enumerate() {
            let (w, b) = (i / 64, 1u64 << (i % 64));
            for n in expected.intersection(&live) {
                let got = self
                    .got
                    .get(n)
                    .and_then(|v| v.get(w))
                    .is_some_and(|word| word & b != 0);
                if !got {
                    lost += 1;
                    if std::env::var_os("SIM_DEBUG").is_some() {
                        eprintln!(
                            "lost: broadcast {i} ({:?}) at node {n}",
                            self.sent_info.get(i)
                        );
                    }
                }
            }
        }
        let first = self.transitions.first().map_or(self.start, |t| t.proposed);
        let window = first
            .saturating_sub(self.start.saturating_sub(BASELINE))
            .as_secs_f64()
            .max(1e-9);
        let (bf, bb) = self.baseline;
        let (f0, b0) = self
            .transitions
            .first()
            .map_or((self.frames, self.bytes), |t| t.frames_at_start);
        let rate = (
            f0.saturating_sub(bf) as f64 / window,
            b0.saturating_sub(bb) as f64 / window,
        );
        let end = (self.end, (self.frames, self.bytes));
        let mut switches = Vec::new();
        for t in &self.transitions {
            let expect: Vec<NodeId> = t.members.intersection(&live).copied().collect();
            let mut times: Vec<u64> = expect
                .iter()
                .filter_map(|n| t.steady.get(n))
                .map(|at| at.saturating_sub(t.proposed).as_millis() as u64)
                .collect();
            times.sort_unstable();
            // The switch's cost: frames from the proposal until every node
            // was steady on it (or the end of the run), beyond the baseline
            // rate over the same span.
            let (until, (f1, b1)) = match (t.settled_at, t.frames_at_end) {
                (Some(at), Some(marks)) => (at, marks),
                _ => end,
            };
            let span = until.saturating_sub(t.proposed).as_secs_f64();
            let frames = f1.saturating_sub(t.frames_at_start.0) as f64;
            let bytes = b1.saturating_sub(t.frames_at_start.1) as f64;
            switches.push(SwitchOutcome {
                id: t.id,
                from: t.from,
                to: t.to,
                committed: t.decided == Some(true),
                settled: times.len() as u32,
                expected: expect.len() as u32,
                switch_ms: Percentiles::of(&times),
                prepare_failures: t.failed.len() as u32,
                verify_failures: t.verify_failures,
                overhead_messages: (frames - rate.0 * span).max(0.0).round() as u64,
                overhead_bytes: (bytes - rate.1 * span).max(0.0).round() as u64,
                failures: t
                    .failures
                    .iter()
                    .map(|(kind, (nodes, example))| FailureCount {
                        kind: kind.to_string(),
                        nodes: *nodes,
                        example: example.clone(),
                    })
                    .collect(),
            });
        }
        let main = switches.first().cloned();
        SwitchReport {
            nodes: self.p.nodes,
            seed: self.p.seed,
            from: self.p.from,
            to: main.as_ref().map_or(self.p.from, |s| s.to),
            switch_ms: main
                .as_ref()
                .map_or_else(Percentiles::default, |s| s.switch_ms),
            committed: main.as_ref().is_some_and(|s| s.committed),
            prepare_failures: switches.iter().map(|s| s.prepare_failures).sum(),
            overhead_messages: main.as_ref().map_or(0, |s| s.overhead_messages),
            overhead_bytes: main.as_ref().map_or(0, |s| s.overhead_bytes),
            broadcasts: self.sent.len() as u64,
            lost,
            duplicates: self.duplicates,
            peak_two_overlays: self.peak_two,
            baseline_messages_per_s: rate.0.round() as u64,
            probers: self.p.executor.probers,
            summary_peers: self.p.executor.summary_peers,
            switches,
            wall_ms: 0,
        }
    }
}

/// A failure's kind, for counting.
fn kind(e: &ExecError) -> &'static str {
    use crate::executor::CheckFailure as F;
    match e {
        ExecError::Check(F::NotFormed { .. }) => "not_formed",
        ExecError::Check(F::ProbeMissed { .. }) => "probe_missed",
        ExecError::Check(F::LostContact { .. }) => "lost_contact",
        ExecError::Check(F::Superseded(_)) => "superseded",
        ExecError::Check(F::TornDown { .. }) => "torn_down",
        _ => "other",
    }
}

fn token_of(id: u64, phase: Phase) -> Token {
    Token(id * PHASES + phase as u64)
}
