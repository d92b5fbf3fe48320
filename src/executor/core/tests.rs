//! Exact-outcome tests of the core: a few cores wired together by a tiny
//! in-memory network (fixed latency, links that come up one latency after
//! a connect, frames dropped across a cut), on simulated time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::model::OverlayConfig;

const MS: Duration = Duration::from_millis(1);
const LATENCY: Duration = Duration::from_millis(1);

/// Several cores and what travels between them.
struct Net {
    now: Duration,
    cores: BTreeMap<NodeId, Core>,
    queue: BTreeMap<(Duration, u64), (NodeId, Input)>,
    seq: u64,
    links: BTreeSet<(NodeId, NodeId)>,
    /// Nodes cut off from everyone (frames to and from them are lost).
    cut: BTreeSet<NodeId>,
    replies: Vec<(NodeId, Token, Result<(), ExecError>)>,
    sent: Vec<(NodeId, Token, Result<(), SendRefusal>)>,
    delivered: Vec<(NodeId, MessageId, bool)>,
    wakes: BTreeMap<NodeId, u32>,
    tokens: u64,
}

impl Net {
    fn new(n: u64) -> Self {
        let cfg = ExecutorConfig::default();
        let members: BTreeSet<NodeId> = (1..=n).collect();
        let mut net = Net {
            now: Duration::ZERO,
            cores: (1..=n)
                .map(|id| (id, Core::new(id, 1, cfg.clone(), Seq::default())))
                .collect(),
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeSet::new(),
            cut: BTreeSet::new(),
            replies: Vec::new(),
            sent: Vec::new(),
            delivered: Vec::new(),
            wakes: BTreeMap::new(),
            tokens: 0,
        };
        for id in 1..=n {
            net.input(
                id,
                Input::Members {
                    members: members.clone(),
                    voters: vec![1, 2, 3],
                },
            );
        }
        net
    }

    fn token(&mut self) -> Token {
        self.tokens += 1;
        Token(self.tokens)
    }

    fn at(&mut self, when: Duration, node: NodeId, input: Input) {
        self.seq += 1;
        self.queue.insert((when, self.seq), (node, input));
    }

    fn input(&mut self, node: NodeId, input: Input) {
        let mut out = Vec::new();
        if matches!(input, Input::Timer(Timer::Wake)) {
            *self.wakes.entry(node).or_default() += 1;
        }
        let core = self.cores.get_mut(&node).expect("a node of the net");
        core.handle(self.now, input, &mut out);
        for o in out {
            self.output(node, o);
        }
    }

    fn output(&mut self, node: NodeId, o: Output) {
        let later = self.now + LATENCY;
        match o {
            Output::Send { to, frame, .. } => {
                if !self.cut.contains(&node) && !self.cut.contains(&to) {
                    self.at(
                        later,
                        to,
                        Input::Frame {
                            from: node,
                            payload: frame,
                        },
                    );
                }
            }
            Output::Connect(p) => {
                let key = (node.min(p), node.max(p));
                if !self.cut.contains(&node) && !self.cut.contains(&p) && self.links.insert(key) {
                    self.at(later, node, Input::LinkUp(p));
                    self.at(later, p, Input::LinkUp(node));
                }
            }
            Output::Disconnect(_) => {}
            Output::Deliver { id, broadcast, .. } => self.delivered.push((node, id, broadcast)),
            Output::Reply { token, result } => self.replies.push((node, token, result)),
            Output::Sent { token, result } => self.sent.push((node, token, result)),
            Output::ScheduleTimer { after, timer } => {
                let t = self.now + after;
                self.at(t, node, Input::Timer(timer));
            }
        }
    }

    /// Runs everything due up to `until`.
    fn run_until(&mut self, until: Duration) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((t, _), (node, input)) = entry.remove_entry();
            self.now = t;
            self.input(node, input);
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Sends a phase command to every node; returns the tokens.
    fn all(&mut self, mk: impl Fn(Token) -> Input) -> Vec<(NodeId, Token)> {
        let ids: Vec<NodeId> = self.cores.keys().copied().collect();
        ids.into_iter()
            .map(|id| {
                let t = self.token();
                self.input(id, mk(t));
                (id, t)
            })
            .collect()
    }

    fn reply(&self, node: NodeId, token: Token) -> Option<&Result<(), ExecError>> {
        self.replies
            .iter()
            .find(|(n, t, _)| *n == node && *t == token)
            .map(|(_, _, r)| r)
    }

    fn states(&self) -> BTreeSet<ExecState> {
        self.cores.values().map(|c| c.state()).collect()
    }

    fn build_all(&mut self, topology: Topology) {
        let toks = self.all(|token| Input::Build {
            token,
            instance: 0,
            topology,
            config: OverlayConfig::default_for(topology),
        });
        self.run_for(50 * MS);
        for (n, t) in toks {
            assert_eq!(self.reply(n, t), Some(&Ok(())), "build on node {n}");
        }
    }

