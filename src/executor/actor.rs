//! [`Actor`]: the one task per node that owns all overlay state — the
//! current overlay and at most one other (shadow or draining), their
//! timers and link users (the subscribers and the dedup window are in the
//! shared `super::inbox::Inbox`, which the link readers feed too). Commands,
//! transport events, timers and applied-state changes reach it through
//! one `select! { biased; .. }` loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::check::Check;
use super::config::ExecutorConfig;
use super::handle::{Cmd, Delivery, SendShared};
use super::instance::Instance;
use super::links::{LinkChanges, LinkUser, Links};
use super::repair::RepairState;
use super::status::{ExecCounters, ExecState, ExecStatus, OverlayStatus};
use super::summary::Recorder;
use super::wire::{decode, encode, Body, Frame};
use crate::control::applied::AppliedRx;
use crate::model::{NodeId, Topology};
use crate::overlay::any::{AnyMessage, AnyTimer};
use crate::overlay::{
    Command, InEvent, MessageClass, MessageId, OutEvent, Protocol, ProtocolMessage,
};
use crate::transport::{FrameClass, SendError, Transport, TransportEvent};

/// Transport events handled per wake-up at most (measured with
/// `bench_p2p`; small enough that commands and timers wait little).
const EVENT_BATCH: usize = 64;
/// Period of the check of a prepare/verify in progress and of the drain.
const TICK: Duration = Duration::from_millis(10);

/// What the second overlay slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Second {
    None,
    Shadow,
    /// Draining since the cut-over at `since`; the old overlay last
    /// carried an application payload at `last_payload`.
    Old {
        since: Instant,
        last_payload: Instant,
    },
}

pub(crate) struct Actor {
    pub me: NodeId,
    pub incarnation: u32,
    pub cfg: ExecutorConfig,
    pub transport: Transport,
    pub origin: Instant,
    pub current: Option<Instance>,
    pub other: Option<Instance>,
    pub second: Second,
    pub timers: BTreeMap<(Instant, u64), (u64, AnyTimer)>,
    timer_seq: u64,
    links: Links,
    /// Shared with the handles, which send point-to-point messages
    /// themselves when they can.
    pub shared: Arc<SendShared>,
    pub members: BTreeSet<NodeId>,
    pub voters: Vec<NodeId>,
    /// Peers whose last dial or send failed, until a link comes up.
    pub unreachable: BTreeSet<NodeId>,
    /// Peers with a link up.
    pub up: BTreeSet<NodeId>,
    pub rtt: BTreeMap<NodeId, Duration>,
    /// The current overlay's links as last published (RTT samples of
    /// these peers go into the summary's window).
    pub overlay_links: BTreeSet<NodeId>,
    /// The sliding window of the node summary (`super::summary`).
    pub summary: Recorder,
    early: VecDeque<(NodeId, u64, Topology, AnyMessage)>,
    pub check: Option<Check>,
    /// A prepare waiting for the drain to end.
    pub queued: Option<Cmd>,
    pub verified: Option<u64>,
    pub last_failure: Option<String>,
    pub counters: ExecCounters,
    /// The counters as last published (they are republished on the tick
    /// when they changed).
    published: ExecCounters,
    pub repair: RepairState,
    /// When full-mesh overlays are next checked for members they lack.
    pub next_mesh_check: Instant,
    /// When a steady HyParView/Plumtree overlay is next health-checked.
    pub next_health: Instant,
    status: watch::Sender<Arc<ExecStatus>>,
    dirty: bool,
    out: Vec<OutEvent<AnyMessage, AnyTimer>>,
}

