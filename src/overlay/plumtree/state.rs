//! The Plumtree state of one node.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use rand::Rng;

use super::lag::GraftDelay;
use super::{Announce, Config, Message, Timer};
use crate::overlay::hyparview::{Event, IdCache, Membership};
use crate::overlay::{Command, InEvent, MessageId, OutEvent, PeerId, Protocol, Time};

type Out = OutEvent<Message, Timer>;

/// A delivered message, kept to suppress duplicates and answer GRAFTs.
#[derive(Debug, Clone)]
struct Delivered {
    payload: Bytes,
    /// Hops from the origin when delivered here.
    hops: u32,
    /// The neighbour it came from (ourselves for our own).
    from: PeerId,
    at: Time,
    /// When it was first announced, if we grafted for it: the eager copy
    /// that may still come measures the announce-to-eager lag.
    announced_at: Option<Time>,
}

/// An announced message not received yet.
#[derive(Debug, Clone)]
struct Missing {
    /// Who announced it, in arrival order, with the announced hops.
    announcers: VecDeque<(PeerId, u32)>,
    token: u64,
    /// First announcement.
    first_at: Time,
    /// A GRAFT was sent for it.
    grafted: bool,
}

/// Plumtree over HyParView for one node.
#[derive(Debug, Clone)]
pub struct State<R> {
    membership: Membership<R>,
    config: Config,
    /// Subset of the active view receiving payloads.
    eager: Vec<PeerId>,
    /// The rest of the active view, receiving IHAVEs.
    lazy: Vec<PeerId>,
    cache: IdCache<Delivered>,
    missing: BTreeMap<MessageId, Missing>,
    /// IHAVEs waiting for the batch timer: (peer, announcement).
    lazy_queue: Vec<(PeerId, Announce)>,
    flush_scheduled: bool,
    /// The wait before the first GRAFT, learned from recent lags.
    graft_delay: GraftDelay,
    next_token: u64,
    scratch: Vec<Event>,
}

impl<R: Rng> State<R> {
    pub fn new(me: PeerId, config: Config, rng: R) -> Self {
        State {
            membership: Membership::new(me, config.hyparview.clone(), rng),
            cache: IdCache::new(config.message_cache),
            graft_delay: GraftDelay::new(config.ihave_timeout),
            config,
            eager: Vec::new(),
            lazy: Vec::new(),
            missing: BTreeMap::new(),
            lazy_queue: Vec::new(),
            flush_scheduled: false,
            next_token: 0,
            scratch: Vec::new(),
        }
    }

    /// HyParView active view (eager ∪ lazy).
    pub fn active_view(&self) -> &[PeerId] {
        self.membership.active_view()
    }

    /// HyParView passive view.
    pub fn passive_view(&self) -> &[PeerId] {
        self.membership.passive_view()
    }

    /// Peers receiving payloads.
    pub fn eager_peers(&self) -> &[PeerId] {
        &self.eager
    }

    /// Peers receiving announcements.
    pub fn lazy_peers(&self) -> &[PeerId] {
        &self.lazy
    }

    /// The membership core (read-only).
    pub fn membership(&self) -> &Membership<R> {
        &self.membership
    }

    /// Ids announced but not received yet.
    pub fn missing_ids(&self) -> impl Iterator<Item = &MessageId> {
        self.missing.keys()
    }

    fn make_eager(&mut self, peer: PeerId) {
        if !self.membership.is_active(peer) {
            return;
        }
        self.lazy.retain(|&p| p != peer);
        if !self.eager.contains(&peer) {
            self.eager.push(peer);
        }
    }

