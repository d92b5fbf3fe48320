//! Client-server: the configured servers form a full mesh; every other
//! node is a client keeping links to `k` servers (`links_per_client`,
//! design default 2).
//!
//! A client picks its servers from its seeded RNG (so a seed replays the
//! choice), sends `Attach` and counts a server as linked once it answers
//! `Attached`. When a server is lost (`PeerDown`, `Refused`, or its
//! `Detach`) the client attaches to another server it is not linked to;
//! when every server has failed it retries them all after
//! [`Config::retry_interval`]. Clients never link to clients: a client
//! answers any `Attach` with `Refused` and never initiates a send to a
//! client.
//!
//! Servers link to every other server on join without waiting for an
//! answer. A server whose link to another server fails (`PeerDown`: a send
//! failed, or pings timed out — a paused or partitioned server loses every
//! link at once) keeps asking it again with `Attach` every
//! [`Config::retry_interval`] until it answers; a server answers a
//! server's `Attach` with `Attached`, so both sides of a healed link take
//! each other back whichever side noticed the failure. A server that left
//! (`Detach`) or refused is not asked again: it attaches itself when it
//! joins.
//!
//! Broadcast: a client sends the payload to one of its servers; a server
//! that receives it from a client relays it to every other server and to
//! its own clients (except the one it came from); a server that receives it
//! from a server hands it to its own clients only. Duplicates (a client
//! linked to two servers receives the payload twice) are dropped by id.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use super::id_cache::IdCache;
use super::{
    Command, InEvent, MessageClass, MessageId, OutEvent, PeerId, Protocol, ProtocolMessage, Time,
};
use crate::model::ClientServerConfig;

/// Client-server parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Server node ids (sorted, no duplicates). Must not be empty.
    pub servers: Vec<PeerId>,
    /// Servers each client links to (k). 1..=16; design default 2.
    pub links_per_client: usize,
    /// Delay before a client whose every server failed tries them again.
    /// Guess: 1 s.
    pub retry_interval: Duration,
    /// Delivered broadcast ids remembered. Guess: 4096, as Plumtree.
    pub seen_capacity: usize,
}

impl Config {
    /// Built from the replicated config; `servers` replaces an empty
    /// server list (the caller resolves "the voters").
    pub fn from_model(model: &ClientServerConfig, servers: &[PeerId]) -> Self {
        let mut list = if model.servers.is_empty() {
            servers.to_vec()
        } else {
            model.servers.clone()
        };
        list.sort_unstable();
        list.dedup();
        Config {
            servers: list,
            links_per_client: model.links_per_client.max(1) as usize,
            retry_interval: Duration::from_secs(1),
            seen_capacity: 4096,
        }
    }
}

/// Client-server protocol messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// A client asks a server for a link; between servers, "I am up".
    Attach,
    /// A server accepts a client's link.
    Attached,
    /// The receiver refuses the link (a client asked by a client, or a
    /// node that is not a server).
    Refused,
    /// The sender closes its link (graceful leave).
    Detach,
    /// A broadcast payload.
    Broadcast {
        id: MessageId,
        hops: u32,
        payload: Bytes,
    },
}

impl ProtocolMessage for Message {
    fn class(&self) -> MessageClass {
        match self {
            Message::Broadcast { .. } => MessageClass::Payload,
            _ => MessageClass::Membership,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Message::Attach => "ATTACH",
            Message::Attached => "ATTACHED",
            Message::Refused => "REFUSED",
            Message::Detach => "DETACH",
            Message::Broadcast { .. } => "BROADCAST",
        }
    }
}

/// Client-server timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A client with no reachable server retries them all (token
    /// recognises stale timers).
    Retry(u64),
}

type Out = Vec<OutEvent<Message, Timer>>;

/// Per-node client-server state.
#[derive(Debug)]
pub struct State<R> {
    me: PeerId,
    config: Config,
    rng: R,
    is_server: bool,
    /// Server: other servers believed up. Client: servers linked.
    servers_up: BTreeSet<PeerId>,
    /// Client: servers asked (`Attach`) but not yet answered.
    pending: BTreeSet<PeerId>,
    /// Client: servers that failed since the last full retry.
    failed: BTreeSet<PeerId>,
    /// Server: other servers lost on a failure, asked again (`Attach`)
    /// every retry interval until they answer.
    relink: BTreeSet<PeerId>,
    /// Server: attached clients.
    clients: BTreeSet<PeerId>,
    seen: IdCache<()>,
    joined: bool,
    retry_token: u64,
}

