//! The HyParView membership core: active and passive views, JOIN,
//! FORWARD_JOIN, NEIGHBOR, DISCONNECT, SHUFFLE and passive promotion.
//!
//! It knows nothing of broadcasts. The layer above (the standalone
//! [`super::State`] flood, or Plumtree) feeds it membership messages,
//! link failures and its timers, and reads back [`Event`]s, among which
//! [`Event::NeighborUp`] / [`Event::NeighborDown`] tell it how the active
//! view changed.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

use super::Config;
use crate::overlay::{MessageClass, PeerId, Time};

/// The `request` of a NEIGHBOR that expects no answer.
pub const UNSOLICITED: u64 = u64::MAX;

/// Priority of a NEIGHBOR request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Priority {
    /// The requester has an empty active view (or is the end of a
    /// FORWARD_JOIN walk): always accepted, evicting a peer if needed.
    High,
    /// Accepted only if the receiver's active view has room.
    Low,
}

/// HyParView membership messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MembershipMessage {
    /// A new node asks its contact to take it in.
    Join,
    /// Random walk announcing `joiner`; `ttl` counts down from ARWL.
    ForwardJoin { joiner: PeerId, ttl: u16 },
    /// Asks the receiver to add the sender to its active view. `request`
    /// is echoed in the reply ([`UNSOLICITED`] when the sender has already
    /// linked and expects no answer).
    Neighbor { priority: Priority, request: u64 },
    /// Answer to [`MembershipMessage::Neighbor`] with its `request`: only
    /// the answer to the request in flight counts, so a stale answer (to
    /// an earlier or an unsolicited request) never creates a one-sided
    /// link.
    NeighborReply { accepted: bool, request: u64 },
    /// The sender dropped the receiver from its active view.
    Disconnect,
    /// Random walk carrying a sample of `origin`'s views.
    Shuffle {
        origin: PeerId,
        ttl: u16,
        peers: Vec<PeerId>,
    },
    /// A sample of the passive view of the node where the walk ended.
    ShuffleReply { peers: Vec<PeerId> },
    /// Liveness probe over an active link; needs no answer: a send that
    /// fails is reported by the transport as `PeerDown`.
    Ping,
}

impl MembershipMessage {
    /// A short name for per-kind counters.
    pub fn kind(&self) -> &'static str {
        match self {
            MembershipMessage::Join => "JOIN",
            MembershipMessage::ForwardJoin { .. } => "FORWARD_JOIN",
            MembershipMessage::Neighbor { .. } => "NEIGHBOR",
            MembershipMessage::NeighborReply { .. } => "NEIGHBOR_REPLY",
            MembershipMessage::Disconnect => "DISCONNECT",
            MembershipMessage::Shuffle { .. } => "SHUFFLE",
            MembershipMessage::ShuffleReply { .. } => "SHUFFLE_REPLY",
            MembershipMessage::Ping => "PING",
        }
    }

    /// Membership traffic is never payload.
    pub fn class(&self) -> MessageClass {
        MessageClass::Membership
    }
}

/// HyParView timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Periodic SHUFFLE (also retries filling an incomplete active view).
    Shuffle,
    /// Periodic check for silent active links, probed with PING.
    Keepalive,
    /// A NEIGHBOR request to `peer` went unanswered; `token` identifies the
    /// request so a late timer for an answered one is ignored.
    NeighborTimeout { peer: PeerId, token: u64 },
}

/// Output of the membership core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Send {
        to: PeerId,
        message: MembershipMessage,
    },
    /// Open (keep) a standing link.
    Connect(PeerId),
    /// Close a standing link.
    Disconnect(PeerId),
    ScheduleTimer {
        after: Duration,
        timer: Timer,
    },
    /// `peer` entered the active view.
    NeighborUp(PeerId),
    /// `peer` left the active view.
    NeighborDown(PeerId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    peer: PeerId,
    token: u64,
}

