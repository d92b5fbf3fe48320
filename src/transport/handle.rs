//! [`Transport`]: the handle the owner holds, the shared state behind it,
//! and the accept loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use super::backend::{Dialer, Listener};
use super::codec::DATA_OVERHEAD;
use super::fault::{FaultFilter, FaultRules};
use super::handshake::{self, Established, HandshakeError};
use super::peer::{Head, Outgoing, PeerTask};
use super::stats::{NodeCounters, NodeTotals, PeerCounters, TransportStats};
use super::{ConnectError, FrameClass, SendError, TransportConfig, TransportError, TransportEvent};
use crate::model::NodeId;

/// Handshakes in progress at once; more incoming connections are closed
/// at once (guess: far above a cluster's simultaneous reconnects).
const MAX_PENDING_HANDSHAKES: usize = 64;
/// Incoming links waiting for their peer task (normally 0 or 1).
const INBOX_LEN: usize = 4;

/// A node's end of the data plane: reliable, ordered frames to other nodes
/// by node id. Cheap to clone; every clone is the same transport. Dropping
/// the last clone stops every task (prefer [`Transport::shutdown`], which
/// waits for them).
///
/// Frames to a peer need a link or a standing [`Transport::connect`]:
/// `connect` then `try_send`/`send` right away is fine, frames wait in the
/// peer's queue until the link is up. Events arrive on the receiver
/// returned with the transport; see [`TransportEvent`] for what is never
/// dropped.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<DropGuard>,
}

/// A consumer of received data frames that runs in the link readers
/// themselves, before a frame would become a [`TransportEvent::Frame`]:
/// the owner's fast path for frames it can handle without its own task.
pub trait FrameSink: Send + Sync + 'static {
    /// Called for every `Data`-class frame from `from`, in the link's
    /// order, after the fault filter. True: the frame is consumed and no
    /// event is sent for it; false: it becomes an event as usual. Must
    /// not block.
    fn consume(&self, from: NodeId, payload: &Bytes) -> bool;
}

/// State shared by the handle and the tasks.
pub(crate) struct Inner {
    pub me: NodeId,
    pub cluster_id: String,
    pub config: TransportConfig,
    pub bound: SocketAddr,
    pub dialer: Dialer,
    pub book: RwLock<BTreeMap<NodeId, SocketAddr>>,
    pub peers: Mutex<BTreeMap<NodeId, PeerEntry>>,
    pub events: mpsc::Sender<TransportEvent>,
    /// Takes data frames in the link readers before they become events
    /// (see [`Transport::set_frame_sink`]).
    pub sink: OnceLock<Arc<dyn FrameSink>>,
    pub faults: FaultFilter,
    /// Mutual TLS on every link (a secure node).
    pub tls: Option<super::handshake::TransportTls>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
    dropped_events: AtomicU64,
    /// Incoming connections refused during the handshake (TLS, identity,
    /// `Hello`).
    refused_handshakes: AtomicU64,
    next_gen: AtomicU64,
    /// Totals over every peer this node had.
    node_counters: Arc<NodeCounters>,
}

/// The handle's view of one peer; the peer's task owns the rest.
pub(crate) struct PeerEntry {
    pub gen: u64,
    pub queue: mpsc::Sender<Outgoing>,
    pub inbox: mpsc::Sender<Established>,
    pub standing: watch::Sender<bool>,
    pub counters: Arc<PeerCounters>,
    pub cancel: CancellationToken,
}

impl Transport {
    /// Binds a TCP listener on `listen` (port 0 picks a free port; see
    /// [`Transport::bound_addr`]) and starts accepting peers of
    /// `cluster_id`. Must be called inside a tokio runtime.
    pub async fn bind_tcp(
        listen: SocketAddr,
        config: TransportConfig,
        node_id: NodeId,
        cluster_id: &str,
    ) -> Result<(Transport, mpsc::Receiver<TransportEvent>), TransportError> {
        Transport::bind_tcp_with_tls(listen, config, node_id, cluster_id, None).await
    }

