//! The executor's core: every decision of a node's data plane as a sans-IO
//! state machine, in the overlays' API shape. [`Core::handle`] takes an
//! [`Input`] (a command, a frame, a link event, a fired [`Timer`]) and the
//! time `now`, and pushes [`Output`]s (frames to send, links to open and
//! close, deliveries, answers, timers to schedule). No tokio, no clock, no
//! sockets: the actor (`super::actor`) is the thin shell that feeds it on
//! real nodes, the simulator (`crate::sim`) feeds the same core for every
//! simulated node.
//!
//! The core owns:
//! - the running overlays, as one [`Slots`] value (`Steady`, `Preparing`,
//!   `Draining`, plus start-up), from which the published state derives;
//! - the check in progress ([`Check`], a step function with typed
//!   [`CheckFailure`]s);
//! - the drain, the periodic health probes of HyParView/Plumtree, the
//!   re-joins of full meshes, gap repair of broadcasts (`super::repair`)
//!   and duplicate suppression of broadcasts.
//!
//! Time-driven work fires only when due: the core keeps one pending
//! [`Timer::Wake`] at the earliest instant something is due (a drain's
//! end, a check's next probe or deadline, a repair round while there is
//! something to repair, the next health check), and overlay timers as the
//! overlays ask. An idle node wakes a few times a second at most.
//!
//! # Layout
//!
//! - this file: [`Core`], [`Input`], [`Output`], [`Timer`], dispatch;
//! - `phases` — build, prepare, cut-over, abort, verify, drain;
//! - `frames` — frames and link events from the transport, deliveries;
//! - `members` — the membership, who is live, the contacts of a join;
//! - `recovery` — gap repair: summaries, nacks, resends;
//! - `wake` — the time-driven work and the one pending wake-up;
//! - `check`, `slots`, `failure` — see their docs.

mod check;
mod failure;
mod frames;
mod members;
mod phases;
mod recovery;
mod slots;
#[cfg(test)]
mod tests;
mod wake;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

pub use check::{Check, CheckKind, Step, Timing, View};
pub use failure::{CheckFailure, FormGap, SupersededBy, Wanted};
pub use slots::Slots;

use super::config::ExecutorConfig;
use super::dedup::Dedup;
use super::instance::Instance;
use super::links::{LinkChanges, LinkUser, Links};
use super::repair::RepairState;
use super::status::{ExecCounters, ExecState, OverlayStatus};
use super::wire::{encode, Body, Frame};
use crate::control::executor::ExecError;
use crate::model::{NodeId, OverlayConfig, Topology, TransitionId};
use crate::overlay::any::{AnyMessage, AnyTimer};
use crate::overlay::{
    Command, InEvent as OverlayIn, MessageClass, MessageId, OutEvent as OverlayOut, Protocol,
    ProtocolMessage,
};
use crate::transport::FrameClass;

/// Names a caller waiting for an answer ([`Output::Reply`],
/// [`Output::Send`]'s `token`); the shell maps it to its reply channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

/// A timer the core asked for ([`Output::ScheduleTimer`]), handed back as
/// [`Input::Timer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// An overlay's own timer; `gen` tells a torn-down instance's timers
    /// from those of one built again under the same id.
    Overlay {
        instance: u64,
        gen: u64,
        timer: AnyTimer,
    },
    /// Something of the core's own is due (see `wake`).
    Wake,
    /// Overlay `instance` (of generation `gen`) joins now (a large
    /// cluster joins a new HyParView/Plumtree overlay in waves).
    Join { instance: u64, gen: u64 },
}

/// Why a point-to-point message was not handed to a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefusal {
    #[error("node {peer} is not a member of the cluster")]
    UnknownPeer { peer: NodeId },
    #[error("no overlay is running yet on this node")]
    NoOverlay,
    #[error("client {peer} is reachable only through a server, and none is known")]
    NoRoute { peer: NodeId },
}

