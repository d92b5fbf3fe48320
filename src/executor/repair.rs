//! Gap repair of application broadcasts: what makes the delivery promise
//! hold when an overlay does not carry a broadcast everywhere (a HyParView
//! graph split for a while, a drain that ended before a slow node cut over,
//! a link replaced with frames still in its socket).
//!
//! Every application broadcast carries, besides its [`MessageId`], a
//! broadcast sequence number `bseq`, contiguous per origin incarnation.
//! - The origin keeps its recent broadcasts in an [`Outbox`] (bounded by
//!   count and bytes) and, while it is broadcasting, tells every live
//!   member its latest `bseq` (a summary) every `summary_interval`.
//! - Each receiver tracks per origin ([`Gaps`]) the highest `bseq` below
//!   which it has seen everything; a gap that lasts `repair_delay` (the
//!   overlay's own repair — Plumtree's graft — gets its chance first) is
//!   asked for with a nack to the origin, which resends what it still
//!   keeps, point to point, and says which part is gone.
//!
//! Repairs are delivered through the same duplicate filter as everything
//! else, so a late overlay copy and a repair never both reach the
//! application. What the origin no longer keeps is counted as
//! unrecoverable (a metric), never dropped silently.
//!
//! A receiver first hearing of an origin incarnation starts tracking at
//! the first `bseq` it sees (a summary, or a broadcast): broadcasts sent
//! before it knew the origin are not owed to it — unless that number is
//! among the origin's first [`FRESH`]: an origin that has only just begun
//! to broadcast is owed in full (its very first broadcasts may be the ones
//! this receiver lost), while a node that joins late is not owed a long
//! history.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use std::time::Duration;

use crate::model::NodeId;
use crate::overlay::MessageId;

/// A track that starts at a broadcast number this low starts at 0 (see
/// the module docs).
pub const FRESH: u64 = 64;
/// Most sequence numbers one nack asks for.
pub const NACK_MAX: usize = 1024;
/// Most sequence numbers above a gap a receiver remembers per origin; past
/// it the gap is given up as unrecoverable.
const ABOVE_MAX: usize = 1 << 16;

/// The actor's gap-repair state: its outbox, what it has seen of others,
/// and the schedule of its summaries.
#[derive(Debug)]
pub struct RepairState {
    pub outbox: Outbox,
    pub gaps: Gaps,
    /// When summaries and nacks are next sent.
    pub next_round: Duration,
    /// The last broadcast number a summary round started for.
    pub summarized: u64,
    /// Summary rounds still to send since the last broadcast.
    pub summaries_left: u32,
    /// Where the next summary round starts among the live members (with
    /// `executor.summary_peers`).
    pub summary_turn: usize,
}

impl RepairState {
    pub fn new(cfg: &super::ExecutorConfig) -> Self {
        RepairState {
            outbox: Outbox::new(
                usize::try_from(cfg.repair_buffer_messages).unwrap_or(usize::MAX),
                usize::try_from(cfg.repair_buffer_bytes).unwrap_or(usize::MAX),
            ),
            gaps: Gaps::default(),
            next_round: Duration::ZERO,
            summarized: 0,
            summaries_left: 0,
            summary_turn: 0,
        }
    }
}

/// One broadcast kept for resending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub bseq: u64,
    pub id: MessageId,
    pub channel: String,
    pub data: Bytes,
}

/// This node's recent broadcasts, bounded by count and bytes.
#[derive(Debug)]
pub struct Outbox {
    kept: VecDeque<Kept>,
    bytes: usize,
    max_len: usize,
    max_bytes: usize,
    last: u64,
}

impl Outbox {
    pub fn new(max_len: usize, max_bytes: usize) -> Self {
        Outbox {
            kept: VecDeque::new(),
            bytes: 0,
            max_len: max_len.max(1),
            max_bytes,
            last: 0,
        }
    }

    /// The latest `bseq` given out (0: none yet).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Numbers and keeps a new broadcast; returns its `bseq`.
    pub fn push(&mut self, id: MessageId, channel: &str, data: &Bytes) -> u64 {
        self.last += 1;
        let size = data.len() + channel.len();
        self.kept.push_back(Kept {
            bseq: self.last,
            id,
            channel: channel.to_string(),
            data: data.clone(),
        });
        self.bytes += size;
        while self.kept.len() > self.max_len || (self.bytes > self.max_bytes && self.kept.len() > 1)
        {
            if let Some(k) = self.kept.pop_front() {
                self.bytes -= k.data.len() + k.channel.len();
            }
        }
        self.last
    }

    /// The oldest `bseq` still kept (`last + 1` when none is).
    pub fn oldest(&self) -> u64 {
        self.kept.front().map_or(self.last + 1, |k| k.bseq)
    }

    /// The kept broadcast `bseq`, if still kept.
    pub fn get(&self, bseq: u64) -> Option<&Kept> {
        let first = self.kept.front()?.bseq;
        let i = bseq.checked_sub(first)?;
        self.kept.get(usize::try_from(i).ok()?)
    }
}

