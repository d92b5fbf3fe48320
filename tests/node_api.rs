//! The data-plane admin endpoints on in-process clusters running the real
//! data plane: `GET /v1/node/stats` and the links in `GET /v1/topology`
//! agree with the executor, `/metrics` carries this node's aggregate
//! series after traffic and none with a `peer` label, and `/v1/node/faults` installs, shows and clears fault rules
//! in chaos mode (refusing bad bodies by name), and changes nothing when
//! chaos mode is off.

mod dataplane_common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dataplane_common::*;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use serde_json::{json, Value};
use tokio::time::Instant;
use topod::api::types::{DirectionView, FaultRuleView, FaultsView, NodeStats};
use topod::config::ApiConfig;
use topod::model::{NodeId, Topology};

/// Polls `probe` until it returns `Some`, failing after `DEADLINE`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stats(addr: SocketAddr) -> NodeStats {
    let (st, v) = http(addr, Method::GET, "/v1/node/stats", None).await;
    assert_eq!(st, 200, "{v}");
    serde_json::from_value(v).expect("NodeStats")
}

async fn faults(addr: SocketAddr) -> FaultsView {
    let (st, v) = http(addr, Method::GET, "/v1/node/faults", None).await;
    assert_eq!(st, 200, "{v}");
    serde_json::from_value(v).expect("FaultsView")
}

/// A request with a raw body and content type: (status, text).
async fn raw(
    addr: SocketAddr,
    method: Method,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = dataplane_common::tls::client();
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", dataplane_common::tls::base(addr)))
        .header("content-type", ct)
        .header("authorization", format!("Bearer {}", harness_token()))
        .header(
            "authorization",
            format!("Bearer {}", dataplane_common::harness_token()),
        )
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let resp = tokio::time::timeout(DEADLINE, client.request(req))
        .await
        .expect("answer in time")
        .expect("request sent");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&body).expect("JSON error body"),
    )
}

