//! Invariant checkers, one property each, over [`Graph`] snapshots. Each
//! returns the first violation found, naming the node.

use std::collections::BTreeSet;

use super::graph::Graph;
use crate::overlay::PeerId;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant `{invariant}` violated: {detail}")]
pub struct Violation {
    /// The checker's name.
    pub invariant: &'static str,
    /// Which node and how.
    pub detail: String,
}

fn violated(invariant: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { invariant, detail })
}

/// Unordered node pairs `(low, high)` with a message in flight between
/// them: a NEIGHBOR or DISCONNECT on its way may make their views disagree
/// for now, so the symmetry checks skip them.
pub type InFlight = BTreeSet<(PeerId, PeerId)>;

/// HyParView: if `a` has live `b` in its active view, `b` has `a` (pairs in
/// `in_flight` excepted).
pub fn active_views_symmetric(active: &Graph, in_flight: &InFlight) -> Result<(), Violation> {
    for (a, peers) in &active.adj {
        for b in peers {
            if in_flight.contains(&((*a).min(*b), (*a).max(*b))) {
                continue;
            }
            if let Some(back) = active.adj.get(b) {
                if back.binary_search(a).is_err() {
                    return violated(
                        "active_views_symmetric",
                        format!("{a} has {b} in its active view, {b} lacks {a}"),
                    );
                }
            }
        }
    }
    Ok(())
}

/// HyParView: every active view holds at most `max` peers, and (when there
/// is more than one node) at least one.
pub fn active_views_within_bounds(active: &Graph, max: usize) -> Result<(), Violation> {
    for (a, peers) in &active.adj {
        if peers.len() > max {
            return violated(
                "active_views_within_bounds",
                format!("{a} has {} active peers, max {max}", peers.len()),
            );
        }
        if peers.is_empty() && active.len() > 1 {
            return violated("active_views_within_bounds", format!("{a} is isolated"));
        }
    }
    Ok(())
}

/// Every live node can reach every other over standing links.
pub fn overlay_connected(links: &Graph) -> Result<(), Violation> {
    match links.components() {
        0 | 1 => Ok(()),
        n => violated("overlay_connected", format!("{n} components")),
    }
}

/// Plumtree in steady state: the eager links are symmetric, connect every
/// live node and have exactly n − 1 undirected edges (a spanning tree).
/// A pair in `in_flight` may disagree (a PRUNE, GRAFT or DISCONNECT on its
/// way): its one-sided link is left out rather than counted.
pub fn eager_links_form_spanning_tree(
    eager: &Graph,
    in_flight: &InFlight,
) -> Result<(), Violation> {
    const NAME: &str = "eager_links_form_spanning_tree";
    if let Err(v) = active_views_symmetric(eager, in_flight) {
        return violated(NAME, format!("eager links not symmetric: {}", v.detail));
    }
    let agreed = Graph {
        adj: eager
            .adj
            .iter()
            .map(|(a, peers)| {
                let both: Vec<PeerId> = peers
                    .iter()
                    .copied()
                    .filter(|b| eager.adj.get(b).is_some_and(|l| l.binary_search(a).is_ok()))
                    .collect();
                (*a, both)
            })
            .collect(),
    };
    let n = agreed.len();
    let components = agreed.components();
    if n > 0 && components != 1 {
        return violated(NAME, format!("{components} components over {n} nodes"));
    }
    let edges = agreed.undirected_edges();
    if n > 0 && edges != n - 1 {
        return violated(
            NAME,
            format!("{edges} eager edges over {n} nodes, a tree has {}", n - 1),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(PeerId, &[PeerId])]) -> Graph {
        Graph {
            adj: edges.iter().map(|(a, l)| (*a, l.to_vec())).collect(),
        }
    }

    #[test]
    fn asymmetric_view_is_named() {
        let g = graph(&[(1, &[2]), (2, &[])]);
        let none = InFlight::new();
        let v = active_views_symmetric(&g, &none).unwrap_err();
        assert_eq!(v.invariant, "active_views_symmetric");
        assert!(v.detail.contains("2 lacks 1"));
        assert!(active_views_symmetric(&graph(&[(1, &[2]), (2, &[1])]), &none).is_ok());
        // A message in flight between 1 and 2 may settle it.
        assert!(active_views_symmetric(&g, &InFlight::from([(1, 2)])).is_ok());
    }

    #[test]
    fn bounds_catch_oversized_and_isolated_views() {
        let g = graph(&[(1, &[2, 3]), (2, &[1]), (3, &[1])]);
        assert!(active_views_within_bounds(&g, 2).is_ok());
        assert!(active_views_within_bounds(&g, 1).is_err());
        let iso = graph(&[(1, &[2]), (2, &[1]), (3, &[])]);
        assert!(active_views_within_bounds(&iso, 5).is_err());
    }

    #[test]
    fn spanning_tree_needs_n_minus_one_symmetric_edges() {
        let tree = graph(&[(1, &[2, 3]), (2, &[1]), (3, &[1])]);
        assert!(eager_links_form_spanning_tree(&tree, &InFlight::new()).is_ok());
        let cycle = graph(&[(1, &[2, 3]), (2, &[1, 3]), (3, &[1, 2])]);
        assert!(eager_links_form_spanning_tree(&cycle, &InFlight::new()).is_err());
        let split = graph(&[(1, &[2]), (2, &[1]), (3, &[])]);
        assert!(eager_links_form_spanning_tree(&split, &InFlight::new()).is_err());
        assert!(overlay_connected(&split).is_err());
        assert!(overlay_connected(&tree).is_ok());
    }
}
