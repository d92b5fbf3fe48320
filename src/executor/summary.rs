//! [`Recorder`]: the sliding window behind a node's summary of itself
//! ([`crate::model::NodeSummary`], `GET /v1/node/summary`). Sans-IO: the
//! caller passes `now` (time since the executor started) and the node's
//! cumulative figures ([`Totals`]); the recorder keeps per-second slots.
//!
//! Each slot holds the deltas of the cumulative figures over its second
//! (bytes and frames in and out, disconnects, application broadcasts and
//! point-to-point sends, CPU time), the deepest send queue sampled in it,
//! and fixed-size histograms of the overlay RTTs and broadcast hop counts
//! recorded in it. At most [`SLOTS`] closed slots are kept (10 minutes, the
//! longest window the API accepts) plus the open one, so memory is fixed
//! whatever the number of peers: about 1 KiB a slot, 600 KiB a node.
//!
//! A window of `w` combines the open slot (its deltas taken against the
//! figures at query time) with the closed slots that end within `w` of
//! now; rates divide by the time those slots actually cover, so they are
//! right before the window has filled and when a slot ran long.

use std::collections::VecDeque;
use std::time::Duration;

use super::histogram::LogHistogram;
use crate::model::metrics::{HopCount, InOut, Percentiles};

/// Length of one slot. The executor closes a slot on its first tick
/// after this much time.
pub const SLOT: Duration = Duration::from_secs(1);
/// Closed slots kept: 10 minutes (the API's longest window).
pub const SLOTS: usize = 600;
/// RTT buckets: µs up to 2^27 (≈ 134 s).
const RTT_BUCKETS: usize = 200;
/// Hop-count buckets: exact to 7, to 255 in all (hops saturate there).
const HOP_BUCKETS: usize = 48;

/// A node's cumulative figures since it started (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Transport frames (data, control, pings).
    pub messages_in: u64,
    pub messages_out: u64,
    /// Transport links that went down.
    pub disconnects: u64,
    /// Application broadcasts sent.
    pub app_broadcasts: u64,
    /// Application point-to-point messages sent.
    pub app_direct: u64,
    /// Process CPU time (user + system).
    pub cpu: Duration,
}

impl Totals {
    /// `self - earlier`, field by field (0 where a figure went back).
    fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
            messages_in: self.messages_in.saturating_sub(earlier.messages_in),
            messages_out: self.messages_out.saturating_sub(earlier.messages_out),
            disconnects: self.disconnects.saturating_sub(earlier.disconnects),
            app_broadcasts: self.app_broadcasts.saturating_sub(earlier.app_broadcasts),
            app_direct: self.app_direct.saturating_sub(earlier.app_direct),
            cpu: self.cpu.saturating_sub(earlier.cpu),
        }
    }

    fn add(&mut self, d: &Totals) {
        self.bytes_in += d.bytes_in;
        self.bytes_out += d.bytes_out;
        self.messages_in += d.messages_in;
        self.messages_out += d.messages_out;
        self.disconnects += d.disconnects;
        self.app_broadcasts += d.app_broadcasts;
        self.app_direct += d.app_direct;
        self.cpu += d.cpu;
    }
}

/// One second (or the open part of one).
#[derive(Debug, Clone, Default)]
struct Slot {
    start: Duration,
    end: Duration,
    delta: Totals,
    max_queue: u64,
    rtt_us: LogHistogram<RTT_BUCKETS>,
    hops: LogHistogram<HOP_BUCKETS>,
}

/// The figures of one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The time the combined slots cover (at most a slot more than asked).
    pub covered: Duration,
    pub rtt_ms: Option<Percentiles>,
    pub disconnects: u64,
    pub bytes_per_s: InOut,
    pub messages_per_s: InOut,
    pub max_queue_depth: u64,
    pub app_broadcasts: u64,
    pub app_direct: u64,
    pub hops: Option<HopCount>,
    /// CPU time over wall time (1.0 = one core busy).
    pub cpu_share: f64,
}

/// The sliding window: closed slots, oldest first, and the open one.
#[derive(Debug)]
pub struct Recorder {
    closed: VecDeque<Slot>,
    open: Slot,
    /// The cumulative figures when the open slot started.
    base: Totals,
}

