//! The discrete-event core: an event queue, the nodes' protocol states and
//! the simulated transport between them.
//!
//! Events are ordered by (time, sequence number), the sequence number being
//! the order in which they were scheduled, so a run is a pure function of
//! its seed. See the module doc of [`crate::sim`] for the transport model.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::latency::LatencyModel;
use crate::overlay::{
    Command, InEvent, MessageClass, MessageId, OutEvent, PeerId, Protocol, ProtocolMessage, Time,
};

/// The simulated network's behaviour.
#[derive(Debug, Clone)]
pub struct Network {
    /// Per-link latency.
    pub latency: LatencyModel,
    /// Seed of the latency model (and of node placement in regions).
    pub seed: u64,
    /// Probability that a message is silently lost, 0.0..=1.0.
    pub loss: f64,
    /// Time from a failed send until the sender gets `PeerDown`; `None`
    /// means one latency of that link.
    pub detection_delay: Option<Duration>,
}

enum Ev<M, T> {
    Message {
        from: PeerId,
        to: PeerId,
        message: M,
    },
    Timer {
        node: PeerId,
        timer: T,
    },
    Down {
        node: PeerId,
        peer: PeerId,
    },
    Join {
        node: PeerId,
        contacts: Vec<PeerId>,
    },
}

/// A heap entry: the event itself waits in the slab at `slot`, so the
/// heap moves 24-byte keys, not messages.
#[derive(PartialEq, Eq)]
struct Scheduled {
    /// Simulated time in ns (a plain integer compares faster than a
    /// `Duration`; 2^64 ns is 584 years).
    at: u64,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest (then first scheduled) event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Messages sent, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages carrying an application payload (RMR counts these).
    pub payload: u64,
    /// IHAVE, GRAFT, PRUNE.
    pub gossip: u64,
    /// Membership traffic (JOIN, SHUFFLE, ...).
    pub membership: u64,
}

/// Deliveries of the one broadcast being measured.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// The broadcast measured.
    pub id: Option<MessageId>,
    /// When it was issued.
    pub start: Time,
    delivered: Vec<bool>,
    /// Nodes that delivered it (the origin included).
    pub count: u64,
    /// Largest hop count of a delivery (the LDH).
    pub max_hops: u32,
    /// Delivery latency of every non-origin delivery, µs.
    pub latencies_us: Vec<u64>,
    /// Deliveries of the same id twice at one node (a protocol bug).
    pub duplicates: u64,
    /// Time of the last delivery.
    pub last_delivery: Time,
}

impl Tracker {
    /// Whether `node` delivered the measured broadcast.
    pub fn delivered(&self, node: PeerId) -> bool {
        self.delivered.get(node as usize).copied().unwrap_or(false)
    }
}

/// Bound on remembered close notices (pairs broken by partitions).
const MAX_CLOSE_NOTICES: usize = 1 << 20;

fn nanos(t: Time) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

type NodeFactory<P> = Box<dyn FnMut(PeerId) -> P>;

/// N nodes of one protocol on a simulated network.
pub struct Engine<P: Protocol> {
    now: Time,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    /// Events waiting in `queue`, by slot; freed slots are reused.
    slab: Vec<Option<Ev<P::Message, P::Timer>>>,
    free: Vec<u32>,
    /// Indexed by node id; `None` for ids not (or no longer) running.
    nodes: Vec<Option<P>>,
    joined_at: Vec<Option<Time>>,
    /// Partition group per node id (all 0 when not partitioned).
    groups: Option<Vec<u16>>,
    net: Network,
    rng: ChaCha8Rng,
    pending_down: BTreeSet<(PeerId, PeerId)>,
    /// (node, peer): `node` must learn that `peer` closed their link once
    /// the partition between them heals.
    close_notices: BTreeSet<(PeerId, PeerId)>,
    scratch: Vec<OutEvent<P::Message, P::Timer>>,
    factory: NodeFactory<P>,
    /// Messages sent since the last [`Engine::reset_counters`].
    pub counters: Counters,
    /// Messages sent over the whole run, by kind (see [`Engine::kinds`]).
    kinds: Vec<(&'static str, u64)>,
    /// The broadcast being measured.
    pub tracker: Tracker,
    /// Events processed over the whole run.
    pub events: u64,
}

impl<P: Protocol> Engine<P> {
    /// An empty network; `factory` builds a node's state when it joins.
    pub fn new(net: Network, seed: u64, factory: NodeFactory<P>) -> Self {
        Engine {
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            nodes: Vec::new(),
            joined_at: Vec::new(),
            groups: None,
            net,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_7E57),
            pending_down: BTreeSet::new(),
            close_notices: BTreeSet::new(),
            scratch: Vec::new(),
            factory,
            counters: Counters::default(),
            kinds: Vec::new(),
            tracker: Tracker::default(),
            events: 0,
        }
    }

