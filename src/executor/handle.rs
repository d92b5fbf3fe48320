//! [`ExecutorHandle`]: the cloneable handle to a node's executor task. It
//! implements the control plane's [`Executor`] and the channels API
//! (`broadcast`, `send`, `subscribe`); every call is a command on the
//! task's bounded queue, except the hot path of `send` (and of its batch
//! form `send_many`): a point-to-point
//! message to a peer this node already keeps a standing link to goes
//! straight into the transport's queue for that peer (see
//! [`ExecutorHandle::send`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::inbox::Inbox;
use super::status::{ExecCounters, ExecStatus};
use super::wire;
use crate::control::applied::AppliedRx;
use crate::control::executor::{ExecError, Executor};
use crate::model::{NodeId, NodeSummary, OverlayConfig, Topology, TransitionId};
use crate::overlay::MessageId;
use crate::transport::{FaultRules, Head, Transport, TransportError, TransportStats};

/// A message as a subscriber sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: MessageId,
    /// The node that sent it.
    pub origin: NodeId,
    /// The channel's name, shared by every delivery on it (no copy per
    /// message).
    pub channel: Arc<str>,
    pub payload: Bytes,
    /// Whether it was a broadcast (else point-to-point).
    pub broadcast: bool,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(Delivery),
    /// The subscriber fell behind and missed this many messages.
    Lagged(u64),
}

/// Why a channel call failed. In every case nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The executor's queue is full (non-blocking calls only).
    #[error("executor queue is full (backpressure): message not queued")]
    Backpressure,
    /// No overlay is built yet on this node.
    #[error("no overlay is running yet on this node")]
    NoOverlay,
    /// `peer` is not a member of the cluster.
    #[error("node {peer} is not a member of the cluster")]
    UnknownPeer { peer: NodeId },
    /// The executor has stopped (node shutting down).
    #[error("the executor has stopped")]
    Stopped,
    /// Client-to-client in client_server with no server to relay through.
    #[error("client {peer} is reachable only through a server, and none is known")]
    NoRoute { peer: NodeId },
    /// The message could not be handed to the link to `peer`.
    #[error("node {peer} cannot be reached: {reason}")]
    Unreachable { peer: NodeId, reason: String },
}

/// Commands to the executor task.
pub(crate) enum Cmd {
    Build {
        instance: TransitionId,
        topology: Topology,
        config: OverlayConfig,
        reply: oneshot::Sender<Result<(), ExecError>>,
    },
    Prepare {
        id: TransitionId,
        topology: Topology,
        config: OverlayConfig,
        reply: oneshot::Sender<Result<(), ExecError>>,
    },
    CutOver {
        id: TransitionId,
        reply: oneshot::Sender<Result<(), ExecError>>,
    },
    Abort {
        id: TransitionId,
        reply: oneshot::Sender<Result<(), ExecError>>,
    },
    Verify {
        reply: oneshot::Sender<Result<(), ExecError>>,
    },
    Broadcast {
        channel: String,
        data: Bytes,
    },
    Send {
        peer: NodeId,
        channel: String,
        data: Bytes,
        /// Told whether the frame was handed to a link.
        done: Option<oneshot::Sender<Result<(), ChannelError>>>,
    },
    Subscribe {
        channel: String,
        reply: oneshot::Sender<broadcast::Receiver<Delivery>>,
    },
    /// The node summary of the last `window`.
    Summary {
        window: Duration,
        reply: oneshot::Sender<NodeSummary>,
    },
}

/// What the handles and the executor task share.
pub(crate) struct SendShared {
    /// Subscribers and dedup, also fed by the link readers.
    pub inbox: Inbox,
    /// The node's message sequence: ids stay unique whether the task or
    /// a handle sends.
    pub seq: crate::executor::core::Seq,
    /// Point-to-point messages the handles queued themselves.
    direct_sent: AtomicU64,
}

