//! One task per peer owns everything about the link to it: the current
//! link, the dial in progress, the reconnect backoff, and the choice
//! between two simultaneous connections. The handle reaches it through the
//! peer's bounded send queue, its inbox of incoming links, a `standing`
//! flag, and a cancellation token.
//!
//! **One link per pair.** When both nodes dial at once, the connection
//! dialed by the lower node id wins on both sides: the accepting side
//! answers the loser with `Duplicate` before either side sends a frame on
//! it, so the owner sees no `LinkUp`/`LinkDown` flap. A second connection
//! dialed by the same node as the current link replaces it (that node lost
//! the old one).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::sync::{mpsc, watch, Mutex as AsyncMutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::codec::WireFrame;
use super::handle::Inner;
use super::handshake::{self, Established, HandshakeError};
use super::link;
use super::stats::PeerCounters;
use super::{FrameClass, LinkDownReason, TransportEvent};
use crate::model::NodeId;

/// Bytes of a [`Head`] kept inline, without an allocation.
const HEAD_INLINE: usize = 54;

/// The first part of a frame's payload (see
/// [`Transport::send_connected`](super::Transport::send_connected)): up to
/// 54 bytes are kept inline (a message header needs no allocation per
/// frame), longer ones as `Bytes`.
#[derive(Clone)]
pub enum Head {
    Inline { len: u8, buf: [u8; HEAD_INLINE] },
    Shared(Bytes),
}

impl Head {
    /// A copy of `bytes`, inline when it is short.
    pub fn copy_from_slice(bytes: &[u8]) -> Head {
        if bytes.len() <= HEAD_INLINE {
            let mut buf = [0u8; HEAD_INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Head::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            Head::Shared(Bytes::copy_from_slice(bytes))
        }
    }
}

impl Default for Head {
    fn default() -> Self {
        Head::Inline {
            len: 0,
            buf: [0; HEAD_INLINE],
        }
    }
}

impl From<Bytes> for Head {
    fn from(b: Bytes) -> Head {
        Head::Shared(b)
    }
}

impl std::ops::Deref for Head {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Head::Inline { len, buf } => &buf[..*len as usize],
            Head::Shared(b) => b,
        }
    }
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Head").field(&&self[..]).finish()
    }
}

/// A frame waiting in a peer's send queue.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub class: FrameClass,
    /// Sent right before `payload`, in the same frame (often empty): the
    /// receiver gets one payload, `head` then `payload`.
    pub head: Head,
    pub payload: Bytes,
    /// When it was queued: a fault-filter delay counts from here. `None`
    /// when the fault filter is off (chaos disabled): nothing is delayed
    /// then, and the clock is not read per frame.
    pub created: Option<Instant>,
}

type Queue = Arc<AsyncMutex<mpsc::Receiver<Outgoing>>>;

struct Link {
    dialer: NodeId,
    cancel: CancellationToken,
    task: JoinHandle<LinkDownReason>,
}

pub(crate) struct PeerTask {
    inner: Arc<Inner>,
    peer: NodeId,
    gen: u64,
    counters: Arc<PeerCounters>,
    inbox: mpsc::Receiver<Established>,
    standing: watch::Receiver<bool>,
    /// Locked by the link task while a link runs; kept here so that a link
    /// task's failure never loses the queue.
    queue: Queue,
    cancel: CancellationToken,
    link: Option<Link>,
    dial: Option<JoinHandle<Result<Established, HandshakeError>>>,
    next_dial: Option<Instant>,
    /// Failed dials since the last link: the backoff exponent.
    attempt: u32,
}