/// What a receiver knows of one origin incarnation.
#[derive(Debug)]
struct Track {
    incarnation: u32,
    /// Every `bseq` up to this one was seen (or given up).
    contiguous: u64,
    /// Seen above `contiguous`.
    above: BTreeSet<u64>,
    /// The origin's latest `bseq` as its summaries say.
    known: u64,
    /// Since when a gap has been open.
    gap_since: Option<Duration>,
    last_nack: Option<Duration>,
}

impl Track {
    fn new(incarnation: u32, contiguous: u64) -> Self {
        Track {
            incarnation,
            contiguous,
            above: BTreeSet::new(),
            known: contiguous,
            gap_since: None,
            last_nack: None,
        }
    }

    fn highest(&self) -> u64 {
        self.known
            .max(self.above.last().copied().unwrap_or(0))
            .max(self.contiguous)
    }

    /// Moves `contiguous` up over what was seen; returns how many
    /// sequence numbers were skipped as lost (`floor` forces it up).
    fn advance(&mut self, floor: u64) -> u64 {
        let mut lost = 0;
        if floor > self.contiguous {
            let skipped = floor - self.contiguous;
            let seen = self.above.range(..=floor).count() as u64;
            lost = skipped - seen;
            self.above = self.above.split_off(&(floor + 1));
            self.contiguous = floor;
        }
        while self.above.first() == Some(&(self.contiguous + 1)) {
            self.above.pop_first();
            self.contiguous += 1;
        }
        lost
    }

    fn update_gap(&mut self, now: Duration) {
        if self.highest() > self.contiguous {
            self.gap_since.get_or_insert(now);
        } else {
            self.gap_since = None;
            self.last_nack = None;
        }
    }
}

/// A nack to send: ask `origin` (incarnation) for `missing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NackDue {
    pub origin: NodeId,
    pub incarnation: u32,
    pub missing: Vec<u64>,
}

/// What this node has seen of every origin's broadcasts.
#[derive(Debug, Default)]
pub struct Gaps {
    tracks: BTreeMap<NodeId, Track>,
    /// Origins with a gap open.
    open: BTreeSet<NodeId>,
    /// Sequence numbers given up as unrecoverable, in all.
    pub unrecoverable: u64,
}

impl Gaps {
    /// The track of (`origin`, `incarnation`), created at `start` (the
    /// last `bseq` not owed) if new; `None` for an older incarnation.
    fn track(&mut self, origin: NodeId, incarnation: u32, start: u64) -> Option<&mut Track> {
        let start = if start < FRESH { 0 } else { start };
        let t = self
            .tracks
            .entry(origin)
            .or_insert_with(|| Track::new(incarnation, start));
        if incarnation < t.incarnation {
            return None;
        }
        if incarnation > t.incarnation {
            // The origin restarted: what its old incarnation still owed is
            // lost with it.
            self.unrecoverable += t.highest() - t.contiguous - t.above.len() as u64;
            *t = Track::new(incarnation, start);
        }
        Some(t)
    }

    /// Broadcast `bseq` of `origin` was seen (delivered or a duplicate).
    pub fn seen(&mut self, origin: NodeId, incarnation: u32, bseq: u64, now: Duration) {
        let Some(t) = self.track(origin, incarnation, bseq.saturating_sub(1)) else {
            return;
        };
        if bseq <= t.contiguous {
            return;
        }
        t.above.insert(bseq);
        let mut lost = t.advance(0);
        if t.above.len() > ABOVE_MAX {
            let floor = t.above.first().copied().unwrap_or(0).saturating_sub(1);
            lost += t.advance(floor);
        }
        t.update_gap(now);
        let open = t.gap_since.is_some();
        self.unrecoverable += lost;
        self.mark(origin, open);
    }

    fn mark(&mut self, origin: NodeId, open: bool) {
        if open {
            self.open.insert(origin);
        } else {
            self.open.remove(&origin);
        }
    }

    /// `origin`'s summary: its latest broadcast is `last`.
    pub fn summary(&mut self, origin: NodeId, incarnation: u32, last: u64, now: Duration) {
        let Some(t) = self.track(origin, incarnation, last) else {
            return;
        };
        t.known = t.known.max(last);
        t.update_gap(now);
        let open = t.gap_since.is_some();
        self.mark(origin, open);
    }

    /// `origin` no longer keeps anything below `below`: give it up.
    pub fn gone(&mut self, origin: NodeId, incarnation: u32, below: u64, now: Duration) {
        let Some(t) = self.tracks.get_mut(&origin) else {
            return;
        };
        if t.incarnation != incarnation {
            return;
        }
        let lost = t.advance(below.saturating_sub(1).min(t.highest()));
        t.update_gap(now);
        let open = t.gap_since.is_some();
        self.mark(origin, open);
        self.unrecoverable += lost;
        if lost > 0 {
            tracing::warn!(
                origin,
                lost,
                "broadcasts lost: the origin no longer keeps them for repair"
            );
        }
    }

    /// Whether any origin has a gap open (a nack may become due).
    pub fn open(&self) -> bool {
        !self.open.is_empty()
    }