impl SendShared {
    pub fn new(me: NodeId) -> Self {
        SendShared {
            inbox: Inbox::new(me),
            seq: Default::default(),
            direct_sent: AtomicU64::new(0),
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.next()
    }

    /// The first of `n` consecutive sequence numbers reserved at once.
    pub fn next_seqs(&self, n: u64) -> u64 {
        self.seq.next_many(n)
    }

    /// The task's counters with the handles' sends added.
    pub fn counters(&self, task: &ExecCounters) -> ExecCounters {
        let mut c = task.clone();
        c.direct_sent += self.direct_sent.load(Ordering::Relaxed);
        let (delivered, duplicates) = self.inbox.counts();
        c.delivered += delivered;
        c.duplicates_dropped += duplicates;
        c
    }
}

/// The handle to a node's executor. Cheap to clone.
#[derive(Clone)]
pub struct ExecutorHandle {
    pub(crate) me: NodeId,
    pub(crate) incarnation: u32,
    pub(crate) shared: Arc<SendShared>,
    pub(crate) cmds: mpsc::Sender<Cmd>,
    pub(crate) status: watch::Receiver<Arc<ExecStatus>>,
    pub(crate) applied: AppliedRx,
    pub(crate) transport: Transport,
}

/// A stream of one channel's messages.
pub struct Subscription {
    rx: broadcast::Receiver<Delivery>,
}

impl Subscription {
    /// The next message, or how many were missed. `None` once the node
    /// stops.
    pub async fn recv(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(d) => Some(Event::Message(d)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Event::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The subscription as a `Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Event> {
        futures::stream::unfold(self, |mut s| async move { s.recv().await.map(|e| (e, s)) })
    }
}

impl ExecutorHandle {
    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// The executor's state, links and figures, as last published.
    pub fn status(&self) -> Arc<ExecStatus> {
        self.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn watch_status(&self) -> watch::Receiver<Arc<ExecStatus>> {
        self.status.clone()
    }

    /// Per-peer transport figures.
    pub fn transport_stats(&self) -> TransportStats {
        self.transport.stats()
    }

    /// This node's summary of itself over the last `window` (figures of
    /// at most the last 10 minutes; see [`super::summary`]). Asked of the
    /// executor task; waits for queue space.
    pub async fn summary(&self, window: Duration) -> Result<NodeSummary, ChannelError> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Summary { window, reply })
            .await
            .map_err(|_| ChannelError::Stopped)?;
        rx.await.map_err(|_| ChannelError::Stopped)
    }

    /// Installs fault rules in the transport (chaos mode only).
    pub fn set_faults(&self, rules: FaultRules) -> Result<(), TransportError> {
        self.transport.set_faults(rules)
    }

    /// Removes every fault rule (chaos mode only).
    pub fn clear_faults(&self) -> Result<(), TransportError> {
        self.transport.clear_faults()
    }

    /// The installed fault rules (`None` when none are installed).
    pub fn faults(&self) -> Option<FaultRules> {
        self.transport.faults()
    }

    /// Whether chaos mode is on, so that fault rules are accepted.
    pub fn chaos_enabled(&self) -> bool {
        self.transport.chaos_enabled()
    }

    fn ready(&self) -> Result<(), ChannelError> {
        if self.status.borrow().current.is_none() {
            return Err(ChannelError::NoOverlay);
        }
        Ok(())
    }

    /// Broadcasts `data` on `channel` to every member over the current
    /// overlay; waits for queue space.
    pub async fn broadcast(&self, channel: &str, data: Bytes) -> Result<(), ChannelError> {
        self.ready()?;
        let cmd = Cmd::Broadcast {
            channel: channel.to_string(),
            data,
        };
        self.cmds.send(cmd).await.map_err(|_| ChannelError::Stopped)
    }

    /// Like [`ExecutorHandle::broadcast`], but fails with `Backpressure`
    /// instead of waiting.
    pub fn try_broadcast(&self, channel: &str, data: Bytes) -> Result<(), ChannelError> {
        self.ready()?;
        let cmd = Cmd::Broadcast {
            channel: channel.to_string(),
            data,
        };
        self.cmds.try_send(cmd).map_err(queue_err)
    }

    fn check_peer(&self, peer: NodeId) -> Result<(), ChannelError> {
        let applied = self.applied.borrow();
        if !applied
            .membership
            .membership()
            .nodes()
            .any(|(id, _)| *id == peer)
        {
            return Err(ChannelError::UnknownPeer { peer });
        }
        Ok(())
    }

    /// Sends `data` on `channel` to `peer`; waits for queue space.
    ///
    /// When this node keeps a standing link to `peer` (an overlay link or
    /// a direct link opened by an earlier send) and the message goes
    /// straight to it (every topology but client_server, where a client's
    /// message to another client goes through a server), the handle
    /// encodes the frame and queues it in the transport itself: no trip
    /// through the executor task, and no copy of `data`. Otherwise the
    /// task sends it (opening the link, choosing the route), and this call
    /// returns once it has, so a later send from the same caller never
    /// overtakes it. Either way the message id comes from the node's one
    /// sequence, so the receiver's dedup sees each message once.
    ///
    /// `Ok` means the message was handed to a link (the transport's queue
    /// for the next hop, or the task's spill queue for a peer whose queue
    /// is full); it is not an acknowledgement from the peer, and a message
    /// in a link that is replaced during a switch is not resent. Otherwise
    /// the error says why nothing was sent: `UnknownPeer`, `NoRoute`
    /// (client to client in client_server with no server known),
    /// `Unreachable` (the link refused it), `Backpressure` (the peer's spill
    /// queue is full too), `Stopped`.
    pub async fn send(&self, peer: NodeId, channel: &str, data: Bytes) -> Result<(), ChannelError> {
        self.check_peer(peer)?;
        if self.sends_directly(peer) {
            let id = MessageId {
                origin: self.me,
                incarnation: self.incarnation,
                seq: self.shared.next_seq(),
            };
            let head = wire::direct_head(id, peer, channel, data.len());
            match self
                .transport
                .send_connected(peer, head, data.clone())
                .await
            {
                Ok(()) => {
                    self.shared.direct_sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                // No standing link (yet, or any more), or a failure the
                // task reports and counts: the task takes over.
                Err(e) => tracing::trace!(peer, error = %e, "send through the executor task"),
            }
        }
        self.send_via_task(peer, channel, data).await
    }

    /// Sends each of `payloads` on `channel` to `peer`, in order, as
    /// separate messages — exactly as that many calls of
    /// [`ExecutorHandle::send`] would (one id each, delivered and
    /// deduplicated one by one; waits for queue space) — but cheaper per
    /// message on the direct path: one membership check, one look at the
    /// overlay, one block of ids and one lock of the transport's peer map
    /// for every run of messages the link's queue has room for, instead
    /// of one each per message. For a caller that has several messages
    /// for the same peer at hand (a batch API, not a buffer: nothing is
    /// held back waiting for more).
    ///
    /// On an error, the messages before the failing one were sent and
    /// the rest were not.
    pub async fn send_many<I>(
        &self,
        peer: NodeId,
        channel: &str,
        payloads: I,
    ) -> Result<(), ChannelError>
    where
        I: IntoIterator<Item = Bytes>,
    {
        self.check_peer(peer)?;
        let mut rest: Vec<Bytes> = payloads.into_iter().collect();
        if rest.is_empty() {
            return Ok(());
        }
        if self.sends_directly(peer) {
            let n = rest.len() as u64;
            let first = self.shared.next_seqs(n);
            let mut frames: std::collections::VecDeque<(Head, Bytes)> = rest
                .drain(..)
                .enumerate()
                .map(|(i, data)| {
                    let id = MessageId {
                        origin: self.me,
                        incarnation: self.incarnation,
                        seq: first + i as u64,
                    };
                    (wire::direct_head(id, peer, channel, data.len()), data)
                })
                .collect();
            let r = self.transport.send_connected_many(peer, &mut frames).await;
            let queued = n - frames.len() as u64;
            self.shared.direct_sent.fetch_add(queued, Ordering::Relaxed);
            match r {
                Ok(()) => return Ok(()),
                // As in `send`: the task takes over (new ids).
                Err(e) => tracing::trace!(peer, error = %e, "send through the executor task"),
            }
            rest = frames.into_iter().map(|(_, data)| data).collect();
        }
        for data in rest {
            self.send_via_task(peer, channel, data).await?;
        }
        Ok(())
    }

    async fn send_via_task(
        &self,
        peer: NodeId,
        channel: &str,
        data: Bytes,
    ) -> Result<(), ChannelError> {
        let (done, rx) = oneshot::channel();
        let cmd = Cmd::Send {
            peer,
            channel: channel.to_string(),
            data,
            done: Some(done),
        };
        self.cmds
            .send(cmd)
            .await
            .map_err(|_| ChannelError::Stopped)?;
        rx.await.map_err(|_| ChannelError::Stopped)?
    }

    /// Whether a message to `peer` goes straight to it (see `send`).
    fn sends_directly(&self, peer: NodeId) -> bool {
        peer != self.me
            && self
                .status
                .borrow()
                .current
                .as_ref()
                .is_some_and(|c| c.topology != Topology::ClientServer)
    }

    /// Like [`ExecutorHandle::send`], but fails with `Backpressure`
    /// instead of waiting.
    pub fn try_send(&self, peer: NodeId, channel: &str, data: Bytes) -> Result<(), ChannelError> {
        self.check_peer(peer)?;
        let cmd = Cmd::Send {
            peer,
            channel: channel.to_string(),
            data,
            done: None,
        };
        self.cmds.try_send(cmd).map_err(queue_err)
    }

    /// Subscribes to `channel`: broadcasts and point-to-point messages on
    /// it, each at most once.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, ChannelError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::Subscribe {
            channel: channel.to_string(),
            reply,
        };
        self.cmds
            .send(cmd)
            .await
            .map_err(|_| ChannelError::Stopped)?;
        let rx = rx.await.map_err(|_| ChannelError::Stopped)?;
        Ok(Subscription { rx })
    }

    fn call(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), ExecError>>) -> Cmd,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        let cmds = self.cmds.clone();
        let (reply, rx) = oneshot::channel();
        let cmd = make(reply);
        Box::pin(async move {
            cmds.send(cmd).await.map_err(|_| ExecError::Stopped)?;
            rx.await.map_err(|_| ExecError::Stopped)?
        })
    }
}

fn queue_err(e: mpsc::error::TrySendError<Cmd>) -> ChannelError {
    match e {
        mpsc::error::TrySendError::Full(_) => ChannelError::Backpressure,
        mpsc::error::TrySendError::Closed(_) => ChannelError::Stopped,
    }
}

impl Executor for ExecutorHandle {
    fn build_current(
        &self,
        instance: TransitionId,
        topology: Topology,
        config: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        self.call(|reply| Cmd::Build {
            instance,
            topology,
            config,
            reply,
        })
    }
    fn prepare(
        &self,
        id: TransitionId,
        topology: Topology,
        config: OverlayConfig,
    ) -> BoxFuture<'static, Result<(), ExecError>> {
        self.call(|reply| Cmd::Prepare {
            id,
            topology,
            config,
            reply,
        })
    }
    fn cut_over(&self, id: TransitionId) -> BoxFuture<'static, Result<(), ExecError>> {
        self.call(|reply| Cmd::CutOver { id, reply })
    }
    fn abort(&self, id: TransitionId) -> BoxFuture<'static, Result<(), ExecError>> {
        self.call(|reply| Cmd::Abort { id, reply })
    }
    fn verify(&self) -> BoxFuture<'static, Result<(), ExecError>> {
        self.call(|reply| Cmd::Verify { reply })
    }
}