impl PeerTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inner: Arc<Inner>,
        peer: NodeId,
        gen: u64,
        counters: Arc<PeerCounters>,
        inbox: mpsc::Receiver<Established>,
        standing: watch::Receiver<bool>,
        queue: mpsc::Receiver<Outgoing>,
        cancel: CancellationToken,
    ) -> Self {
        PeerTask {
            inner,
            peer,
            gen,
            counters,
            inbox,
            standing,
            queue: Arc::new(AsyncMutex::new(queue)),
            cancel,
            link: None,
            dial: None,
            next_dial: None,
            attempt: 0,
        }
    }

    pub async fn run(mut self, first: Option<Established>) {
        match first {
            Some(est) => self.on_incoming(est).await,
            None if *self.standing.borrow() => self.next_dial = Some(Instant::now()),
            None => {}
        }
        loop {
            if self.idle() && self.retire() {
                self.discard_queue("no link and no standing connect").await;
                return;
            }
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return self.stop().await,
                r = link_done(&mut self.link) => self.on_link_down(r).await,
                Some(est) = self.inbox.recv() => self.on_incoming(est).await,
                r = dial_done(&mut self.dial) => self.on_dial(r).await,
                _ = sleep_until(self.next_dial) => self.start_dial(),
                Ok(()) = self.standing.changed() => {
                    if *self.standing.borrow() && self.link.is_none() && self.dial.is_none() {
                        self.next_dial = Some(Instant::now());
                    }
                }
            }
        }
    }

    fn idle(&self) -> bool {
        self.link.is_none() && self.dial.is_none() && !*self.standing.borrow()
    }

    /// Removes this peer's entry unless a `connect` or an incoming link
    /// arrived meanwhile (both happen under the same lock).
    fn retire(&mut self) -> bool {
        let mut peers = self.inner.lock_peers();
        let ours = peers.get(&self.peer).is_some_and(|e| e.gen == self.gen);
        if !ours {
            return true;
        }
        if *self.standing.borrow() || !self.inbox.is_empty() {
            return false;
        }
        peers.remove(&self.peer);
        true
    }

    async fn on_incoming(&mut self, mut est: Established) {
        if !self.incoming_wins() {
            tracing::debug!(peer = self.peer, "simultaneous link: keeping ours");
            if let Err(e) = handshake::answer(&self.inner, &mut est, WireFrame::Duplicate).await {
                tracing::debug!(peer = self.peer, error = %e, "could not answer Duplicate");
            }
            return;
        }
        if let Err(e) = handshake::answer(&self.inner, &mut est, WireFrame::Ready).await {
            tracing::info!(peer = self.peer, error = %e, "incoming link lost before Ready");
            return;
        }
        if let Some(d) = self.dial.take() {
            d.abort();
        }
        self.adopt(est).await;
    }

    /// Whether a new incoming link (dialed by the peer) should become the
    /// link. Both sides reach the same answer: see the module doc.
    fn incoming_wins(&self) -> bool {
        match &self.link {
            // The peer dialed both: it lost the old one.
            Some(l) if l.dialer == self.peer => true,
            Some(_) => self.peer < self.inner.me,
            None if self.dial.is_some() => self.peer < self.inner.me,
            None => true,
        }
    }

    async fn on_dial(&mut self, r: Result<Established, HandshakeError>) {
        self.dial = None;
        match r {
            Ok(est) => {
                if self.link.as_ref().is_some_and(|l| l.dialer < self.inner.me) {
                    // The peer's link (dialed by the lower id) already won.
                    return;
                }
                self.adopt(est).await;
            }
            Err(HandshakeError::Duplicate) => {
                // The peer's simultaneous link wins; it is on its way.
                self.schedule_dial();
            }
            Err(e) => {
                tracing::debug!(peer = self.peer, error = %e, "dial failed");
                self.inner.event_lossy(TransportEvent::SendFailed {
                    peer: self.peer,
                    reason: e.to_string(),
                    unsent: 0,
                });
                self.attempt = self.attempt.saturating_add(1);
                self.schedule_dial();
            }
        }
    }

    fn start_dial(&mut self) {
        self.next_dial = None;
        if self.link.is_some() || self.dial.is_some() || !*self.standing.borrow() {
            return;
        }
        let dial = handshake::dial(self.inner.clone(), self.peer);
        self.dial = Some(self.inner.tracker.spawn(dial));
    }

    fn schedule_dial(&mut self) {
        if *self.standing.borrow() && self.link.is_none() {
            self.next_dial = Some(Instant::now() + self.backoff());
        }
    }

    /// `reconnect_min · 2^attempt`, at most `reconnect_max`, uniform in
    /// [d/2, d] so that a restarted cluster does not redial in lockstep.
    fn backoff(&self) -> Duration {
        let min = self.inner.config.reconnect_min();
        let max = self.inner.config.reconnect_max();
        let d = min.saturating_mul(1 << self.attempt.min(20)).min(max);
        rand::thread_rng().gen_range(d / 2..=d)
    }

    async fn adopt(&mut self, est: Established) {
        if let Some(old) = self.link.take() {
            self.close(old, LinkDownReason::Replaced).await;
        }
        self.attempt = 0;
        self.next_dial = None;
        self.counters.link(true);
        tracing::info!(peer = self.peer, dialer = est.dialer, "link up");
        // False only at shutdown: the link task then ends at once and
        // `stop` accounts for it.
        if !self
            .inner
            .event(TransportEvent::LinkUp { peer: self.peer })
            .await
        {
            tracing::debug!(peer = self.peer, "LinkUp not delivered: shutting down");
        }
        let cancel = self.cancel.child_token();
        let (inner, counters, queue) = (
            self.inner.clone(),
            self.counters.clone(),
            self.queue.clone(),
        );
        let dialer = est.dialer;
        let task_cancel = cancel.clone();
        let task = self.inner.tracker.spawn(async move {
            let mut q = queue.lock().await;
            tokio::select! {
                r = link::run(inner, counters, est, &mut q) => r,
                _ = task_cancel.cancelled() => LinkDownReason::Shutdown,
            }
        });
        self.link = Some(Link {
            dialer,
            cancel,
            task,
        });
    }

    async fn on_link_down(&mut self, reason: LinkDownReason) {
        self.link = None;
        self.went_down(reason).await;
        self.schedule_dial();
    }

    /// Stops `link` and reports it down with `reason`.
    async fn close(&mut self, link: Link, reason: LinkDownReason) {
        link.cancel.cancel();
        if let Err(e) = link.task.await {
            tracing::error!(peer = self.peer, error = %e, "link task failed");
        }
        self.went_down(reason).await;
    }

    async fn went_down(&mut self, reason: LinkDownReason) {
        self.counters.link(false);
        tracing::info!(peer = self.peer, %reason, "link down");
        let ev = TransportEvent::LinkDown {
            peer: self.peer,
            reason,
        };
        // False only at shutdown, when nobody needs the event.
        if !self.inner.event(ev).await {
            tracing::debug!(peer = self.peer, "LinkDown not delivered: shutting down");
        }
    }

    /// Cancelled: by `disconnect` (the entry is already gone) or shutdown.
    async fn stop(&mut self) {
        if let Some(d) = self.dial.take() {
            d.abort();
        }
        let reason = if self.inner.cancel.is_cancelled() {
            LinkDownReason::Shutdown
        } else {
            LinkDownReason::Disconnected
        };
        if let Some(l) = self.link.take() {
            self.close(l, reason).await;
        }
        if !self.inner.cancel.is_cancelled() {
            self.discard_queue("disconnected").await;
        }
    }

    /// Drops queued frames, telling the owner how many.
    async fn discard_queue(&mut self, why: &str) {
        let mut q = self.queue.lock().await;
        q.close();
        let mut unsent = 0;
        while q.try_recv().is_ok() {
            unsent += 1;
        }
        if unsent > 0 {
            for _ in 0..unsent {
                self.counters.dropped("link_gone");
            }
            self.inner.event_lossy(TransportEvent::SendFailed {
                peer: self.peer,
                reason: why.to_string(),
                unsent,
            });
        }
    }
}

async fn link_done(link: &mut Option<Link>) -> LinkDownReason {
    match link {
        Some(l) => match (&mut l.task).await {
            Ok(r) => r,
            Err(e) => LinkDownReason::Io(format!("link task failed: {e}")),
        },
        None => std::future::pending().await,
    }
}

async fn dial_done(
    dial: &mut Option<JoinHandle<Result<Established, HandshakeError>>>,
) -> Result<Established, HandshakeError> {
    match dial {
        Some(d) => match d.await {
            Ok(r) => r,
            Err(e) => Err(HandshakeError::Refused(format!("dial task failed: {e}"))),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
