//! The admin UI as a node serves it: `/ui/` and its assets with their
//! content types, and `GET /v1/cluster/links` gathering every member's
//! links (an unreachable member marked, not dropped).

#[path = "dataplane_common/mod.rs"]
mod dataplane_common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use dataplane_common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use topod::api::types::ClusterLinks;

/// GET `path`: status, content type, body.
async fn raw_get(addr: SocketAddr, path: &str) -> (u16, String, Bytes) {
    let client: Client<_, Empty<Bytes>> = dataplane_common::tls::client();
    let uri: hyper::Uri = format!("{}{path}", dataplane_common::tls::base(addr))
        .parse()
        .expect("uri");
    // The page's assets are open; the API calls need the token.
    let req = hyper::Request::get(uri)
        .header(
            "authorization",
            format!("Bearer {}", dataplane_common::harness_token()),
        )
        .body(Empty::new())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("answer in time")
        .expect("answer");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ct, body)
}

fn links(c: &ClusterLinks, id: u64) -> Vec<u64> {
    let m = c.members.iter().find(|m| m.id == id).expect("member");
    let stats = m.stats.as_ref().expect("stats");
    stats.current.as_ref().expect("overlay").links.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_the_ui_and_the_cluster_links() {
    let mut c = Cluster::start(3).await;
    for id in 1..=3 {
        let addr = c.node(id).api_addr();
        let (st, ct, body) = raw_get(addr, "/ui/").await;
        assert_eq!((st, ct.as_str()), (200, "text/html; charset=utf-8"));
        assert_eq!(body, topod::ui::INDEX_HTML.as_bytes());
        let (st, ct, body) = raw_get(addr, "/ui/app.css").await;
        assert_eq!((st, ct.as_str()), (200, "text/css; charset=utf-8"));
        assert_eq!(body, topod::ui::APP_CSS.as_bytes());
        let (st, ct, body) = raw_get(addr, "/ui/app.js").await;
        assert_eq!((st, ct.as_str()), (200, "text/javascript; charset=utf-8"));
        assert_eq!(body, topod::ui::APP_JS.as_bytes());
        let (st, ct, _) = raw_get(addr, "/ui/features.json").await;
        assert_eq!((st, ct.as_str()), (200, "application/json"));
    }
    let addr = c.node(2).api_addr();
    let (st, _, _) = raw_get(addr, "/ui/missing.js").await;
    assert_eq!(st, 404);

    // Full mesh of 3: node 2 gathers every member's links.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let g = loop {
        let (st, _, body) = raw_get(addr, "/v1/cluster/links").await;
        assert_eq!(st, 200);
        let g: ClusterLinks = serde_json::from_slice(&body).expect("ClusterLinks");
        let full = g.members.len() == 3
            && g.members.iter().all(|m| {
                m.reachable
                    && m.stats
                        .as_ref()
                        .is_some_and(|s| s.current.as_ref().is_some_and(|o| o.links.len() == 2))
            });
        if full {
            break g;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 2 never saw every member's full-mesh links: {g:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(g.served_by, 2);
    assert_eq!(g.leader, Some(1));
    assert_eq!(links(&g, 1), vec![2, 3]);
    assert_eq!(links(&g, 2), vec![1, 3]);
    assert_eq!(links(&g, 3), vec![1, 2]);
    assert!(g.members.iter().all(|m| m.voter));

    // Node 3 stops: still listed, unreachable, with the reason.
    c.nodes[2]
        .take()
        .expect("node 3")
        .shutdown()
        .await
        .expect("node 3 stops");
    let (st, _, body) = raw_get(addr, "/v1/cluster/links").await;
    assert_eq!(st, 200);
    let g: ClusterLinks = serde_json::from_slice(&body).expect("ClusterLinks");
    let m3 = g.members.iter().find(|m| m.id == 3).expect("node 3 listed");
    assert!(!m3.reachable && m3.stats.is_none());
    assert!(m3.error.is_some(), "the reason is given");
    assert!(g.members.iter().filter(|m| m.id != 3).all(|m| m.reachable));
}