    /// Current simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// A node's state, if it runs.
    pub fn node(&self, id: PeerId) -> Option<&P> {
        self.nodes.get(id as usize).and_then(Option::as_ref)
    }

    /// When a node joined, if it runs.
    pub fn joined_at(&self, id: PeerId) -> Option<Time> {
        self.node(id)?;
        self.joined_at.get(id as usize).copied().flatten()
    }

    /// Ids of the running nodes, ascending.
    pub fn live(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_some())
            .map(|(i, _)| i as PeerId)
    }

    /// Number of running nodes.
    pub fn live_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_some()).count()
    }

    /// One past the largest id ever used.
    pub fn id_bound(&self) -> PeerId {
        self.nodes.len() as PeerId
    }

    fn push(&mut self, at: Time, ev: Ev<P::Message, P::Timer>) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(ev);
                slot
            }
            None => {
                self.slab.push(Some(ev));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 queued events")
            }
        };
        self.queue.push(Scheduled {
            at: nanos(at),
            seq: self.seq,
            slot,
        });
    }

    /// Schedules `node` to start and join through `contacts` at `at`.
    pub fn schedule_join(&mut self, at: Time, node: PeerId, contacts: Vec<PeerId>) {
        self.push(at, Ev::Join { node, contacts });
    }

    /// Sets the partition: `groups[id]` is a node's side (ids past the end
    /// are on side 0); `None` heals every partition.
    pub fn set_groups(&mut self, groups: Option<Vec<u16>>) {
        self.groups = groups;
        // Links broken by the partition are closed at both ends: the far
        // end learns once the two sides can talk again.
        let notices = std::mem::take(&mut self.close_notices);
        for (node, peer) in notices {
            if self.node(node).is_none() {
                continue;
            }
            if self.reachable(peer, node) {
                self.report_down(node, peer);
            } else {
                self.close_notices.insert((node, peer));
            }
        }
    }

    /// Whether a message from `from` to `to` would arrive now (`to` runs
    /// and is on the same side of any partition).
    pub fn link_usable(&self, from: PeerId, to: PeerId) -> bool {
        self.reachable(from, to)
    }

    fn group(&self, id: PeerId) -> u16 {
        self.groups
            .as_ref()
            .and_then(|g| g.get(id as usize).copied())
            .unwrap_or(0)
    }

    fn reachable(&self, from: PeerId, to: PeerId) -> bool {
        self.node(to).is_some() && self.group(from) == self.group(to)
    }

    fn latency(&self, a: PeerId, b: PeerId) -> Duration {
        self.net.latency.latency(self.net.seed, a, b)
    }

    /// Tells `node` that `peer` is unreachable, once per pending pair.
    fn report_down(&mut self, node: PeerId, peer: PeerId) {
        if self.node(peer).is_some() && self.close_notices.len() < MAX_CLOSE_NOTICES {
            // A live peer behind a partition: it learns when the partition
            // heals (like a TCP reset reaching it then).
            self.close_notices.insert((peer, node));
        }
        if self.pending_down.insert((node, peer)) {
            let delay = self
                .net
                .detection_delay
                .unwrap_or_else(|| self.latency(node, peer));
            self.push(self.now + delay, Ev::Down { node, peer });
        }
    }

    /// Runs every event up to and including `until`; time ends at `until`.
    pub fn run_until(&mut self, until: Time) {
        let limit = nanos(until);
        while self.queue.peek().is_some_and(|s| s.at <= limit) {
            let Some(next) = self.queue.pop() else { break };
            self.now = Duration::from_nanos(next.at);
            self.events += 1;
            let ev = self.slab[next.slot as usize].take();
            self.free.push(next.slot);
            if let Some(ev) = ev {
                self.step(ev);
            }
        }
        self.now = self.now.max(until);
    }

    fn step(&mut self, ev: Ev<P::Message, P::Timer>) {
        match ev {
            Ev::Message { from, to, message } => {
                if self.reachable(from, to) {
                    self.dispatch(to, InEvent::Message { from, message });
                } else if self.node(from).is_some() {
                    self.report_down(from, to);
                }
            }
            Ev::Timer { node, timer } => self.dispatch(node, InEvent::Timer(timer)),
            Ev::Down { node, peer } => {
                self.pending_down.remove(&(node, peer));
                self.dispatch(node, InEvent::PeerDown(peer));
            }
            Ev::Join { node, contacts } => {
                let idx = node as usize;
                if self.nodes.len() <= idx {
                    self.nodes.resize_with(idx + 1, || None);
                    self.joined_at.resize(idx + 1, None);
                }
                if self.nodes[idx].is_none() {
                    self.nodes[idx] = Some((self.factory)(node));
                    self.joined_at[idx] = Some(self.now);
                    self.dispatch(node, InEvent::Command(Command::Join(contacts)));
                }
            }
        }
    }

    /// Hands `command` to `node` now.
    pub fn command(&mut self, node: PeerId, command: Command) {
        self.dispatch(node, InEvent::Command(command));
    }

    /// Stops `node` at once (a crash: nobody is told).
    pub fn remove(&mut self, node: PeerId) {
        if let Some(slot) = self.nodes.get_mut(node as usize) {
            *slot = None;
        }
    }

    fn dispatch(&mut self, node: PeerId, event: InEvent<P::Message, P::Timer>) {
        let Some(state) = self.nodes.get_mut(node as usize).and_then(Option::as_mut) else {
            return;
        };
        let mut out = std::mem::take(&mut self.scratch);
        state.handle(self.now, event, &mut out);
        for o in out.drain(..) {
            self.apply(node, o);
        }
        self.scratch = out;
    }

    fn apply(&mut self, node: PeerId, out: OutEvent<P::Message, P::Timer>) {
        match out {
            OutEvent::Send { to, message } => self.send(node, to, message),
            OutEvent::Connect(peer) => {
                if !self.reachable(node, peer) {
                    self.report_down(node, peer);
                }
            }
            OutEvent::Disconnect(_) | OutEvent::ViewChanged { .. } => {}
            OutEvent::ScheduleTimer { after, timer } => {
                self.push(self.now + after, Ev::Timer { node, timer })
            }
            OutEvent::Deliver { id, hops, .. } => self.record_delivery(node, id, hops),
        }
    }

    fn send(&mut self, from: PeerId, to: PeerId, message: P::Message) {
        match message.class() {
            MessageClass::Payload => self.counters.payload += 1,
            MessageClass::Gossip => self.counters.gossip += 1,
            MessageClass::Membership => self.counters.membership += 1,
        }
        self.count_kind(message.kind());
        if !self.reachable(from, to) {
            self.report_down(from, to);
            return;
        }
        if self.net.loss > 0.0 && self.rng.gen::<f64>() < self.net.loss {
            return;
        }
        let at = self.now + self.latency(from, to);
        self.push(at, Ev::Message { from, to, message });
    }

    /// Per-send kind counter: a short list searched by pointer first (the
    /// kinds are string literals), far cheaper than a map keyed by text.
    fn count_kind(&mut self, kind: &'static str) {
        if let Some(entry) = self
            .kinds
            .iter_mut()
            .find(|(k, _)| std::ptr::eq(*k, kind) || *k == kind)
        {
            entry.1 += 1;
        } else {
            self.kinds.push((kind, 1));
        }
    }

    /// Messages sent over the whole run, by kind.
    pub fn kinds(&self) -> BTreeMap<&'static str, u64> {
        let mut map = BTreeMap::new();
        for (k, n) in &self.kinds {
            *map.entry(*k).or_insert(0) += n;
        }
        map
    }

    /// Zeroes [`Engine::counters`].
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// Starts measuring the broadcast `id` (issued now).
    pub fn track(&mut self, id: MessageId) {
        let mut delivered = std::mem::take(&mut self.tracker.delivered);
        delivered.clear();
        delivered.resize(self.nodes.len() + 1, false);
        let mut latencies = std::mem::take(&mut self.tracker.latencies_us);
        latencies.clear();
        self.tracker = Tracker {
            id: Some(id),
            start: self.now,
            delivered,
            latencies_us: latencies,
            last_delivery: self.now,
            ..Tracker::default()
        };
    }

    fn record_delivery(&mut self, node: PeerId, id: MessageId, hops: u32) {
        let t = &mut self.tracker;
        if t.id != Some(id) {
            return;
        }
        let idx = node as usize;
        if t.delivered.len() <= idx {
            t.delivered.resize(idx + 1, false);
        }
        if t.delivered[idx] {
            t.duplicates += 1;
            return;
        }
        t.delivered[idx] = true;
        t.count += 1;
        t.max_hops = t.max_hops.max(hops);
        t.last_delivery = self.now;
        if hops > 0 {
            t.latencies_us
                .push((self.now - t.start).as_micros().min(u64::MAX as u128) as u64);
        }
    }

    /// A random number from the engine's own RNG (scenario choices).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Unordered node pairs, `(low, high)`, with a message in flight or a
    /// failure report pending between them: their views may legitimately
    /// disagree for now.
    pub fn in_flight(&self) -> BTreeSet<(PeerId, PeerId)> {
        let pair = |a: PeerId, b: PeerId| (a.min(b), a.max(b));
        self.slab
            .iter()
            .filter_map(|ev| match ev {
                Some(Ev::Message { from, to, .. }) => Some(pair(*from, *to)),
                Some(Ev::Down { node, peer }) => Some(pair(*node, *peer)),
                _ => None,
            })
            .collect()
    }

    /// Events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}
