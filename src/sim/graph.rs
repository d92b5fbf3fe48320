//! Snapshots of the overlay graph (each live node's standing links) and
//! the figures drawn from them: links per node, in-degree distribution,
//! connected components.

use std::collections::BTreeMap;

use super::engine::Engine;
use crate::overlay::{PeerId, Protocol};

/// Each live node's links as it reports them. Links to nodes that are no
/// longer running are kept in `adj` (the node has not noticed yet) but
/// ignored by the connectivity figures; links across a partition are left
/// out by [`Graph::of`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Live node → its links, both ascending.
    pub adj: BTreeMap<PeerId, Vec<PeerId>>,
}

impl Graph {
    /// The standing links of every live node of `engine` that can carry
    /// messages now (links across a partition are left out: the nodes may
    /// not know yet, but nothing passes).
    pub fn of<P: Protocol>(engine: &Engine<P>) -> Graph {
        Graph::from_links(engine, |p| {
            let me = p.me();
            let mut links = p.links();
            links.retain(|peer| engine.node(*peer).is_none() || engine.link_usable(me, *peer));
            links
        })
    }

    /// A graph of any per-node peer set (e.g. Plumtree's eager peers).
    pub fn from_links<P: Protocol>(engine: &Engine<P>, f: impl Fn(&P) -> Vec<PeerId>) -> Graph {
        let adj = engine
            .live()
            .filter_map(|id| {
                engine.node(id).map(|p| {
                    let mut l = f(p);
                    l.sort_unstable();
                    (id, l)
                })
            })
            .collect();
        Graph { adj }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// Mean and maximum number of links a node reports.
    pub fn links_per_node(&self) -> (f64, usize) {
        let max = self.adj.values().map(Vec::len).max().unwrap_or(0);
        let sum: usize = self.adj.values().map(Vec::len).sum();
        let mean = if self.adj.is_empty() {
            0.0
        } else {
            sum as f64 / self.adj.len() as f64
        };
        (mean, max)
    }

    /// In-degree (how many live nodes link to a node) → number of nodes.
    pub fn in_degree_histogram(&self) -> BTreeMap<usize, usize> {
        let mut indeg: BTreeMap<PeerId, usize> = self.adj.keys().map(|k| (*k, 0)).collect();
        for peers in self.adj.values() {
            for p in peers {
                if let Some(d) = indeg.get_mut(p) {
                    *d += 1;
                }
            }
        }
        let mut hist = BTreeMap::new();
        for d in indeg.values() {
            *hist.entry(*d).or_insert(0) += 1;
        }
        hist
    }

    /// Connected components of the undirected graph over live nodes (a
    /// link counts in either direction).
    pub fn components(&self) -> usize {
        let index: BTreeMap<PeerId, usize> =
            self.adj.keys().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut parent: Vec<usize> = (0..index.len()).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let mut components = index.len();
        for (a, peers) in &self.adj {
            let ia = index[a];
            for p in peers {
                let Some(&ib) = index.get(p) else { continue };
                let (ra, rb) = (find(&mut parent, ia), find(&mut parent, ib));
                if ra != rb {
                    parent[ra] = rb;
                    components -= 1;
                }
            }
        }
        components
    }

    /// Undirected edges between live nodes, each counted once.
    pub fn undirected_edges(&self) -> usize {
        let mut edges = std::collections::BTreeSet::new();
        for (a, peers) in &self.adj {
            for b in peers.iter().filter(|b| self.adj.contains_key(b) && *b != a) {
                edges.insert((*a.min(b), *a.max(b)));
            }
        }
        edges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn graph(edges: &[(PeerId, &[PeerId])]) -> Graph {
        Graph {
            adj: edges.iter().map(|(a, l)| (*a, l.to_vec())).collect(),
        }
    }

    #[test]
    fn components_links_and_in_degree() {
        // 1-2-3 and 4 alone; 2 also links to a dead node 9.
        let g = graph(&[(1, &[2]), (2, &[1, 3, 9]), (3, &[2]), (4, &[])]);
        assert_eq!(g.components(), 2);
        assert_eq!(g.links_per_node(), (1.25, 3));
        let hist: Vec<(usize, usize)> = g.in_degree_histogram().into_iter().collect();
        assert_eq!(hist, vec![(0, 1), (1, 2), (2, 1)]);
        assert_eq!(g.undirected_edges(), 2);
    }
}