    /// [`Transport::bind_tcp`] with mutual TLS on every link when `tls` is
    /// given (a peer must present a node certificate of this cluster whose
    /// node id is the one its `Hello` claims).
    pub async fn bind_tcp_with_tls(
        listen: SocketAddr,
        config: TransportConfig,
        node_id: NodeId,
        cluster_id: &str,
        tls: Option<Arc<crate::security::TlsContext>>,
    ) -> Result<(Transport, mpsc::Receiver<TransportEvent>), TransportError> {
        config.validate()?;
        let bind_err = |source| TransportError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let bound = listener.local_addr().map_err(bind_err)?;
        let (t, rx) = Transport::start_with(
            Listener::Tcp(listener),
            Dialer::Tcp,
            bound,
            config,
            node_id,
            cluster_id,
            tls.map(super::handshake::TransportTls::new),
        );
        Ok((t, rx))
    }

    pub(crate) fn start(
        listener: Listener,
        dialer: Dialer,
        bound: SocketAddr,
        config: TransportConfig,
        me: NodeId,
        cluster_id: &str,
    ) -> (Transport, mpsc::Receiver<TransportEvent>) {
        Transport::start_with(listener, dialer, bound, config, me, cluster_id, None)
    }

    pub(crate) fn start_with(
        listener: Listener,
        dialer: Dialer,
        bound: SocketAddr,
        config: TransportConfig,
        me: NodeId,
        cluster_id: &str,
        tls: Option<super::handshake::TransportTls>,
    ) -> (Transport, mpsc::Receiver<TransportEvent>) {
        let (events, rx) = mpsc::channel(config.event_queue_len());
        let cancel = CancellationToken::new();
        let inner = Arc::new(Inner {
            me,
            cluster_id: cluster_id.to_string(),
            faults: FaultFilter::new(config.chaos),
            tls,
            config,
            bound,
            dialer,
            book: RwLock::new(BTreeMap::new()),
            peers: Mutex::new(BTreeMap::new()),
            events,
            sink: OnceLock::new(),
            cancel: cancel.clone(),
            tracker: TaskTracker::new(),
            dropped_events: AtomicU64::new(0),
            refused_handshakes: AtomicU64::new(0),
            next_gen: AtomicU64::new(0),
            node_counters: Arc::default(),
        });
        inner.tracker.spawn(accept_loop(inner.clone(), listener));
        let t = Transport {
            inner,
            _stop_on_drop: Arc::new(cancel.drop_guard()),
        };
        (t, rx)
    }

    /// Installs the consumer of received data frames (once per transport;
    /// false if one is installed already). Frames it consumes are not
    /// sent as events.
    pub fn set_frame_sink(&self, sink: Arc<dyn FrameSink>) -> bool {
        self.inner.sink.set(sink).is_ok()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.me
    }

    /// The address the listener is bound to (the real port when bound to 0).
    pub fn bound_addr(&self) -> SocketAddr {
        self.inner.bound
    }

    /// Replaces the address book (from the Raft membership's
    /// `NodeAddr.peer_addr`). Links that are up stay up; the next dial to a
    /// peer uses its new address.
    pub fn set_address_book(&self, book: BTreeMap<NodeId, SocketAddr>) {
        *self.inner.book.write().unwrap_or_else(|p| p.into_inner()) = book;
    }

    /// Keeps a standing link to `peer`: dials now if there is no link, and
    /// redials with exponential backoff and jitter whenever it goes down,
    /// until [`Transport::disconnect`]. Idempotent.
    pub fn connect(&self, peer: NodeId) -> Result<(), ConnectError> {
        if peer == self.inner.me {
            return Err(ConnectError::SelfPeer { peer });
        }
        if self.inner.cancel.is_cancelled() {
            return Err(ConnectError::Closed);
        }
        if self.inner.address(peer).is_none() {
            return Err(ConnectError::UnknownPeer { peer });
        }
        let mut peers = self.inner.lock_peers();
        match peers.get(&peer) {
            Some(e) => {
                e.standing.send_replace(true);
            }
            None => self.inner.new_peer(&mut peers, peer, true, None),
        }
        Ok(())
    }

