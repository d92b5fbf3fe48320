//! [`Dedup`]: duplicate suppression of application messages by id, with a
//! sliding window per (origin, incarnation) and a bound on the number of
//! origins remembered: memory stays bounded however long a node runs.

use std::collections::BTreeMap;

use crate::model::NodeId;
use crate::overlay::MessageId;

/// Sequence numbers remembered below an origin's highest seen one. A
/// message older than that is treated as already seen (guess: far above
/// the reordering between two overlays during a switch).
pub const WINDOW: u64 = 1 << 16;
/// Incarnations remembered per origin (the current one and the one before
/// a restart).
const INCARNATIONS: usize = 2;

/// The seen sequence numbers in `(max - WINDOW, max]` of one origin and
/// incarnation, one bit each in a ring (8 KiB): a check and an insert cost
/// a few instructions, where a tree of 65,536 numbers cost a search and a
/// node split (measured with `bench_p2p`).
#[derive(Debug)]
struct Window {
    max: u64,
    bits: Box<[u64]>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            max: 0,
            bits: vec![0; (WINDOW / 64) as usize].into_boxed_slice(),
        }
    }
}

impl Window {
    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn insert(&mut self, seq: u64) -> bool {
        if seq.saturating_add(WINDOW) <= self.max {
            return false;
        }
        if seq > self.max {
            // Forget what falls out of the window: the slots of
            // max+1 ..= seq (all of them after a jump of a window or more).
            if seq - self.max >= WINDOW {
                self.bits.fill(0);
            } else {
                for s in self.max + 1..=seq {
                    let (w, b) = Self::slot(s);
                    self.bits[w] &= !b;
                }
            }
            self.max = seq;
        }
        let (w, b) = Self::slot(seq);
        let new = self.bits[w] & b == 0;
        self.bits[w] |= b;
        new
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// Remembers which message ids were delivered.
#[derive(Debug, Default)]
pub struct Dedup {
    origins: BTreeMap<NodeId, BTreeMap<u32, Window>>,
}

impl Dedup {
    /// True if `id` is new (and records it); false for a duplicate.
    pub fn insert(&mut self, id: MessageId) -> bool {
        let per = self.origins.entry(id.origin).or_default();
        if per.len() >= INCARNATIONS && !per.contains_key(&id.incarnation) {
            let oldest = *per.keys().next().expect("non-empty");
            if id.incarnation < oldest {
                return false; // from an incarnation older than any remembered
            }
            per.remove(&oldest);
        }
        per.entry(id.incarnation).or_default().insert(id.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(origin: NodeId, incarnation: u32, seq: u64) -> MessageId {
        MessageId {
            origin,
            incarnation,
            seq,
        }
    }

    #[test]
    fn a_second_copy_is_a_duplicate_and_out_of_order_is_fine() {
        let mut d = Dedup::default();
        assert!(d.insert(id(1, 1, 5)));
        assert!(d.insert(id(1, 1, 3)));
        assert!(!d.insert(id(1, 1, 5)));
        assert!(!d.insert(id(1, 1, 3)));
        assert!(d.insert(id(2, 1, 5)));
        assert!(d.insert(id(1, 2, 5)), "a new incarnation starts afresh");
    }

    #[test]
    fn the_window_slides_over_jumps_small_and_large() {
        let mut d = Dedup::default();
        for s in 1..=10 {
            assert!(d.insert(id(1, 1, s)));
        }
        assert!(d.insert(id(1, 1, 10 + WINDOW - 1)));
        assert!(!d.insert(id(1, 1, 10)), "still in the window");
        assert!(!d.insert(id(1, 1, 9)), "fell out of the window");
        assert!(d.insert(id(1, 1, 11)), "in the window, never seen");
        assert!(d.insert(id(1, 1, 5 * WINDOW)));
        assert!(!d.insert(id(1, 1, 5 * WINDOW)));
        assert!(d.insert(id(1, 1, 5 * WINDOW - 1)), "slots were cleared");
        assert!(!d.insert(id(1, 1, 10 + WINDOW - 1)));
        assert!(d.insert(id(1, 1, u64::MAX)));
        assert!(!d.insert(id(1, 1, u64::MAX)));
    }

    #[test]
    fn memory_is_bounded_by_the_window_and_the_incarnations() {
        let mut d = Dedup::default();
        for s in 0..(3 * WINDOW) {
            assert!(d.insert(id(1, 1, s)));
        }
        assert!(d.origins[&1][&1].len() <= WINDOW);
        assert!(!d.insert(id(1, 1, 0)), "below the window counts as seen");
        for inc in 2..10 {
            assert!(d.insert(id(1, inc, 0)));
        }
        assert_eq!(d.origins[&1].len(), INCARNATIONS);
        assert!(!d.insert(id(1, 1, 5)), "an old incarnation is refused");
    }
}