/// What the core is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// The applied membership: members (with an address) and voters.
    Members {
        members: BTreeSet<NodeId>,
        voters: Vec<NodeId>,
    },
    Build {
        token: Token,
        instance: TransitionId,
        topology: Topology,
        config: OverlayConfig,
    },
    Prepare {
        token: Token,
        id: TransitionId,
        topology: Topology,
        config: OverlayConfig,
    },
    CutOver {
        token: Token,
        id: TransitionId,
    },
    Abort {
        token: Token,
        id: TransitionId,
    },
    Verify {
        token: Token,
    },
    /// An application broadcast over the current overlay.
    Broadcast {
        channel: String,
        data: Bytes,
    },
    /// A point-to-point message `id` (numbered by the shell, whose handles
    /// number the messages they send themselves from the same sequence).
    Send {
        token: Option<Token>,
        id: MessageId,
        peer: NodeId,
        channel: String,
        data: Bytes,
    },
    /// A frame from `from`, as it arrived.
    Frame {
        from: NodeId,
        payload: Bytes,
    },
    LinkUp(NodeId),
    /// The link to `peer` went down; `failed` unless it was closed on
    /// purpose (replaced, disconnected, shutting down).
    LinkDown {
        peer: NodeId,
        failed: bool,
    },
    /// The transport gave up sending to `peer` (its queue was lost).
    SendFailed(NodeId),
    /// A frame the core asked for could not be handed to `peer`'s link
    /// (`unknown`: the transport has no address for it).
    Undeliverable {
        peer: NodeId,
        unknown: bool,
    },
    Rtt {
        peer: NodeId,
        rtt: Duration,
    },
    Timer(Timer),
}

/// What the core asks of its shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `frame` to `to`; a `token` waits for whether it was handed to
    /// a link.
    Send {
        to: NodeId,
        class: FrameClass,
        frame: Bytes,
        token: Option<Token>,
    },
    /// Keep a link to `peer`.
    Connect(NodeId),
    /// Close the link to `peer`.
    Disconnect(NodeId),
    /// Hand a message to the application (at most once per message: the
    /// core filtered duplicate broadcasts; point-to-point messages go
    /// through the shell's filter, which the link readers share). `hops`:
    /// the overlay hops of the first delivery of another node's broadcast.
    Deliver {
        id: MessageId,
        channel: String,
        payload: Bytes,
        broadcast: bool,
        hops: Option<u32>,
    },
    /// The answer to the command `token` named.
    Reply {
        token: Token,
        result: Result<(), ExecError>,
    },
    /// The outcome of a point-to-point message the core settled itself
    /// (delivered to this node, or refused: nothing was sent).
    Sent {
        token: Token,
        result: Result<(), SendRefusal>,
    },
    /// Hand `timer` back as [`Input::Timer`] after `after`.
    ScheduleTimer { after: Duration, timer: Timer },
}