    /// Closes the link to `peer` (a `LinkDown` with reason `Disconnected`
    /// follows if it was up), stops redialing it and discards its queued
    /// frames (a `SendFailed` says how many). The peer may link again by
    /// dialing us. Returns whether there was anything to disconnect.
    pub fn disconnect(&self, peer: NodeId) -> bool {
        match self.inner.lock_peers().remove(&peer) {
            Some(e) => {
                e.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Peers with a link up now.
    /// Incoming connections this node refused during the handshake: no or
    /// a foreign certificate, a `Hello` naming another node than the
    /// certificate, another cluster or protocol version.
    pub fn refused_handshakes(&self) -> u64 {
        self.inner.refused_handshakes.load(Ordering::Relaxed)
    }

    pub fn links(&self) -> Vec<NodeId> {
        let peers = self.inner.lock_peers();
        peers
            .iter()
            .filter(|(_, e)| e.counters.link_up.load(Ordering::Relaxed))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Queues a frame to `peer` without waiting. On a full queue a control
    /// frame is dropped ([`SendError::QueueFull`]) and a data frame is not
    /// queued ([`SendError::Backpressure`]).
    pub fn try_send(
        &self,
        peer: NodeId,
        class: FrameClass,
        payload: Bytes,
    ) -> Result<(), SendError> {
        self.check_size(payload.len())?;
        if self.inner.cancel.is_cancelled() {
            return Err(SendError::Closed);
        }
        let frame = Outgoing {
            class,
            head: Head::default(),
            payload,
            created: self.inner.stamp(),
        };
        let peers = self.inner.lock_peers();
        let e = peers.get(&peer).ok_or(SendError::UnknownPeer { peer })?;
        match e.queue.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => match class {
                FrameClass::Control => {
                    e.counters.dropped("queue_full");
                    Err(SendError::QueueFull { peer })
                }
                FrameClass::Data => Err(SendError::Backpressure { peer }),
            },
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::UnknownPeer { peer }),
        }
    }

    /// Queues a data frame to `peer`, waiting for queue space at most
    /// `send_timeout_ms`. Fails at once if there is no link or standing
    /// `connect`, or if the peer is disconnected while waiting.
    pub async fn send(&self, peer: NodeId, payload: Bytes) -> Result<(), SendError> {
        self.check_size(payload.len())?;
        self.queue_data(peer, false, Head::default(), payload).await
    }

    /// Like [`Transport::send`], for a frame whose payload is `head`
    /// followed by `body`: the two are sent back to back, never joined in
    /// memory, and the peer receives one payload. Only to a peer with a
    /// standing [`Transport::connect`]: without one (a peer known only by
    /// its incoming link, or not at all) nothing is queued and the answer
    /// is [`SendError::UnknownPeer`].
    pub async fn send_connected(
        &self,
        peer: NodeId,
        head: impl Into<Head>,
        body: Bytes,
    ) -> Result<(), SendError> {
        let head = head.into();
        self.check_size(head.len() + body.len())?;
        self.queue_data(peer, true, head, body).await
    }

    /// [`Transport::send_connected`] for a run of frames, in order: they
    /// are queued under one lock of the peer map as long as the peer's
    /// queue has room (one lock per run instead of one per frame), then
    /// one at a time as room frees up. Each `(head, body)` is one frame.
    /// On an error, `frames` holds the frames not queued (the first of
    /// them is the one that failed).
    pub async fn send_connected_many(
        &self,
        peer: NodeId,
        frames: &mut std::collections::VecDeque<(Head, Bytes)>,
    ) -> Result<(), SendError> {
        for (head, body) in frames.iter() {
            self.check_size(head.len() + body.len())?;
        }
        loop {
            let (head, body) = {
                if self.inner.cancel.is_cancelled() {
                    return Err(SendError::Closed);
                }
                let peers = self.inner.lock_peers();
                let e = peers
                    .get(&peer)
                    .filter(|e| *e.standing.borrow())
                    .ok_or(SendError::UnknownPeer { peer })?;
                loop {
                    let Some((head, payload)) = frames.pop_front() else {
                        return Ok(());
                    };
                    let frame = Outgoing {
                        class: FrameClass::Data,
                        head,
                        payload,
                        created: self.inner.stamp(),
                    };
                    match e.queue.try_send(frame) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(f)) => break (f.head, f.payload),
                        Err(mpsc::error::TrySendError::Closed(f)) => {
                            frames.push_front((f.head, f.payload));
                            return Err(SendError::UnknownPeer { peer });
                        }
                    }
                }
            };
            // The queue is full: wait for room for this one frame.
            if let Err(e) = self
                .queue_data(peer, true, head.clone(), body.clone())
                .await
            {
                frames.push_front((head, body));
                return Err(e);
            }
        }
    }

