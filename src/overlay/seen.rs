//! A bounded set of delivered broadcast ids, for duplicate suppression in
//! the overlays that own no richer message cache (full mesh,
//! client-server). Oldest ids are forgotten first.

use std::collections::{BTreeSet, VecDeque};

use super::MessageId;

/// Delivered ids, at most `capacity` of them (oldest evicted first).
#[derive(Debug, Clone)]
pub struct SeenCache {
    set: BTreeSet<MessageId>,
    order: VecDeque<MessageId>,
    capacity: usize,
}

impl SeenCache {
    /// An empty cache holding at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        SeenCache {
            set: BTreeSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `id`; returns `true` if it was not seen before.
    pub fn insert(&mut self, id: MessageId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &MessageId) -> bool {
        self.set.contains(id)
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> MessageId {
        MessageId {
            origin: 1,
            incarnation: 0,
            seq,
        }
    }

    #[test]
    fn duplicates_are_refused_and_oldest_evicted() {
        let mut c = SeenCache::new(2);
        assert!(c.insert(id(1)));
        assert!(!c.insert(id(1)));
        assert!(c.insert(id(2)));
        assert!(c.insert(id(3)));
        assert_eq!(c.len(), 2);
        assert!(!c.contains(&id(1)));
        assert!(c.contains(&id(3)));
    }
}
