//! HyParView: a membership protocol for reliable gossip-based broadcast
//! (Leitão, Pereira, Rodrigues, DSN 2007).
//!
//! Each node keeps two partial views of the membership:
//! - the **active view** (size `active_view`, paper: 5): symmetric standing
//!   links, used to broadcast; a failure is detected when a send over one
//!   of them fails;
//! - the **passive view** (size `passive_view`, paper: 30): known peers
//!   without a link, the reserve from which failed active peers are
//!   replaced.
//!
//! Messages:
//! - `JOIN` to a contact, which adds the joiner to its active view
//!   (evicting a random peer with `DISCONNECT` when full) and starts a
//!   `FORWARD_JOIN` random walk of length ARWL (paper: 6) over every other
//!   active peer. A node on the walk adds the joiner to its passive view
//!   when the TTL equals PRWL (paper: 3), and to its active view when the
//!   TTL reaches 0 or its own active view holds only the forwarder.
//! - `NEIGHBOR` asks a passive peer for a link. It is high priority when
//!   the requester has no active peer (always accepted, evicting one) and
//!   low otherwise (accepted only if there is room); the answer is
//!   `NEIGHBOR_REPLY`. Failed, timed-out (`neighbor_timeout_ms`) or refused
//!   requests move on to the next passive candidate.
//! - `DISCONNECT`: the sender dropped the link; the receiver moves it to its
//!   passive view and refills its active view.
//! - `SHUFFLE` every `shuffle_interval_ms`: the node's id, `ka` (paper: 3)
//!   active and `kp` (paper: 4) passive peers travel a random walk of
//!   `shuffle_ttl` hops; the node where it ends answers `SHUFFLE_REPLY`
//!   with as many of its passive peers, and both integrate what they got
//!   into their passive views, evicting first the ids they sent.
//!
//! Beyond the paper, for recovery when a node learns of a failure only
//! when a send fails:
//! - a refused NEIGHBOR request signals churn: the refusing node PINGs its
//!   active view (at most once per `neighbor_timeout`) and asks the
//!   refused, known-live requester first when it has room again; a
//!   `PeerDown` also PINGs the rest of the active view. So a node whose
//!   whole active view died silently is not left cut off;
//! - keepalive: when no active peer was heard from for `keepalive`, all
//!   are PINGed (the failed sends come back as `PeerDown`);
//! - only the first NEIGHBOR request of a node with no neighbour is high
//!   priority (the others low), and a NEIGHBOR_REPLY counts only while its
//!   request is in flight, so late or reordered answers create no
//!   one-sided links;
//! - the flood sends a new neighbour the broadcasts received within
//!   `catch_up_window`, so a message in flight crosses a repaired link.
//!
//! Layering: [`Membership`] is the protocol core and reports active-view
//! changes as [`Event::NeighborUp`] / [`Event::NeighborDown`]. [`State`]
//! is the standalone `hyparview` topology: the core plus broadcast by
//! flooding the active view with duplicate suppression. Plumtree
//! (`super::plumtree`) embeds the same core and wraps
//! [`MembershipMessage`] in its own message type through `From`.

mod membership;
#[cfg(test)]
pub(crate) mod testnet;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

pub(crate) use crate::overlay::id_cache::IdCache;
pub use membership::{Event, Membership, MembershipMessage, Priority, Timer, UNSOLICITED};

use super::{
    Command, InEvent, MessageClass, MessageId, OutEvent, PeerId, Protocol, ProtocolMessage, Time,
};
use crate::model::HyParViewConfig;