/// The membership state of one node.
#[derive(Debug, Clone)]
pub struct Membership<R> {
    me: PeerId,
    config: Config,
    rng: R,
    active: Vec<PeerId>,
    passive: Vec<PeerId>,
    /// NEIGHBOR requests in flight (at most the active view's free room).
    pending: Vec<Pending>,
    /// Passive peers that rejected a NEIGHBOR since the last shuffle tick
    /// (never retried before it); a subset of the passive view.
    tried: Vec<PeerId>,
    /// The peers sent in our last SHUFFLE, evicted first on the reply.
    last_shuffle: Vec<PeerId>,
    next_token: u64,
    /// A peer known alive and wanting links (it asked us and we refused);
    /// the first candidate of the next refill.
    hint: Option<PeerId>,
    /// When we last probed the active view.
    last_probe: Option<Time>,
    /// When an active peer was last heard from, or the active view last
    /// gained a peer.
    last_heard: Time,
    /// The `now` of the event being handled.
    now: Time,
    started: bool,
    left: bool,
}

impl<R: Rng> Membership<R> {
    pub fn new(me: PeerId, config: Config, rng: R) -> Self {
        Membership {
            me,
            config,
            rng,
            active: Vec::new(),
            passive: Vec::new(),
            pending: Vec::new(),
            tried: Vec::new(),
            last_shuffle: Vec::new(),
            next_token: 0,
            hint: None,
            last_probe: None,
            last_heard: Time::ZERO,
            now: Time::ZERO,
            started: false,
            left: false,
        }
    }