    fn make_lazy(&mut self, peer: PeerId) {
        if !self.membership.is_active(peer) {
            return;
        }
        self.eager.retain(|&p| p != peer);
        if !self.lazy.contains(&peer) {
            self.lazy.push(peer);
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// A payload from `from` (ourselves for a broadcast of our own).
    fn on_gossip(
        &mut self,
        now: Time,
        from: PeerId,
        id: MessageId,
        hops: u32,
        payload: Bytes,
        out: &mut Vec<Out>,
    ) {
        let me = self.membership.me();
        if let Some(d) = self.cache.get_mut(&id) {
            if let Some(t) = d.announced_at.take() {
                self.graft_delay.observe(now.saturating_sub(t));
            }
            if from != me {
                self.make_lazy(from);
                out.push(OutEvent::Send {
                    to: from,
                    message: Message::Prune,
                });
            }
            return;
        }
        out.push(OutEvent::Deliver {
            id,
            from,
            hops,
            payload: payload.clone(),
        });
        let mut announced_at = None;
        if let Some(m) = self.missing.remove(&id) {
            if m.grafted {
                announced_at = Some(m.first_at);
            } else {
                self.graft_delay.observe(now.saturating_sub(m.first_at));
            }
        }
        for &peer in self.eager.iter().filter(|&&p| p != from) {
            out.push(OutEvent::Send {
                to: peer,
                message: Message::Gossip {
                    id,
                    hops: hops + 1,
                    payload: payload.clone(),
                },
            });
        }
        let lazy: Vec<PeerId> = self.lazy.iter().copied().filter(|&p| p != from).collect();
        for peer in lazy {
            self.lazy_push(now, peer, Announce { id, hops: hops + 1 }, out);
        }
        if from != me {
            self.make_eager(from);
        }
        self.cache.insert(
            id,
            Delivered {
                payload,
                hops,
                from,
                at: now,
                announced_at,
            },
        );
    }

    fn lazy_push(&mut self, _now: Time, peer: PeerId, a: Announce, out: &mut Vec<Out>) {
        if self.config.ihave_batch.is_zero() {
            out.push(OutEvent::Send {
                to: peer,
                message: Message::IHave(vec![a]),
            });
            return;
        }
        // Bounded: a burst beyond the limit goes out at once.
        if self.lazy_queue.len() >= self.config.message_cache {
            self.flush(out);
        }
        self.lazy_queue.push((peer, a));
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            out.push(OutEvent::ScheduleTimer {
                after: self.config.ihave_batch,
                timer: Timer::IHaveFlush,
            });
        }
    }

    /// Sends the queued announcements, one IHAVE per peer (split past
    /// `max_ihave_ids`), to peers still in the active view.
    fn flush(&mut self, out: &mut Vec<Out>) {
        let mut queue = std::mem::take(&mut self.lazy_queue);
        queue.sort_by_key(|&(peer, _)| peer);
        let mut i = 0;
        while i < queue.len() {
            let peer = queue[i].0;
            let end = queue[i..]
                .iter()
                .position(|&(p, _)| p != peer)
                .map_or(queue.len(), |n| i + n);
            if self.membership.is_active(peer) {
                for chunk in queue[i..end].chunks(self.config.max_ihave_ids.max(1)) {
                    out.push(OutEvent::Send {
                        to: peer,
                        message: Message::IHave(chunk.iter().map(|&(_, a)| a).collect()),
                    });
                }
            }
            i = end;
        }
        queue.clear();
        self.lazy_queue = queue;
    }

    fn on_ihave(
        &mut self,
        now: Time,
        from: PeerId,
        mut announces: Vec<Announce>,
        out: &mut Vec<Out>,
    ) {
        announces.truncate(self.config.max_ihave_ids);
        for a in announces {
            if self.cache.contains(&a.id) {
                self.optimize(from, a, out);
                continue;
            }
            if let Some(m) = self.missing.get_mut(&a.id) {
                if m.announcers.len() < self.config.max_announcers
                    && !m.announcers.iter().any(|&(p, _)| p == from)
                {
                    m.announcers.push_back((from, a.hops));
                }
                continue;
            }
            if self.missing.len() >= self.config.message_cache {
                continue;
            }
            let token = self.token();
            self.missing.insert(
                a.id,
                Missing {
                    announcers: VecDeque::from([(from, a.hops)]),
                    token,
                    first_at: now,
                    grafted: false,
                },
            );
            out.push(OutEvent::ScheduleTimer {
                after: self.graft_delay.timeout(),
                timer: Timer::Missing { id: a.id, token },
            });
        }
    }

    /// The message came over a path at least `optimization_threshold` hops
    /// longer than the one through `from`: swap the links.
    fn optimize(&mut self, from: PeerId, a: Announce, out: &mut Vec<Out>) {
        let threshold = self.config.optimization_threshold;
        let Some(d) = self.cache.get(&a.id) else {
            return;
        };
        let eager_from = d.from;
        if eager_from == from
            || !self.lazy.contains(&from)
            || !self.eager.contains(&eager_from)
            || d.hops < a.hops.saturating_add(threshold)
        {
            return;
        }
        self.make_eager(from);
        out.push(OutEvent::Send {
            to: from,
            message: Message::Graft { id: None },
        });
        self.make_lazy(eager_from);
        out.push(OutEvent::Send {
            to: eager_from,
            message: Message::Prune,
        });
        if let Some(d) = self.cache.get_mut(&a.id) {
            d.from = from;
            d.hops = a.hops;
        }
    }

    fn on_missing_timer(&mut self, id: MessageId, token: u64, out: &mut Vec<Out>) {
        let Some(m) = self.missing.get_mut(&id) else {
            return;
        };
        if m.token != token {
            return;
        }
        let Some((peer, _)) = m.announcers.pop_front() else {
            self.missing.remove(&id);
            return;
        };
        let token = self.token();
        if let Some(m) = self.missing.get_mut(&id) {
            m.token = token;
            m.grafted = true;
        }
        out.push(OutEvent::ScheduleTimer {
            after: self.config.graft_timeout,
            timer: Timer::Missing { id, token },
        });
        self.make_eager(peer);
        out.push(OutEvent::Send {
            to: peer,
            message: Message::Graft { id: Some(id) },
        });
    }

    fn on_graft(&mut self, from: PeerId, id: Option<MessageId>, out: &mut Vec<Out>) {
        self.make_eager(from);
        let Some(id) = id else {
            return;
        };
        if let Some(d) = self.cache.get(&id) {
            out.push(OutEvent::Send {
                to: from,
                message: Message::Gossip {
                    id,
                    hops: d.hops + 1,
                    payload: d.payload.clone(),
                },
            });
        }
    }

    fn neighbor_up(&mut self, now: Time, peer: PeerId, out: &mut Vec<Out>) {
        self.make_eager(peer);
        // Catch-up: payloads delivered lately, so a broadcast in flight
        // crosses a link that replaces a failed one.
        let window = self.config.hyparview.catch_up_window;
        for (&id, d) in self
            .cache
            .newest_first()
            .take(self.config.hyparview.catch_up_messages)
            .take_while(|(_, d)| now.saturating_sub(d.at) <= window)
        {
            if d.from == peer {
                continue;
            }
            out.push(OutEvent::Send {
                to: peer,
                message: Message::Gossip {
                    id,
                    hops: d.hops + 1,
                    payload: d.payload.clone(),
                },
            });
        }
    }

    fn neighbor_down(&mut self, peer: PeerId) {
        self.eager.retain(|&p| p != peer);
        self.lazy.retain(|&p| p != peer);
        for m in self.missing.values_mut() {
            m.announcers.retain(|&(p, _)| p != peer);
        }
    }

    /// Turns the membership core's events into outputs and keeps the
    /// eager/lazy sets within the active view.
    fn drain(&mut self, now: Time, out: &mut Vec<Out>) {
        let mut events = std::mem::take(&mut self.scratch);
        let mut changed = false;
        for event in events.drain(..) {
            match event {
                Event::Send { to, message } => out.push(OutEvent::Send {
                    to,
                    message: message.into(),
                }),
                Event::Connect(p) => out.push(OutEvent::Connect(p)),
                Event::Disconnect(p) => out.push(OutEvent::Disconnect(p)),
                Event::ScheduleTimer { after, timer } => out.push(OutEvent::ScheduleTimer {
                    after,
                    timer: timer.into(),
                }),
                Event::NeighborUp(p) => {
                    changed = true;
                    self.neighbor_up(now, p, out);
                }
                Event::NeighborDown(p) => {
                    changed = true;
                    self.neighbor_down(p);
                }
            }
        }
        self.scratch = events;
        if changed {
            out.push(OutEvent::ViewChanged {
                links: self.membership.active_view().to_vec(),
            });
        }
    }

    fn leave(&mut self, scratch: &mut Vec<Event>) {
        self.membership.leave(scratch);
        self.lazy_queue.clear();
        self.missing.clear();
    }
}

impl<R: Rng> Protocol for State<R> {
    type Message = Message;
    type Timer = Timer;