    async fn queue_data(
        &self,
        peer: NodeId,
        standing: bool,
        head: Head,
        payload: Bytes,
    ) -> Result<(), SendError> {
        let frame = Outgoing {
            class: FrameClass::Data,
            head,
            payload,
            created: self.inner.stamp(),
        };
        // Queued under the peer map's lock while there is room (the common
        // case): no clone of the queue's sender, no timer.
        let (queue, frame) = {
            if self.inner.cancel.is_cancelled() {
                return Err(SendError::Closed);
            }
            let peers = self.inner.lock_peers();
            let e = peers
                .get(&peer)
                .filter(|e| !standing || *e.standing.borrow())
                .ok_or(SendError::UnknownPeer { peer })?;
            match e.queue.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(SendError::UnknownPeer { peer })
                }
                Err(mpsc::error::TrySendError::Full(frame)) => (e.queue.clone(), frame),
            }
        };
        let after = self.inner.config.send_timeout();
        tokio::select! {
            r = tokio::time::timeout(after, queue.send(frame)) => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(SendError::UnknownPeer { peer }),
                Err(_) => Err(SendError::Timeout { peer, after }),
            },
            _ = self.inner.cancel.cancelled() => Err(SendError::Closed),
        }
    }

    /// Per-peer figures for `GET /v1/node/stats`, and the totals.
    pub fn stats(&self) -> TransportStats {
        let peers = self.inner.lock_peers();
        TransportStats {
            peers: peers
                .iter()
                .map(|(p, e)| {
                    let depth = e.queue.max_capacity() - e.queue.capacity();
                    (*p, e.counters.snapshot(depth))
                })
                .collect(),
            dropped_events: self.inner.dropped_events.load(Ordering::Relaxed),
            totals: self.inner.totals(&peers),
        }
    }

    /// This node's totals over its peers: cheaper than [`Transport::stats`]
    /// (no per-peer snapshot), for the once-a-second summary sample.
    pub fn totals(&self) -> NodeTotals {
        let peers = self.inner.lock_peers();
        self.inner.totals(&peers)
    }

    /// Installs fault rules (replacing the previous ones). Refused with
    /// [`TransportError::ChaosDisabled`] unless the config enables chaos.
    pub fn set_faults(&self, rules: FaultRules) -> Result<(), TransportError> {
        self.inner.faults.set(rules)
    }

    /// Removes every fault rule. Refused unless chaos is enabled.
    pub fn clear_faults(&self) -> Result<(), TransportError> {
        self.inner.faults.clear()
    }

    /// The installed fault rules (`None` when none are installed).
    pub fn faults(&self) -> Option<FaultRules> {
        self.inner.faults.rules()
    }

    /// Whether chaos mode is on (`transport.chaos`): only then are fault
    /// rules accepted.
    pub fn chaos_enabled(&self) -> bool {
        self.inner.faults.enabled()
    }

    /// Closes every link and listener and waits for every task to end. No
    /// events follow. Sends fail with `Closed` afterwards.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }

    fn check_size(&self, len: usize) -> Result<(), SendError> {
        let max = self.inner.config.max_frame();
        if len.saturating_add(DATA_OVERHEAD) > max {
            return Err(SendError::TooLarge { len, max });
        }
        Ok(())
    }
}

impl Inner {
    /// A queued frame's creation time, if the fault filter may need it.
    fn stamp(&self) -> Option<tokio::time::Instant> {
        self.config.chaos.then(tokio::time::Instant::now)
    }

    pub fn address(&self, peer: NodeId) -> Option<SocketAddr> {
        let book = self.book.read().unwrap_or_else(|p| p.into_inner());
        book.get(&peer).copied()
    }

