//! A 5-node cluster on loopback switching through all four topologies in
//! turn; after each switch the link sets match the topology and a round
//! of broadcasts from every node arrives exactly once everywhere.

mod dataplane_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use dataplane_common::{wait_until, Cluster, DEADLINE};
use topod::executor::Event;
use topod::model::{NodeId, Topology};

fn links(c: &Cluster, id: NodeId) -> BTreeSet<NodeId> {
    c.status(id)
        .current
        .as_ref()
        .map(|o| o.links.iter().copied().collect())
        .unwrap_or_default()
}

fn connected(nodes: &[NodeId], edges: &BTreeSet<(NodeId, NodeId)>) -> bool {
    let mut seen = BTreeSet::from([nodes[0]]);
    let mut todo = vec![nodes[0]];
    while let Some(n) = todo.pop() {
        for &(a, b) in edges {
            let other = if a == n {
                b
            } else if b == n {
                a
            } else {
                continue;
            };
            if seen.insert(other) {
                todo.push(other);
            }
        }
    }
    seen.len() == nodes.len()
}

fn undirected(c: &Cluster, of: impl Fn(NodeId) -> BTreeSet<NodeId>) -> BTreeSet<(NodeId, NodeId)> {
    c.running()
        .iter()
        .flat_map(|&a| of(a).into_iter().map(move |b| (a.min(b), a.max(b))))
        .collect()
}

/// Every running node broadcasts `per_node` messages on `channel`; every
/// running node receives each exactly once.
async fn broadcast_round(c: &Cluster, channel: &str, per_node: usize) {
    let nodes = c.running();
    let mut subs = BTreeMap::new();
    for &id in &nodes {
        subs.insert(id, c.node(id).subscribe(channel).await.expect("subscribe"));
    }
    for &id in &nodes {
        for k in 0..per_node {
            let msg = format!("{id}-{k}");
            c.node(id)
                .broadcast(channel, Bytes::from(msg))
                .await
                .expect("broadcast");
        }
    }
    let want = nodes.len() * per_node;
    for (id, sub) in subs.iter_mut() {
        let mut got = BTreeMap::<String, usize>::new();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while got.len() < want {
            let ev = tokio::time::timeout_at(deadline, sub.recv())
                .await
                .unwrap_or_else(|_| panic!("node {id} got {}/{want} on {channel}", got.len()))
                .expect("open");
            match ev {
                Event::Message(d) => {
                    *got.entry(String::from_utf8_lossy(&d.payload).into())
                        .or_default() += 1
                }
                Event::Lagged(n) => panic!("node {id} lagged by {n}"),
            }
        }
        assert!(
            got.values().all(|&n| n == 1),
            "node {id} got duplicates: {got:?}"
        );
        // Nothing more arrives (a duplicate would show up here).
        let extra = tokio::time::timeout(Duration::from_millis(200), sub.recv()).await;
        assert!(extra.is_err(), "node {id} got an extra message: {extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_switch_through_all_four_topologies() {
    let mut c = Cluster::start(5).await;
    let all = c.running();

    // Full mesh (the initial topology): n-1 links per node.
    c.wait_steady_on(Topology::FullMesh).await;
    wait_until(
        "full mesh: every node linked to the 4 others",
        DEADLINE,
        || {
            all.iter()
                .all(|&id| links(&c, id) == all.iter().copied().filter(|p| *p != id).collect())
        },
    )
    .await;
    broadcast_round(&c, "fm", 5).await;

    // HyParView, active 2 / passive 4: view within bounds, graph connected.
    let v = c.switch("hyparview").await;
    assert_eq!(v["status"], "committed", "{v}");
    c.wait_steady_on(Topology::HyParView).await;
    wait_until(
        "hyparview: active views within 1..=2 and connected",
        DEADLINE,
        || {
            all.iter().all(|&id| (1..=2).contains(&links(&c, id).len()))
                && connected(&all, &undirected(&c, |id| links(&c, id)))
        },
    )
    .await;
    broadcast_round(&c, "hpv", 5).await;

    // Client-server, servers 1-3, k = 2: clients linked only to servers.
    c.switch("client_server").await;
    c.wait_steady_on(Topology::ClientServer).await;
    let servers: BTreeSet<NodeId> = [1, 2, 3].into();
    wait_until(
        "client_server: servers meshed, clients on 2 servers",
        DEADLINE,
        || {
            [1, 2, 3].iter().all(|&s| {
                servers
                    .iter()
                    .filter(|p| **p != s)
                    .all(|p| links(&c, s).contains(p))
            }) && [4, 5]
                .iter()
                .all(|&cl| links(&c, cl).len() == 2 && links(&c, cl).is_subset(&servers))
        },
    )
    .await;
    broadcast_round(&c, "cs", 5).await;

    // Pub/sub: after warm-up broadcasts from one sender the eager links
    // form a spanning tree.
    c.switch("pub_sub").await;
    c.wait_steady_on(Topology::PubSub).await;
    let eager = |id: NodeId| -> BTreeSet<NodeId> {
        c.status(id)
            .current
            .as_ref()
            .and_then(|o| o.eager.clone())
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut k = 0;
    loop {
        c.node(1)
            .broadcast("warm", Bytes::from(format!("w{k}")))
            .await
            .expect("broadcast");
        k += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let edges = undirected(&c, eager);
        if edges.len() == all.len() - 1 && connected(&all, &edges) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "eager links never formed a tree: {edges:?}"
        );
    }
    broadcast_round(&c, "ps", 5).await;

    // Back to client_server; losing server 3 makes its clients fail over.
    c.switch("client_server").await;
    c.wait_steady_on(Topology::ClientServer).await;
    wait_until("clients on 2 servers", DEADLINE, || {
        [4, 5].iter().all(|&cl| links(&c, cl).len() == 2)
    })
    .await;
    c.stop(3).await;
    wait_until(
        "clients fail over to the two remaining servers",
        DEADLINE,
        || {
            [4, 5]
                .iter()
                .all(|&cl| links(&c, cl) == BTreeSet::from([1, 2]))
        },
    )
    .await;
    c.shutdown().await;
}