    pub fn me(&self) -> PeerId {
        self.me
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Peers with a standing link, in the order they were added.
    pub fn active_view(&self) -> &[PeerId] {
        &self.active
    }

    /// Known peers without a link.
    pub fn passive_view(&self) -> &[PeerId] {
        &self.passive
    }

    /// Peers with a NEIGHBOR request in flight, oldest first.
    pub fn pending_neighbors(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.pending.iter().map(|p| p.peer)
    }

    pub fn is_active(&self, peer: PeerId) -> bool {
        self.active.contains(&peer)
    }

    /// The caller's RNG, for the layer above (one seed per node).
    pub fn rng(&mut self) -> &mut R {
        &mut self.rng
    }

    /// Called first for every event with its time. Starts the periodic
    /// timers on the first event, so a node that is only ever contacted
    /// (never told to join) still shuffles.
    pub fn tick(&mut self, now: Time, out: &mut Vec<Event>) {
        self.now = now;
        if self.started {
            return;
        }
        self.started = true;
        // Jitter the first timers in [interval/2, 3*interval/2) so that
        // nodes started together do not act in lockstep.
        let periodic = [
            (Some(self.config.shuffle_interval), Timer::Shuffle),
            (self.config.keepalive, Timer::Keepalive),
        ];
        for (interval, timer) in periodic {
            let Some(base) = interval else { continue };
            let jitter = self.rng.gen_range(0..=base.as_millis().max(1) as u64);
            let after = base / 2 + Duration::from_millis(jitter);
            out.push(Event::ScheduleTimer { after, timer });
        }
    }

    /// Something arrived from `peer`: it is alive. Layers above call this
    /// for their own messages; membership messages count by themselves.
    pub fn heard_from(&mut self, peer: PeerId) {
        if self.active.contains(&peer) {
            self.last_heard = self.now;
        }
    }

    /// Joins through `contacts`: JOIN to a random one, the others kept as
    /// passive candidates for promotion should it fail.
    pub fn join(&mut self, contacts: &[PeerId], out: &mut Vec<Event>) {
        self.left = false;
        for &c in contacts {
            self.add_passive(c);
        }
        let candidates: Vec<PeerId> = contacts
            .iter()
            .copied()
            .filter(|&c| c != self.me && !self.active.contains(&c))
            .collect();
        let Some(&contact) = candidates.choose(&mut self.rng) else {
            return;
        };
        self.add_active(contact, out);
        out.push(Event::Send {
            to: contact,
            message: MembershipMessage::Join,
        });
    }

    /// Leaves: DISCONNECT to every active peer, views cleared, further
    /// input ignored until the next [`Membership::join`].
    pub fn leave(&mut self, out: &mut Vec<Event>) {
        for peer in std::mem::take(&mut self.active) {
            out.push(Event::Send {
                to: peer,
                message: MembershipMessage::Disconnect,
            });
            out.push(Event::Disconnect(peer));
            out.push(Event::NeighborDown(peer));
        }
        self.passive.clear();
        self.pending.clear();
        self.tried.clear();
        self.left = true;
    }

    /// Handles a membership message from `from`.
    pub fn handle_message(
        &mut self,
        from: PeerId,
        message: MembershipMessage,
        out: &mut Vec<Event>,
    ) {
        if self.left || from == self.me {
            return;
        }
        self.heard_from(from);
        match message {
            MembershipMessage::Join => self.on_join(from, out),
            MembershipMessage::ForwardJoin { joiner, ttl } => {
                self.check_link(from, out);
                self.on_forward_join(from, joiner, ttl, out)
            }
            MembershipMessage::Neighbor { priority, request } => {
                self.on_neighbor(from, priority, request, out)
            }
            MembershipMessage::NeighborReply { accepted, request } => {
                self.on_neighbor_reply(from, accepted, request, out)
            }
            MembershipMessage::Disconnect => self.on_disconnect(from, out),
            MembershipMessage::Shuffle { origin, ttl, peers } => {
                self.check_link(from, out);
                self.on_shuffle(from, origin, ttl, peers, out)
            }
            MembershipMessage::ShuffleReply { peers } => {
                let sent = std::mem::take(&mut self.last_shuffle);
                self.integrate(&peers, sent, out);
            }
            MembershipMessage::Ping => self.check_link(from, out),
        }
    }

    /// `from` sent something only sent over an active link, so it counts
    /// us as a neighbour. If we do not, tell it (DISCONNECT), so a
    /// one-sided link cannot last (it can arise when a transport reorders
    /// the messages of one link). Harmless when our own DISCONNECT is
    /// already on its way: a second one is ignored.
    pub fn check_link(&mut self, from: PeerId, out: &mut Vec<Event>) {
        if self.left || self.active.contains(&from) {
            return;
        }
        out.push(Event::Send {
            to: from,
            message: MembershipMessage::Disconnect,
        });
    }

    /// The link to `peer` is gone (a send failed or the transport lost it):
    /// forget the peer and promote passive candidates.
    pub fn peer_down(&mut self, peer: PeerId, out: &mut Vec<Event>) {
        if self.left {
            return;
        }
        if self.remove_active(peer) {
            out.push(Event::Disconnect(peer));
            out.push(Event::NeighborDown(peer));
            // Failures come together: find the other dead peers now
            // rather than one send at a time.
            self.probe(out);
        }
        self.passive.retain(|&p| p != peer);
        self.tried.retain(|&p| p != peer);
        self.pending.retain(|p| p.peer != peer);
        self.refill(out);
    }

    /// Handles one of our timers.
    pub fn handle_timer(&mut self, timer: Timer, out: &mut Vec<Event>) {
        match timer {
            // Periodic timers keep running while left (doing nothing), so
            // a later join finds exactly one chain of each.
            Timer::Shuffle | Timer::Keepalive if self.left => {
                let interval = match timer {
                    Timer::Shuffle => Some(self.config.shuffle_interval),
                    _ => self.config.keepalive,
                };
                if let Some(after) = interval {
                    out.push(Event::ScheduleTimer { after, timer });
                }
            }
            Timer::NeighborTimeout { .. } if self.left => {}
            Timer::Shuffle => self.on_shuffle_timer(out),
            Timer::Keepalive => self.on_keepalive(out),
            Timer::NeighborTimeout { peer, token } => {
                let before = self.pending.len();
                self.pending
                    .retain(|p| !(p.peer == peer && p.token == token));
                if self.pending.len() != before {
                    // No answer in time: treat the candidate as dead.
                    self.passive.retain(|&p| p != peer);
                    self.tried.retain(|&p| p != peer);
                    self.refill(out);
                }
            }
        }
    }

    fn on_join(&mut self, joiner: PeerId, out: &mut Vec<Event>) {
        if self.active.contains(&joiner) {
            return;
        }
        self.add_active(joiner, out);
        let ttl = self.config.arwl;
        for &peer in self.active.iter().filter(|&&p| p != joiner) {
            out.push(Event::Send {
                to: peer,
                message: MembershipMessage::ForwardJoin { joiner, ttl },
            });
        }
    }

    fn on_forward_join(&mut self, from: PeerId, joiner: PeerId, ttl: u16, out: &mut Vec<Event>) {
        if joiner == self.me || self.active.contains(&joiner) {
            return;
        }
        let ttl = ttl.min(self.config.arwl);
        if ttl == 0 || self.active.len() <= 1 {
            self.accept_joiner(joiner, out);
            return;
        }
        if ttl == self.config.prwl {
            self.add_passive(joiner);
        }
        match self.random_active_except(&[from, joiner]) {
            Some(next) => out.push(Event::Send {
                to: next,
                message: MembershipMessage::ForwardJoin {
                    joiner,
                    ttl: ttl - 1,
                },
            }),
            None => self.accept_joiner(joiner, out),
        }
    }

    /// The end of a FORWARD_JOIN walk: link to the joiner, which must take
    /// us in (high priority).
    fn accept_joiner(&mut self, joiner: PeerId, out: &mut Vec<Event>) {
        self.add_active(joiner, out);
        out.push(Event::Send {
            to: joiner,
            message: MembershipMessage::Neighbor {
                priority: Priority::High,
                request: UNSOLICITED,
            },
        });
    }

    fn on_neighbor(
        &mut self,
        from: PeerId,
        priority: Priority,
        request: u64,
        out: &mut Vec<Event>,
    ) {
        let accepted = self.active.contains(&from)
            || priority == Priority::High
            || self.active.len() < self.config.active_view;
        if accepted && !self.active.contains(&from) {
            self.add_active(from, out);
        }
        out.push(Event::Send {
            to: from,
            message: MembershipMessage::NeighborReply { accepted, request },
        });
        if !accepted {
            self.probe_after_refusal(from, out);
        }
    }

    /// Someone looks for links: there was churn. Our active view may be
    /// full of peers that failed silently (no send since), which would
    /// leave us cut off. Probe it, at most once per `neighbor_timeout`;
    /// failed sends come back as `PeerDown`, and the refill then asks the
    /// refused peer first, as it is alive and has room.
    fn probe_after_refusal(&mut self, from: PeerId, out: &mut Vec<Event>) {
        self.add_passive(from);
        self.hint = Some(from);
        self.probe(out);
    }

    /// PINGs every active peer, at most once per `neighbor_timeout`.
    fn probe(&mut self, out: &mut Vec<Event>) {
        let now = self.now;
        let due = self
            .last_probe
            .is_none_or(|t| now.saturating_sub(t) >= self.config.neighbor_timeout);
        if !due {
            return;
        }
        self.last_probe = Some(now);
        for &peer in &self.active {
            out.push(Event::Send {
                to: peer,
                message: MembershipMessage::Ping,
            });
        }
    }

    /// When no active peer was heard from for a keepalive interval, PINGs
    /// them all, so a node whose neighbours all died silently finds out
    /// (its sends fail). A node with some live neighbour finds its dead
    /// ones when traffic to them fails, and then probes the rest.
    fn on_keepalive(&mut self, out: &mut Vec<Event>) {
        let Some(interval) = self.config.keepalive else {
            return;
        };
        out.push(Event::ScheduleTimer {
            after: interval,
            timer: Timer::Keepalive,
        });
        if self.now.saturating_sub(self.last_heard) < interval {
            return;
        }
        // Answered by the sends themselves: a live peer hears from us, a
        // dead one comes back as PeerDown. Count this as hearing, so a
        // quiet overlay pings once per interval, not more.
        self.last_heard = self.now;
        for &peer in &self.active {
            out.push(Event::Send {
                to: peer,
                message: MembershipMessage::Ping,
            });
        }
    }

    fn on_neighbor_reply(
        &mut self,
        from: PeerId,
        accepted: bool,
        request: u64,
        out: &mut Vec<Event>,
    ) {
        // Only answers to requests still in flight count: a reply that
        // arrives after the requester gave up (timeout, DISCONNECT) must
        // not create a one-sided link.
        let Some(pos) = self.pending.iter().position(|p| p.peer == from) else {
            return;
        };
        // Nor may the answer to an older (or unsolicited) request to the
        // same peer.
        if self.pending[pos].token != request {
            return;
        }
        self.pending.remove(pos);
        if accepted {
            if !self.active.contains(&from) {
                self.add_active(from, out);
            }
        } else {
            self.mark_tried(from);
            self.refill(out);
        }
    }

    fn on_disconnect(&mut self, from: PeerId, out: &mut Vec<Event>) {
        // A request in flight stays: links are FIFO, so its answer, if it
        // comes after this, was sent after this and is the current word.
        if !self.remove_active(from) {
            return;
        }
        out.push(Event::Disconnect(from));
        out.push(Event::NeighborDown(from));
        self.add_passive(from);
        // It just dropped us: do not ask it straight back.
        self.mark_tried(from);
        self.refill(out);
    }

    fn on_shuffle(
        &mut self,
        from: PeerId,
        origin: PeerId,
        ttl: u16,
        mut peers: Vec<PeerId>,
        out: &mut Vec<Event>,
    ) {
        if origin == self.me {
            return;
        }
        peers.truncate(self.config.shuffle_ka + self.config.shuffle_kp);
        let ttl = ttl.min(self.config.shuffle_ttl).saturating_sub(1);
        if ttl > 0 && self.active.len() > 1 {
            if let Some(next) = self.random_active_except(&[from, origin]) {
                out.push(Event::Send {
                    to: next,
                    message: MembershipMessage::Shuffle { origin, ttl, peers },
                });
                return;
            }
        }
        let candidates: Vec<PeerId> = self
            .passive
            .iter()
            .copied()
            .filter(|&p| p != origin)
            .collect();
        let reply: Vec<PeerId> = candidates
            .choose_multiple(&mut self.rng, peers.len())
            .copied()
            .collect();
        out.push(Event::Send {
            to: origin,
            message: MembershipMessage::ShuffleReply {
                peers: reply.clone(),
            },
        });
        let mut with_origin = peers;
        with_origin.push(origin);
        self.integrate(&with_origin, reply, out);
    }

    fn on_shuffle_timer(&mut self, out: &mut Vec<Event>) {
        out.push(Event::ScheduleTimer {
            after: self.config.shuffle_interval,
            timer: Timer::Shuffle,
        });
        // Candidates that rejected us get another chance each period.
        self.tried.clear();
        self.refill(out);
        let Some(&target) = self.active.choose(&mut self.rng) else {
            return;
        };
        let ka = self.config.shuffle_ka.min(self.active.len());
        let kp = self.config.shuffle_kp.min(self.passive.len());
        let others: Vec<PeerId> = self
            .active
            .iter()
            .copied()
            .filter(|&p| p != target)
            .collect();
        let mut peers: Vec<PeerId> = others.choose_multiple(&mut self.rng, ka).copied().collect();
        peers.extend(self.passive.choose_multiple(&mut self.rng, kp).copied());
        self.last_shuffle = peers.clone();
        out.push(Event::Send {
            to: target,
            message: MembershipMessage::Shuffle {
                origin: self.me,
                ttl: self.config.shuffle_ttl,
                peers,
            },
        });
    }

    /// Most peers a SHUFFLE may carry (longer lists are cut).
    fn shuffle_len(&self) -> usize {
        self.config.shuffle_ka + self.config.shuffle_kp + 1
    }

    /// Adds shuffled `peers` to the passive view; when it is full, evicts
    /// the peers we sent (`sent`) first, then random ones.
    fn integrate(&mut self, peers: &[PeerId], mut sent: Vec<PeerId>, out: &mut Vec<Event>) {
        for &peer in peers.iter().take(self.shuffle_len()) {
            if peer == self.me || self.active.contains(&peer) || self.passive.contains(&peer) {
                continue;
            }
            if self.passive.len() >= self.config.passive_view {
                let victim = loop {
                    match sent.pop() {
                        Some(s) => {
                            if let Some(i) = self.passive.iter().position(|&p| p == s) {
                                break i;
                            }
                        }
                        None => break self.rng.gen_range(0..self.passive.len()),
                    }
                };
                let gone = self.passive.remove(victim);
                self.tried.retain(|&p| p != gone);
            }
            self.passive.push(peer);
        }
        // New candidates may fill an incomplete active view.
        self.refill(out);
    }

    /// Sends NEIGHBOR to passive candidates until the requests in flight
    /// could fill the active view. Only the first request of a node with
    /// no neighbour at all is high priority: a burst of high-priority
    /// requests would evict peers all over the overlay.
    fn refill(&mut self, out: &mut Vec<Event>) {
        while self.active.len() + self.pending.len() < self.config.active_view {
            let candidates: Vec<PeerId> = self
                .passive
                .iter()
                .copied()
                .filter(|p| !self.tried.contains(p) && !self.pending.iter().any(|q| q.peer == *p))
                .collect();
            let hinted = self.hint.take().filter(|h| candidates.contains(h));
            let Some(peer) = hinted.or_else(|| candidates.choose(&mut self.rng).copied()) else {
                return;
            };
            let priority = if self.active.is_empty() && self.pending.is_empty() {
                Priority::High
            } else {
                Priority::Low
            };
            let token = self.next_token;
            self.next_token += 1;
            self.pending.push(Pending { peer, token });
            out.push(Event::Send {
                to: peer,
                message: MembershipMessage::Neighbor {
                    priority,
                    request: token,
                },
            });
            out.push(Event::ScheduleTimer {
                after: self.config.neighbor_timeout,
                timer: Timer::NeighborTimeout { peer, token },
            });
        }
    }

    /// Puts `peer` in the active view, evicting a random peer if full.
    fn add_active(&mut self, peer: PeerId, out: &mut Vec<Event>) {
        if peer == self.me || self.active.contains(&peer) {
            return;
        }
        if self.active.len() >= self.config.active_view {
            self.evict_random(out);
        }
        self.passive.retain(|&p| p != peer);
        self.tried.retain(|&p| p != peer);
        self.pending.retain(|p| p.peer != peer);
        self.active.push(peer);
        self.last_heard = self.now;
        out.push(Event::Connect(peer));
        out.push(Event::NeighborUp(peer));
    }

    fn evict_random(&mut self, out: &mut Vec<Event>) {
        if self.active.is_empty() {
            return;
        }
        let i = self.rng.gen_range(0..self.active.len());
        let victim = self.active.remove(i);
        out.push(Event::Send {
            to: victim,
            message: MembershipMessage::Disconnect,
        });
        out.push(Event::Disconnect(victim));
        out.push(Event::NeighborDown(victim));
        self.add_passive(victim);
    }

    fn remove_active(&mut self, peer: PeerId) -> bool {
        let before = self.active.len();
        self.active.retain(|&p| p != peer);
        self.active.len() != before
    }

    fn add_passive(&mut self, peer: PeerId) {
        if peer == self.me || self.active.contains(&peer) || self.passive.contains(&peer) {
            return;
        }
        if self.passive.len() >= self.config.passive_view {
            let i = self.rng.gen_range(0..self.passive.len());
            let gone = self.passive.remove(i);
            self.tried.retain(|&p| p != gone);
        }
        self.passive.push(peer);
    }

    fn mark_tried(&mut self, peer: PeerId) {
        if self.passive.contains(&peer) && !self.tried.contains(&peer) {
            self.tried.push(peer);
        }
    }

    fn random_active_except(&mut self, except: &[PeerId]) -> Option<PeerId> {
        let candidates: Vec<PeerId> = self
            .active
            .iter()
            .copied()
            .filter(|p| !except.contains(p))
            .collect();
        candidates.choose(&mut self.rng).copied()
    }
}
