//! Per-peer counters and RTT windows (for `GET /v1/node/stats`), this
//! node's totals over every peer it ever had ([`NodeTotals`], monotonic
//! even when a peer is dropped from the map: the node summary and the
//! `/metrics` counters use them), and the process-wide metrics (no
//! per-peer labels).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::NodeId;

/// RTT samples kept per peer for the percentiles.
pub const RTT_WINDOW: usize = 128;

/// One peer's figures at the time of `Transport::stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// A link to the peer is up now.
    pub link_up: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Data and control frames to or from this peer dropped (full queues,
    /// fault filter, discarded queue); unanswered pings are not counted.
    pub dropped: u64,
    /// Frames waiting in the send queue.
    pub queue_depth: usize,
    /// Links to this peer that went down.
    pub disconnects: u64,
    pub last_rtt: Option<Duration>,
    /// Median of the last [`RTT_WINDOW`] samples.
    pub rtt_p50: Option<Duration>,
    /// 99th percentile of the last [`RTT_WINDOW`] samples.
    pub rtt_p99: Option<Duration>,
}

/// The transport's figures: one entry per peer with a link or a standing
/// `connect`, and the node's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Events (control frames, RTT samples, send failures) dropped because
    /// the owner's event queue was full.
    pub dropped_events: u64,
    pub totals: NodeTotals,
}

/// This node's figures over all its peers, read without the per-peer RTT
/// windows ([`crate::transport::Transport::totals`]). The counters are
/// since the transport started and never go back, also when a peer
/// leaves the map; the gauges are of now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeTotals {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames dropped (as [`PeerStats::dropped`], summed).
    pub dropped: u64,
    /// Links that went down.
    pub disconnects: u64,
    /// Peers with a link up now.
    pub links_up: u32,
    /// Peers with a link or a standing `connect` now.
    pub peers: u32,
    /// Frames waiting in all send queues now.
    pub queue_depth: u64,
    /// The deepest send queue now.
    pub max_queue_depth: u64,
}

/// The node's counters, shared by every peer's [`PeerCounters`].
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    dropped: AtomicU64,
    disconnects: AtomicU64,
}

impl NodeCounters {
    /// The counters, with the gauges left at zero for the caller.
    pub fn snapshot(&self) -> NodeTotals {
        NodeTotals {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            ..NodeTotals::default()
        }
    }
}

/// Live counters of one peer, shared by its tasks.
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub link_up: AtomicBool,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub dropped: AtomicU64,
    pub disconnects: AtomicU64,
    rtt: Mutex<VecDeque<Duration>>,
    /// The node's totals, counted beside this peer's.
    node: Arc<NodeCounters>,
}

impl PeerCounters {
    /// A peer's counters adding to the node's `node` too.
    pub fn new(node: Arc<NodeCounters>) -> Self {
        PeerCounters {
            node,
            ..PeerCounters::default()
        }
    }

    /// `frames` frames of `bytes` in all received (the link's reader and
    /// writer count once per batch, not per frame).
    pub fn received_many(&self, frames: u64, bytes: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.frames_in.fetch_add(frames, Ordering::Relaxed);
        self.node.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        self.node.frames_in.fetch_add(frames, Ordering::Relaxed);
        metrics::counter!("topod_transport_bytes_total", "direction" => "in").increment(bytes);
        metrics::counter!("topod_transport_frames_total", "direction" => "in").increment(frames);
    }

    /// `frames` frames of `bytes` in all sent, once per batch.
    pub fn sent_many(&self, frames: u64, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.frames_out.fetch_add(frames, Ordering::Relaxed);
        self.node.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.node.frames_out.fetch_add(frames, Ordering::Relaxed);
        metrics::counter!("topod_transport_bytes_total", "direction" => "out").increment(bytes);
        metrics::counter!("topod_transport_frames_total", "direction" => "out").increment(frames);
    }

    pub fn dropped(&self, reason: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.node.dropped.fetch_add(1, Ordering::Relaxed);
        dropped(reason);
    }

    pub fn rtt(&self, rtt: Duration) {
        let mut w = self.rtt.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() == RTT_WINDOW {
            w.pop_front();
        }
        w.push_back(rtt);
        metrics::histogram!("topod_transport_rtt_seconds").record(rtt.as_secs_f64());
    }

    pub fn link(&self, up: bool) {
        self.link_up.store(up, Ordering::Relaxed);
        if up {
            metrics::gauge!("topod_transport_links").increment(1.0);
        } else {
            self.disconnects.fetch_add(1, Ordering::Relaxed);
            self.node.disconnects.fetch_add(1, Ordering::Relaxed);
            metrics::gauge!("topod_transport_links").decrement(1.0);
            metrics::counter!("topod_transport_disconnects_total").increment(1);
        }
    }

    pub fn snapshot(&self, queue_depth: usize) -> PeerStats {
        let w = self.rtt.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted: Vec<Duration> = w.iter().copied().collect();
        sorted.sort();
        PeerStats {
            link_up: self.link_up.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            queue_depth,
            disconnects: self.disconnects.load(Ordering::Relaxed),
            last_rtt: w.back().copied(),
            rtt_p50: percentile(&sorted, 50),
            rtt_p99: percentile(&sorted, 99),
        }
    }
}

/// Registers the transport metrics' descriptions and units with the
/// installed recorder (call once after installing it).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "topod_transport_bytes_total",
        Unit::Bytes,
        "Bytes on peer links, length prefixes included, by direction (in, out)"
    );
    describe_counter!(
        "topod_transport_frames_total",
        "Frames on peer links (data, control, pings), by direction (in, out)"
    );
    describe_counter!(
        "topod_transport_dropped_frames_total",
        "Frames dropped, by reason (queue_full, event_queue_full, fault, link_gone, \
         pong_queue_full, encode)"
    );
    describe_gauge!("topod_transport_links", "Peer links up now");
    describe_counter!(
        "topod_transport_disconnects_total",
        "Peer links that went down"
    );
    describe_histogram!(
        "topod_transport_rtt_seconds",
        Unit::Seconds,
        "Ping round-trip time on peer links"
    );
}

/// Counts a dropped frame in the metrics only (internal frames such as
/// pongs, which the per-peer figures leave out).
pub(crate) fn dropped(reason: &'static str) {
    metrics::counter!("topod_transport_dropped_frames_total", "reason" => reason).increment(1);
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank_over_a_bounded_window() {
        let c = PeerCounters::default();
        for ms in 1..=200u64 {
            c.rtt(Duration::from_millis(ms));
        }
        let s = c.snapshot(3);
        // Only the last 128 samples (73..=200 ms) are kept.
        assert_eq!(s.last_rtt, Some(Duration::from_millis(200)));
        assert_eq!(s.rtt_p50, Some(Duration::from_millis(136)));
        assert_eq!(s.rtt_p99, Some(Duration::from_millis(199)));
        assert_eq!(s.queue_depth, 3);
        assert_eq!(PeerCounters::default().snapshot(0).rtt_p50, None);
    }

    #[test]
    fn node_totals_keep_what_peers_counted_after_they_are_gone() {
        let node = Arc::new(NodeCounters::default());
        let a = PeerCounters::new(node.clone());
        let b = PeerCounters::new(node.clone());
        a.sent_many(2, 100);
        b.received_many(3, 30);
        b.link(true);
        b.link(false);
        a.dropped("fault");
        drop((a, b));
        let t = node.snapshot();
        assert_eq!(
            (t.frames_out, t.bytes_out, t.frames_in, t.bytes_in),
            (2, 100, 3, 30)
        );
        assert_eq!((t.disconnects, t.dropped), (1, 1));
    }
}