/// HyParView parameters, built from [`HyParViewConfig`] (see there for the
/// sources of the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Maximum active view size. Paper: 5.
    pub active_view: usize,
    /// Maximum passive view size. Paper: 30.
    pub passive_view: usize,
    /// Active random walk length (FORWARD_JOIN TTL). Paper: 6.
    pub arwl: u16,
    /// TTL at which a FORWARD_JOIN adds the joiner to the passive view.
    /// Paper: 3.
    pub prwl: u16,
    /// Active peers sent in a SHUFFLE (capped by the active view). Paper: 3.
    pub shuffle_ka: usize,
    /// Passive peers sent in a SHUFFLE (capped by the passive view).
    /// Paper: 4.
    pub shuffle_kp: usize,
    /// SHUFFLE random walk length.
    pub shuffle_ttl: u16,
    /// Period between SHUFFLEs.
    pub shuffle_interval: Duration,
    /// Wait for a NEIGHBOR_REPLY before trying the next candidate.
    pub neighbor_timeout: Duration,
    /// Broadcast ids remembered for duplicate suppression (FIFO). Guess:
    /// 4096, as Plumtree's message cache.
    pub seen_capacity: usize,
    /// A neighbour that comes up is sent the broadcasts this node received
    /// within this window, so a message in flight crosses a link repaired
    /// after a failure. Guess: 5 s (longer than `keepalive` plus a few
    /// NEIGHBOR round trips).
    pub catch_up_window: Duration,
    /// At most this many recent broadcasts are kept for that catch-up.
    /// Guess: 16.
    pub catch_up_messages: usize,
    /// When no active peer was heard from for this long, all are probed
    /// with a PING, so a node whose neighbours all failed silently finds
    /// out when the sends fail; `None` disables it. Guess: 2 s (a few
    /// broadcast rounds of the simulator; ping traffic only flows in a
    /// quiet overlay).
    ///
    /// Keep `catch_up_window` longer, so a node cut off this way still
    /// gets the broadcast it missed from its new neighbour.
    pub keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from(&HyParViewConfig::default())
    }
}

impl From<&HyParViewConfig> for Config {
    fn from(c: &HyParViewConfig) -> Self {
        let narrow = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        Config {
            active_view: c.active_view.max(1) as usize,
            passive_view: c.passive_view.max(1) as usize,
            arwl: narrow(c.arwl),
            prwl: narrow(c.prwl),
            shuffle_ka: c.shuffle_ka.min(c.active_view) as usize,
            shuffle_kp: c.shuffle_kp.min(c.passive_view) as usize,
            shuffle_ttl: narrow(c.shuffle_ttl),
            shuffle_interval: Duration::from_millis(c.shuffle_interval_ms.max(1)),
            neighbor_timeout: Duration::from_millis(c.neighbor_timeout_ms.max(1)),
            seen_capacity: 4096,
            catch_up_window: Duration::from_secs(5),
            catch_up_messages: 16,
            keepalive: Some(Duration::from_secs(2)),
        }
    }
}

/// Messages of the standalone `hyparview` topology.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    Membership(MembershipMessage),
    /// A flooded broadcast; `hops` is the receiver's distance from the
    /// origin over this path.
    Broadcast {
        id: MessageId,
        hops: u32,
        payload: Bytes,
    },
}

impl From<MembershipMessage> for Message {
    fn from(m: MembershipMessage) -> Self {
        Message::Membership(m)
    }
}

impl ProtocolMessage for Message {
    fn class(&self) -> MessageClass {
        match self {
            Message::Membership(m) => m.class(),
            Message::Broadcast { .. } => MessageClass::Payload,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Message::Membership(m) => m.kind(),
            Message::Broadcast { .. } => "BROADCAST",
        }
    }
}

#[derive(Debug, Clone)]
struct Recent {
    at: Time,
    id: MessageId,
    hops: u32,
    payload: Bytes,
}

/// The standalone `hyparview` topology of one node: membership plus
/// flooding.
#[derive(Debug, Clone)]
pub struct State<R> {
    membership: Membership<R>,
    seen: IdCache<()>,
    recent: VecDeque<Recent>,
    scratch: Vec<Event>,
}

impl<R: Rng> State<R> {
    pub fn new(me: PeerId, config: Config, rng: R) -> Self {
        State {
            seen: IdCache::new(config.seen_capacity),
            recent: VecDeque::new(),
            membership: Membership::new(me, config, rng),
            scratch: Vec::new(),
        }
    }

