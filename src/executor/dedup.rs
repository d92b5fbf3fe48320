//! [`Dedup`]: duplicate suppression of application messages by id, with a
//! sliding window per (origin, incarnation) and a bound on the number of
//! origins remembered: memory stays bounded however long a node runs.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::NodeId;
use crate::overlay::MessageId;

/// Sequence numbers remembered below an origin's highest seen one. A
/// message older than that is treated as already seen (guess: far above
/// the reordering between two overlays during a switch).
pub const WINDOW: u64 = 1 << 16;
/// Incarnations remembered per origin (the current one and the one before
/// a restart).
const INCARNATIONS: usize = 2;

#[derive(Debug, Default)]
struct Window {
    max: u64,
    seen: BTreeSet<u64>,
}

impl Window {
    fn insert(&mut self, seq: u64) -> bool {
        if seq + WINDOW <= self.max || !self.seen.insert(seq) {
            return false;
        }
        if seq > self.max {
            self.max = seq;
            let floor = self.max.saturating_sub(WINDOW);
            while let Some(&low) = self.seen.first() {
                if low > floor {
                    break;
                }
                self.seen.pop_first();
            }
        }
        true
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
    fn memory_is_bounded_by_the_window_and_the_incarnations() {
        let mut d = Dedup::default();
        for s in 0..(3 * WINDOW) {
            assert!(d.insert(id(1, 1, s)));
        }
        assert!(d.origins[&1][&1].seen.len() as u64 <= WINDOW);
        assert!(!d.insert(id(1, 1, 0)), "below the window counts as seen");
        for inc in 2..10 {
            assert!(d.insert(id(1, inc, 0)));
        }
        assert_eq!(d.origins[&1].len(), INCARNATIONS);
        assert!(!d.insert(id(1, 1, 5)), "an old incarnation is refused");
    }
}