impl<R: Rng> State<R> {
    /// A node that has not joined yet; it is a server if listed in
    /// `config.servers`.
    pub fn new(me: PeerId, config: Config, rng: R) -> Self {
        let is_server = config.servers.binary_search(&me).is_ok();
        let seen = IdCache::new(config.seen_capacity);
        State {
            me,
            config,
            rng,
            is_server,
            servers_up: BTreeSet::new(),
            pending: BTreeSet::new(),
            failed: BTreeSet::new(),
            relink: BTreeSet::new(),
            clients: BTreeSet::new(),
            seen,
            joined: false,
            retry_token: 0,
        }
    }

    /// Whether this node is a server.
    pub fn is_server(&self) -> bool {
        self.is_server
    }

    /// Client: servers it is linked to. Server: other servers up.
    pub fn servers(&self) -> &BTreeSet<PeerId> {
        &self.servers_up
    }

    /// Server: its attached clients (empty on a client).
    pub fn clients(&self) -> &BTreeSet<PeerId> {
        &self.clients
    }

    fn is_server_id(&self, peer: PeerId) -> bool {
        self.config.servers.binary_search(&peer).is_ok()
    }

    fn view_changed(&self, out: &mut Out) {
        out.push(OutEvent::ViewChanged {
            links: self.links(),
        });
    }

    fn send(out: &mut Out, to: PeerId, message: Message) {
        out.push(OutEvent::Send { to, message });
    }

    /// Client: attaches to servers until `k` are linked or asked.
    fn fill(&mut self, out: &mut Out) {
        let k = self.config.links_per_client;
        let wanted = k.saturating_sub(self.servers_up.len() + self.pending.len());
        if wanted == 0 {
            return;
        }
        let candidates: Vec<PeerId> = self
            .config
            .servers
            .iter()
            .copied()
            .filter(|s| {
                *s != self.me
                    && !self.servers_up.contains(s)
                    && !self.pending.contains(s)
                    && !self.failed.contains(s)
            })
            .collect();
        let chosen: Vec<PeerId> = candidates
            .choose_multiple(&mut self.rng, wanted)
            .copied()
            .collect();
        for server in chosen {
            self.pending.insert(server);
            Self::send(out, server, Message::Attach);
        }
        if self.servers_up.is_empty() && self.pending.is_empty() {
            // Every server failed: try them all again later.
            self.retry_token += 1;
            out.push(OutEvent::ScheduleTimer {
                after: self.config.retry_interval,
                timer: Timer::Retry(self.retry_token),
            });
        }
    }

    fn on_join(&mut self, out: &mut Out) {
        self.joined = true;
        if self.is_server {
            let others: Vec<PeerId> = self
                .config
                .servers
                .iter()
                .copied()
                .filter(|s| *s != self.me)
                .collect();
            self.relink.clear();
            for server in others {
                self.servers_up.insert(server);
                out.push(OutEvent::Connect(server));
                Self::send(out, server, Message::Attach);
            }
            self.view_changed(out);
        } else {
            self.fill(out);
        }
    }

    fn on_leave(&mut self, out: &mut Out) {
        let peers: Vec<PeerId> = self
            .servers_up
            .iter()
            .chain(self.clients.iter())
            .copied()
            .collect();
        for peer in peers {
            Self::send(out, peer, Message::Detach);
            out.push(OutEvent::Disconnect(peer));
        }
        self.servers_up.clear();
        self.clients.clear();
        self.pending.clear();
        self.failed.clear();
        self.relink.clear();
        self.joined = false;
        self.retry_token += 1;
        self.view_changed(out);
    }

    /// Sends a payload onwards as the design's path prescribes.
    fn forward(&self, id: MessageId, hops: u32, payload: &Bytes, from: PeerId, out: &mut Out) {
        let msg = |hops| Message::Broadcast {
            id,
            hops,
            payload: payload.clone(),
        };
        if !self.is_server {
            // A client hands its own broadcast to one of its servers.
            if from == self.me {
                if let Some(&server) = self.servers_up.iter().next() {
                    Self::send(out, server, msg(hops + 1));
                }
            }
            return;
        }
        let from_server = from != self.me && self.is_server_id(from);
        if !from_server {
            for &server in &self.servers_up {
                Self::send(out, server, msg(hops + 1));
            }
        }
        for &client in self.clients.iter().filter(|c| **c != from) {
            Self::send(out, client, msg(hops + 1));
        }
    }

