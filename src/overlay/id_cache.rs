//! A bounded FIFO cache keyed by [`MessageId`], shared by every overlay:
//! seen ids (full mesh, client-server, the HyParView flood; `IdCache<()>`)
//! and Plumtree's delivered ids and payloads.
//!
//! Lookups go through a `HashMap`, which is never iterated; the insertion
//! order lives in a `VecDeque`, so every walk over the cache is
//! deterministic. Nothing is preallocated: a node that saw 30 messages holds
//! 30 entries, whatever the capacity.

use std::collections::{HashMap, VecDeque};

use crate::overlay::MessageId;

/// Remembers at most `capacity` ids (with a value each); the oldest is
/// evicted first.
#[derive(Debug, Clone)]
pub(crate) struct IdCache<V> {
    map: HashMap<MessageId, V>,
    order: VecDeque<MessageId>,
    capacity: usize,
}

impl<V> IdCache<V> {
    /// An empty cache holding at most `capacity` ids (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        IdCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn contains(&self, id: &MessageId) -> bool {
        self.map.contains_key(id)
    }

    pub(crate) fn get(&self, id: &MessageId) -> Option<&V> {
        self.map.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &MessageId) -> Option<&mut V> {
        self.map.get_mut(id)
    }

    /// Inserts `id` unless present; returns whether it was new. Evicts the
    /// oldest id when full.
    pub(crate) fn insert(&mut self, id: MessageId, value: V) -> bool {
        if self.map.contains_key(&id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.order.push_back(id);
        self.map.insert(id, value);
        true
    }

    /// Entries from the newest to the oldest.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = (&MessageId, &V)> {
        self.order
            .iter()
            .rev()
            .filter_map(|id| self.map.get(id).map(|v| (id, v)))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
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
    fn evicts_the_oldest_when_full() {
        let mut c = IdCache::new(2);
        assert!(c.insert(id(1), 'a'));
        assert!(!c.insert(id(1), 'x'));
        assert!(c.insert(id(2), 'b'));
        assert!(c.insert(id(3), 'c'));
        assert!(!c.contains(&id(1)));
        assert_eq!(c.get(&id(2)), Some(&'b'));
        assert_eq!(c.len(), 2);
        let newest: Vec<_> = c.newest_first().map(|(i, v)| (i.seq, *v)).collect();
        assert_eq!(newest, vec![(3, 'c'), (2, 'b')]);
    }
}
