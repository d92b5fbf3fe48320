//! One live link: a reader and a writer over the same connection, joined
//! in one task, until either ends. The writer owns the pings; the reader
//! answers them and measures the pongs.
//!
//! Reader and writer run concurrently so that two nodes writing large frames
//! to each other never deadlock on full socket buffers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::backend::BoxStream;
use super::codec::{self, FrameReader, ReadError, WireFrame};
use super::handle::Inner;
use super::handshake::{name, Established};
use super::peer::Outgoing;
use super::stats::PeerCounters;
use super::{FrameClass, LinkDownReason, TransportEvent};
use crate::model::NodeId;

/// Pongs waiting for the writer; more pings than this in flight are not
/// answered (the peer's ping timeout is far longer).
const PONG_QUEUE: usize = 4;
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
    pongs: mpsc::Sender<WireFrame>,
}

impl Reader<'_> {
    async fn run(self, mut frames: FrameReader, mut rd: ReadHalf<BoxStream>) -> LinkDownReason {
        loop {
            let (frame, size) = match frames.read(&mut rd).await {
                Ok(Some(f)) => f,
                Ok(None) | Err(ReadError::Truncated) => return LinkDownReason::ClosedByPeer,
                Err(ReadError::Io(e)) => return LinkDownReason::Io(e.to_string()),
                Err(ReadError::Codec(e)) => {
                    tracing::warn!(peer = self.peer, reason = %e, "closing link: bad frame");
                    return LinkDownReason::Protocol(e.to_string());
                }
            };
            let verdict = self.inner.faults.judge(self.peer, false);
            if verdict.drop {
                self.counters.dropped("fault");
                continue;
            }
            if !verdict.delay.is_zero() {
                tokio::time::sleep(verdict.delay).await;
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
                if self.pongs.try_send(WireFrame::Pong { nonce }).is_err() {
                    self.counters.dropped("pong_queue_full");
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
    async fn run(
        mut self,
        queue: &mut mpsc::Receiver<Outgoing>,
        mut pongs: mpsc::Receiver<WireFrame>,
    ) -> LinkDownReason {
        let mut tick = tokio::time::interval(self.inner.config.ping_interval());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut nonce = 0u64;
        loop {
            let frame = tokio::select! {
                biased;
                Some(pong) = pongs.recv() => pong,
                _ = tick.tick() => {
                    if self.dead() {
                        tracing::info!(peer = self.peer, "closing link: ping timeout");
                        return LinkDownReason::PingTimeout;
                    }
                    nonce += 1;
                    *lock(&self.shared.ping) = Some((nonce, Instant::now()));
                    WireFrame::Ping { nonce }
                }
                out = queue.recv() => match out {
                    Some(o) => WireFrame::Data { class: o.class, payload: o.payload },
                    None => return LinkDownReason::Shutdown,
                },
            };
            if let Err(e) = self.write(frame).await {
                return LinkDownReason::Io(e.to_string());
            }
            let more = !queue.is_empty() || !pongs.is_empty();
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

    async fn write(&mut self, frame: WireFrame) -> std::io::Result<()> {
        let verdict = self.inner.faults.judge(self.peer, true);
        if verdict.drop {
            self.counters.dropped("fault");
            return Ok(());
        }
        if !verdict.delay.is_zero() {
            self.out.flush().await?;
            tokio::time::sleep(verdict.delay).await;
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
