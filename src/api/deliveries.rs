//! [`DeliveryLog`]: the bounded ring of this node's deliveries of harness
//! broadcasts (channel [`HARNESS_CHANNEL`]), kept in chaos mode only, and
//! the task that fills it from an executor subscription.
//!
//! The ring holds at most [`DELIVERY_RING_CAP`] records; the oldest are
//! evicted first and counted (`dropped`), so a reader can tell a gap in
//! the ring from a message that never came. Messages the recorder itself
//! missed (its subscription lagged) and messages on the channel that are
//! not harness messages are counted too: nothing is lost silently.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::types::{DeliveriesPage, DeliveryView, HarnessMessage, HARNESS_CHANNEL};
use crate::executor::{Delivery, Event, ExecutorHandle};
use crate::model::NodeId;

/// Records kept (a 60 s chaos run of 5 nodes broadcasting 20/s each is
/// 6,000 per node; about 200 bytes a record, so at most ~13 MiB).
pub const DELIVERY_RING_CAP: usize = 65_536;

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<DeliveryView>,
    last_seq: u64,
    dropped: u64,
    lagged: u64,
    undecodable: u64,
}

/// This node's deliveries of harness broadcasts.
#[derive(Debug)]
pub struct DeliveryLog {
    node_id: NodeId,
    cap: usize,
    ring: Mutex<Ring>,
}

impl DeliveryLog {
    /// An empty log holding at most `cap` records (at least one).
    pub fn new(node_id: NodeId, cap: usize) -> Self {
        DeliveryLog {
            node_id,
            cap: cap.max(1),
            ring: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves only counters and a
        // deque, both consistent after any single push.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one message of the harness channel delivered at `at_ms`.
    pub fn record(&self, d: &Delivery, at_ms: u64) {
        let decoded: Result<HarnessMessage, _> = serde_json::from_slice(&d.payload);
        let mut ring = self.lock();
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                ring.undecodable += 1;
                drop(ring);
                tracing::warn!(origin = d.origin, error = %e, "undecodable harness message");
                return;
            }
        };
        ring.last_seq += 1;
        let seq = ring.last_seq;
        if ring.records.len() == self.cap {
            ring.records.pop_front();
            ring.dropped += 1;
        }
        ring.records.push_back(DeliveryView {
            seq,
            origin: d.origin,
            id: msg.id,
            at_ms,
        });
    }

    /// Counts `n` messages the recorder missed.
    pub fn lagged(&self, n: u64) {
        self.lock().lagged += n;
    }

    /// The records with a sequence number above `after`, at most `limit`.
    pub fn page(&self, after: u64, limit: usize) -> DeliveriesPage {
        let ring = self.lock();
        // Sequence numbers are contiguous: the first kept is dropped + 1.
        let first = ring.dropped + 1;
        let skip = after.saturating_sub(first - 1);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let deliveries: Vec<DeliveryView> = ring
            .records
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect();
        let next_after = match deliveries.last() {
            Some(last) if last.seq < ring.last_seq => Some(last.seq),
            _ => None,
        };
        DeliveriesPage {
            node_id: self.node_id,
            deliveries,
            next_after,
            last_seq: ring.last_seq,
            dropped: ring.dropped,
            lagged: ring.lagged,
            undecodable: ring.undecodable,
            capacity: self.cap,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// In chaos mode, a log fed by a task subscribed to [`HARNESS_CHANNEL`]
/// until `cancel`; `None` without a data plane or with chaos off.
pub fn start_recorder(
    dataplane: Option<&ExecutorHandle>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Option<Arc<DeliveryLog>> {
    let h = dataplane.filter(|h| h.chaos_enabled())?.clone();
    let log = Arc::new(DeliveryLog::new(h.node_id(), DELIVERY_RING_CAP));
    let l = log.clone();
    tracker.spawn(async move {
        let mut sub = match h.subscribe(HARNESS_CHANNEL).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "harness delivery recorder not started");
                return;
            }
        };
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => return,
                e = sub.recv() => e,
            };
            match event {
                Some(Event::Message(d)) => l.record(&d, now_ms()),
                Some(Event::Lagged(n)) => {
                    tracing::warn!(missed = n, "harness delivery recorder fell behind");
                    l.lagged(n);
                }
                None => return,
            }
        }
    });
    Some(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::MessageId;
    use bytes::Bytes;

    fn delivery(origin: NodeId, seq: u64, id: &str) -> Delivery {
        let msg = HarnessMessage {
            id: id.into(),
            payload: "p".into(),
        };
        Delivery {
            id: MessageId {
                origin,
                incarnation: 1,
                seq,
            },
            origin,
            channel: Arc::from(HARNESS_CHANNEL),
            payload: Bytes::from(serde_json::to_vec(&msg).expect("encode")),
            broadcast: true,
        }
    }

    fn ids(p: &DeliveriesPage) -> Vec<(u64, String)> {
        p.deliveries.iter().map(|d| (d.seq, d.id.clone())).collect()
    }

    #[test]
    fn pages_follow_the_sequence_numbers() {
        let log = DeliveryLog::new(7, 10);
        for i in 1..=5 {
            log.record(&delivery(2, i, &format!("b{i}")), 100 + i);
        }
        let p = log.page(0, 2);
        assert_eq!(ids(&p), vec![(1, "b1".into()), (2, "b2".into())]);
        assert_eq!((p.next_after, p.last_seq, p.node_id), (Some(2), 5, 7));
        let p = log.page(2, 10);
        assert_eq!(ids(&p).len(), 3);
        assert_eq!(p.deliveries[0].seq, 3);
        assert_eq!(p.deliveries[0].origin, 2);
        assert_eq!(p.deliveries[0].at_ms, 103);
        assert_eq!(p.next_after, None);
        assert!(log.page(5, 10).deliveries.is_empty());
        assert!(log.page(99, 10).deliveries.is_empty());
    }

    #[test]
    fn the_ring_evicts_the_oldest_and_counts_them() {
        let log = DeliveryLog::new(1, 3);
        for i in 1..=5 {
            log.record(&delivery(1, i, &format!("b{i}")), i);
        }
        let p = log.page(0, 10);
        assert_eq!(
            ids(&p),
            vec![(3, "b3".into()), (4, "b4".into()), (5, "b5".into())]
        );
        assert_eq!((p.dropped, p.last_seq, p.capacity), (2, 5, 3));
        assert_eq!(
            ids(&log.page(3, 10)),
            vec![(4, "b4".into()), (5, "b5".into())]
        );
    }

    #[test]
    fn foreign_payloads_and_lag_are_counted_not_recorded() {
        let log = DeliveryLog::new(1, 3);
        let mut d = delivery(2, 1, "x");
        d.payload = Bytes::from_static(b"not json");
        log.record(&d, 1);
        log.lagged(4);
        let p = log.page(0, 10);
        assert!(p.deliveries.is_empty());
        assert_eq!((p.undecodable, p.lagged, p.last_seq), (1, 4, 0));
    }
}
