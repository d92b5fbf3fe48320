//! A tiny deterministic network for protocol tests: zero latency, one FIFO
//! queue of messages, timers ordered by time, nodes `0..n` with id = index.
//! A send to a dead node fails at once: the sender gets `PeerDown`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::overlay::{
    InEvent, MessageClass, MessageId, OutEvent, PeerId, Protocol, ProtocolMessage, Time,
};

type In<P> = InEvent<<P as Protocol>::Message, <P as Protocol>::Timer>;
type Out<P> = OutEvent<<P as Protocol>::Message, <P as Protocol>::Timer>;

pub(crate) struct TestNet<P: Protocol> {
    pub nodes: Vec<P>,
    pub alive: Vec<bool>,
    pub now: Time,
    queue: VecDeque<(PeerId, In<P>)>,
    timers: BTreeMap<(Time, u64), (PeerId, P::Timer)>,
    seq: u64,
    /// Per node: delivered ids with their hop count.
    pub delivered: Vec<BTreeMap<MessageId, u32>>,
    pub duplicate_deliveries: u64,
    /// Messages sent per class since the last [`TestNet::reset_counts`].
    pub sent: BTreeMap<&'static str, u64>,
    pub payload_sent: u64,
    out: Vec<Out<P>>,
}

impl<P: Protocol> TestNet<P> {
    pub fn new(nodes: Vec<P>) -> Self {
        let n = nodes.len();
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(node.me(), i as PeerId, "node ids must be their index");
        }
        TestNet {
            nodes,
            alive: vec![true; n],
            now: Duration::ZERO,
            queue: VecDeque::new(),
            timers: BTreeMap::new(),
            seq: 0,
            delivered: vec![BTreeMap::new(); n],
            duplicate_deliveries: 0,
            sent: BTreeMap::new(),
            payload_sent: 0,
            out: Vec::new(),
        }
    }

    /// Queues an input for `node` (processed by the next run).
    pub fn input(&mut self, node: PeerId, event: In<P>) {
        self.queue.push_back((node, event));
    }

    pub fn kill(&mut self, node: PeerId) {
        self.alive[node as usize] = false;
    }

    pub fn reset_counts(&mut self) {
        self.sent.clear();
        self.payload_sent = 0;
    }

    /// Runs until the queue is empty and no timer is due before `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps: u64 = 0;
        loop {
            while let Some((node, event)) = self.queue.pop_front() {
                steps += 1;
                assert!(steps < 50_000_000, "test network does not settle");
                self.step(node, event);
            }
            let Some((&(at, seq), _)) = self.timers.iter().next() else {
                break;
            };
            if at > end {
                break;
            }
            let Some((node, timer)) = self.timers.remove(&(at, seq)) else {
                break;
            };
            self.now = at;
            self.step(node, InEvent::Timer(timer));
        }
        self.now = end;
    }

    fn step(&mut self, node: PeerId, event: In<P>) {
        if !self.alive[node as usize] {
            return;
        }
        let mut out = std::mem::take(&mut self.out);
        self.nodes[node as usize].handle(self.now, event, &mut out);
        for o in out.drain(..) {
            match o {
                OutEvent::Send { to, message } => {
                    *self.sent.entry(message.kind()).or_default() += 1;
                    if message.class() == MessageClass::Payload {
                        self.payload_sent += 1;
                    }
                    if self.alive[to as usize] {
                        self.queue.push_back((
                            to,
                            InEvent::Message {
                                from: node,
                                message,
                            },
                        ));
                    } else {
                        self.queue.push_back((node, InEvent::PeerDown(to)));
                    }
                }
                OutEvent::ScheduleTimer { after, timer } => {
                    self.seq += 1;
                    self.timers
                        .insert((self.now + after, self.seq), (node, timer));
                }
                OutEvent::Deliver { id, hops, .. } => {
                    if self.delivered[node as usize].insert(id, hops).is_some() {
                        self.duplicate_deliveries += 1;
                    }
                }
                OutEvent::Connect(_) | OutEvent::Disconnect(_) | OutEvent::ViewChanged { .. } => {}
            }
        }
        self.out = out;
    }

    pub fn live(&self) -> impl Iterator<Item = PeerId> + '_ {
        (0..self.nodes.len() as PeerId).filter(|&i| self.alive[i as usize])
    }

    /// Live nodes that delivered `id`.
    pub fn reached(&self, id: &MessageId) -> usize {
        self.live()
            .filter(|&i| self.delivered[i as usize].contains_key(id))
            .count()
    }
}

/// Number of connected components among `nodes` of the undirected graph
/// given by `edges` (edges touching other nodes are ignored).
pub(crate) fn components(nodes: &[PeerId], edges: &[(PeerId, PeerId)]) -> usize {
    let set: BTreeSet<PeerId> = nodes.iter().copied().collect();
    let mut adj: BTreeMap<PeerId, Vec<PeerId>> = BTreeMap::new();
    for &(a, b) in edges {
        if set.contains(&a) && set.contains(&b) {
            adj.entry(a).or_default().push(b);
            adj.entry(b).or_default().push(a);
        }
    }
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for &start in nodes {
        if !seen.insert(start) {
            continue;
        }
        count += 1;
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for &m in adj.get(&n).map(Vec::as_slice).unwrap_or(&[]) {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
    }
    count
}
