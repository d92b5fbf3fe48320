//! `GET /v1/cluster/links`: the node asked gathers every member's
//! `GET /v1/node/stats` (at most [`CLUSTER_LINKS_CONCURRENCY`] at once,
//! each within [`CLUSTER_LINKS_TIMEOUT_MS`]) so that one page served by one
//! node can draw every member's links. The `/v1/node/...` routes are local
//! to the node asked, and a browser cannot ask the other members itself
//! (another origin).
//!
//! A member that cannot be reached, times out, answers an error status or
//! a body that does not decode is listed with `reachable: false` and the
//! reason; one without a data plane (409 `no_data_plane`) is reachable
//! without stats. Nothing is written.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Response, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;

use super::routes::Ctx;
use super::types::{
    ClusterLinks, ErrorBody, MemberLinks, MembersView, NodeStats, CLUSTER_LINKS_CONCURRENCY,
    CLUSTER_LINKS_TIMEOUT_MS,
};

/// What asking one member gave: reachable, its stats or why not.
type Fetched = (bool, Result<NodeStats, String>);

/// `GET /v1/cluster/links`.
pub(super) async fn cluster_links(
    State(ctx): Ctx,
    headers: axum::http::HeaderMap,
) -> Response<Body> {
    // Each member checks the caller's token itself.
    let forwarder = ctx
        .forwarder
        .with_authorization(headers.get(axum::http::header::AUTHORIZATION));
    let forwarder = &forwarder;
    let m = ctx.metrics();
    let members = MembersView::from(m.membership_config.membership()).members;
    let mut gathered: Vec<MemberLinks> = futures::stream::iter(members)
        .map(|member| async move {
            let base = forwarder.base_of(&crate::control::types::NodeAddr {
                api_addr: member.api_addr.clone(),
                raft_addr: member.raft_addr.clone(),
                peer_addr: member.peer_addr.clone(),
                node_uuid: member.node_uuid.clone(),
            });
            let (reachable, stats) = fetch(forwarder, member.id, &base).await;
            let (stats, error) = match stats {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            MemberLinks {
                id: member.id,
                voter: member.voter,
                api_addr: member.api_addr,
                reachable,
                error,
                stats,
            }
        })
        .buffer_unordered(CLUSTER_LINKS_CONCURRENCY)
        .collect()
        .await;
    gathered.sort_by_key(|m| m.id);
    let answer = ClusterLinks {
        served_by: ctx.node_id,
        leader: ctx.leader().map(|(id, _)| id),
        members: gathered,
    };
    ctx.json(StatusCode::OK, &answer)
}

async fn fetch(
    forwarder: &super::forward::Forwarder,
    id: crate::model::NodeId,
    addr: &str,
) -> Fetched {
    let timeout = Duration::from_millis(CLUSTER_LINKS_TIMEOUT_MS);
    let sent = forwarder
        .send(
            addr,
            Method::GET,
            "/v1/node/stats",
            None,
            Bytes::new(),
            timeout,
            None,
        )
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return (false, Err(e.to_string())),
    };
    let status = resp.status();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return (false, Err(format!("reading the answer: {e}"))),
    };
    if status == StatusCode::CONFLICT {
        if let Ok(e) = serde_json::from_slice::<ErrorBody>(&body) {
            return (true, Err(e.error.code));
        }
    }
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return (false, Err(format!("answered {status}: {text}")));
    }
    match serde_json::from_slice::<NodeStats>(&body) {
        Ok(s) if s.node_id == id => (true, Ok(s)),
        Ok(s) => (false, Err(format!("answered as node {}", s.node_id))),
        Err(e) => (false, Err(format!("stats do not decode: {e}"))),
    }
}