    fn prepare_all(&mut self, id: u64, topology: Topology) -> Vec<(NodeId, Token)> {
        self.all(|token| Input::Prepare {
            token,
            id,
            topology,
            config: OverlayConfig::default_for(topology),
        })
    }
}

fn one(states: BTreeSet<ExecState>) -> ExecState {
    assert_eq!(states.len(), 1, "nodes disagree: {states:?}");
    states.into_iter().next().expect("one state")
}

#[test]
fn a_switch_walks_prepare_cut_over_drain_and_verify() {
    let mut net = Net::new(4);
    net.build_all(Topology::FullMesh);
    assert_eq!(one(net.states()), ExecState::Steady { current: 0 });
    let toks = net.prepare_all(5, Topology::HyParView);
    assert_eq!(
        one(net.states()),
        ExecState::Preparing {
            current: 0,
            shadow: 5
        }
    );
    net.run_for(1000 * MS);
    for (n, t) in &toks {
        assert_eq!(net.reply(*n, *t), Some(&Ok(())), "prepare on node {n}");
    }
    let toks = net.all(|token| Input::CutOver { token, id: 5 });
    for (n, t) in &toks {
        assert_eq!(net.reply(*n, *t), Some(&Ok(())), "cut-over on node {n}");
    }
    assert_eq!(
        one(net.states()),
        ExecState::Draining { current: 5, old: 0 }
    );
    let toks = net.all(|token| Input::Verify { token });
    // The old overlay is quiet: the drain ends at drain_min (300 ms).
    net.run_for(299 * MS);
    assert_eq!(
        one(net.states()),
        ExecState::Draining { current: 5, old: 0 }
    );
    net.run_for(2 * MS);
    assert_eq!(one(net.states()), ExecState::Steady { current: 5 });
    net.run_for(1000 * MS);
    for (n, t) in &toks {
        assert_eq!(net.reply(*n, *t), Some(&Ok(())), "verify on node {n}");
    }
    for c in net.cores.values() {
        assert_eq!(c.verified(), Some(5));
        assert_eq!(c.counters().probes_failed, 0);
    }
}

#[test]
fn a_prepare_during_a_drain_waits_for_drain_min_then_ends_the_drain() {
    let mut net = Net::new(3);
    net.build_all(Topology::FullMesh);
    net.prepare_all(1, Topology::HyParView);
    net.run_for(500 * MS);
    net.all(|token| Input::CutOver { token, id: 1 });
    net.run_for(100 * MS);
    let toks = net.prepare_all(2, Topology::PubSub);
    assert_eq!(
        one(net.states()),
        ExecState::Draining { current: 1, old: 0 }
    );
    assert!(toks.iter().all(|(n, t)| net.reply(*n, *t).is_none()));
    // drain_min is 300 ms after the cut-over.
    net.run_for(199 * MS);
    assert_eq!(
        one(net.states()),
        ExecState::Draining { current: 1, old: 0 }
    );
    net.run_for(2 * MS);
    assert_eq!(
        one(net.states()),
        ExecState::Preparing {
            current: 1,
            shadow: 2
        }
    );
    net.run_for(1000 * MS);
    for (n, t) in &toks {
        assert_eq!(
            net.reply(*n, *t),
            Some(&Ok(())),
            "queued prepare on node {n}"
        );
    }
}

#[test]
fn a_verify_is_superseded_by_a_prepare() {
    let mut net = Net::new(3);
    net.build_all(Topology::FullMesh);
    let verify = net.token();
    net.input(1, Input::Verify { token: verify });
    let prep = net.token();
    net.input(
        1,
        Input::Prepare {
            token: prep,
            id: 3,
            topology: Topology::HyParView,
            config: OverlayConfig::default_for(Topology::HyParView),
        },
    );
    assert_eq!(
        net.reply(1, verify),
        Some(&Err(ExecError::Check(CheckFailure::superseded(
            SupersededBy::Prepare(3)
        ))))
    );
    assert!(net.reply(1, prep).is_none(), "the prepare is in progress");
}

#[test]
fn a_node_cut_off_fails_its_prepare_and_the_others_report_it_missing() {
    let mut net = Net::new(4);
    net.build_all(Topology::FullMesh);
    net.cut.insert(4);
    let toks = net.prepare_all(7, Topology::FullMesh);
    net.run_for(10_000 * MS);
    for (n, t) in toks {
        let r = net
            .reply(n, t)
            .unwrap_or_else(|| panic!("node {n} answered"));
        match (n, r) {
            (4, Err(ExecError::Check(CheckFailure::NotFormed { instance: 7, .. }))) => {}
            (
                1..=3,
                Err(ExecError::Check(CheckFailure::NotFormed {
                    instance: 7,
                    gap: FormGap::Missing { missing, .. },
                    ..
                })),
            ) => assert_eq!(missing, &vec![4], "node {n}"),
            _ => panic!("node {n}: {r:?}"),
        }
    }
    assert!(net.cores[&1]
        .last_failure()
        .is_some_and(|f| f.contains("did not form")));
}

