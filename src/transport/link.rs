//! One live link: a reader and a writer over the same connection, joined
//! in one task, until either ends. The writer owns the pings; the reader
//! answers them and measures the pongs.
//!
//! Reader and writer run concurrently so that two nodes writing large frames
//! to each other never deadlock on full socket buffers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::BoxStream;
use super::codec::{self, FrameReader, ReadError, WireFrame};
use super::handle::Inner;
use super::handshake::{name, Established};
use super::peer::Outgoing;
use super::stats::{self, PeerCounters};
use super::{FrameClass, LinkDownReason, TransportEvent};
use crate::model::NodeId;

/// Pongs waiting for the writer; more pings than this in flight are not
/// answered (the peer's ping timeout is far longer).
const PONG_QUEUE: usize = 4;
/// Frames held back by an inbound delay before reading pauses.
const DELAY_LINE: usize = 1024;
/// Buffered bytes after which the writer flushes even if more frames wait.
const FLUSH_BYTES: usize = 64 * 1024;

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
        out: BufWriter::with_capacity(FLUSH_BYTES, est.wr),
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
            *lock(&self.shared.last_rx) = Instant::now();
            self.counters.received(size);
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
                // Backpressure: stop reading until the owner has room.
                self.shared.reader_blocked.store(true, Ordering::Relaxed);
                let delivered = self
                    .inner
                    .event(self.frame(FrameClass::Data, payload))
                    .await;
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
    out: BufWriter<WriteHalf<BoxStream>>,
}

impl Writer<'_> {
    /// Writes frames in the order they were created (data and pongs), and a
    /// ping every `ping_interval`, so that none starves the others even on a
    /// slow, delayed link.
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
            let (frame, created) = if Instant::now() >= next_ping {
                if self.dead() {
                    tracing::info!(peer = self.peer, "closing link: ping timeout");
                    return LinkDownReason::PingTimeout;
                }
                nonce += 1;
                let now = Instant::now();
                next_ping = now + interval;
                *lock(&self.shared.ping) = Some((nonce, now));
                (WireFrame::Ping { nonce }, now)
            } else {
                if let Err(reason) = held.fill(queue, &mut pongs) {
                    return reason;
                }
                match held.take_oldest() {
                    Some(f) => f,
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
            if let Err(e) = self.write(frame, created).await {
                return LinkDownReason::Io(e.to_string());
            }
            let more = held.any() || !queue.is_empty() || !pongs.is_empty();
            if !more || self.out.buffer().len() >= FLUSH_BYTES {
                if let Err(e) = self.out.flush().await {
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

    /// Writes one frame created at `created`. A delay (fault filter) holds
    /// it until `created + delay`: latency, not a per-frame pause.
    async fn write(&mut self, frame: WireFrame, created: Instant) -> std::io::Result<()> {
        let verdict = self.inner.faults.judge(self.peer, true);
        if verdict.drop {
            self.counters.dropped("fault");
            return Ok(());
        }
        let due = created + verdict.delay;
        if due > Instant::now() {
            self.out.flush().await?;
            tokio::time::sleep_until(due).await;
        }
        let bytes = match codec::encode(&frame, self.inner.config.max_frame()) {
            Ok(b) => b,
            Err(e) => {
                // `try_send` checks sizes, so this is a bug, not the peer's doing.
                tracing::error!(peer = self.peer, error = %e, "frame not sent: cannot encode");
                self.counters.dropped("encode");
                return Ok(());
            }
        };
        self.out.write_all(&bytes).await?;
        self.counters.sent(bytes.len());
        Ok(())
    }
}

/// The next data frame and pong, taken from their queues so that the
/// older one goes first.
#[derive(Default)]
struct Held {
    data: Option<(WireFrame, Instant)>,
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

    fn take_oldest(&mut self) -> Option<(WireFrame, Instant)> {
        match (&self.data, &self.pong) {
            (Some(d), Some(p)) if p.1 < d.1 => self.pong.take(),
            (Some(_), _) => self.data.take(),
            (None, _) => self.pong.take(),
        }
    }

    fn any(&self) -> bool {
        self.data.is_some() || self.pong.is_some()
    }
}

fn data(o: Outgoing) -> (WireFrame, Instant) {
    let frame = WireFrame::Data {
        class: o.class,
        payload: o.payload,
    };
    (frame, o.created)
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