impl Actor {
    pub fn new(
        me: NodeId,
        incarnation: u32,
        cfg: ExecutorConfig,
        transport: Transport,
        status: watch::Sender<Arc<ExecStatus>>,
        shared: Arc<SendShared>,
    ) -> Self {
        let direct = cfg.direct_links as usize;
        let repair = RepairState::new(&cfg);
        let start = super::summarize::totals(&transport, &shared, &ExecCounters::default());
        let summary = Recorder::new(Duration::ZERO, start);
        Actor {
            me,
            incarnation,
            cfg,
            transport,
            origin: Instant::now(),
            current: None,
            other: None,
            second: Second::None,
            timers: BTreeMap::new(),
            timer_seq: 0,
            links: Links::new(direct),
            shared,
            members: BTreeSet::new(),
            voters: Vec::new(),
            unreachable: BTreeSet::new(),
            up: BTreeSet::new(),
            rtt: BTreeMap::new(),
            overlay_links: BTreeSet::new(),
            summary,
            early: VecDeque::new(),
            check: None,
            queued: None,
            verified: None,
            last_failure: None,
            counters: ExecCounters::default(),
            published: ExecCounters::default(),
            repair,
            next_mesh_check: Instant::now(),
            next_health: Instant::now(),
            status,
            dirty: true,
            out: Vec::new(),
        }
    }

    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut events: mpsc::Receiver<TransportEvent>,
        mut applied: AppliedRx,
        cancel: CancellationToken,
    ) {
        let added = self.on_applied(&applied);
        self.on_members_added(added).await;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = self.timers.keys().next().map(|(t, _)| *t);
            let sleep = tokio::time::sleep_until(next_timer.unwrap_or_else(far_future));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                changed = applied.changed() => {
                    if changed.is_err() { break; }
                    let added = self.on_applied(&applied);
                    self.on_members_added(added).await;
                }
                Some(ev) = events.recv() => {
                    self.on_transport(ev).await;
                    // What else is queued, without a trip through the select.
                    for _ in 1..EVENT_BATCH {
                        let Ok(ev) = events.try_recv() else { break };
                        self.on_transport(ev).await;
                    }
                }
                _ = sleep, if next_timer.is_some() => self.fire_timers().await,
                _ = tick.tick() => self.on_tick().await,
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd).await,
                    None => break,
                },
            }
            self.publish();
        }
        self.shared.inbox.close();
        self.transport.shutdown().await;
    }

    pub fn now(&self) -> Duration {
        Instant::now() - self.origin
    }

    /// Live members other than this node: members not known unreachable.
    pub fn live(&self) -> BTreeSet<NodeId> {
        self.members
            .iter()
            .copied()
            .filter(|p| *p != self.me && (!self.unreachable.contains(p) || self.up.contains(p)))
            .collect()
    }

    /// Updates members, voters and the address book; returns the members
    /// that are new.
    fn on_applied(&mut self, applied: &AppliedRx) -> Vec<NodeId> {
        let a = applied.borrow().clone();
        let m = a.membership.membership();
        let mut book = BTreeMap::new();
        for (id, node) in m.nodes() {
            match node.peer_addr.parse::<SocketAddr>() {
                Ok(addr) => {
                    book.insert(*id, addr);
                }
                Err(e) => {
                    tracing::warn!(peer = id, addr = %node.peer_addr, error = %e, "member's peer address does not parse")
                }
            }
        }
        let members: BTreeSet<NodeId> = book.keys().copied().collect();
        let added = members
            .difference(&self.members)
            .copied()
            .filter(|p| *p != self.me)
            .collect();
        self.repair.gaps.retain(&members);
        self.members = members;
        self.voters = m.voter_ids().collect();
        self.transport.set_address_book(book);
        added
    }

    /// A node that built its overlay before it knew the membership (a new
    /// learner) joins through the members it learns of.
    async fn on_members_added(&mut self, added: Vec<NodeId>) {
        if added.is_empty() {
            return;
        }
        let ids: Vec<(u64, Topology, bool)> = self
            .current
            .iter()
            .chain(self.other.iter())
            .map(|i| (i.id, i.topology, i.overlay.links().is_empty()))
            .collect();
        for (id, topology, alone) in ids {
            let contacts = match topology {
                Topology::FullMesh => added.clone(),
                Topology::HyParView | Topology::PubSub if alone => self.contacts(topology),
                _ => continue,
            };
            self.drive(id, InEvent::Command(Command::Join(contacts)))
                .await;
        }
    }

    /// The contacts an overlay joins through. Full mesh and client-server
    /// take every member (one found unreachable earlier may be back: the
    /// transport keeps dialing it). HyParView (and Plumtree over it) joins
    /// through one contact, the same for every node (the lowest live
    /// member id, else the lowest member): concurrent joins through random
    /// contacts can leave two components that a small active view never
    /// merges.
    fn contacts(&self, topology: Topology) -> Vec<NodeId> {
        let others = self.members.iter().copied().filter(|p| *p != self.me);
        match topology {
            Topology::HyParView | Topology::PubSub => self
                .live()
                .first()
                .copied()
                .or_else(|| others.clone().next())
                .into_iter()
                .collect(),
            Topology::FullMesh | Topology::ClientServer => others.collect(),
        }
    }

    // ---- overlays ----

    pub fn instance_mut(&mut self, id: u64) -> Option<&mut Instance> {
        if self.current.as_ref().is_some_and(|i| i.id == id) {
            return self.current.as_mut();
        }
        self.other.as_mut().filter(|i| i.id == id)
    }

    /// Hands `event` to overlay `id` and carries out what it asks.
    pub async fn drive(&mut self, id: u64, event: InEvent<AnyMessage, AnyTimer>) {
        let now = self.now();
        let mut out = std::mem::take(&mut self.out);
        let Some(inst) = self.instance_mut(id) else {
            return;
        };
        let topology = inst.topology;
        inst.overlay.handle(now, event, &mut out);
        let mut down = Vec::new();
        for o in out.drain(..) {
            match o {
                OutEvent::Send { to, message } => {
                    if !self.send_overlay(id, topology, to, message).await {
                        down.push(to);
                    }
                }
                OutEvent::Connect(p) => {
                    let ch = self.links.acquire(p, LinkUser::Overlay(id));
                    if !self.apply_links(ch) {
                        down.push(p);
                    }
                }
                OutEvent::Disconnect(p) => {
                    for p in self.links.release(p, LinkUser::Overlay(id)) {
                        self.transport.disconnect(p);
                    }
                }
                OutEvent::ScheduleTimer { after, timer } => {
                    self.timer_seq += 1;
                    self.timers
                        .insert((Instant::now() + after, self.timer_seq), (id, timer));
                }
                OutEvent::Deliver {
                    id: mid,
                    payload,
                    hops,
                    ..
                } => self.on_deliver(id, mid, payload, hops).await,
                OutEvent::ViewChanged { .. } => self.dirty = true,
            }
        }
        self.out = out;
        for p in down {
            Box::pin(self.drive(id, InEvent::PeerDown(p))).await;
        }
    }

    /// Connects/disconnects as a link change asks; false if a connect was
    /// refused (the peer has no address).
    fn apply_links(&mut self, ch: LinkChanges) -> bool {
        let mut ok = true;
        for p in ch.disconnect {
            self.transport.disconnect(p);
        }
        for p in ch.connect {
            if let Err(e) = self.transport.connect(p) {
                tracing::debug!(peer = p, error = %e, "connect refused");
                self.links.forget(p);
                ok = false;
            }
        }
        ok
    }

    /// Makes sure there is a link (standing or on demand) to `peer`.
    fn ensure_link(&mut self, peer: NodeId) -> bool {
        if self.links.used(peer) {
            return true;
        }
        let ch = self.links.acquire(peer, LinkUser::Direct);
        self.apply_links(ch)
    }

    async fn send_overlay(
        &mut self,
        id: u64,
        topology: Topology,
        to: NodeId,
        message: AnyMessage,
    ) -> bool {
        let class = match message.class() {
            MessageClass::Payload => FrameClass::Data,
            _ => FrameClass::Control,
        };
        let frame = Frame::Overlay {
            instance: id,
            topology,
            message,
        };
        self.send_frame(to, class, encode(&frame)).await
    }

    /// Sends one frame; data frames wait for queue space. False if the
    /// peer cannot be reached.
    pub async fn send_frame(&mut self, to: NodeId, class: FrameClass, payload: Bytes) -> bool {
        if to == self.me || !self.ensure_link(to) {
            self.counters.send_failures += 1;
            return false;
        }
        let r = match self.transport.try_send(to, class, payload.clone()) {
            Err(SendError::Backpressure { .. }) => self.transport.send(to, payload).await,
            r => r,
        };
        match r {
            Ok(()) => true,
            Err(SendError::QueueFull { .. }) => true, // a control frame dropped and counted
            Err(e) => {
                self.counters.send_failures += 1;
                tracing::debug!(peer = to, error = %e, "send failed");
                !matches!(e, SendError::UnknownPeer { .. })
            }
        }
    }

    /// A broadcast the overlay delivered after `hops` hops.
    async fn on_deliver(&mut self, instance: u64, id: MessageId, payload: Bytes, hops: u32) {
        let body: Body = match decode("broadcast body", &payload) {
            Ok(b) => b,
            Err(e) => {
                self.counters.undecodable_frames += 1;
                tracing::warn!(error = %e, "broadcast dropped");
                return;
            }
        };
        match body {
            Body::App {
                channel,
                data,
                bseq,
            } => {
                self.broadcast_seen(id, bseq);
                // First delivery of another node's broadcast: its hops go
                // into the summary (a repeat over the draining overlay
                // does not count twice).
                if self.deliver_msg(id, &channel, data, true) && id.origin != self.me {
                    self.summary.record_hops(hops);
                }
            }
            Body::Probe { instance: probed } => {
                if id.origin == self.me || probed != instance {
                    return;
                }
                let ack = encode(&Frame::ProbeAck {
                    instance,
                    probe: id,
                });
                self.send_frame(id.origin, FrameClass::Control, ack).await;
            }
        }
    }

    /// Delivers a message unless it was seen (see `Inbox::deliver`);
    /// true if it was new.
    pub fn deliver_msg(
        &mut self,
        id: MessageId,
        channel: &str,
        payload: Bytes,
        bcast: bool,
    ) -> bool {
        self.shared.inbox.deliver(id, channel, payload, bcast)
    }

    pub fn subscribe(&mut self, channel: &str, cap: usize) -> broadcast::Receiver<Delivery> {
        self.shared.inbox.subscribe(channel, cap)
    }

    pub fn next_id(&mut self) -> MessageId {
        MessageId {
            origin: self.me,
            incarnation: self.incarnation,
            seq: self.shared.next_seq(),
        }
    }

    /// Broadcasts `body` over overlay `instance`.
    pub async fn broadcast_on(&mut self, instance: u64, body: &Body) -> MessageId {
        let id = self.next_id();
        self.broadcast_with(instance, id, body).await;
        id
    }

    /// Broadcasts `body` with id `id` over overlay `instance`.
    pub async fn broadcast_with(&mut self, instance: u64, id: MessageId, body: &Body) {
        let payload = encode(body);
        self.drive(
            instance,
            InEvent::Command(Command::Broadcast { id, payload }),
        )
        .await;
    }

    /// Starts overlay `inst` and joins it through the live members.
    pub async fn start_instance(&mut self, inst: Instance, as_current: bool) {
        let id = inst.id;
        let inst_topology = inst.topology;
        if as_current {
            self.current = Some(inst);
        } else {
            self.other = Some(inst);
        }
        let contacts = self.contacts(inst_topology);
        self.drive(id, InEvent::Command(Command::Join(contacts)))
            .await;
        // Frames that arrived before this node ran the instance.
        let early = std::mem::take(&mut self.early);
        for (from, instance, topology, message) in early {
            if instance == id {
                self.on_overlay_frame(from, instance, topology, message)
                    .await;
            } else if instance > id {
                self.early.push_back((from, instance, topology, message));
            }
        }
        self.dirty = true;
    }

    /// Stops overlay `id` (current or other): it says goodbye, its links
    /// and timers are released.
    pub async fn teardown(&mut self, id: u64) {
        if self.instance_mut(id).is_none() {
            return;
        }
        self.drive(id, InEvent::Command(Command::Leave)).await;
        if self.current.as_ref().is_some_and(|i| i.id == id) {
            self.current = None;
        } else {
            self.other = None;
            self.second = Second::None;
        }
        for p in self.links.release_overlay(id) {
            self.transport.disconnect(p);
        }
        self.timers.retain(|_, (i, _)| *i != id);
        self.dirty = true;
    }

    /// Marks the status for publishing if the counters moved.
    pub fn counters_moved(&mut self) {
        if self.shared.counters(&self.counters) != self.published {
            self.dirty = true;
        }
    }

    pub fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.published = self.shared.counters(&self.counters);
        let view = |i: &Instance| OverlayStatus {
            instance: i.id,
            topology: i.topology,
            links: i.overlay.links(),
            eager: i.overlay.eager_peers(),
        };
        let state = match (&self.current, &self.other, self.second) {
            (None, _, _) => ExecState::Starting,
            (Some(c), Some(o), Second::Shadow) => ExecState::Preparing {
                current: c.id,
                shadow: o.id,
            },
            (Some(c), Some(o), Second::Old { .. }) => ExecState::Draining {
                current: c.id,
                old: o.id,
            },
            (Some(c), _, _) => ExecState::Steady { current: c.id },
        };
        let st = ExecStatus {
            node: self.me,
            incarnation: self.incarnation,
            state,
            current: self.current.as_ref().map(view),
            other: self.other.as_ref().map(view),
            verified: self.verified,
            last_failure: self.last_failure.clone(),
            rtt_us: self
                .rtt
                .iter()
                .map(|(p, d)| (*p, d.as_micros() as u64))
                .collect(),
            counters: self.published.clone(),
        };
        self.overlay_links = st
            .current
            .as_ref()
            .map(|c| c.links.iter().copied().collect())
            .unwrap_or_default();
        self.status.send_replace(Arc::new(st));
    }

    /// Keeps a frame of an instance this node does not run yet (bounded:
    /// the oldest is dropped and counted).
    pub fn keep_early(
        &mut self,
        from: NodeId,
        instance: u64,
        topology: Topology,
        message: AnyMessage,
    ) {
        if self.early.len() >= self.cfg.early_frames as usize {
            if self.early.pop_front().is_none() {
                return;
            }
            self.counters.stale_frames_dropped += 1;
        }
        self.early.push_back((from, instance, topology, message));
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
