//! Whether each Raft peer answers, as this node's RPC client last saw it,
//! so that an unreachable peer is logged once when it goes down and once
//! when it answers again — not on every heartbeat (openraft retries a
//! cut-off peer every heartbeat interval, 20 times a second by default).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::model::NodeId;

/// A change of a peer's reachability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The first failure after success (or after start).
    Down,
    /// The first success after `failures` failed RPCs.
    Up { failures: u64 },
}

/// One peer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Up,
    Down { failures: u64 },
}

/// Reachability of every peer; shared by the RPC clients of one node.
#[derive(Debug, Clone, Default)]
pub struct Reachability {
    peers: Arc<Mutex<BTreeMap<NodeId, Seen>>>,
}

impl Reachability {
    /// Records one RPC outcome to `target`; the change it makes, if any.
    pub fn observe(&self, target: NodeId, ok: bool) -> Option<Change> {
        let mut peers = self.peers.lock().expect("reachability lock poisoned");
        let before = peers.get(&target).copied();
        let (after, change) = match (before, ok) {
            (None | Some(Seen::Up), true) => (Seen::Up, None),
            (Some(Seen::Down { failures }), true) => (Seen::Up, Some(Change::Up { failures })),
            (None | Some(Seen::Up), false) => (Seen::Down { failures: 1 }, Some(Change::Down)),
            (Some(Seen::Down { failures }), false) => (
                Seen::Down {
                    failures: failures.saturating_add(1),
                },
                None,
            ),
        };
        peers.insert(target, after);
        change
    }

    /// Forgets a removed member.
    pub fn forget(&self, target: NodeId) {
        let mut peers = self.peers.lock().expect("reachability lock poisoned");
        peers.remove(&target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_reported() {
        let r = Reachability::default();
        assert_eq!(
            r.observe(2, true),
            None,
            "up at first sight: nothing to say"
        );
        assert_eq!(r.observe(2, false), Some(Change::Down));
        for _ in 0..100 {
            assert_eq!(r.observe(2, false), None, "still down: silent");
        }
        assert_eq!(r.observe(3, false), Some(Change::Down), "per peer");
        assert_eq!(r.observe(2, true), Some(Change::Up { failures: 101 }));
        assert_eq!(r.observe(2, true), None);
        r.forget(3);
        assert_eq!(r.observe(3, false), Some(Change::Down));
    }
}