    fn on_broadcast(
        &mut self,
        from: PeerId,
        id: MessageId,
        hops: u32,
        payload: Bytes,
        out: &mut Out,
    ) {
        if !self.is_server && from != self.me && !self.is_server_id(from) {
            return; // Clients take nothing from clients.
        }
        if !self.seen.insert(id, ()) {
            return;
        }
        out.push(OutEvent::Deliver {
            id,
            from,
            hops,
            payload: payload.clone(),
        });
        self.forward(id, hops, &payload, from, out);
    }

    /// A server (or a client's server) is gone. `failure` is true for a
    /// link failure (the peer may come back without rejoining), false for
    /// its `Detach` or `Refused`.
    fn lost(&mut self, peer: PeerId, failure: bool, out: &mut Out) {
        let was_linked = self.servers_up.remove(&peer) | self.clients.remove(&peer);
        let was_pending = self.pending.remove(&peer);
        if !self.is_server && self.is_server_id(peer) && self.joined {
            self.failed.insert(peer);
            self.fill(out);
        }
        if self.is_server && self.is_server_id(peer) && self.joined {
            if failure && peer != self.me {
                if self.relink.insert(peer) && self.relink.len() == 1 {
                    self.schedule_retry(out);
                }
            } else {
                self.relink.remove(&peer);
            }
        }
        if was_linked || was_pending {
            self.view_changed(out);
        }
    }

    fn schedule_retry(&mut self, out: &mut Out) {
        self.retry_token += 1;
        out.push(OutEvent::ScheduleTimer {
            after: self.config.retry_interval,
            timer: Timer::Retry(self.retry_token),
        });
    }

    /// Server: asks every lost server again; keeps asking while any is
    /// still lost.
    fn relink_servers(&mut self, out: &mut Out) {
        if self.relink.is_empty() {
            return;
        }
        for &server in &self.relink {
            Self::send(out, server, Message::Attach);
        }
        self.schedule_retry(out);
    }

    /// Server: another server answered; it is linked again.
    fn server_back(&mut self, server: PeerId, out: &mut Out) {
        self.relink.remove(&server);
        if self.servers_up.insert(server) {
            out.push(OutEvent::Connect(server));
            self.view_changed(out);
        }
    }

    fn on_message(&mut self, from: PeerId, message: Message, out: &mut Out) {
        match message {
            Message::Attach if self.is_server && self.is_server_id(from) => {
                // Answered, so a server that lost this one on a failure
                // takes it back too.
                Self::send(out, from, Message::Attached);
                self.server_back(from, out);
            }
            Message::Attach if self.is_server => {
                let added = self.clients.insert(from);
                Self::send(out, from, Message::Attached);
                if added {
                    out.push(OutEvent::Connect(from));
                    self.view_changed(out);
                }
            }
            Message::Attach => Self::send(out, from, Message::Refused),
            Message::Attached if self.is_server => {
                if self.joined && self.is_server_id(from) {
                    self.server_back(from, out);
                }
            }
            Message::Attached => {
                if self.pending.remove(&from) && self.joined {
                    self.servers_up.insert(from);
                    self.failed.remove(&from);
                    out.push(OutEvent::Connect(from));
                    self.view_changed(out);
                }
            }
            Message::Refused | Message::Detach => self.lost(from, false, out),
            Message::Broadcast { id, hops, payload } => {
                self.on_broadcast(from, id, hops, payload, out)
            }
        }
    }
}

impl<R: Rng> Protocol for State<R> {
    type Message = Message;
    type Timer = Timer;

    fn me(&self) -> PeerId {
        self.me
    }

    fn handle(&mut self, _now: Time, event: InEvent<Message, Timer>, out: &mut Out) {
        match event {
            InEvent::Message { from, message } => self.on_message(from, message, out),
            InEvent::PeerDown(peer) => self.lost(peer, true, out),
            InEvent::Timer(Timer::Retry(token)) => {
                if token != self.retry_token || !self.joined {
                    return;
                }
                if self.is_server {
                    self.relink_servers(out);
                } else {
                    self.failed.clear();
                    self.fill(out);
                }
            }
            InEvent::Command(Command::Join(_)) => self.on_join(out),
            InEvent::Command(Command::Leave) => self.on_leave(out),
            InEvent::Command(Command::Broadcast { id, payload }) => {
                let me = self.me;
                self.on_broadcast(me, id, 0, payload, out)
            }
        }
    }

    fn links(&self) -> Vec<PeerId> {
        self.servers_up
            .iter()
            .chain(self.clients.iter())
            .copied()
            .collect()
    }
}

#[cfg(test)]
#[path = "client_server_tests.rs"]
mod tests;
