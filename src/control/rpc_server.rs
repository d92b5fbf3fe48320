//! Raft RPC server: the receiving side of [`super::network`].
//!
//! Bodies are postcard, limited to the configured Raft body size (large
//! enough for `max_payload_entries` entries and a snapshot chunk; separate
//! from the admin API's small limit). A request from another cluster is
//! refused with 403 before anything reaches Raft.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::network::{paths, CLUSTER_HEADER};
use super::readiness::LeaderContact;
use super::types::{Raft, TypeConfig};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};

#[derive(Clone)]
struct RpcState {
    raft: Raft,
    cluster_id: String,
    contact: LeaderContact,
}

/// The Raft RPC routes of one node. Every AppendEntries this node accepts
/// (its sender leads in this node's current term) is recorded in
/// `contact`.
pub fn router(
    raft: Raft,
    cluster_id: String,
    max_body_bytes: usize,
    contact: LeaderContact,
) -> Router {
    Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::SNAPSHOT, post(snapshot))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(RpcState {
            raft,
            cluster_id,
            contact,
        })
}

fn refuse(status: StatusCode, msg: String) -> Response {
    (status, msg).into_response()
}

fn decode<T: DeserializeOwned>(
    st: &RpcState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Box<Response>> {
    let theirs = headers
        .get(CLUSTER_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if theirs != st.cluster_id {
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "cluster id mismatch: this node is in cluster `{}`, the request is for `{theirs}`",
                st.cluster_id
            ),
        )));
    }
    postcard::from_bytes(body).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            format!("undecodable Raft RPC body: {e}"),
        ))
    })
}

fn encode<T: Serialize>(value: &T) -> Response {
    match postcard::to_allocvec(value) {
        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("encode: {e}")),
    }
}

async fn append(State(st): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match decode(&st, &headers, &body) {
        Ok(req) => req,
        Err(r) => return *r,
    };
    let leader = req.vote.leader_id().voted_for();
    let answer = st.raft.append_entries(req).await;
    // A stale leader gets `HigherVote`: only an accepted one is contact.
    let accepted = matches!(
        &answer,
        Ok(AppendEntriesResponse::Success
            | AppendEntriesResponse::PartialSuccess(_)
            | AppendEntriesResponse::Conflict)
    );
    if let (true, Some(leader)) = (accepted, leader) {
        st.contact.record(leader);
    }
    encode(&answer)
}

async fn vote(State(st): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode(&st, &headers, &body) {
        Ok(req) => encode(&st.raft.vote(req).await),
        Err(r) => *r,
    }
}

async fn snapshot(State(st): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode(&st, &headers, &body) {
        Ok(req) => encode(&st.raft.install_snapshot(req).await),
        Err(r) => *r,
    }
}
