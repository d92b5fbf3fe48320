//! The core's view of the membership: the members and voters applied,
//! which of them are live (a member not known unreachable, or with a link
//! up), and whom a node joins a new overlay through, and when.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Core, Output};
use crate::model::{NodeId, Topology};
use crate::overlay::{Command, InEvent as OverlayIn, Protocol};

/// Clusters at least this large join a new HyParView/Plumtree overlay in
/// waves (see `Core::join_delay`).
const WAVE: usize = 100;

impl Core {
    pub(super) fn update_live(&mut self, peer: NodeId) {
        let live = peer != self.me
            && self.members.contains(&peer)
            && (!self.unreachable.contains(&peer) || self.up.contains(&peer));
        let changed = if live {
            self.live.insert(peer)
        } else {
            self.live.remove(&peer)
        };
        if changed {
            self.live_version += 1;
        }
    }

    pub(super) fn on_members(
        &mut self,
        now: Duration,
        members: BTreeSet<NodeId>,
        voters: Vec<NodeId>,
        out: &mut Vec<Output>,
    ) {
        let added: Vec<NodeId> = members
            .difference(&self.members)
            .copied()
            .filter(|p| *p != self.me)
            .collect();
        self.repair.gaps.retain(&members);
        self.seen.retain(&members);
        self.members = members;
        self.voters = voters;
        self.unreachable.retain(|p| self.members.contains(p));
        self.live = self
            .members
            .iter()
            .copied()
            .filter(|p| *p != self.me && (!self.unreachable.contains(p) || self.up.contains(p)))
            .collect();
        self.live_version += 1;
        self.dirty = true;
        if added.is_empty() {
            return;
        }
        // A node that built its overlay before it knew the membership (a
        // new learner) joins through the members it learns of.
        let ids: Vec<(u64, Topology, bool)> = self
            .slots
            .iter()
            .map(|i| (i.id, i.topology, i.overlay.links().is_empty()))
            .collect();
        for (id, topology, alone) in ids {
            let contacts = match topology {
                Topology::FullMesh => added.clone(),
                Topology::HyParView | Topology::PubSub if alone => self.contacts(topology),
                _ => continue,
            };
            self.drive(now, id, OverlayIn::Command(Command::Join(contacts)), out);
        }
    }

    /// The contacts an overlay joins through. Full mesh and client-server
    /// take every member (one found unreachable earlier may be back: the
    /// transport keeps dialing it). HyParView (and Plumtree over it) joins
    /// through one contact, the same for every node (the lowest live
    /// member id, else the lowest member): concurrent joins through random
    /// contacts can leave two components that a small active view never
    /// merges.
    pub(super) fn contacts(&self, topology: Topology) -> Vec<NodeId> {
        let mut others = self.members.iter().copied().filter(|p| *p != self.me);
        match topology {
            Topology::HyParView | Topology::PubSub => self
                .live
                .first()
                .copied()
                .or_else(|| others.next())
                .into_iter()
                .collect(),
            Topology::FullMesh | Topology::ClientServer => others.collect(),
        }
    }

    /// When this node joins a new HyParView/Plumtree overlay in a cluster
    /// of at least [`WAVE`] live nodes: the `WAVE` lowest ids join through
    /// the lowest one, a millisecond apart; the others through one of
    /// those (chosen by a hash), ten a millisecond, after them — as
    /// HyParView is meant to grow, instead of every node at once through
    /// one contact, whose active view then churns so fast that some
    /// joiners end with no link (measured in the simulator at 1,000
    /// nodes). `None`: join at once (smaller clusters, other topologies).
    pub(super) fn join_delay(&self, topology: Topology) -> Option<Duration> {
        if !matches!(topology, Topology::HyParView | Topology::PubSub) || self.live.len() + 1 < WAVE
        {
            return None;
        }
        let rank = self.live.range(..self.me).count();
        let ms = if rank < WAVE {
            rank as u64
        } else {
            (WAVE + (rank - WAVE) / 10) as u64
        };
        Some(Duration::from_millis(ms.max(1)))
    }

    /// The contacts of a join in waves (see `join_delay`).
    pub(super) fn wave_contacts(&self, instance: u64, topology: Topology) -> Vec<NodeId> {
        let rank = self.live.range(..self.me).count();
        if self.live.len() + 1 < WAVE || rank < WAVE {
            return self.contacts(topology);
        }
        let k = crate::sim::latency::mix64(instance ^ crate::sim::latency::mix64(self.me))
            % WAVE as u64;
        self.live
            .iter()
            .nth(k as usize)
            .copied()
            .into_iter()
            .collect()
    }
}