    /// The node's counters and the gauges of `peers` (the locked map).
    fn totals(&self, peers: &BTreeMap<NodeId, PeerEntry>) -> NodeTotals {
        let mut t = self.node_counters.snapshot();
        for e in peers.values() {
            let depth = (e.queue.max_capacity() - e.queue.capacity()) as u64;
            t.peers += 1;
            t.links_up += u32::from(e.counters.link_up.load(Ordering::Relaxed));
            t.queue_depth += depth;
            t.max_queue_depth = t.max_queue_depth.max(depth);
        }
        t
    }

    pub fn lock_peers(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, PeerEntry>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `peer` and starts its task, optionally with an incoming
    /// link to adopt. Called with the peer map locked.
    pub fn new_peer(
        self: &Arc<Self>,
        peers: &mut BTreeMap<NodeId, PeerEntry>,
        peer: NodeId,
        standing: bool,
        first: Option<Established>,
    ) {
        let (queue_tx, queue_rx) = mpsc::channel(self.config.queue_len());
        let (inbox_tx, inbox_rx) = mpsc::channel(INBOX_LEN);
        let (standing_tx, standing_rx) = watch::channel(standing);
        let counters = Arc::new(PeerCounters::new(self.node_counters.clone()));
        let cancel = self.cancel.child_token();
        let gen = self.next_gen.fetch_add(1, Ordering::Relaxed);
        let task = PeerTask::new(
            self.clone(),
            peer,
            gen,
            counters.clone(),
            inbox_rx,
            standing_rx,
            queue_rx,
            cancel.clone(),
        );
        peers.insert(
            peer,
            PeerEntry {
                gen,
                queue: queue_tx,
                inbox: inbox_tx,
                standing: standing_tx,
                counters,
                cancel,
            },
        );
        self.tracker.spawn(task.run(first));
    }

    /// Hands a handshaken incoming link to its peer's task.
    fn route_incoming(self: &Arc<Self>, est: Established) {
        let peer = est.peer;
        if self.faults.partitioned(peer) {
            tracing::debug!(
                peer,
                "incoming link refused: partitioned by the fault filter"
            );
            return;
        }
        let mut peers = self.lock_peers();
        match peers.get(&peer) {
            Some(e) => {
                if e.inbox.try_send(est).is_err() {
                    tracing::warn!(peer, "incoming link dropped: peer task busy");
                }
            }
            None => self.new_peer(&mut peers, peer, false, Some(est)),
        }
    }

    /// Sends an event that may be dropped (counted in `dropped_events`)
    /// when the queue is full. False if it was dropped.
    pub fn event_lossy(&self, ev: TransportEvent) -> bool {
        match self.events.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped_events.fetch_add(1, Ordering::Relaxed);
                false
            }
            // The owner dropped its receiver: nobody is listening.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Sends an event that is never dropped: waits for queue space. False
    /// when the transport shuts down or the owner is gone.
    pub async fn event(&self, ev: TransportEvent) -> bool {
        tokio::select! {
            r = self.events.send(ev) => r.is_ok(),
            _ = self.cancel.cancelled() => false,
        }
    }
}

async fn accept_loop(inner: Arc<Inner>, mut listener: Listener) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let stream = tokio::select! {
            _ = inner.cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!("too many pending handshakes: connection closed");
            continue;
        };
        let inner2 = inner.clone();
        inner.tracker.spawn(async move {
            let deadline = inner2.config.connect_timeout();
            let handshake = tokio::time::timeout(deadline, handshake::accept(&inner2, stream));
            tokio::select! {
                r = handshake => match r {
                    Ok(Ok(est)) => inner2.route_incoming(est),
                    Ok(Err(e)) => {
                        inner2.refused_handshakes.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("topod_transport_handshakes_refused_total").increment(1);
                        if matches!(e, HandshakeError::Mismatch(_) | HandshakeError::Tls(_)) {
                            tracing::warn!(reason = %e, "incoming link refused");
                        } else {
                            tracing::info!(reason = %e, "incoming link refused");
                        }
                    }
                    Err(_) => tracing::info!("incoming handshake timed out"),
                },
                // Shutdown does not wait for a handshake.
                _ = inner2.cancel.cancelled() => {}
            }
            drop(permit);
        });
    }
}