#[test]
fn abort_tears_the_shadow_down_and_a_cut_over_needs_a_prepared_overlay() {
    let mut net = Net::new(3);
    net.build_all(Topology::FullMesh);
    let toks = net.prepare_all(4, Topology::HyParView);
    let abort = net.all(|token| Input::Abort { token, id: 4 });
    for (n, t) in &abort {
        assert_eq!(net.reply(*n, *t), Some(&Ok(())));
    }
    for (n, t) in &toks {
        assert_eq!(
            net.reply(*n, *t),
            Some(&Err(ExecError::Check(CheckFailure::TornDown {
                instance: 4
            }))),
            "the aborted prepare on node {n}"
        );
    }
    assert_eq!(one(net.states()), ExecState::Steady { current: 0 });
    let t = net.token();
    net.input(1, Input::CutOver { token: t, id: 4 });
    assert_eq!(
        net.reply(1, t),
        Some(&Err(ExecError::NotPrepared { id: 4 }))
    );
    // A rollback is a prepare of the old topology under a new id.
    let toks = net.prepare_all(5, Topology::FullMesh);
    net.run_for(1000 * MS);
    for (n, t) in &toks {
        assert_eq!(
            net.reply(*n, *t),
            Some(&Ok(())),
            "rollback prepare on node {n}"
        );
    }
}

#[test]
fn broadcasts_across_a_switch_are_delivered_once_everywhere() {
    let mut net = Net::new(4);
    net.build_all(Topology::FullMesh);
    let mut sent = 0;
    let mut send = |net: &mut Net| {
        for origin in 1..=4 {
            net.input(
                origin,
                Input::Broadcast {
                    channel: "c".into(),
                    data: Bytes::from_static(b"x"),
                },
            );
        }
        net.run_for(20 * MS);
        sent += 4;
    };
    send(&mut net);
    net.prepare_all(1, Topology::PubSub);
    for _ in 0..10 {
        send(&mut net);
    }
    net.all(|token| Input::CutOver { token, id: 1 });
    for _ in 0..30 {
        send(&mut net);
    }
    net.run_for(3000 * MS);
    let mut per: BTreeMap<NodeId, BTreeSet<MessageId>> = BTreeMap::new();
    for (node, id, b) in &net.delivered {
        assert!(b);
        assert!(
            per.entry(*node).or_default().insert(*id),
            "node {node} got {id:?} twice"
        );
    }
    for node in 1..=4 {
        assert_eq!(per[&node].len(), sent, "node {node}");
    }
}

#[test]
fn point_to_point_to_a_stranger_is_refused_and_to_self_delivered() {
    let mut net = Net::new(2);
    net.build_all(Topology::FullMesh);
    let id = |seq| MessageId {
        origin: 1,
        incarnation: 1,
        seq,
    };
    let t = net.token();
    net.input(
        1,
        Input::Send {
            token: Some(t),
            id: id(100),
            peer: 9,
            channel: "c".into(),
            data: Bytes::new(),
        },
    );
    assert_eq!(
        net.sent,
        vec![(1, t, Err(SendRefusal::UnknownPeer { peer: 9 }))]
    );
    let t2 = net.token();
    net.input(
        1,
        Input::Send {
            token: Some(t2),
            id: id(101),
            peer: 1,
            channel: "c".into(),
            data: Bytes::new(),
        },
    );
    assert_eq!(net.sent[1], (1, t2, Ok(())));
    assert!(net.delivered.contains(&(1, id(101), false)));
}

#[test]
fn an_idle_node_wakes_only_when_something_is_due() {
    let mut net = Net::new(3);
    net.build_all(Topology::HyParView);
    net.run_for(10_000 * MS);
    net.wakes.clear();
    net.run_for(60_000 * MS);
    // HyParView: a health check every 5 s (a few wakes each: probe,
    // deadline); nothing polled every 10 ms as the old tick did (6,000).
    for (node, n) in &net.wakes {
        assert!(*n <= 60, "node {node} woke {n} times in 60 s");
    }
    let mut net = Net::new(3);
    net.build_all(Topology::FullMesh);
    net.run_for(10_000 * MS);
    net.wakes.clear();
    net.run_for(60_000 * MS);
    // Full mesh: the re-join check every 500 ms.
    for (node, n) in &net.wakes {
        assert!(*n <= 121, "node {node} woke {n} times in 60 s");
    }
}