impl Recorder {
    /// Starts the first slot at `now` with the figures `totals`.
    pub fn new(now: Duration, totals: Totals) -> Self {
        Recorder {
            closed: VecDeque::with_capacity(SLOTS),
            open: Slot {
                start: now,
                ..Slot::default()
            },
            base: totals,
        }
    }

    /// One overlay round trip.
    pub fn record_rtt(&mut self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.open.rtt_us.record(us);
    }

    /// The hops of one broadcast received (first delivery).
    pub fn record_hops(&mut self, hops: u32) {
        self.open.hops.record(u64::from(hops));
    }

    /// Whether the open slot is a [`SLOT`] old at `now`.
    pub fn due(&self, now: Duration) -> bool {
        now >= self.next_close()
    }

    /// When the open slot is due to close.
    pub fn next_close(&self) -> Duration {
        self.open.start + SLOT
    }

    /// Closes the open slot at `now` with the figures read then, and opens
    /// the next; the oldest slot beyond [`SLOTS`] is dropped.
    pub fn close(&mut self, now: Duration, totals: Totals, queue_depth: u64) {
        let mut slot = std::mem::take(&mut self.open);
        slot.end = now.max(slot.start);
        slot.delta = totals.since(&self.base);
        slot.max_queue = slot.max_queue.max(queue_depth);
        if self.closed.len() == SLOTS {
            self.closed.pop_front();
        }
        self.closed.push_back(slot);
        self.base = totals;
        self.open.start = now;
    }

