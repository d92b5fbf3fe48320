//! [`links_expected`]: how many overlay links the current topology
//! expects of this node, given the membership and the overlay config — the
//! denominator of the node summary's `links_up / links_expected`, and so
//! of the leader's connectivity score. A pure function: the rule is the
//! topology's, not what the overlay happens to hold.

use std::collections::BTreeSet;

use crate::model::{NodeId, OverlayConfig};

/// The overlay links `me` should have.
///
/// - full_mesh: every other member.
/// - hyparview, pub_sub: a full active view, `min(active_view, members - 1)`.
/// - client_server: a server, every other server that is a member plus
///   the clients attached to it (`attached_clients`: a client picks its
///   servers at random, so which clients a server should have is only
///   known from the clients themselves; a client's missing link shows on
///   the client's side); a client, `min(k, servers that are members)`.
///
/// `servers` are the instance's resolved servers (the config's, or the
/// voters); `members` may include `me`.
pub fn links_expected(
    config: &OverlayConfig,
    me: NodeId,
    members: &BTreeSet<NodeId>,
    servers: &[NodeId],
    attached_clients: usize,
) -> u32 {
    let others = members.iter().filter(|m| **m != me).count();
    let n = match config {
        OverlayConfig::FullMesh(_) => others,
        OverlayConfig::HyParView(c) => others.min(c.active_view as usize),
        OverlayConfig::PubSub(c) => others.min(c.hyparview.active_view as usize),
        OverlayConfig::ClientServer(c) => {
            let servers: BTreeSet<NodeId> = servers
                .iter()
                .copied()
                .filter(|s| members.contains(s))
                .collect();
            if servers.contains(&me) {
                servers.len() - 1 + attached_clients
            } else {
                servers.len().min(c.links_per_client.max(1) as usize)
            }
        }
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientServerConfig, HyParViewConfig, PlumtreeConfig};

    fn members(n: u64) -> BTreeSet<NodeId> {
        (1..=n).collect()
    }

    fn hyparview(active: u32) -> OverlayConfig {
        OverlayConfig::HyParView(HyParViewConfig {
            active_view: active,
            ..HyParViewConfig::default()
        })
    }

    fn client_server(servers: Vec<NodeId>, k: u32) -> OverlayConfig {
        OverlayConfig::ClientServer(ClientServerConfig {
            servers,
            links_per_client: k,
        })
    }

    #[test]
    fn expected_links_per_topology() {
        let full = OverlayConfig::FullMesh(Default::default());
        let pubsub = |active| {
            let mut c = PlumtreeConfig::default();
            c.hyparview.active_view = active;
            OverlayConfig::PubSub(c)
        };
        let cs = client_server(vec![1, 2, 3], 2);
        let s = [1, 2, 3];
        // (config, me, members, attached clients) -> expected
        let cases: Vec<(OverlayConfig, NodeId, BTreeSet<NodeId>, usize, u32)> = vec![
            (full.clone(), 1, members(5), 0, 4),
            (full.clone(), 1, members(1), 0, 0),
            (full, 9, members(5), 0, 5), // not (yet) a member itself
            (hyparview(5), 1, members(100), 0, 5),
            (hyparview(5), 1, members(3), 0, 2),
            (pubsub(4), 2, members(10), 0, 4),
            (pubsub(4), 2, members(2), 0, 1),
            (cs.clone(), 1, members(5), 2, 4), // server: 2 servers + 2 clients
            (cs.clone(), 2, members(5), 0, 2), // server without clients
            (cs.clone(), 4, members(5), 0, 2), // client: k = 2 of 3 servers
            (cs.clone(), 4, [1, 4].into(), 0, 1),
            (client_server(vec![1, 2, 3], 5), 4, members(5), 0, 3),
            (cs, 4, [3, 4, 5].into(), 0, 1), // servers 1, 2 not members
        ];
        for (i, (config, me, members, attached, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                links_expected(&config, me, &members, &s, attached),
                want,
                "case {i}: {config:?} me {me} members {members:?}"
            );
        }
    }
}