    fn me(&self) -> PeerId {
        self.membership.me()
    }

    fn handle(&mut self, now: Time, event: InEvent<Message, Timer>, out: &mut Vec<Out>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        self.membership.tick(now, &mut scratch);
        if let InEvent::Message { from, .. } = &event {
            self.membership.heard_from(*from);
        }
        match event {
            InEvent::Message { from, message } => match message {
                Message::Membership(m) => self.membership.handle_message(from, m, &mut scratch),
                Message::Gossip { id, hops, payload } => {
                    self.on_gossip(now, from, id, hops, payload, out)
                }
                Message::IHave(announces) => {
                    self.membership.check_link(from, &mut scratch);
                    self.on_ihave(now, from, announces, out)
                }
                Message::Graft { id } => self.on_graft(from, id, out),
                Message::Prune => {
                    self.membership.check_link(from, &mut scratch);
                    self.make_lazy(from)
                }
            },
            InEvent::PeerDown(peer) => self.membership.peer_down(peer, &mut scratch),
            InEvent::Timer(Timer::Membership(t)) => self.membership.handle_timer(t, &mut scratch),
            InEvent::Timer(Timer::IHaveFlush) => {
                self.flush_scheduled = false;
                self.flush(out);
            }
            InEvent::Timer(Timer::Missing { id, token }) => self.on_missing_timer(id, token, out),
            InEvent::Command(Command::Join(contacts)) => {
                self.membership.join(&contacts, &mut scratch)
            }
            InEvent::Command(Command::Leave) => self.leave(&mut scratch),
            InEvent::Command(Command::Broadcast { id, payload }) => {
                let me = self.membership.me();
                self.on_gossip(now, me, id, 0, payload, out)
            }
        }
        self.scratch = scratch;
        self.drain(now, out);
    }

    fn links(&self) -> Vec<PeerId> {
        self.membership.active_view().to_vec()
    }
}
