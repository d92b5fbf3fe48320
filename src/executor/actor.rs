//! [`Actor`]: the one task per node that owns the executor's
//! [`Core`](super::core::Core) and carries out what it asks on the
//! transport. It is a thin shell: it turns commands, transport events,
//! timers and applied-state changes into core inputs (with `now`), and the
//! core's outputs into transport calls, deliveries, answers and timers. It
//! never waits on a peer: frames go into the transport with `try_send`,
//! and a data frame that finds a peer's queue full waits in that peer's
//! spill queue (`super::spill`). Commands and transport events are served
//! fairly (an unbiased select), so an inbound flood does not starve
//! prepares and sends.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::config::ExecutorConfig;
use super::core::{Core, Input, Output, SendRefusal, Timer, Token};
use super::handle::{ChannelError, Cmd, SendShared};
use super::spill::{Spills, Spilt};
use super::status::{ExecCounters, ExecStatus};
use super::summary::Recorder;
use crate::control::applied::AppliedRx;
use crate::control::executor::ExecError;
use crate::model::NodeId;
use crate::transport::{FrameClass, LinkDownReason, SendError, Transport, TransportEvent};

/// Transport events (and commands) handled per wake-up at most (measured
/// with `bench_p2p`; small enough that the other side waits little).
const EVENT_BATCH: usize = 64;
/// Counters are republished at most this often when nothing else changed.
const COUNTERS_EVERY: Duration = Duration::from_millis(100);

/// Who waits for an answer the core will give.
enum Pending {
    Exec(oneshot::Sender<Result<(), ExecError>>),
    Sent(oneshot::Sender<Result<(), ChannelError>>),
}