/// The node's message sequence, shared by the core (broadcasts, probes)
/// and the handles (point-to-point messages they send themselves), so
/// that every message id of a node is unique. Broadcasts are also
/// numbered on their own (`bseq`, gap repair), and duplicates of them are
/// told apart by that number: the two kinds never share a dedup window.
#[derive(Debug, Clone, Default)]
pub struct Seq(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Seq {
    /// The next number (from 1).
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// The first of `n` consecutive numbers reserved at once.
    pub fn next_many(&self, n: u64) -> u64 {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

/// The executor's state (see the module docs).
#[derive(Debug)]
pub struct Core {
    me: NodeId,
    incarnation: u32,
    cfg: ExecutorConfig,
    pub(crate) slots: Slots,
    /// Instances started so far (their `gen`).
    gens: u64,
    /// A prepare waiting for the drain's minimum to pass.
    queued: Option<Input>,
    pub(crate) check: Option<Check>,
    members: BTreeSet<NodeId>,
    voters: Vec<NodeId>,
    /// Peers whose last send failed, until a link comes up.
    unreachable: BTreeSet<NodeId>,
    /// Peers with a link up.
    up: BTreeSet<NodeId>,
    /// Members other than this node not known unreachable (kept as the
    /// three sets above change).
    live: BTreeSet<NodeId>,
    /// Grows whenever `live` changes.
    live_version: u64,
    rtt: BTreeMap<NodeId, Duration>,
    links: Links,
    repair: RepairState,
    /// Broadcasts delivered, by (origin, incarnation, broadcast number).
    seen: Dedup,
    seq: Seq,
    early: VecDeque<(NodeId, u64, Topology, AnyMessage)>,
    verified: Option<u64>,
    last_failure: Option<String>,
    counters: ExecCounters,
    next_mesh_check: Duration,
    next_health: Duration,
    /// The earliest `Timer::Wake` pending.
    wake_at: Option<Duration>,
    dirty: bool,
    scratch: Vec<OverlayOut<AnyMessage, AnyTimer>>,
}

impl Core {
    pub fn new(me: NodeId, incarnation: u32, cfg: ExecutorConfig, seq: Seq) -> Self {
        let repair = RepairState::new(&cfg);
        let next_health = cfg.health_interval().unwrap_or(Duration::MAX);
        Core {
            me,
            incarnation,
            links: Links::new(cfg.direct_links as usize),
            cfg,
            slots: Slots::Starting,
            gens: 0,
            queued: None,
            check: None,
            members: BTreeSet::new(),
            voters: Vec::new(),
            unreachable: BTreeSet::new(),
            up: BTreeSet::new(),
            live: BTreeSet::new(),
            live_version: 0,
            rtt: BTreeMap::new(),
            repair,
            seen: Dedup::default(),
            seq,
            early: VecDeque::new(),
            verified: None,
            last_failure: None,
            counters: ExecCounters::default(),
            next_mesh_check: Duration::ZERO,
            next_health,
            wake_at: None,
            dirty: true,
            scratch: Vec::new(),
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Handles one input at `now`, appending what to do to `out`.
    pub fn handle(&mut self, now: Duration, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Members { members, voters } => self.on_members(now, members, voters, out),
            Input::Build {
                token,
                instance,
                topology,
                config,
            } => {
                let r = self.build(now, instance, topology, config, out);
                out.push(Output::Reply { token, result: r });
            }
            i @ Input::Prepare { .. } => self.prepare(now, i, out),
            Input::CutOver { token, id } => {
                let r = self.cut_over(now, id);
                out.push(Output::Reply { token, result: r });
            }
            Input::Abort { token, id } => {
                self.abort(now, id, out);
                out.push(Output::Reply {
                    token,
                    result: Ok(()),
                });
            }
            Input::Verify { token } => self.verify(now, token, out),
            Input::Broadcast { channel, data } => self.broadcast_app(now, channel, data, out),
            Input::Send {
                token,
                id,
                peer,
                channel,
                data,
            } => self.send_direct(now, token, id, peer, channel, data, out),
            Input::Frame { from, payload } => self.on_frame(now, from, payload, out),
            Input::LinkUp(peer) => self.on_link_up(now, peer, out),
            Input::LinkDown { peer, failed } => {
                self.up.remove(&peer);
                self.update_live(peer);
                if failed {
                    self.peer_down(now, peer, out);
                }
                self.dirty = true;
            }
            Input::SendFailed(peer) => {
                self.unreachable.insert(peer);
                self.update_live(peer);
                self.peer_down(now, peer, out);
            }
            Input::Undeliverable { peer, unknown } => {
                self.counters.send_failures += 1;
                if unknown {
                    self.peer_down(now, peer, out);
                }
            }
            Input::Rtt { peer, rtt } => {
                // Not a change of state: the shell republishes round trips
                // with the counters, at most every 100 ms.
                self.rtt.insert(peer, rtt);
            }
            Input::Timer(Timer::Overlay {
                instance,
                gen,
                timer,
            }) => {
                if self.slots.get(instance).is_some_and(|i| i.gen == gen) {
                    self.drive(now, instance, OverlayIn::Timer(timer), out);
                }
            }
            Input::Timer(Timer::Join { instance, gen }) => {
                if let Some(inst) = self.slots.get(instance).filter(|i| i.gen == gen) {
                    let contacts = self.wave_contacts(inst.id, inst.topology);
                    self.drive(
                        now,
                        instance,
                        OverlayIn::Command(Command::Join(contacts)),
                        out,
                    );
                }
            }
            Input::Timer(Timer::Wake) => {
                if self.wake_at.is_some_and(|t| t <= now) {
                    self.wake_at = None;
                }
                self.on_wake(now, out);
            }
        }
        self.advance_check(now, out);
        self.schedule_wake(now, out);
    }

    // ---- what the shell reads ----

    /// The state as the contract names it.
    pub fn state(&self) -> ExecState {
        self.slots.state()
    }

    /// The running overlays.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The current overlay's and the other one's status.
    pub fn overlay_status(&self) -> (Option<OverlayStatus>, Option<OverlayStatus>) {
        let view = |i: &Instance| OverlayStatus {
            instance: i.id,
            topology: i.topology,
            links: i.overlay.links(),
            eager: i.overlay.eager_peers(),
        };
        (self.slots.current().map(view), self.slots.other().map(view))
    }

    pub fn verified(&self) -> Option<u64> {
        self.verified
    }

    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    pub fn counters(&self) -> &ExecCounters {
        &self.counters
    }

    pub fn rtt(&self) -> &BTreeMap<NodeId, Duration> {
        &self.rtt
    }

    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    pub fn up(&self) -> &BTreeSet<NodeId> {
        &self.up
    }

    /// Live members other than this node.
    pub fn live(&self) -> &BTreeSet<NodeId> {
        &self.live
    }

    /// Whether the published status changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Broadcasts of `origin` still missing here (gap repair).
    pub fn missing_from(&self, origin: NodeId) -> u64 {
        self.repair.gaps.missing(origin)
    }

    // ---- overlays ----

    /// Hands `event` to overlay `id` and carries out what it asks.
    fn drive(
        &mut self,
        now: Duration,
        id: u64,
        event: OverlayIn<AnyMessage, AnyTimer>,
        out: &mut Vec<Output>,
    ) {
        let mut buf = std::mem::take(&mut self.scratch);
        let Some(inst) = self.slots.get_mut(id) else {
            self.scratch = buf;
            return;
        };
        let (topology, gen) = (inst.topology, inst.gen);
        inst.overlay.handle(now, event, &mut buf);
        let mut down = Vec::new();
        for o in buf.drain(..) {
            match o {
                OverlayOut::Send { to, message } => {
                    let class = match message.class() {
                        MessageClass::Payload => FrameClass::Data,
                        _ => FrameClass::Control,
                    };
                    let frame = encode(&Frame::Overlay {
                        instance: id,
                        topology,
                        message,
                    });
                    if !self.send_frame(to, class, frame, None, out) {
                        down.push(to);
                    }
                }
                OverlayOut::Connect(p) => {
                    let ch = self.links.acquire(p, LinkUser::Overlay(id));
                    if !self.apply_links(ch, out) {
                        down.push(p);
                    }
                }
                OverlayOut::Disconnect(p) => {
                    for p in self.links.release(p, LinkUser::Overlay(id)) {
                        out.push(Output::Disconnect(p));
                    }
                }
                OverlayOut::ScheduleTimer { after, timer } => out.push(Output::ScheduleTimer {
                    after,
                    timer: Timer::Overlay {
                        instance: id,
                        gen,
                        timer,
                    },
                }),
                OverlayOut::Deliver {
                    id: mid,
                    payload,
                    hops,
                    ..
                } => self.on_deliver(now, id, mid, payload, hops, out),
                OverlayOut::ViewChanged { .. } => self.dirty = true,
            }
        }
        self.scratch = buf;
        for p in down {
            self.drive(now, id, OverlayIn::PeerDown(p), out);
        }
    }

    /// Carries out a change of link users; false if a connect was refused
    /// (the peer is not a member: it has no address).
    fn apply_links(&mut self, ch: LinkChanges, out: &mut Vec<Output>) -> bool {
        let mut ok = true;
        for p in ch.disconnect {
            out.push(Output::Disconnect(p));
        }
        for p in ch.connect {
            if self.members.contains(&p) {
                out.push(Output::Connect(p));
            } else {
                self.links.forget(p);
                ok = false;
            }
        }
        ok
    }

    /// Asks for one frame to `to` (opening a link on demand); false if the
    /// peer cannot be reached at all.
    fn send_frame(
        &mut self,
        to: NodeId,
        class: FrameClass,
        frame: Bytes,
        token: Option<Token>,
        out: &mut Vec<Output>,
    ) -> bool {
        if to == self.me {
            self.counters.send_failures += 1;
            return false;
        }
        if !self.links.used(to) {
            let ch = self.links.acquire(to, LinkUser::Direct);
            if !self.apply_links(ch, out) {
                self.counters.send_failures += 1;
                return false;
            }
        }
        out.push(Output::Send {
            to,
            class,
            frame,
            token,
        });
        true
    }

    /// A fresh id for a message of this node.
    fn next_id(&mut self) -> MessageId {
        MessageId {
            origin: self.me,
            incarnation: self.incarnation,
            seq: self.seq.next(),
        }
    }

    /// Broadcasts `body` over overlay `instance` with id `id`.
    fn broadcast_with(
        &mut self,
        now: Duration,
        instance: u64,
        id: MessageId,
        body: &Body,
        out: &mut Vec<Output>,
    ) {
        let payload = encode(body);
        self.drive(
            now,
            instance,
            OverlayIn::Command(Command::Broadcast { id, payload }),
            out,
        );
    }

    /// Starts overlay `inst` (as current, or as the shadow) and joins it
    /// through the live members; frames that arrived for it early are
    /// handed to it.
    fn start_instance(
        &mut self,
        now: Duration,
        mut inst: Instance,
        as_current: bool,
        out: &mut Vec<Output>,
    ) {
        self.gens += 1;
        inst.gen = self.gens;
        let (id, topology) = (inst.id, inst.topology);
        if as_current {
            for old in self.slots.replace_all(inst) {
                self.teardown(now, old, out);
            }
        } else if let Some(inst) = self.slots.start_shadow(inst) {
            tracing::warn!(instance = inst.id, "no current overlay: shadow not started");
            return;
        }
        match self.join_delay(topology) {
            Some(after) => out.push(Output::ScheduleTimer {
                after,
                timer: Timer::Join {
                    instance: id,
                    gen: self.gens,
                },
            }),
            None => {
                let contacts = self.contacts(topology);
                self.drive(now, id, OverlayIn::Command(Command::Join(contacts)), out);
            }
        }
        let early = std::mem::take(&mut self.early);
        for (from, instance, topology, message) in early {
            if instance == id {
                self.on_overlay_frame(now, from, instance, topology, message, out);
            } else if instance > id {
                self.early.push_back((from, instance, topology, message));
            }
        }
        self.dirty = true;
    }

    /// Stops an overlay taken out of the slots: it says goodbye, its links
    /// are released (its timers are ignored when they fire).
    fn teardown(&mut self, now: Duration, inst: Instance, out: &mut Vec<Output>) {
        let id = inst.id;
        // Driven outside the slots: put it where `drive` finds it.
        let mut tmp = Slots::Steady { current: inst };
        std::mem::swap(&mut self.slots, &mut tmp);
        self.drive(now, id, OverlayIn::Command(Command::Leave), out);
        std::mem::swap(&mut self.slots, &mut tmp);
        for p in self.links.release_overlay(id) {
            out.push(Output::Disconnect(p));
        }
        self.dirty = true;
    }

    fn peer_down(&mut self, now: Duration, peer: NodeId, out: &mut Vec<Output>) {
        for id in self.slots.ids() {
            self.drive(now, id, OverlayIn::PeerDown(peer), out);
        }
    }

    /// Keeps a frame of an instance this node does not run yet (bounded:
    /// the oldest is dropped and counted).
    fn keep_early(&mut self, from: NodeId, instance: u64, topology: Topology, message: AnyMessage) {
        if self.early.len() >= self.cfg.early_frames as usize {
            if self.early.pop_front().is_none() {
                return;
            }
            self.counters.stale_frames_dropped += 1;
        }
        self.early.push_back((from, instance, topology, message));
    }

    fn timing(&self) -> Timing {
        Timing {
            form_timeout: self.cfg.form_timeout(),
            verify_timeout: self.cfg.verify_timeout(),
            probe_interval: self.cfg.probe_interval(),
            watch: self.cfg.watch(),
        }
    }
}
