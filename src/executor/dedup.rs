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

/// The seen sequence numbers of one origin and incarnation. Messages that
/// arrive in order (the common case: one origin's broadcast numbers) are
/// a run `low..=max` and cost two numbers; the first one out of order
/// turns the window into a bitmap of `(max - WINDOW, max]`, one bit each
/// in a ring (8 KiB): a check and an insert cost a few instructions, where
/// a tree of 65,536 numbers cost a search and a node split (measured with
/// `bench_p2p`). A node that hears from thousands of origins keeps a few
/// bytes for most of them.
#[derive(Debug)]
enum Window {
    /// Every number in `low..=max` was seen, nothing else.
    Run {
        low: u64,
        max: u64,
    },
    Bits {
        max: u64,
        bits: Box<[u64]>,
    },
}

impl Window {
    fn new(first: u64) -> Self {
        Window::Run {
            low: first,
            max: first,
        }
    }

    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn insert(&mut self, seq: u64) -> bool {
        if let Window::Run { low, max } = self {
            if seq.saturating_add(WINDOW) <= *max || (*low..=*max).contains(&seq) {
                return false;
            }
            if seq == *max + 1 {
                *max = seq;
                return true;
            }
            // Out of order: from now on, a bitmap.
            let (low, max) = (*low, *max);
            let mut bits = vec![0u64; (WINDOW / 64) as usize].into_boxed_slice();
            for s in low.max(max.saturating_sub(WINDOW - 1))..=max {
                let (w, b) = Self::slot(s);
                bits[w] |= b;
            }
            *self = Window::Bits { max, bits };
        }
        let Window::Bits { max, bits } = self else {
            unreachable!("a run became a bitmap above");
        };
        if seq.saturating_add(WINDOW) <= *max {
            return false;
        }
        if seq > *max {
            // Forget what falls out of the window: the slots of
            // max+1 ..= seq (all of them after a jump of a window or more).
            if seq - *max >= WINDOW {
                bits.fill(0);
            } else {
                for s in *max + 1..=seq {
                    let (w, b) = Self::slot(s);
                    bits[w] &= !b;
                }
            }
            *max = seq;
        }
        let (w, b) = Self::slot(seq);
        let new = bits[w] & b == 0;
        bits[w] |= b;
        new
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        match self {
            Window::Run { low, max } => max - low + 1,
            Window::Bits { bits, .. } => bits.iter().map(|w| u64::from(w.count_ones())).sum(),
        }
    }

    #[cfg(test)]
    fn is_run(&self) -> bool {
        matches!(self, Window::Run { .. })
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
        match per.entry(id.incarnation) {
            std::collections::btree_map::Entry::Occupied(mut w) => w.get_mut().insert(id.seq),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Window::new(id.seq));
                true
            }
        }
    }

    /// Forgets origins that are not `members` (they left the cluster: their
    /// windows would otherwise stay forever).
    pub fn retain(&mut self, members: &std::collections::BTreeSet<NodeId>) {
        self.origins.retain(|o, _| members.contains(o));
    }

    /// Origins remembered.
    pub fn origins(&self) -> usize {
        self.origins.len()
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
    fn in_order_numbers_stay_a_run_and_the_first_out_of_order_one_makes_a_bitmap() {
        let mut d = Dedup::default();
        for s in 10..=5000 {
            assert!(d.insert(id(1, 1, s)));
        }
        assert!(!d.insert(id(1, 1, 10)));
        assert!(!d.insert(id(1, 1, 4000)));
        assert!(d.origins[&1][&1].is_run());
        assert!(d.insert(id(1, 1, 9)), "below the run, in the window: new");
        assert!(!d.origins[&1][&1].is_run());
        assert!(!d.insert(id(1, 1, 9)));
        assert!(!d.insert(id(1, 1, 4000)), "the run's numbers are kept");
        assert!(d.insert(id(1, 1, 5002)));
        assert!(d.insert(id(1, 1, 5001)), "a gap is filled once");
        assert!(!d.insert(id(1, 1, 5001)));
        // A run that jumps becomes a bitmap too.
        assert!(d.insert(id(2, 1, 1)));
        assert!(d.insert(id(2, 1, 3)));
        assert!(d.insert(id(2, 1, 2)));
        assert!(!d.insert(id(2, 1, 3)));
    }

    #[test]
    fn origins_that_left_are_forgotten() {
        let mut d = Dedup::default();
        for o in 1..=5 {
            d.insert(id(o, 1, 1));
        }
        d.retain(&[2, 4].into());
        assert_eq!(d.origins(), 2);
        assert!(d.insert(id(1, 1, 1)), "forgotten, so new again");
        assert!(!d.insert(id(2, 1, 1)));
    }

    #[test]
    fn memory_is_bounded_by_the_window_and_the_incarnations() {
        let mut d = Dedup::default();
        for s in 0..(3 * WINDOW) {
            assert!(d.insert(id(1, 1, s)));
        }
        let w = &d.origins[&1][&1];
        assert!(w.is_run(), "in order: two numbers, whatever the count");
        assert_eq!(w.len(), 3 * WINDOW);
        assert!(!d.insert(id(1, 1, 0)), "below the window counts as seen");
        for inc in 2..10 {
            assert!(d.insert(id(1, inc, 0)));
        }
        assert_eq!(d.origins[&1].len(), INCARNATIONS);
        assert!(!d.insert(id(1, 1, 5)), "an old incarnation is refused");
    }
}
