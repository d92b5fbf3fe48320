//! One live link: a reader and a writer over the same connection, joined
//! in one task, until either ends. The writer owns the pings; the reader
//! answers them and measures the pongs.
//!
//! Reader and writer run concurrently so that two nodes writing large frames
//! to each other never deadlock on full socket buffers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::BoxStream;
use super::codec::{self, FrameReader, ReadError, WireFrame};
use super::handle::Inner;
use super::handshake::{name, Established};
use super::peer::{Head, Outgoing};
use super::stats::{self, PeerCounters};
use super::{FrameClass, LinkDownReason, TransportEvent};
use crate::model::NodeId;

/// Frames received before the reader updates the counters even if more
/// are buffered.
const COUNT_EVERY: u64 = 64;
/// Pongs waiting for the writer; more pings than this in flight are not
/// answered (the peer's ping timeout is far longer).
const PONG_QUEUE: usize = 4;
/// Frames held back by an inbound delay before reading pauses.
const DELAY_LINE: usize = 1024;
/// Gathered bytes after which the writer writes even if more frames wait
/// (measured with `bench_p2p`: 256 KiB keeps 64 KiB frames at loopback
/// speed without holding small frames back noticeably).
const FLUSH_BYTES: usize = 256 * 1024;
/// Payloads up to this size are copied into the write buffer; larger ones
/// are written from their own memory, bytes (guess: a copy of 8 KiB costs
/// less than an extra iovec and its bookkeeping).
const COPY_MAX: usize = 8 * 1024;
/// First capacity of a link's batch buffer, bytes.
const STAGED_INITIAL: usize = 16 * 1024;
/// Pieces of one vectored write at most (far below `IOV_MAX`).
const MAX_PARTS: usize = 64;

/// What reader and writer share.
struct Shared {
    last_rx: Mutex<Instant>,
    /// The reader is waiting for event-queue space (backpressure from the
    /// owner): silence from the peer is then our doing, not a dead link.
    reader_blocked: AtomicBool,
    ping: Mutex<Option<(u64, Instant)>>,
}

/// Runs the link until the peer closes it, it fails, or the ping times out.
pub(crate) async fn run(
    inner: Arc<Inner>,
    counters: Arc<PeerCounters>,
    est: Established,
    queue: &mut mpsc::Receiver<Outgoing>,
) -> LinkDownReason {
    let shared = Shared {
        last_rx: Mutex::new(Instant::now()),
        reader_blocked: AtomicBool::new(false),
        ping: Mutex::new(None),
    };
    let (pong_tx, pong_rx) = mpsc::channel(PONG_QUEUE);
    let peer = est.peer;
    let reader = Reader {
        inner: &inner,
        counters: &counters,
        shared: &shared,
        peer,
        pongs: pong_tx,
    };
    let writer = Writer {
        inner: &inner,
        counters: &counters,
        shared: &shared,
        peer,
        out: est.wr,
        batch: Batch::new(),
    };
    tokio::select! {
        r = reader.run(est.reader, est.rd) => r,
        r = writer.run(queue, pong_rx) => r,
    }
}

struct Reader<'a> {
    inner: &'a Inner,
    counters: &'a PeerCounters,
    shared: &'a Shared,
    peer: NodeId,
    pongs: mpsc::Sender<(WireFrame, Instant)>,
}

