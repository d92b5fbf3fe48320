//! The chaos harness's node routes on in-process clusters running the
//! real data plane: `POST /v1/node/broadcast` carries a harness-chosen id
//! to every node, `GET /v1/node/deliveries` shows each delivery once with
//! its origin and pages by `after`/`limit`; bad bodies and queries are
//! refused naming the field; with chaos mode off both answer 409
//! `chaos_disabled` and nothing is sent.

mod dataplane_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use dataplane_common::*;
use hyper::Method;
use serde_json::{json, Value};
use topod::api::types::{DeliveriesPage, MAX_DELIVERIES_LIMIT};
use topod::model::{NodeId, Topology};

fn error_of(v: &Value) -> (&str, &str) {
    (
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code in {v}")),
        v["error"]["message"].as_str().unwrap_or_default(),
    )
}

async fn page(addr: SocketAddr, after: u64, limit: usize) -> DeliveriesPage {
    let path = format!("/v1/node/deliveries?after={after}&limit={limit}");
    let (st, v) = http(addr, Method::GET, &path, None).await;
    assert_eq!(st, 200, "{v}");
    serde_json::from_value(v).expect("DeliveriesPage")
}

/// Every delivery of `addr`, walking the pages of `limit`: (id → origins).
async fn all_deliveries(addr: SocketAddr, limit: usize) -> BTreeMap<String, Vec<NodeId>> {
    let mut out: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let p = page(addr, after, limit).await;
        assert!(p.deliveries.len() <= limit, "{p:?}");
        for d in &p.deliveries {
            assert_eq!(d.seq, after + 1, "contiguous sequence numbers: {p:?}");
            after = d.seq;
            out.entry(d.id.clone()).or_default().push(d.origin);
        }
        match p.next_after {
            Some(n) => assert_eq!(n, after),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_broadcasts_reach_every_node_once_and_page() {
    let c = Cluster::start(3).await;
    c.wait_steady_on(Topology::FullMesh).await;
    let mut expected: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    for id in 1..=3u64 {
        for k in 0..2 {
            let bid = format!("n{id}-{k}");
            let body = json!({"channel": "chaos", "id": bid, "payload": "hello"});
            let addr = c.node(id).api_addr();
            let (st, v) = http(addr, Method::POST, "/v1/node/broadcast", Some(body)).await;
            assert_eq!(st, 202, "{v}");
            assert_eq!(
                (v["node_id"].as_u64(), v["id"].as_str()),
                (Some(id), Some(&*bid))
            );
            expected.insert(bid, vec![id]);
        }
    }
    for id in 1..=3u64 {
        let addr = c.node(id).api_addr();
        let mut got = BTreeMap::new();
        for _ in 0..600 {
            got = all_deliveries(addr, 2).await;
            if got.len() >= expected.len() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            got, expected,
            "node {id}: each broadcast once, from its origin"
        );
        let p = page(addr, 0, MAX_DELIVERIES_LIMIT).await;
        assert_eq!(
            (p.last_seq, p.dropped, p.lagged, p.undecodable),
            (6, 0, 0, 0)
        );
        assert_eq!(p.node_id, id);
        assert!(page(addr, 6, 10).await.deliveries.is_empty());
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_broadcasts_and_queries_are_refused_by_name() {
    let c = Cluster::start(1).await;
    let addr = c.node(1).api_addr();
    let long = "x".repeat(129);
    let cases = [
        (json!({"channel": "chaos", "id": "", "payload": ""}), "id"),
        (json!({"channel": "chaos", "id": long, "payload": ""}), "id"),
        (
            json!({"channel": "other", "id": "a", "payload": ""}),
            "channel",
        ),
        (
            json!({"channel": "chaos", "id": "a", "payload": "", "x": 1}),
            "x",
        ),
        (json!({"channel": "chaos", "payload": ""}), "id"),
    ];
    for (body, field) in cases {
        let (st, v) = http(addr, Method::POST, "/v1/node/broadcast", Some(body.clone())).await;
        let (code, message) = error_of(&v);
        assert_eq!((st, code), (400, "bad_request"), "{body}: {v}");
        assert!(message.contains(field), "{body}: `{message}` names {field}");
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=x", "after"),
        ("since=1", "since"),
    ] {
        let path = format!("/v1/node/deliveries?{query}");
        let (st, v) = http(addr, Method::GET, &path, None).await;
        let (code, message) = error_of(&v);
        assert_eq!((st, code), (400, "bad_request"), "{query}: {v}");
        assert!(
            message.contains(field),
            "{query}: `{message}` names {field}"
        );
    }
    let p = page(addr, 0, 10).await;
    assert_eq!(p.last_seq, 0, "nothing was broadcast: {p:?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_routes_are_refused_when_chaos_mode_is_off() {
    let c = Cluster::start_with(1, |cfg| cfg.transport.chaos = false).await;
    let addr = c.node(1).api_addr();
    let body = json!({"channel": "chaos", "id": "a", "payload": ""});
    let (st, v) = http(addr, Method::POST, "/v1/node/broadcast", Some(body)).await;
    let (code, message) = error_of(&v);
    assert_eq!((st, code), (409, "chaos_disabled"), "{v}");
    assert!(message.contains("transport.chaos"), "{message}");
    let (st, v) = http(addr, Method::GET, "/v1/node/deliveries", None).await;
    assert_eq!((st, error_of(&v).0), (409, "chaos_disabled"), "{v}");
    assert_eq!(c.status(1).counters.broadcasts_sent, 0, "nothing was sent");
    c.shutdown().await;
}