    /// When the next nack is due at the earliest (`delay` after a gap
    /// opened, or after the last nack for it).
    pub fn next_due(&self, delay: Duration) -> Option<Duration> {
        self.open
            .iter()
            .filter_map(|o| self.tracks.get(o))
            .filter_map(|t| {
                let since = t.gap_since?;
                Some(match t.last_nack {
                    Some(l) => (since + delay).max(l + delay),
                    None => since + delay,
                })
            })
            .min()
    }

    /// Forgets origins that are no longer members.
    pub fn retain(&mut self, members: &BTreeSet<NodeId>) {
        self.tracks.retain(|o, _| members.contains(o));
        self.open.retain(|o| members.contains(o));
    }

    /// Nacks for gaps open at least `delay`, each repeated at most every
    /// `delay`.
    pub fn due(&mut self, now: Duration, delay: Duration) -> Vec<NackDue> {
        let mut out = Vec::new();
        for origin in &self.open {
            let Some(t) = self.tracks.get_mut(origin) else {
                continue;
            };
            let Some(since) = t.gap_since else { continue };
            if now < since + delay || t.last_nack.is_some_and(|l| now < l + delay) {
                continue;
            }
            let missing: Vec<u64> = (t.contiguous + 1..=t.highest())
                .filter(|s| !t.above.contains(s))
                .take(NACK_MAX)
                .collect();
            if missing.is_empty() {
                continue;
            }
            t.last_nack = Some(now);
            out.push(NackDue {
                origin: *origin,
                incarnation: t.incarnation,
                missing,
            });
        }
        out
    }

    /// Sequence numbers still missing from `origin` (tests, stats).
    pub fn missing(&self, origin: NodeId) -> u64 {
        self.tracks
            .get(&origin)
            .map_or(0, |t| t.highest() - t.contiguous - t.above.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> MessageId {
        MessageId {
            origin: 1,
            incarnation: 1,
            seq,
        }
    }

    #[test]
    fn the_outbox_is_bounded_by_count_and_bytes() {
        let mut o = Outbox::new(3, 1000);
        let d = Bytes::from_static(b"0123456789");
        for s in 1..=5 {
            assert_eq!(o.push(id(s), "c", &d), s);
        }
        assert_eq!((o.oldest(), o.last()), (3, 5));
        assert!(o.get(2).is_none());
        assert_eq!(o.get(4).map(|k| k.id), Some(id(4)));
        let mut o = Outbox::new(100, 25);
        for s in 1..=5 {
            o.push(id(s), "c", &d);
        }
        assert_eq!(o.oldest(), 4, "two 11-byte entries fit in 25 bytes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_is_nacked_after_the_delay_and_closed_by_the_repair() {
        let mut i = Gaps::default();
        let t0 = Duration::from_secs(100);
        let delay = Duration::from_millis(300);
        i.seen(1, 1, 1, t0);
        i.seen(1, 1, 2, t0);
        i.seen(1, 1, 5, t0);
        assert!(i.due(t0, delay).is_empty(), "not before the delay");
        let t1 = t0 + delay;
        let due = i.due(t1, delay);
        assert_eq!(
            due,
            vec![NackDue {
                origin: 1,
                incarnation: 1,
                missing: vec![3, 4]
            }]
        );
        assert!(i.due(t1, delay).is_empty(), "not repeated at once");
        i.seen(1, 1, 3, t1);
        i.seen(1, 1, 4, t1);
        assert_eq!(i.missing(1), 0);
        assert!(i.due(t1 + delay * 2, delay).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_summary_reveals_a_lost_tail_and_gone_gives_it_up() {
        let mut i = Gaps::default();
        let t0 = Duration::from_secs(100);
        let delay = Duration::from_millis(100);
        i.seen(2, 7, 100, t0);
        i.summary(2, 7, 103, t0);
        assert_eq!(i.missing(2), 3);
        let due = i.due(t0 + delay, delay);
        assert_eq!(due[0].missing, vec![101, 102, 103]);
        i.seen(2, 7, 103, t0);
        i.gone(2, 7, 103, t0);
        assert_eq!(i.missing(2), 0);
        assert_eq!(i.unrecoverable, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn tracking_starts_at_first_sight_and_restarts_with_a_new_incarnation() {
        let mut i = Gaps::default();
        let t0 = Duration::from_secs(100);
        i.seen(3, 1, 500, t0);
        assert_eq!(i.missing(3), 0, "what came before is not owed");
        i.seen(3, 1, 502, t0);
        assert_eq!(i.missing(3), 1);
        // An origin first heard of at one of its first broadcasts is owed
        // the ones before.
        i.seen(4, 1, 3, t0);
        assert_eq!(i.missing(4), 2);
        i.summary(5, 1, 2, t0);
        assert_eq!(i.missing(5), 2);
        i.seen(3, 2, 1, t0);
        assert_eq!(i.missing(3), 0);
        assert_eq!(i.unrecoverable, 1, "the old incarnation's gap is lost");
        i.seen(3, 1, 501, t0);
        assert_eq!(i.missing(3), 0, "an older incarnation is ignored");
        i.retain(&BTreeSet::new());
        assert!(i.tracks.is_empty());
    }
}