pub(crate) struct Actor {
    me: NodeId,
    incarnation: u32,
    cfg: ExecutorConfig,
    core: Core,
    transport: Transport,
    origin: Instant,
    timers: BTreeMap<(Duration, u64), Timer>,
    timer_seq: u64,
    pending: BTreeMap<Token, Pending>,
    next_token: u64,
    /// Shared with the handles, which send point-to-point messages
    /// themselves when they can.
    shared: Arc<SendShared>,
    spills: Spills,
    /// The sliding window of the node summary (`super::summary`).
    pub(super) summary: Recorder,
    /// The current overlay's links as last published (RTT samples of
    /// these peers go into the summary's window).
    overlay_links: BTreeSet<NodeId>,
    status: watch::Sender<Arc<ExecStatus>>,
    /// The counters as last published.
    published: ExecCounters,
    published_at: Duration,
    /// A round trip was measured since the last publish.
    rtt_moved: bool,
    out: Vec<Output>,
    feedback: Vec<Input>,
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
        let start = super::summarize::totals(&transport, &shared, &ExecCounters::default());
        let core = Core::new(me, incarnation, cfg.clone(), shared.seq.clone());
        Actor {
            me,
            incarnation,
            cfg,
            core,
            transport,
            origin: Instant::now(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            pending: BTreeMap::new(),
            next_token: 0,
            shared,
            spills: Spills::default(),
            summary: Recorder::new(Duration::ZERO, start),
            overlay_links: BTreeSet::new(),
            status,
            published: ExecCounters::default(),
            published_at: Duration::ZERO,
            rtt_moved: false,
            out: Vec::new(),
            feedback: Vec::new(),
        }
    }

    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut events: mpsc::Receiver<TransportEvent>,
        mut applied: AppliedRx,
        cancel: CancellationToken,
    ) {
        self.on_applied(&applied);
        loop {
            let next_timer = self.timers.keys().next().map(|(t, _)| *t);
            let next_slot = self.summary.next_close();
            let wake = next_timer.map_or(next_slot, |t| t.min(next_slot));
            let sleep = tokio::time::sleep_until(self.origin + wake);
            tokio::select! {
                _ = cancel.cancelled() => break,
                changed = applied.changed() => {
                    if changed.is_err() { break; }
                    self.on_applied(&applied);
                }
                Some(ev) = events.recv() => {
                    self.on_transport(ev);
                    // What else is queued, without a trip through the select.
                    for _ in 1..EVENT_BATCH {
                        let Ok(ev) = events.try_recv() else { break };
                        self.on_transport(ev);
                    }
                }
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => {
                        self.on_cmd(cmd);
                        for _ in 1..EVENT_BATCH {
                            let Ok(cmd) = cmds.try_recv() else { break };
                            self.on_cmd(cmd);
                        }
                    }
                    None => break,
                },
                _ = sleep => {
                    self.fire_timers();
                    self.summary_tick();
                }
            }
            self.publish();
        }
        self.shared.inbox.close();
        self.transport.shutdown().await;
    }

    pub fn now(&self) -> Duration {
        Instant::now() - self.origin
    }

    /// Hands `input` to the core and carries out what it asks (and what
    /// that feeds back).
    fn feed(&mut self, input: Input) {
        let mut input = Some(input);
        while let Some(i) = input.take().or_else(|| self.feedback.pop()) {
            let now = self.now();
            let mut out = std::mem::take(&mut self.out);
            self.core.handle(now, i, &mut out);
            for o in out.drain(..) {
                self.execute(now, o);
            }
            self.out = out;
        }
    }

    fn token(&mut self, p: Pending) -> Token {
        self.next_token += 1;
        let t = Token(self.next_token);
        self.pending.insert(t, p);
        t
    }

    fn execute(&mut self, now: Duration, o: Output) {
        match o {
            Output::Send {
                to,
                class,
                frame,
                token,
            } => self.send(to, class, frame, token),
            Output::Connect(p) => {
                if let Err(e) = self.transport.connect(p) {
                    tracing::debug!(peer = p, error = %e, "connect refused");
                    self.feedback.push(Input::Undeliverable {
                        peer: p,
                        unknown: true,
                    });
                }
            }
            Output::Disconnect(p) => {
                self.transport.disconnect(p);
            }
            Output::Deliver {
                id,
                channel,
                payload,
                broadcast,
                hops,
            } => {
                if broadcast {
                    self.shared.inbox.deliver_new(id, &channel, payload, true);
                } else {
                    self.shared.inbox.deliver(id, &channel, payload, false);
                }
                if let Some(h) = hops {
                    self.summary.record_hops(h);
                }
            }
            Output::Reply { token, result } => match self.pending.remove(&token) {
                Some(Pending::Exec(tx)) => {
                    if tx.send(result).is_err() {
                        tracing::debug!("nobody waits for the executor's answer any more");
                    }
                }
                Some(Pending::Sent(_)) | None => {}
            },
            Output::Sent { token, result } => self.answer_sent(token, result.map_err(refusal)),
            Output::ScheduleTimer { after, timer } => {
                self.timer_seq += 1;
                self.timers.insert((now + after, self.timer_seq), timer);
            }
        }
    }

    fn answer_sent(&mut self, token: Token, result: Result<(), ChannelError>) {
        if let Some(Pending::Sent(tx)) = self.pending.remove(&token) {
            if tx.send(result).is_err() {
                tracing::debug!("sender gone before its send was answered");
            }
        }
    }

    /// One frame the core asked for, without waiting (see `super::spill`).
    fn send(&mut self, to: NodeId, class: FrameClass, frame: bytes::Bytes, token: Option<Token>) {
        let done = token.and_then(|t| match self.pending.remove(&t) {
            Some(Pending::Sent(tx)) => Some(tx),
            Some(p) => {
                self.pending.insert(t, p);
                None
            }
            None => None,
        });
        let result = match class {
            FrameClass::Control => match self.transport.try_send(to, class, frame) {
                // A control frame dropped on a full queue is counted by the
                // transport.
                Ok(()) | Err(SendError::QueueFull { .. }) => Ok(()),
                Err(e) => Err(e),
            },
            FrameClass::Data => match self.spills.send(&self.transport, to, frame, done) {
                (Spilt::Queued, done) => {
                    answer(done, Ok(()));
                    return;
                }
                (Spilt::Failed(e), done) => {
                    answer(
                        done,
                        Err(ChannelError::Unreachable {
                            peer: to,
                            reason: e.to_string(),
                        }),
                    );
                    Err(e)
                }
                (Spilt::Full, done) => {
                    answer(done, Err(ChannelError::Backpressure));
                    self.feedback.push(Input::Undeliverable {
                        peer: to,
                        unknown: false,
                    });
                    return;
                }
            },
        };
        if let Err(e) = result {
            tracing::debug!(peer = to, error = %e, "send failed");
            self.feedback.push(Input::Undeliverable {
                peer: to,
                unknown: matches!(e, SendError::UnknownPeer { .. }),
            });
        }
    }

    /// Updates the address book and the core's members and voters.
    fn on_applied(&mut self, applied: &AppliedRx) {
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
        self.transport.set_address_book(book);
        self.shared.inbox.retain(&members);
        self.spills.retain(&members);
        let voters = m.voter_ids().collect();
        self.feed(Input::Members { members, voters });
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        let input = match cmd {
            Cmd::Build {
                instance,
                topology,
                config,
                reply,
            } => Input::Build {
                token: self.token(Pending::Exec(reply)),
                instance,
                topology,
                config,
            },
            Cmd::Prepare {
                id,
                topology,
                config,
                reply,
            } => Input::Prepare {
                token: self.token(Pending::Exec(reply)),
                id,
                topology,
                config,
            },
            Cmd::CutOver { id, reply } => Input::CutOver {
                token: self.token(Pending::Exec(reply)),
                id,
            },
            Cmd::Abort { id, reply } => Input::Abort {
                token: self.token(Pending::Exec(reply)),
                id,
            },
            Cmd::Verify { reply } => Input::Verify {
                token: self.token(Pending::Exec(reply)),
            },
            Cmd::Broadcast { channel, data } => Input::Broadcast { channel, data },
            Cmd::Send {
                peer,
                channel,
                data,
                done,
            } => Input::Send {
                token: done.map(|d| self.token(Pending::Sent(d))),
                id: crate::overlay::MessageId {
                    origin: self.me,
                    incarnation: self.incarnation,
                    seq: self.shared.seq.next(),
                },
                peer,
                channel,
                data,
            },
            Cmd::Summary { window, reply } => {
                if reply.send(self.node_summary(window)).is_err() {
                    tracing::debug!("nobody waits for the summary any more");
                }
                return;
            }
            Cmd::Subscribe { channel, reply } => {
                let cap = self.cfg.subscriber_queue_len as usize;
                let rx = self.shared.inbox.subscribe(&channel, cap);
                if reply.send(rx).is_err() {
                    tracing::debug!(channel, "subscriber gone before its subscription");
                }
                return;
            }
        };
        self.feed(input);
    }

    fn on_transport(&mut self, ev: TransportEvent) {
        let input = match ev {
            TransportEvent::Frame { from, payload, .. } => Input::Frame { from, payload },
            TransportEvent::LinkUp { peer } => Input::LinkUp(peer),
            TransportEvent::LinkDown { peer, reason } => {
                metrics::counter!("topod_executor_disconnects_total").increment(1);
                Input::LinkDown {
                    peer,
                    failed: !matches!(
                        reason,
                        LinkDownReason::Replaced
                            | LinkDownReason::Disconnected
                            | LinkDownReason::Shutdown
                    ),
                }
            }
            TransportEvent::SendFailed { peer, .. } => Input::SendFailed(peer),
            TransportEvent::Rtt { peer, rtt } => {
                // One series per node, never per peer (per-peer RTTs are
                // in /v1/node/stats).
                metrics::histogram!("topod_overlay_rtt_seconds").record(rtt.as_secs_f64());
                if self.overlay_links.contains(&peer) {
                    self.summary.record_rtt(rtt);
                }
                self.rtt_moved = true;
                Input::Rtt { peer, rtt }
            }
        };
        self.feed(input);
    }

    fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            self.feed(Input::Timer(timer));
        }
    }

    /// The counters of the task, the handles and the spill queues.
    fn counters(&self) -> ExecCounters {
        let mut c = self.shared.counters(self.core.counters());
        c.send_failures += self.spills.failed.load(Ordering::Relaxed);
        c
    }

    /// Publishes the status when it changed (counters and round trips:
    /// at most every `COUNTERS_EVERY` unless something else changed too).
    fn publish(&mut self) {
        let now = self.now();
        let dirty = self.core.take_dirty();
        if !dirty && now < self.published_at + COUNTERS_EVERY {
            return;
        }
        let counters = self.counters();
        if !dirty && !self.rtt_moved && counters == self.published {
            return;
        }
        self.rtt_moved = false;
        self.published = counters.clone();
        self.published_at = now;
        let (current, other) = self.core.overlay_status();
        self.overlay_links = current
            .as_ref()
            .map(|c| c.links.iter().copied().collect())
            .unwrap_or_default();
        let st = ExecStatus {
            node: self.me,
            incarnation: self.incarnation,
            state: self.core.state(),
            current,
            other,
            verified: self.core.verified(),
            last_failure: self.core.last_failure().map(str::to_string),
            rtt_us: self
                .core
                .rtt()
                .iter()
                .map(|(p, d)| (*p, d.as_micros() as u64))
                .collect(),
            counters,
        };
        self.status.send_replace(Arc::new(st));
    }

    pub(super) fn core(&self) -> &Core {
        &self.core
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.transport
    }

    pub(super) fn shared(&self) -> &Arc<SendShared> {
        &self.shared
    }

    pub(super) fn me(&self) -> NodeId {
        self.me
    }

    pub(super) fn task_counters(&self) -> ExecCounters {
        let mut c = self.core.counters().clone();
        c.send_failures += self.spills.failed.load(Ordering::Relaxed);
        c
    }
}

fn answer(done: Option<oneshot::Sender<Result<(), ChannelError>>>, r: Result<(), ChannelError>) {
    if let Some(tx) = done {
        if tx.send(r).is_err() {
            tracing::debug!("sender gone before its send was answered");
        }
    }
}

fn refusal(e: SendRefusal) -> ChannelError {
    match e {
        SendRefusal::UnknownPeer { peer } => ChannelError::UnknownPeer { peer },
        SendRefusal::NoOverlay => ChannelError::NoOverlay,
        SendRefusal::NoRoute { peer } => ChannelError::NoRoute { peer },
    }
}