impl Reader<'_> {
    /// Reads frames and hands them on. Delayed frames (fault filter) wait in
    /// a bounded delay line while reading goes on, so a delay adds latency
    /// without cutting throughput.
    async fn run(self, mut frames: FrameReader, mut rd: ReadHalf<BoxStream>) -> LinkDownReason {
        let mut line: VecDeque<(Instant, WireFrame, usize)> = VecDeque::new();
        let mut count = (0u64, 0u64);
        loop {
            let head_due = line.front().map(|(due, _, _)| *due);
            let read = tokio::select! {
                biased;
                _ = sleep_until(head_due) => None,
                r = frames.read(&mut rd), if line.len() < DELAY_LINE => Some(r),
            };
            let fresh = read.is_some();
            let (frame, size) = match read {
                None => match line.pop_front() {
                    Some((_, f, size)) => (f, size),
                    None => continue,
                },
                Some(Ok(Some(f))) => f,
                Some(Ok(None) | Err(ReadError::Truncated)) => return LinkDownReason::ClosedByPeer,
                Some(Err(ReadError::Io(e))) => return LinkDownReason::Io(e.to_string()),
                Some(Err(ReadError::Codec(e))) => {
                    tracing::warn!(peer = self.peer, reason = %e, "closing link: bad frame");
                    return LinkDownReason::Protocol(e.to_string());
                }
            };
            if fresh {
                let verdict = self.inner.faults.judge(self.peer, false);
                if verdict.drop {
                    self.counters.dropped("fault");
                    continue;
                }
                if !verdict.delay.is_zero() || !line.is_empty() {
                    // Behind a delayed frame, order is kept.
                    let due =
                        (Instant::now() + verdict.delay).max(head_due.unwrap_or(Instant::now()));
                    line.push_back((due, frame, size));
                    continue;
                }
            }
            // Counted (and the link marked alive) once per buffered run of
            // frames, before the last of them is handed on.
            count.0 += 1;
            count.1 += size as u64;
            if count.0 >= COUNT_EVERY || !frames.has_frame() {
                *lock(&self.shared.last_rx) = Instant::now();
                self.counters.received_many(count.0, count.1);
                count = (0, 0);
            }
            if let Err(reason) = self.handle(frame).await {
                return reason;
            }
        }
    }

    async fn handle(&self, frame: WireFrame) -> Result<(), LinkDownReason> {
        match frame {
            WireFrame::Ping { nonce } => {
                if self
                    .pongs
                    .try_send((WireFrame::Pong { nonce }, Instant::now()))
                    .is_err()
                {
                    // Our writer is stuck; the peer's ping timeout allows it.
                    stats::dropped("pong_queue_full");
                }
            }
            WireFrame::Pong { nonce } => self.pong(nonce),
            WireFrame::Data {
                class: FrameClass::Control,
                payload,
            } => {
                if !self
                    .inner
                    .event_lossy(self.frame(FrameClass::Control, payload))
                {
                    self.counters.dropped("event_queue_full");
                }
            }
            WireFrame::Data {
                class: FrameClass::Data,
                payload,
            } => {
                if let Some(sink) = self.inner.sink.get() {
                    if sink.consume(self.peer, &payload) {
                        return Ok(());
                    }
                }
                let ev = match self
                    .inner
                    .events
                    .try_send(self.frame(FrameClass::Data, payload))
                {
                    Ok(()) => return Ok(()),
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err(LinkDownReason::Shutdown)
                    }
                    Err(mpsc::error::TrySendError::Full(ev)) => ev,
                };
                // Backpressure: stop reading until the owner has room.
                self.shared.reader_blocked.store(true, Ordering::Relaxed);
                let delivered = self.inner.event(ev).await;
                self.shared.reader_blocked.store(false, Ordering::Relaxed);
                *lock(&self.shared.last_rx) = Instant::now();
                if !delivered {
                    return Err(LinkDownReason::Shutdown);
                }
            }
            other => {
                let reason = format!("unexpected {} after the handshake", name(&other));
                tracing::warn!(peer = self.peer, %reason, "closing link");
                return Err(LinkDownReason::Protocol(reason));
            }
        }
        Ok(())
    }

    fn frame(&self, class: FrameClass, payload: Bytes) -> TransportEvent {
        TransportEvent::Frame {
            from: self.peer,
            class,
            payload,
        }
    }

    fn pong(&self, nonce: u64) {
        let sent = match *lock(&self.shared.ping) {
            Some((n, at)) if n == nonce => at,
            // An old ping's answer: its newer ping is the one measured.
            _ => return,
        };
        let rtt = sent.elapsed();
        self.counters.rtt(rtt);
        // A lost RTT event is counted in `dropped_events`; the sample is
        // in the stats anyway.
        self.inner.event_lossy(TransportEvent::Rtt {
            peer: self.peer,
            rtt,
        });
    }
}

