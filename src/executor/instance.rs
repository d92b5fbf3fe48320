//! [`Instance`]: one running overlay (the current one, or the shadow /
//! draining one beside it) and the topology-specific test of whether it
//! has formed.

use std::collections::BTreeSet;

use super::core::{FormGap, Wanted};
use crate::model::{NodeId, OverlayConfig, Topology};
use crate::overlay::any::{AnyOverlay, BuildError};
use crate::overlay::Protocol;

/// One overlay instance on this node.
#[derive(Debug)]
pub struct Instance {
    /// The transition that created it (0: bootstrap).
    pub id: u64,
    pub topology: Topology,
    pub config: OverlayConfig,
    /// Client-server's servers (the config's, or the voters).
    pub servers: Vec<NodeId>,
    pub overlay: AnyOverlay,
    /// A number unique among the instances this node has started: timers
    /// of an instance torn down and built again under the same id are
    /// told apart from the new one's.
    pub gen: u64,
}

/// The RNG seed of an overlay: distinct per node and instance, the same
/// on a rebuild.
pub fn seed(me: NodeId, instance: u64) -> u64 {
    me.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ instance.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

impl Instance {
    pub fn new(
        me: NodeId,
        id: u64,
        topology: Topology,
        config: OverlayConfig,
        voters: &[NodeId],
    ) -> Result<Self, BuildError> {
        let servers = match &config {
            OverlayConfig::ClientServer(c) if !c.servers.is_empty() => c.servers.clone(),
            _ => voters.to_vec(),
        };
        let overlay = AnyOverlay::new(&config, me, seed(me, id), &servers)?;
        Ok(Instance {
            id,
            topology,
            config,
            servers,
            overlay,
            gen: 0,
        })
    }

    /// Ok when the overlay has formed among the `live` members (this node
    /// excluded) with transport links `up`; else what is missing.
    pub fn formed(&self, live: &BTreeSet<NodeId>, up: &BTreeSet<NodeId>) -> Result<(), FormGap> {
        let me = self.overlay.me();
        let links: BTreeSet<NodeId> = self
            .overlay
            .links()
            .into_iter()
            .filter(|p| up.contains(p))
            .collect();
        match &self.config {
            OverlayConfig::FullMesh(_) => need_all(live, &links, Wanted::LiveMembers),
            OverlayConfig::HyParView(c) => active_view(c.active_view, live, &links),
            OverlayConfig::PubSub(c) => active_view(c.hyparview.active_view, live, &links),
            OverlayConfig::ClientServer(c) => {
                let servers: BTreeSet<NodeId> = self
                    .servers
                    .iter()
                    .copied()
                    .filter(|s| *s != me && live.contains(s))
                    .collect();
                if self.servers.contains(&me) {
                    need_all(&servers, &links, Wanted::LiveServers)
                } else {
                    let want = (c.links_per_client.max(1) as usize).min(servers.len());
                    let have = links.intersection(&servers).count();
                    if have >= want {
                        Ok(())
                    } else {
                        Err(FormGap::ClientServers {
                            have,
                            want,
                            servers: servers.into_iter().collect(),
                            links: links.into_iter().collect(),
                        })
                    }
                }
            }
        }
    }
}

fn need_all(want: &BTreeSet<NodeId>, links: &BTreeSet<NodeId>, of: Wanted) -> Result<(), FormGap> {
    let missing: Vec<NodeId> = want.difference(links).copied().collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(FormGap::Missing {
        of,
        have: want.len() - missing.len(),
        want: want.len(),
        missing,
    })
}

fn active_view(
    size: u32,
    live: &BTreeSet<NodeId>,
    links: &BTreeSet<NodeId>,
) -> Result<(), FormGap> {
    // HyParView fills its active view only through joins and failures: in
    // a small cluster it settles well below the configured size (5 nodes
    // with size 5 hold about 2 each). Formed means at least one live
    // active peer; whether the graph reaches every member is what the
    // probe checks.
    let have = links.intersection(live).count();
    if have >= 1 || live.is_empty() {
        return Ok(());
    }
    Err(FormGap::EmptyActiveView { size })
}
