//! Point-to-point messages (`send` and `send_many` → `subscribe`) on every
//! topology: each
//! arrives exactly once and in the order sent, whether the handle queues
//! it in the transport itself (a standing link exists) or the executor
//! task sends it (first message to a peer off the overlay, a client to a
//! client through a server in client_server).

mod dataplane_common;

use std::collections::BTreeMap;

use bytes::Bytes;
use dataplane_common::{Cluster, DEADLINE};
use topod::executor::Event;
use topod::model::{NodeId, Topology};

const PER_PAIR: u32 = 200;

/// Every node sends `PER_PAIR` numbered messages to every other node on a
/// fresh channel; every node must receive each one once, in order.
async fn all_pairs_in_order(c: &Cluster, channel: &str) {
    let nodes = c.running();
    let mut subs = BTreeMap::new();
    for &id in &nodes {
        subs.insert(id, c.node(id).subscribe(channel).await.expect("subscribe"));
    }
    let mut senders = Vec::new();
    for &from in &nodes {
        let h = c.exec(from).clone();
        let (peers, channel) = (nodes.clone(), channel.to_string());
        senders.push(tokio::spawn(async move {
            // The first half one `send` each, the rest with `send_many`,
            // ten at a time.
            for k in 0..PER_PAIR / 2 {
                for &to in peers.iter().filter(|p| **p != from) {
                    let payload = Bytes::from(format!("{from} {k}"));
                    h.send(to, &channel, payload).await.expect("send");
                }
            }
            for k0 in (PER_PAIR / 2..PER_PAIR).step_by(10) {
                for &to in peers.iter().filter(|p| **p != from) {
                    let batch =
                        (k0..(k0 + 10).min(PER_PAIR)).map(|k| Bytes::from(format!("{from} {k}")));
                    h.send_many(to, &channel, batch).await.expect("send_many");
                }
            }
        }));
    }
    for s in senders {
        s.await.expect("sender");
    }
    let want = PER_PAIR as usize * (nodes.len() - 1);
    for (id, sub) in subs.iter_mut() {
        let mut next: BTreeMap<NodeId, u32> = BTreeMap::new();
        for _ in 0..want {
            let ev = tokio::time::timeout(DEADLINE, sub.recv())
                .await
                .unwrap_or_else(|_| panic!("node {id} on {channel}: got {next:?}"));
            let Some(Event::Message(d)) = ev else {
                panic!("node {id}: {ev:?}")
            };
            assert!(!d.broadcast);
            let text = String::from_utf8(d.payload.to_vec()).expect("utf-8");
            let (from, k) = text.split_once(' ').expect("from k");
            let (from, k): (NodeId, u32) = (from.parse().unwrap(), k.parse().unwrap());
            assert_eq!(from, d.origin);
            let n = next.entry(from).or_default();
            assert_eq!(k, *n, "node {id}: from {from} out of order or duplicated");
            *n += 1;
        }
        assert!(next.values().all(|n| *n == PER_PAIR), "node {id}: {next:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_to_point_messages_arrive_once_and_in_order_on_every_topology() {
    let c = Cluster::start(5).await;
    c.wait_steady_on(Topology::FullMesh).await;
    all_pairs_in_order(&c, "p-full_mesh").await;
    for (name, t) in [
        ("hyparview", Topology::HyParView),
        ("client_server", Topology::ClientServer),
    ] {
        // A HyParView shadow that does not form in time is aborted: retry.
        let mut tries = 0;
        loop {
            let v = c.switch(name).await;
            if v["status"] == "committed" {
                break;
            }
            tries += 1;
            assert!(tries < 5, "switch to {name} never committed: {v}");
        }
        c.wait_steady_on(t).await;
        all_pairs_in_order(&c, &format!("p-{name}")).await;
    }
    c.shutdown().await;
}