struct Writer<'a> {
    inner: &'a Inner,
    counters: &'a PeerCounters,
    shared: &'a Shared,
    peer: NodeId,
    out: WriteHalf<BoxStream>,
    batch: Batch,
}

impl Writer<'_> {
    /// Writes queued frames in order, a pong as soon as the reader asks
    /// for one, and a ping every `ping_interval`, so that none starves the
    /// others even on a slow, delayed link. Frames ready at once are gathered and written
    /// together (one vectored write for up to [`FLUSH_BYTES`]); the batch is
    /// written as soon as no further frame is ready.
    async fn run(
        mut self,
        queue: &mut mpsc::Receiver<Outgoing>,
        mut pongs: mpsc::Receiver<(WireFrame, Instant)>,
    ) -> LinkDownReason {
        let interval = self.inner.config.ping_interval();
        let mut next_ping = Instant::now();
        let mut nonce = 0u64;
        let mut held = Held::default();
        loop {
            // The clock is read between batches, not per frame.
            let (frame, created) = if self.batch.is_empty() && Instant::now() >= next_ping {
                if self.dead() {
                    tracing::info!(peer = self.peer, "closing link: ping timeout");
                    return LinkDownReason::PingTimeout;
                }
                nonce += 1;
                let now = Instant::now();
                next_ping = now + interval;
                *lock(&self.shared.ping) = Some((nonce, now));
                (Out::Frame(WireFrame::Ping { nonce }), Some(now))
            } else {
                if let Err(reason) = held.fill(queue, &mut pongs) {
                    return reason;
                }
                match held.take_next() {
                    Some(f) => f,
                    None if !self.batch.is_empty() => {
                        // Nothing more ready: write what is gathered.
                        if let Err(e) = self.flush().await {
                            return LinkDownReason::Io(e.to_string());
                        }
                        continue;
                    }
                    None => {
                        tokio::select! {
                            biased;
                            Some(p) = pongs.recv() => held.pong = Some(p),
                            out = queue.recv() => match out {
                                Some(o) => held.data = Some(data(o)),
                                None => return LinkDownReason::Shutdown,
                            },
                            _ = tokio::time::sleep_until(next_ping) => {}
                        }
                        continue;
                    }
                }
            };
            if let Err(e) = self.add(frame, created).await {
                return LinkDownReason::Io(e.to_string());
            }
            if self.batch.is_full() {
                if let Err(e) = self.flush().await {
                    return LinkDownReason::Io(e.to_string());
                }
            }
        }
    }

    fn dead(&self) -> bool {
        let silent = lock(&self.shared.last_rx).elapsed();
        silent > self.inner.config.ping_timeout()
            && !self.shared.reader_blocked.load(Ordering::Relaxed)
    }

    /// Adds one frame created at `created` to the batch. A delay (fault
    /// filter) holds it until `created + delay`: latency, not a per-frame
    /// pause.
    async fn add(&mut self, frame: Out, created: Option<Instant>) -> std::io::Result<()> {
        let verdict = self.inner.faults.judge(self.peer, true);
        if verdict.drop {
            self.counters.dropped("fault");
            return Ok(());
        }
        if !verdict.delay.is_zero() {
            let due = created.unwrap_or_else(Instant::now) + verdict.delay;
            if due > Instant::now() {
                self.flush().await?;
                tokio::time::sleep_until(due).await;
            }
        }
        if let Err(e) = self.batch.push(&frame, self.inner.config.max_frame()) {
            // `try_send` checks sizes, so this is a bug, not the peer's doing.
            tracing::error!(peer = self.peer, error = %e, "frame not sent: cannot encode");
            self.counters.dropped("encode");
        }
        Ok(())
    }

    /// Writes the batch (counted first: a peer that has read a frame finds
    /// it in our counters).
    async fn flush(&mut self) -> std::io::Result<()> {
        let (frames, bytes) = self.batch.take_counts();
        if frames > 0 {
            self.counters.sent_many(frames, bytes);
        }
        self.batch.write_to(&mut self.out).await
    }
}

