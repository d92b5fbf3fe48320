//! A continuous broadcast stream from every node while 10 switches
//! happen: every message arrives exactly once at every node.

mod dataplane_common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dataplane_common::{Cluster, DEADLINE};
use topod::executor::Event;
use topod::model::{NodeId, Topology};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_during_ten_switches_arrive_exactly_once() {
    let c = Cluster::start(5).await;
    c.wait_steady_on(Topology::FullMesh).await;
    let nodes = c.running();
    // One reader task per node, counting every message it sees.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for &id in &nodes {
        let mut sub = c.node(id).subscribe("s").await.expect("subscribe");
        readers.push(tokio::spawn(async move {
            let mut got: BTreeMap<(NodeId, u64), u32> = BTreeMap::new();
            while let Some(ev) = sub.recv().await {
                match ev {
                    Event::Message(d) => {
                        let text = String::from_utf8_lossy(&d.payload).to_string();
                        let (o, s) = text.split_once('-').expect("payload");
                        let key = (o.parse().expect("origin"), s.parse().expect("seq"));
                        *got.entry(key).or_default() += 1;
                    }
                    Event::Lagged(n) => panic!("node {id} lagged by {n}"),
                }
            }
            (id, got)
        }));
    }
    // One sender task per node, each paced (one message per 5 ms).
    let mut senders = Vec::new();
    for &id in &nodes {
        let h = c.exec(id).clone();
        let stop = stop.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                h.broadcast("s", Bytes::from(format!("{id}-{sent}")))
                    .await
                    .expect("broadcast");
                sent += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (id, sent)
        }));
    }
    let cycle = ["hyparview", "client_server", "pub_sub", "full_mesh"];
    // Ten committed switches. A prepare that fails verification (a
    // HyParView/Plumtree overlay not yet connected within the timeout) is
    // aborted and retried; a cut-over found unhealthy is rolled back:
    // neither may lose messages either.
    let mut aborted = 0;
    for k in 0..10 {
        let target = cycle[k % cycle.len()];
        loop {
            let v = c.switch(target).await;
            if v["status"] == "committed" {
                break;
            }
            assert_eq!(v["status"], "aborted", "switch {k} to {target}: {v}");
            aborted += 1;
            assert!(aborted <= 5, "too many aborted switches; last: {v}");
        }
    }
    c.wait_settled().await;
    stop.store(true, Ordering::SeqCst);
    let mut sent: BTreeMap<NodeId, u64> = BTreeMap::new();
    for s in senders {
        let (id, n) = s.await.expect("sender");
        sent.insert(id, n);
    }
    let want: u64 = sent.values().sum();
    assert!(want > 100, "the stream ran: {sent:?}");
    // Every node receives every message: poll the delivered counters.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let behind: Vec<(NodeId, u64)> = nodes
            .iter()
            .map(|&id| (id, c.status(id).counters.delivered))
            .filter(|(_, n)| *n < want)
            .collect();
        if behind.is_empty() || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses: Vec<_> = nodes.iter().map(|&id| c.status(id)).collect();
    c.shutdown().await;
    for r in readers {
        let (id, got) = r.await.expect("reader");
        let missing: Vec<_> = sent
            .iter()
            .flat_map(|(o, n)| (0..*n).map(move |s| (*o, s)))
            .filter(|k| !got.contains_key(k))
            .take(20)
            .collect();
        assert!(
            missing.is_empty(),
            "node {id} got {}/{want}; first missing {missing:?}; counters {:?}",
            got.len(),
            statuses
                .iter()
                .map(|s| (s.node, &s.counters))
                .collect::<Vec<_>>()
        );
        let dups: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "node {id} got duplicates: {dups:?}");
        assert_eq!(got.len() as u64, want, "node {id} got an extra message");
    }
}