    /// The figures of the last `window` at `now`, with the cumulative
    /// figures and the queue depth read at `now`.
    pub fn window(&self, now: Duration, window: Duration, totals: Totals, queue: u64) -> Figures {
        let from = now.saturating_sub(window);
        let mut delta = totals.since(&self.base);
        let mut max_queue = self.open.max_queue.max(queue);
        let mut rtt = self.open.rtt_us.clone();
        let mut hops = self.open.hops.clone();
        let mut start = self.open.start;
        for s in self.closed.iter().rev().take_while(|s| s.end > from) {
            delta.add(&s.delta);
            max_queue = max_queue.max(s.max_queue);
            rtt.merge(&s.rtt_us);
            hops.merge(&s.hops);
            start = s.start;
        }
        let covered = now.saturating_sub(start);
        let secs = covered.as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Figures {
            covered,
            rtt_ms: rtt
                .quantile(0.5)
                .zip(rtt.quantile(0.99))
                .map(|(p50, p99)| Percentiles {
                    p50: p50 / 1000.0,
                    p99: p99 / 1000.0,
                }),
            disconnects: delta.disconnects,
            bytes_per_s: InOut {
                inbound: rate(delta.bytes_in),
                outbound: rate(delta.bytes_out),
            },
            messages_per_s: InOut {
                inbound: rate(delta.messages_in),
                outbound: rate(delta.messages_out),
            },
            max_queue_depth: max_queue,
            app_broadcasts: delta.app_broadcasts,
            app_direct: delta.app_direct,
            hops: hops.quantile(0.5).map(|p50| HopCount {
                p50,
                max: u32::try_from(hops.max()).unwrap_or(u32::MAX),
            }),
            cpu_share: if secs > 0.0 {
                delta.cpu.as_secs_f64() / secs
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// Totals after `t` seconds of 1000 bytes in, 500 out, 10 frames each
    /// way, one broadcast and two sends a second, and 0.25 s CPU a second.
    fn steady(t: u64) -> Totals {
        Totals {
            bytes_in: 1000 * t,
            bytes_out: 500 * t,
            messages_in: 10 * t,
            messages_out: 10 * t,
            disconnects: 0,
            app_broadcasts: t,
            app_direct: 2 * t,
            cpu: Duration::from_millis(250 * t),
        }
    }

    /// A recorder run for `secs` seconds of steady traffic, closing a slot
    /// every second.
    fn run(secs: u64) -> Recorder {
        let mut r = Recorder::new(s(0), steady(0));
        for t in 1..=secs {
            assert!(r.due(s(t)));
            r.close(s(t), steady(t), 0);
        }
        r
    }

    #[test]
    fn rates_divide_by_the_time_covered() {
        let r = run(30);
        let f = r.window(s(30), s(10), steady(30), 0);
        assert_eq!(f.covered, s(10));
        assert_eq!(
            f.bytes_per_s,
            InOut {
                inbound: 1000.0,
                outbound: 500.0
            }
        );
        assert_eq!(
            f.messages_per_s,
            InOut {
                inbound: 10.0,
                outbound: 10.0
            }
        );
        assert_eq!((f.app_broadcasts, f.app_direct), (10, 20));
        assert!((f.cpu_share - 0.25).abs() < 1e-9, "{}", f.cpu_share);
        // Before the window filled: the rate over what exists, not diluted.
        let f = r.window(s(30), s(600), steady(30), 0);
        assert_eq!(f.covered, s(30));
        assert_eq!(f.bytes_per_s.inbound, 1000.0);
        assert_eq!(f.app_broadcasts, 30);
    }

    #[test]
    fn the_open_slot_counts_against_the_figures_at_query_time() {
        let r = run(5);
        // Half a second into slot 6, at the same rates.
        let now = Duration::from_millis(5500);
        let mut live = steady(5);
        live.bytes_in += 500;
        live.app_broadcasts += 1;
        let f = r.window(now, s(2), live, 0);
        assert_eq!(f.covered, Duration::from_millis(2500));
        assert_eq!(f.bytes_per_s.inbound, 1000.0);
        assert_eq!(f.app_broadcasts, 3);
    }

    #[test]
    fn counts_roll_out_of_the_window() {
        let mut r = Recorder::new(s(0), Totals::default());
        let mut t = Totals::default();
        // Second 1: two disconnects, an RTT sample of 40 ms, hops 3.
        r.record_rtt(Duration::from_millis(40));
        r.record_hops(3);
        t.disconnects = 2;
        r.close(s(1), t, 7);
        // Seconds 2..=11: quiet, a 2 ms RTT each second.
        for sec in 2..=11 {
            r.record_rtt(Duration::from_millis(2));
            r.close(s(sec), t, 0);
        }
        let all = r.window(s(11), s(11), t, 0);
        assert_eq!(all.disconnects, 2);
        assert_eq!(all.max_queue_depth, 7);
        assert_eq!(all.hops, Some(HopCount { p50: 3.0, max: 3 }));
        let p99 = all.rtt_ms.unwrap().p99;
        assert!(
            (35.0..=45.0).contains(&p99),
            "the 40 ms sample is in: {p99}"
        );
        let recent = r.window(s(11), s(10), t, 0);
        assert_eq!(recent.disconnects, 0, "second 1 rolled out");
        assert_eq!(recent.max_queue_depth, 0);
        assert_eq!(recent.hops, None);
        let rtt = recent.rtt_ms.unwrap();
        assert!((1.75..=2.25).contains(&rtt.p99), "{rtt:?}");
        assert!((1.75..=2.25).contains(&rtt.p50), "{rtt:?}");
    }

    #[test]
    fn memory_is_bounded_at_ten_minutes_of_slots() {
        let r = run(SLOTS as u64 + 50);
        assert_eq!(r.closed.len(), SLOTS);
        let now = s(SLOTS as u64 + 50);
        let f = r.window(now, s(3600), steady(SLOTS as u64 + 50), 0);
        assert_eq!(f.covered, s(SLOTS as u64));
        assert_eq!(f.app_broadcasts, SLOTS as u64);
    }

    #[test]
    fn an_empty_window_has_no_rates_and_no_samples() {
        let r = Recorder::new(s(3), steady(3));
        let f = r.window(s(3), s(60), steady(3), 0);
        assert_eq!(f.covered, Duration::ZERO);
        assert_eq!(f.bytes_per_s, InOut::default());
        assert_eq!((f.rtt_ms, f.hops, f.cpu_share), (None, None, 0.0));
    }

    #[test]
    fn a_slot_that_ran_long_is_rated_over_its_real_length() {
        let mut r = Recorder::new(s(0), steady(0));
        r.close(s(4), steady(4), 0); // the executor was busy for 4 s
        let f = r.window(s(4), s(1), steady(4), 0);
        assert_eq!(f.covered, s(4));
        assert_eq!(f.bytes_per_s.inbound, 1000.0);
    }
}