/// The error code and message of an error answer.
fn error_of(v: &Value) -> (&str, &str) {
    (
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code in {v}")),
        v["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// The sorted current-overlay links the executor of `id` publishes.
fn executor_links(c: &Cluster, id: NodeId) -> Option<Vec<NodeId>> {
    c.status(id).current.as_ref().map(|o| {
        let mut l = o.links.clone();
        l.sort_unstable();
        l
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_topology_links_match_the_executor() {
    let c = Cluster::start(3).await;
    c.wait_steady_on(Topology::FullMesh).await;
    wait_until("full mesh links up", DEADLINE, || {
        (1..=3).all(|id| executor_links(&c, id).is_some_and(|l| l.len() == 2))
    })
    .await;
    // Traffic: node 1 broadcasts, node 2 receives.
    let mut sub = c.node(2).subscribe("stats").await.expect("subscribe");
    c.node(1)
        .broadcast("stats", Bytes::from_static(b"hello"))
        .await
        .expect("broadcast");
    tokio::time::timeout(DEADLINE, sub.recv())
        .await
        .expect("delivered in time")
        .expect("a message");

    for id in 1..=3 as NodeId {
        let addr = c.node(id).api_addr();
        let want = executor_links(&c, id).expect("an overlay");
        let s = stats(addr).await;
        assert_eq!(s.node_id, id);
        assert_eq!(s.state.as_str(), "steady", "{:?}", s.state);
        let current = s.current.as_ref().expect("current overlay");
        assert_eq!(current.topology, Topology::FullMesh);
        assert_eq!(
            current.instance,
            c.node(id).applied().borrow().state.current_instance
        );
        assert_eq!(current.links, want);
        assert!(s.other.is_none());
        for p in &want {
            let peer = s.peers.iter().find(|v| v.peer == *p).expect("linked peer");
            assert!(peer.link_up && peer.overlay_link, "{peer:?}");
        }
        let (st, topo) = http(addr, Method::GET, "/v1/topology", None).await;
        assert_eq!(st, 200);
        assert_eq!(topo["links"], json!(want));
        assert_eq!(topo["topology"], "full_mesh", "existing fields stay");
    }

    // Counters and per-peer figures move with traffic.
    let s1 = eventually("node 1 counts its broadcast and its pings", || async {
        let s = stats(c.node(1).api_addr()).await;
        let p2 = s.peers.iter().find(|p| p.peer == 2)?.clone();
        (s.counters.broadcasts_sent >= 1 && p2.bytes_out > 0 && p2.rtt_us.is_some()).then_some(s)
    })
    .await;
    assert!(s1.totals.bytes_out >= s1.peers.iter().map(|p| p.bytes_out).max().unwrap());
    assert_eq!(s1.totals.peers, s1.peers.len() as u64);
    // The executor republishes its counters on its next tick.
    eventually("node 2 counts the delivery", || async {
        let s2 = stats(c.node(2).api_addr()).await;
        (s2.counters.delivered >= 1).then_some(())
    })
    .await;

    // /metrics: this node's aggregate and per-overlay series, none per
    // peer.
    let text = eventually("an RTT histogram sample", || async {
        let (_, v) = http(c.node(1).api_addr(), Method::GET, "/metrics", None).await;
        let text = v.as_str().expect("text").to_string();
        text.contains("topod_overlay_rtt_seconds_bucket{le=")
            .then_some(text)
    })
    .await;
    for series in [
        "topod_node_bytes_total{direction=\"out\"}",
        "topod_node_bytes_total{direction=\"in\"}",
        "topod_node_messages_total{direction=\"in\"}",
        "topod_node_send_queue_depth ",
        "topod_node_send_queue_depth_max ",
        "topod_node_disconnects_total ",
        "topod_node_dropped_frames_total ",
        "topod_node_links_up 2",
        "topod_executor_state{state=\"steady\"} 1",
        "topod_executor_messages_total{kind=\"broadcast_sent\"}",
    ] {
        assert!(text.contains(series), "no {series} in\n{text}");
    }
    assert_no_peer_label(&text);
    // Rendered at scrape time, never also by the recorder: each family is
    // declared once.
    for name in topod::api::exposition::NAMES {
        let declared = text
            .lines()
            .filter(|l| l.starts_with(&format!("# TYPE {name} ")))
            .count();
        assert_eq!(declared, 1, "{name} declared {declared} times");
    }
    let links = format!(
        "topod_overlay_links{{role=\"current\",instance=\"{}\",topology=\"full_mesh\"}} 2",
        s1.current.as_ref().unwrap().instance
    );
    assert!(text.lines().any(|l| l == links), "no `{links}` in\n{text}");
    let bytes_out = text
        .lines()
        .find(|l| l.starts_with("topod_node_bytes_total{direction=\"out\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("a value");
    assert!(bytes_out >= s1.totals.bytes_out as f64 && bytes_out > 0.0);

    // After a switch: the new overlay's links, its verification probes.
    let view = c.switch("hyparview").await;
    assert_eq!(view["status"], "committed", "{view}");
    c.wait_steady_on(Topology::HyParView).await;
    let instance = c.node(1).applied().borrow().state.current_instance;
    let s = eventually("node 1 verified the new overlay", || async {
        let s = stats(c.node(1).api_addr()).await;
        let want = executor_links(&c, 1)?;
        let cur = s.current.as_ref()?;
        (s.verified == Some(instance)
            && cur.instance == instance
            && cur.links == want
            && s.counters.probes_ok >= 1)
            .then_some(s)
    })
    .await;
    assert_eq!(s.current.as_ref().unwrap().topology, Topology::HyParView);
    let (_, v) = http(c.node(1).api_addr(), Method::GET, "/metrics", None).await;
    let text = v.as_str().expect("text");
    assert!(
        text.contains("topod_executor_probes_total{result=\"ok\"}"),
        "{text}"
    );
    assert_no_peer_label(text);
    c.shutdown().await;
}

/// The metrics-cardinality contract: no sample at `/metrics` carries a
/// `peer` label (the series count must not grow with the cluster).
fn assert_no_peer_label(text: &str) {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let labels = line
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map_or("", |(labels, _)| labels);
        let has_peer = labels
            .split(',')
            .any(|kv| kv.split_once('=').is_some_and(|(k, _)| k.trim() == "peer"));
        assert!(!has_peer, "per-peer series `{line}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rules_are_set_shown_and_cleared_in_chaos_mode() {
    let c = Cluster::start(2).await;
    c.wait_steady_on(Topology::FullMesh).await;
    let addr = c.node(1).api_addr();
    let empty = faults(addr).await;
    assert!(empty.chaos_enabled && empty.rules.is_empty(), "{empty:?}");

    let body = json!({"seed": 9, "rules": [
        {"peer": 2, "direction": "both", "drop_probability": 1.0},
        {"peer": 3, "direction": "outbound", "delay_ms": 50}]});
    let (st, v) = http(addr, Method::PUT, "/v1/node/faults", Some(body.clone())).await;
    assert_eq!(st, 200, "{v}");
    let set: FaultsView = serde_json::from_value(v).expect("FaultsView");
    assert_eq!(set.seed, 9);
    assert_eq!(
        set.rules,
        vec![
            FaultRuleView {
                peer: 2,
                direction: DirectionView::Both,
                drop_probability: 1.0,
                delay_ms: 0,
            },
            FaultRuleView {
                peer: 3,
                direction: DirectionView::Outbound,
                drop_probability: 0.0,
                delay_ms: 50,
            },
        ]
    );
    assert_eq!(faults(addr).await, set, "GET shows what PUT installed");
    assert_eq!(c.exec(1).faults().map(|r| r.rules.len()), Some(2));
    // The rules act: frames to and from node 2 are dropped.
    eventually("frames to node 2 dropped", || async {
        // Data frames to node 2 meet the rule (the queue may be full or the
        // overlay may have dropped node 2 already: either way it is fine).
        let _sent_or_not = c.exec(1).try_broadcast("faults", Bytes::from_static(b"x"));
        let s = stats(addr).await;
        s.peers
            .iter()
            .find(|p| p.peer == 2)
            .is_some_and(|p| p.frames_dropped > 0)
            .then_some(())
    })
    .await;

    // Bad bodies are refused by name and leave the rules as they were.
    let bad: [(&str, Vec<u8>, u16, &str, &str); 6] = [
        (
            "application/json",
            br#"{"rules":[{"peer":2,"drop":1}]}"#.to_vec(),
            400,
            "bad_request",
            "`drop`",
        ),
        (
            "application/json",
            br#"{"rules":[],"colour":1}"#.to_vec(),
            400,
            "bad_request",
            "colour",
        ),
        (
            "application/json",
            br#"{"rules":[{"peer":2,"drop_probability":2}]}"#.to_vec(),
            400,
            "bad_request",
            "rules[0].drop_probability",
        ),
        (
            "application/json",
            b"[1]".to_vec(),
            400,
            "bad_request",
            "JSON object",
        ),
        (
            "text/plain",
            br#"{"rules":[]}"#.to_vec(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "application/json",
            format!(
                r#"{{"rules":[],"seed":1{}}}"#,
                " ".repeat(ApiConfig::default().max_body_bytes as usize)
            )
            .into_bytes(),
            413,
            "payload_too_large",
            "exceeds",
        ),
    ];
    for (ct, body, status, code, named) in bad {
        let (st, v) = raw(addr, Method::PUT, "/v1/node/faults", ct, body).await;
        let (got, message) = error_of(&v);
        assert_eq!((st, got), (status, code), "{v}");
        assert!(message.contains(named), "{named}: {message}");
        assert_eq!(faults(addr).await, set, "a refused body changes nothing");
    }

    let (st, v) = http(addr, Method::DELETE, "/v1/node/faults", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["rules"], json!([]));
    assert!(faults(addr).await.rules.is_empty());
    assert_eq!(c.exec(1).faults(), None);
    // Local only: node 2 never had rules.
    assert!(faults(c.node(2).api_addr()).await.rules.is_empty());
    // Cleared, node 1 and node 2 link again.
    wait_until("link to node 2 back", DEADLINE, || {
        c.exec(1)
            .transport_stats()
            .peers
            .get(&2)
            .is_some_and(|p| p.link_up)
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rules_are_refused_when_chaos_mode_is_off() {
    init_tracing();
    let mut c = Cluster {
        dir: tempfile::tempdir().expect("temp dir"),
        configs: Vec::new(),
        nodes: Vec::new(),
    };
    let mut cfg = node_config(1, c.dir.path().join("node1"), Vec::new());
    cfg.transport.chaos = false;
    give_token(&mut cfg);
    c.launch(cfg).await;
    let addr = c.node(1).api_addr();
    // The first voter stores the initial admin token right after it
    // initialises the cluster.
    let deadline = Instant::now() + DEADLINE;
    while http(addr, Method::GET, "/v1/node/faults", None).await.0 == 401 {
        assert!(
            Instant::now() < deadline,
            "the initial admin token is never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = json!({"rules": [{"peer": 2, "drop_probability": 1.0}]});
    for (method, body) in [(Method::PUT, Some(body)), (Method::DELETE, None)] {
        let (st, v) = http(addr, method.clone(), "/v1/node/faults", body).await;
        let (code, message) = error_of(&v);
        assert_eq!((st, code), (409, "chaos_disabled"), "{method}: {v}");
        assert!(message.contains("transport.chaos"), "{message}");
    }
    let view = faults(addr).await;
    assert!(!view.chaos_enabled && view.rules.is_empty(), "{view:?}");
    assert_eq!(c.exec(1).faults(), None, "nothing was installed");
    // Stats are served with chaos off too.
    let s = eventually("stats answer", || async {
        let (st, v) = http(addr, Method::GET, "/v1/node/stats", None).await;
        (st == 200).then_some(v)
    })
    .await;
    assert_eq!(s["node_id"], 1);
    c.shutdown().await;
}