    /// Peers with a standing link.
    pub fn active_view(&self) -> &[PeerId] {
        self.membership.active_view()
    }

    /// Known peers without a link.
    pub fn passive_view(&self) -> &[PeerId] {
        self.membership.passive_view()
    }

    /// The membership core (read-only).
    pub fn membership(&self) -> &Membership<R> {
        &self.membership
    }

    fn broadcast(
        &mut self,
        now: Time,
        id: MessageId,
        hops: u32,
        payload: Bytes,
        from: PeerId,
        out: &mut Vec<OutEvent<Message, Timer>>,
    ) {
        if !self.seen.insert(id, ()) {
            return;
        }
        out.push(OutEvent::Deliver {
            id,
            from,
            hops,
            payload: payload.clone(),
        });
        for &peer in self.membership.active_view().iter().filter(|&&p| p != from) {
            out.push(OutEvent::Send {
                to: peer,
                message: Message::Broadcast {
                    id,
                    hops: hops + 1,
                    payload: payload.clone(),
                },
            });
        }
        if self.recent.len() >= self.membership.config().catch_up_messages {
            self.recent.pop_front();
        }
        if self.membership.config().catch_up_messages > 0 {
            self.recent.push_back(Recent {
                at: now,
                id,
                hops,
                payload,
            });
        }
    }

    /// Turns the core's events into outputs; a new neighbour is sent the
    /// recent broadcasts.
    fn drain(&mut self, now: Time, out: &mut Vec<OutEvent<Message, Timer>>) {
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
                Event::ScheduleTimer { after, timer } => {
                    out.push(OutEvent::ScheduleTimer { after, timer })
                }
                Event::NeighborUp(peer) => {
                    changed = true;
                    self.catch_up(now, peer, out);
                }
                Event::NeighborDown(_) => changed = true,
            }
        }
        self.scratch = events;
        if changed {
            out.push(OutEvent::ViewChanged {
                links: self.membership.active_view().to_vec(),
            });
        }
    }

    fn catch_up(&self, now: Time, peer: PeerId, out: &mut Vec<OutEvent<Message, Timer>>) {
        let window = self.membership.config().catch_up_window;
        for r in self
            .recent
            .iter()
            .filter(|r| now.saturating_sub(r.at) <= window)
        {
            out.push(OutEvent::Send {
                to: peer,
                message: Message::Broadcast {
                    id: r.id,
                    hops: r.hops + 1,
                    payload: r.payload.clone(),
                },
            });
        }
    }
}

impl<R: Rng> Protocol for State<R> {
    type Message = Message;
    type Timer = Timer;

    fn me(&self) -> PeerId {
        self.membership.me()
    }

    fn handle(
        &mut self,
        now: Time,
        event: InEvent<Message, Timer>,
        out: &mut Vec<OutEvent<Message, Timer>>,
    ) {
        let mut scratch = std::mem::take(&mut self.scratch);
        self.membership.tick(now, &mut scratch);
        match event {
            InEvent::Message { from, message } => match message {
                Message::Membership(m) => self.membership.handle_message(from, m, &mut scratch),
                Message::Broadcast { id, hops, payload } => {
                    self.membership.heard_from(from);
                    self.broadcast(now, id, hops, payload, from, out)
                }
            },
            InEvent::PeerDown(peer) => self.membership.peer_down(peer, &mut scratch),
            InEvent::Timer(timer) => self.membership.handle_timer(timer, &mut scratch),
            InEvent::Command(Command::Join(contacts)) => {
                self.membership.join(&contacts, &mut scratch)
            }
            InEvent::Command(Command::Leave) => self.membership.leave(&mut scratch),
            InEvent::Command(Command::Broadcast { id, payload }) => {
                let me = self.membership.me();
                self.broadcast(now, id, 0, payload, me, out)
            }
        }
        self.scratch = scratch;
        self.drain(now, out);
    }

    fn links(&self) -> Vec<PeerId> {
        self.membership.active_view().to_vec()
    }
}
