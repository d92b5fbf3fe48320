//! A tiny deterministic network for protocol tests: nodes `0..n` with id =
//! index, one queue of events ordered by (time, sequence). Messages take
//! zero time (FIFO) unless a latency range is set. A send to a dead node
//! fails at once: the sender gets `PeerDown`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::overlay::{
    InEvent, MessageClass, MessageId, OutEvent, PeerId, Protocol, ProtocolMessage, Time,
};

type In<P> = InEvent<<P as Protocol>::Message, <P as Protocol>::Timer>;
type Out<P> = OutEvent<<P as Protocol>::Message, <P as Protocol>::Timer>;

pub(crate) struct TestNet<P: Protocol> {
    pub nodes: Vec<P>,
    pub alive: Vec<bool>,
    pub now: Time,
    events: BTreeMap<(Time, u64), (PeerId, In<P>)>,
    seq: u64,
    /// Message latency range in ms (inclusive), drawn per message.
    latency: Option<(u64, u64)>,
    /// Latency fixed per node pair instead of drawn per message.
    pub per_link: bool,
    rng: ChaCha8Rng,
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
            events: BTreeMap::new(),
            seq: 0,
            latency: None,
            per_link: false,
            rng: ChaCha8Rng::seed_from_u64(0),
            delivered: vec![BTreeMap::new(); n],
            duplicate_deliveries: 0,
            sent: BTreeMap::new(),
            payload_sent: 0,
            out: Vec::new(),
        }
    }

    /// Messages take a uniform random time in `min_ms..=max_ms`.
    pub fn with_latency(mut self, min_ms: u64, max_ms: u64, seed: u64) -> Self {
        self.latency = Some((min_ms, max_ms));
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self
    }

    /// Queues an input for `node` (processed by the next run).
    pub fn input(&mut self, node: PeerId, event: In<P>) {
        self.push(Duration::ZERO, node, event);
    }

    /// Per-message jitter by default; with `per_link`, fixed per pair.
    fn delay(&mut self, a: PeerId, b: PeerId) -> Duration {
        let Some((lo, hi)) = self.latency else {
            return Duration::ZERO;
        };
        if self.per_link {
            let (x, y) = (a.min(b), a.max(b));
            let mut h =
                x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
            h ^= h >> 29;
            h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            h ^= h >> 32;
            return Duration::from_millis(lo + h % (hi - lo + 1));
        }
        Duration::from_millis(self.rng.gen_range(lo..=hi))
    }

    fn push(&mut self, after: Duration, node: PeerId, event: In<P>) {
        self.seq += 1;
        self.events
            .insert((self.now + after, self.seq), (node, event));
    }

    pub fn kill(&mut self, node: PeerId) {
        self.alive[node as usize] = false;
    }

    pub fn reset_counts(&mut self) {
        self.sent.clear();
        self.payload_sent = 0;
    }

    /// Processes every event due up to `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(entry) = self.events.first_entry() {
            let at = entry.key().0;
            if at > end {
                break;
            }
            let (node, event) = entry.remove();
            self.now = at;
            self.step(node, event);
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
                        let delay = self.delay(node, to);
                        let message = InEvent::Message {
                            from: node,
                            message,
                        };
                        self.push(delay, to, message);
                    } else {
                        self.push(Duration::ZERO, node, InEvent::PeerDown(to));
                    }
                }
                OutEvent::ScheduleTimer { after, timer } => {
                    self.push(after, node, InEvent::Timer(timer));
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