/// Frames gathered for one write: small frames copied into one buffer,
/// large payloads kept as they are and written from their own memory.
struct Batch {
    staged: BytesMut,
    parts: VecDeque<Bytes>,
    bytes: usize,
    frames: u64,
}

impl Batch {
    fn new() -> Self {
        Batch {
            // Grows with the traffic; an idle link keeps little.
            staged: BytesMut::with_capacity(STAGED_INITIAL),
            parts: VecDeque::new(),
            bytes: 0,
            frames: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.staged.is_empty() && self.parts.is_empty()
    }

    fn is_full(&self) -> bool {
        self.bytes >= FLUSH_BYTES || self.parts.len() + 2 > MAX_PARTS
    }

    fn push(&mut self, frame: &Out, max: usize) -> Result<(), codec::CodecError> {
        let size = match frame {
            Out::Data {
                class,
                head,
                payload,
            } => {
                let before = self.staged.len();
                let len = head.len() + payload.len();
                codec::data_header(*class, len, max, &mut self.staged)?;
                let header = self.staged.len() - before;
                self.staged.extend_from_slice(head);
                if payload.len() <= COPY_MAX {
                    self.staged.extend_from_slice(payload);
                } else {
                    self.parts.push_back(self.staged.split().freeze());
                    self.parts.push_back(payload.clone());
                }
                header + len
            }
            Out::Frame(other) => {
                let bytes = codec::encode(other, max)?;
                self.staged.extend_from_slice(&bytes);
                bytes.len()
            }
        };
        self.bytes += size;
        self.frames += 1;
        Ok(())
    }

    fn take_counts(&mut self) -> (u64, u64) {
        let r = (self.frames, self.bytes as u64);
        self.frames = 0;
        self.bytes = 0;
        r
    }

    /// Writes everything gathered, in order, with vectored writes.
    async fn write_to(&mut self, out: &mut WriteHalf<BoxStream>) -> std::io::Result<()> {
        if !self.staged.is_empty() {
            self.parts.push_back(self.staged.split().freeze());
        }
        while !self.parts.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_PARTS];
            let n = self.parts.len().min(MAX_PARTS);
            for (s, p) in slices.iter_mut().zip(self.parts.iter()) {
                *s = IoSlice::new(p);
            }
            let mut written = out.write_vectored(&slices[..n]).await?;
            if written == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while written > 0 {
                let front = self.parts.front_mut().expect("written bytes were queued");
                if written >= front.len() {
                    written -= front.len();
                    self.parts.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        out.flush().await
    }
}

/// The next data frame and pong, taken from their queues; the pong
/// goes first.
#[derive(Default)]
struct Held {
    data: Option<(Out, Option<Instant>)>,
    pong: Option<(WireFrame, Instant)>,
}

impl Held {
    fn fill(
        &mut self,
        queue: &mut mpsc::Receiver<Outgoing>,
        pongs: &mut mpsc::Receiver<(WireFrame, Instant)>,
    ) -> Result<(), LinkDownReason> {
        if self.pong.is_none() {
            if let Ok(p) = pongs.try_recv() {
                self.pong = Some(p);
            }
        }
        if self.data.is_none() {
            match queue.try_recv() {
                Ok(o) => self.data = Some(data(o)),
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    return Err(LinkDownReason::Shutdown)
                }
            }
        }
        Ok(())
    }

    /// The pong if there is one (rare, and its RTT sample wants it
    /// soon), else the next queued frame.
    fn take_next(&mut self) -> Option<(Out, Option<Instant>)> {
        match self.pong.take() {
            Some((f, t)) => Some((Out::Frame(f), Some(t))),
            None => self.data.take(),
        }
    }
}

/// A frame for the writer.
enum Out {
    /// A ping or a pong.
    Frame(WireFrame),
    /// A `Data` frame from the send queue: its payload is `head` then
    /// `payload`, sent back to back without joining them.
    Data {
        class: FrameClass,
        head: Head,
        payload: Bytes,
    },
}

fn data(o: Outgoing) -> (Out, Option<Instant>) {
    let out = Out::Data {
        class: o.class,
        head: o.head,
        payload: o.payload,
    };
    (out, o.created)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
