//! [`Spills`]: the bounded outbound queues that keep the executor task
//! from ever waiting on a slow peer. The task only `try_send`s into the
//! transport; a data frame that finds a peer's transport queue full goes
//! into that peer's spill queue instead, and a small task per stalled peer
//! waits for transport space and hands the spilled frames over in order.
//! While a peer has frames spilled, its later data frames join them (order
//! is kept); control frames still go straight to the transport (they may
//! drop, and overtaking data does them no harm). A spill queue that is
//! full drops the frame and counts it (broadcasts are recovered by gap
//! repair; a point-to-point sender is told).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::handle::ChannelError;
use crate::model::NodeId;
use crate::transport::{SendError, Transport};

/// Frames one peer's spill queue holds.
pub const SPILL_FRAMES: usize = 1024;

/// A frame waiting for transport space, and who waits for it.
struct Spilled {
    frame: Bytes,
    done: Option<oneshot::Sender<Result<(), ChannelError>>>,
}

/// One stalled peer's queue.
struct Spill {
    tx: mpsc::Sender<Spilled>,
    /// Frames in the queue or being handed over.
    inflight: Arc<AtomicUsize>,
}

/// Every peer's spill queue (see the module docs).
#[derive(Default)]
pub(crate) struct Spills {
    peers: BTreeMap<NodeId, Spill>,
    /// Frames the spill tasks could not hand over (timeout, link gone).
    pub failed: Arc<AtomicU64>,
    /// Frames dropped because a spill queue was full.
    pub dropped: u64,
}

/// What became of a frame given to [`Spills::send`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Spilt {
    /// Queued (in the transport, or in the spill queue: its waiter, if
    /// any, is told when it is handed over).
    Queued,
    /// The transport refused it for good.
    Failed(SendError),
    /// The spill queue is full: dropped.
    Full,
}

impl Spills {
    /// Whether `peer` has frames waiting in its spill queue.
    pub fn stalled(&self, peer: NodeId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|s| s.inflight.load(Ordering::Acquire) > 0)
    }

    /// Sends a data frame to `peer` without waiting: into the transport,
    /// or into the peer's spill queue when the transport's is full or
    /// frames are spilled already.
    pub fn send(
        &mut self,
        transport: &Transport,
        peer: NodeId,
        frame: Bytes,
        done: Option<oneshot::Sender<Result<(), ChannelError>>>,
    ) -> (Spilt, Option<oneshot::Sender<Result<(), ChannelError>>>) {
        if !self.stalled(peer) {
            match transport.try_send(peer, crate::transport::FrameClass::Data, frame.clone()) {
                Ok(()) => return (Spilt::Queued, done),
                Err(SendError::Backpressure { .. }) => {}
                Err(e) => return (Spilt::Failed(e), done),
            }
        }
        let spill = self
            .peers
            .entry(peer)
            .or_insert_with(|| start(transport.clone(), peer, self.failed.clone()));
        spill.inflight.fetch_add(1, Ordering::AcqRel);
        match spill.tx.try_send(Spilled { frame, done }) {
            Ok(()) => (Spilt::Queued, None),
            Err(e) => {
                spill.inflight.fetch_sub(1, Ordering::AcqRel);
                self.dropped += 1;
                let done = match e {
                    mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s) => {
                        s.done
                    }
                };
                (Spilt::Full, done)
            }
        }
    }

    /// Forgets the queues of peers not in `keep` (their tasks end once
    /// what they hold is handed over or fails).
    pub fn retain(&mut self, keep: &std::collections::BTreeSet<NodeId>) {
        self.peers.retain(|p, _| keep.contains(p));
    }
}

fn start(transport: Transport, peer: NodeId, failed: Arc<AtomicU64>) -> Spill {
    let (tx, mut rx) = mpsc::channel::<Spilled>(SPILL_FRAMES);
    let inflight = Arc::new(AtomicUsize::new(0));
    let count = inflight.clone();
    tokio::spawn(async move {
        while let Some(s) = rx.recv().await {
            let r = transport.send(peer, s.frame).await;
            count.fetch_sub(1, Ordering::AcqRel);
            if let Err(e) = &r {
                failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer, error = %e, "spilled frame not sent");
            }
            if let Some(done) = s.done {
                let answer = r.map_err(|e| ChannelError::Unreachable {
                    peer,
                    reason: e.to_string(),
                });
                if done.send(answer).is_err() {
                    tracing::trace!(peer, "sender gone before its spilled frame was sent");
                }
            }
        }
    });
    Spill { tx, inflight }
}
