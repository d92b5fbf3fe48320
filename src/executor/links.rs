//! [`Links`]: who uses the transport link to each peer. Links are shared
//! per peer by the current overlay, the shadow (or draining) overlay and
//! direct on-demand links; the transport connects a peer at its first user
//! and disconnects it only when no user remains. A link whose last
//! overlay user leaves is kept as an idle direct link (the other side, or
//! the next overlay, often still uses it: closing it would tell the peer's
//! overlays the link failed); direct links live in a bounded LRU cache,
//! and only eviction from it disconnects.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::NodeId;

/// One user of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkUser {
    /// A standing link the overlay instance asked for (`Connect`).
    Overlay(u64),
    /// An on-demand link (point-to-point, or an overlay send off its view).
    Direct,
}

/// What the owner must do on the transport after a change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkChanges {
    pub connect: Vec<NodeId>,
    pub disconnect: Vec<NodeId>,
}

/// Reference counts of link users per peer.
#[derive(Debug)]
pub struct Links {
    users: BTreeMap<NodeId, BTreeSet<LinkUser>>,
    direct: VecDeque<NodeId>,
    direct_cap: usize,
}

impl Links {
    pub fn new(direct_cap: usize) -> Self {
        Links {
            users: BTreeMap::new(),
            direct: VecDeque::new(),
            direct_cap: direct_cap.max(1),
        }
    }

    /// Whether anyone uses the link to `peer`.
    pub fn used(&self, peer: NodeId) -> bool {
        self.users.contains_key(&peer)
    }

    /// Adds `user` of `peer`'s link.
    pub fn acquire(&mut self, peer: NodeId, user: LinkUser) -> LinkChanges {
        let mut ch = LinkChanges::default();
        let set = self.users.entry(peer).or_default();
        if set.is_empty() {
            ch.connect.push(peer);
        }
        set.insert(user);
        if user == LinkUser::Direct {
            ch.disconnect = self.touch_direct(peer);
        }
        ch
    }

    /// Makes `peer` the most recent direct link; returns the peers evicted
    /// from the cache that nobody else uses.
    fn touch_direct(&mut self, peer: NodeId) -> Vec<NodeId> {
        self.direct.retain(|p| *p != peer);
        self.direct.push_back(peer);
        let mut gone = Vec::new();
        while self.direct.len() > self.direct_cap {
            let evicted = self.direct.pop_front().expect("non-empty");
            if let Some(set) = self.users.get_mut(&evicted) {
                set.remove(&LinkUser::Direct);
                if set.is_empty() {
                    self.users.remove(&evicted);
                    gone.push(evicted);
                }
            }
        }
        gone
    }

    /// Drops a direct link that could not be opened (no address).
    pub fn forget(&mut self, peer: NodeId) {
        self.direct.retain(|p| *p != peer);
        self.users.remove(&peer);
    }

    /// Removes `user` of `peer`'s link; returns the peers to disconnect
    /// (evicted from the idle cache).
    pub fn release(&mut self, peer: NodeId, user: LinkUser) -> Vec<NodeId> {
        self.remove(peer, user)
    }

    /// Removes every link of overlay `instance`; returns the peers to
    /// disconnect.
    pub fn release_overlay(&mut self, instance: u64) -> Vec<NodeId> {
        let peers: Vec<NodeId> = self
            .users
            .iter()
            .filter(|(_, s)| s.contains(&LinkUser::Overlay(instance)))
            .map(|(p, _)| *p)
            .collect();
        peers
            .into_iter()
            .flat_map(|p| self.remove(p, LinkUser::Overlay(instance)))
            .collect()
    }

    fn remove(&mut self, peer: NodeId, user: LinkUser) -> Vec<NodeId> {
        let Some(set) = self.users.get_mut(&peer) else {
            return Vec::new();
        };
        if !set.remove(&user) || !set.is_empty() {
            return Vec::new();
        }
        // The last user left: keep the link as an idle direct one.
        set.insert(LinkUser::Direct);
        self.touch_direct(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_disconnected_only_when_its_last_user_leaves() {
        let mut l = Links::new(4);
        assert_eq!(l.acquire(2, LinkUser::Overlay(0)).connect, vec![2]);
        assert!(l.acquire(2, LinkUser::Overlay(7)).connect.is_empty());
        assert!(l.release(2, LinkUser::Overlay(0)).is_empty());
        assert!(l.release_overlay(7).is_empty(), "kept as an idle link");
        assert!(l.used(2));
        // Idle links are evicted (and disconnected) beyond the cache size.
        for p in 10..14 {
            l.acquire(p, LinkUser::Direct);
        }
        assert!(!l.used(2));
    }

    #[test]
    fn direct_links_are_a_bounded_lru() {
        let mut l = Links::new(2);
        l.acquire(1, LinkUser::Direct);
        l.acquire(2, LinkUser::Overlay(3));
        l.acquire(2, LinkUser::Direct);
        l.acquire(1, LinkUser::Direct); // 1 is now the most recent
        let ch = l.acquire(3, LinkUser::Direct);
        assert_eq!(ch.connect, vec![3]);
        assert!(ch.disconnect.is_empty(), "2 is still used by the overlay");
        assert!(l.used(2) && l.used(1) && l.used(3));
        let ch = l.acquire(4, LinkUser::Direct);
        assert_eq!(ch.disconnect, vec![1]);
    }
}
