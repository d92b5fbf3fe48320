//! Raft RPC server: the receiving side of [`super::network`].
//!
//! Bodies are postcard, limited to the configured Raft body size (large
//! enough for `max_payload_entries` entries and a snapshot chunk; separate
//! from the admin API's small limit). A request from another cluster is
//! refused with 403 before anything reaches Raft.
//!
//! On a secure node the listener requires a node certificate of this
//! cluster ([`crate::security::listener`]), and the sender a request claims
//! — the leader of an AppendEntries or snapshot, the candidate of a vote or
//! pre-vote — must be the node its certificate names: a node cannot vote,
//! lead or campaign in another's name. A refusal is a 403 naming both ids,
//! logged, counted in `topod_raft_rpc_refused_total`, and changes nothing.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Extension;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::network::{paths, CLUSTER_HEADER, QUORUM_AGE_HEADER};
use super::prevote::task::voter_view;
use super::prevote::{answer, PreVoteRequest};
use super::readiness::LeaderContact;
use super::types::{Raft, TypeConfig};
use crate::model::NodeId;
use crate::security::PeerNode;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest};
use tokio::time::Duration;

#[derive(Clone)]
struct RpcState {
    raft: Raft,
    me: NodeId,
    cluster_id: String,
    contact: LeaderContact,
    /// The leader lease a pre-vote answer respects.
    lease: Duration,
    /// Requests must come from the node they claim (mutual TLS).
    secure: bool,
}

/// Who this server answers for, and what it shares with the rest of the
/// node.
#[derive(Clone)]
pub struct RpcIdentity {
    pub me: NodeId,
    pub cluster_id: String,
    pub contact: LeaderContact,
    /// The leader lease (`raft.election_timeout_max_ms`): a pre-vote is
    /// refused while a leader was heard from within it.
    pub lease: Duration,
    /// Mutual TLS is on: check each request's claimed sender against its
    /// certificate.
    pub secure: bool,
}

/// The Raft RPC routes of one node, topod's pre-vote among them. Every
/// AppendEntries or snapshot chunk this node accepts (its sender leads in
/// this node's current term) is recorded in `contact`.
pub fn router(raft: Raft, id: RpcIdentity, max_body_bytes: usize) -> Router {
    Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::PREVOTE, post(prevote))
        .layer(axum::middleware::map_response(announce_log_version))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(RpcState {
            raft,
            me: id.me,
            cluster_id: id.cluster_id,
            contact: id.contact,
            lease: id.lease,
            secure: id.secure,
        })
}

/// Every answer says which log envelopes this build reads, so that the
/// leader writes a newer one only when all members read it.
async fn announce_log_version(mut response: Response) -> Response {
    response.headers_mut().insert(
        super::log_versions::LOG_VERSION_HEADER,
        axum::http::HeaderValue::from(crate::model::LOG_VERSION),
    );
    response
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
    decode_body(body).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            format!("undecodable Raft RPC body: {e}"),
        ))
    })
}

/// On a secure node, why a request claiming to come from `claimed` is
/// refused given the certificate's `peer`; `None` when it may pass.
pub fn claim_refusal(
    secure: bool,
    peer: Option<PeerNode>,
    claimed: Option<NodeId>,
) -> Option<String> {
    if !secure {
        return None;
    }
    match (peer, claimed) {
        (None, _) => Some("no node certificate".into()),
        (Some(_), None) => Some("the request names no sender".into()),
        (Some(PeerNode(p)), Some(c)) if p != c => Some(format!(
            "the request claims to come from node {c}, but the certificate is node {p}'s"
        )),
        (Some(_), Some(_)) => None,
    }
}

fn check_claim(
    st: &RpcState,
    rpc: &'static str,
    peer: Option<Extension<PeerNode>>,
    claimed: Option<NodeId>,
) -> Result<(), Box<Response>> {
    let peer = peer.map(|Extension(p)| p);
    let Some(reason) = claim_refusal(st.secure, peer, claimed) else {
        return Ok(());
    };
    metrics::counter!("topod_raft_rpc_refused_total", "rpc" => rpc).increment(1);
    tracing::warn!(rpc, %reason, "Raft RPC refused");
    Err(Box::new(refuse(StatusCode::FORBIDDEN, reason)))
}

/// Decodes a Raft RPC body (postcard). Pure (the fuzz target `raft_rpc`
/// runs it).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(body)
}

fn encode<T: Serialize>(value: &T) -> Response {
    match postcard::to_allocvec(value) {
        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("encode: {e}")),
    }
}

async fn append(
    State(st): State<RpcState>,
    peer: Option<Extension<PeerNode>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match decode(&st, &headers, &body) {
        Ok(req) => req,
        Err(r) => return *r,
    };
    let leader = req.vote.leader_id().voted_for();
    if let Err(r) = check_claim(&st, "append", peer, leader) {
        return *r;
    }
    let quorum_ms = headers
        .get(QUORUM_AGE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let answer = st.raft.append_entries(req).await;
    // A stale leader gets `HigherVote`: only an accepted one is contact.
    let accepted = matches!(
        &answer,
        Ok(AppendEntriesResponse::Success
            | AppendEntriesResponse::PartialSuccess(_)
            | AppendEntriesResponse::Conflict)
    );
    if let (true, Some(leader)) = (accepted, leader) {
        st.contact.record(leader, quorum_ms);
    }
    encode(&answer)
}

async fn vote(
    State(st): State<RpcState>,
    peer: Option<Extension<PeerNode>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: openraft::raft::VoteRequest<NodeId> = match decode(&st, &headers, &body) {
        Ok(req) => req,
        Err(r) => return *r,
    };
    if let Err(r) = check_claim(&st, "vote", peer, req.vote.leader_id().voted_for()) {
        return *r;
    }
    encode(&st.raft.vote(req).await)
}

async fn snapshot(
    State(st): State<RpcState>,
    peer: Option<Extension<PeerNode>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: InstallSnapshotRequest<TypeConfig> = match decode(&st, &headers, &body) {
        Ok(req) => req,
        Err(r) => return *r,
    };
    let leader = req.vote.leader_id().voted_for();
    if let Err(r) = check_claim(&st, "snapshot", peer, leader) {
        return *r;
    }
    let answer = st.raft.install_snapshot(req).await;
    if let (true, Some(leader)) = (answer.is_ok(), leader) {
        st.contact.record(leader, None);
    }
    encode(&answer)
}

/// Answers a pre-vote from Raft's metrics; changes nothing.
async fn prevote(
    State(st): State<RpcState>,
    peer: Option<Extension<PeerNode>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: PreVoteRequest = match decode(&st, &headers, &body) {
        Ok(req) => req,
        Err(r) => return *r,
    };
    if let Err(r) = check_claim(&st, "prevote", peer, Some(req.candidate)) {
        return *r;
    }
    let view = voter_view(&st.raft, st.me, &st.contact);
    let reply = answer(&view, &req, st.lease);
    tracing::debug!(candidate = req.candidate, term = req.term, refusal = ?reply.refusal, "pre-vote answered");
    encode(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secure_node_takes_requests_only_in_the_certificate_s_name() {
        let p = Some(PeerNode(2));
        assert_eq!(claim_refusal(true, p, Some(2)), None);
        assert!(claim_refusal(true, p, None).is_some());
        let r = claim_refusal(true, p, Some(3)).expect("refused");
        assert!(r.contains("node 3") && r.contains("node 2's"), "{r}");
        assert!(claim_refusal(true, None, Some(2)).is_some());
        assert_eq!(claim_refusal(false, None, Some(2)), None);
    }
}
