//! Forwarding a write from a follower to the leader, one hop at most.
//!
//! The follower re-sends the request (method, path, query, content type,
//! body) to the leader with [`FORWARDED_HEADER`] set — on a secure node
//! to the leader's Raft RPC listener over mutual TLS, where the header is
//! believed only from the node its certificate names; on an insecure one
//! to its API ([`crate::security::PeerHttp::api_base`]) — and returns the
//! leader's answer as is, including the leader's
//! [`SERVED_BY_HEADER`](super::types::SERVED_BY_HEADER). A request that
//! already carries the header is not forwarded again: the caller answers
//! 503 with the leader hint instead. The forwarded request carries what
//! remains of the sender's deadline in
//! [`DEADLINE_HEADER`](super::types::DEADLINE_HEADER), so the leader stops
//! waiting when the follower does. The client's `Authorization` header
//! goes with it ([`Forwarder::with_authorization`]): the leader checks the
//! token again.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;

use super::types::{DEADLINE_HEADER, FORWARDED_HEADER};
use crate::control::types::NodeAddr;
use crate::model::NodeId;
use crate::security::client::PeerConnector;
use crate::security::PeerHttp;

/// Largest answer relayed from the leader, bytes.
pub const MAX_FORWARD_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Why forwarding failed. Nothing was written by this node; the leader may
/// or may not have applied the request when the error is `Timeout`.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("cannot reach the leader at {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("the leader at {addr} did not answer within {after:?}")]
    Timeout { addr: String, after: Duration },
}

/// HTTP client used to forward writes (and the executor's phase reports).
#[derive(Clone)]
pub struct Forwarder {
    http: Client<PeerConnector, Full<Bytes>>,
    peer: PeerHttp,
    /// Value of [`FORWARDED_HEADER`]: this node's id, or `-` when unknown.
    marker: HeaderValue,
    /// The client's `Authorization` header, relayed as is.
    authorization: Option<HeaderValue>,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder::new(PeerHttp::insecure(), None)
    }
}

impl Forwarder {
    /// A forwarder calling peers through `peer`; the requests it forwards
    /// name node `id` (`-` when `None`: a node not yet in a cluster).
    pub fn new(peer: PeerHttp, id: Option<NodeId>) -> Self {
        Forwarder {
            http: peer.client(Duration::from_secs(2), Duration::from_secs(30), 32),
            peer,
            marker: id.map_or(HeaderValue::from_static("-"), HeaderValue::from),
            authorization: None,
        }
    }

    /// A plain-HTTP forwarder of node `id`.
    pub fn of_node(id: NodeId) -> Self {
        Forwarder::new(PeerHttp::insecure(), Some(id))
    }

    /// Where this node calls `node`'s API routes (`scheme://host:port`).
    pub fn base_of(&self, node: &NodeAddr) -> String {
        self.peer.api_base(node)
    }

    /// `scheme://addr` for an address given as `host:port`.
    pub fn base(&self, addr: &str) -> String {
        self.peer.base(addr)
    }

    /// This forwarder, relaying `authorization` (the client's header) with
    /// what it sends.
    pub fn with_authorization(&self, authorization: Option<&HeaderValue>) -> Forwarder {
        Forwarder {
            authorization: authorization.cloned(),
            ..self.clone()
        }
    }

    /// The node that forwarded `headers`' request, if it says.
    pub fn origin(headers: &axum::http::HeaderMap) -> Option<NodeId> {
        headers.get(FORWARDED_HEADER)?.to_str().ok()?.parse().ok()
    }

    /// Sends `body` to `addr` (`scheme://host:port`, see [`Self::base_of`])
    /// as `method path_and_query`,
    /// marked as forwarded, and returns the answer. `deadline`, when given,
    /// is sent in [`DEADLINE_HEADER`]: the receiver stops waiting then
    /// (pass a little less than `timeout`, so that its answer arrives).
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        addr: &str,
        method: Method,
        path_and_query: &str,
        content_type: Option<&HeaderValue>,
        body: Bytes,
        timeout: Duration,
        deadline: Option<Duration>,
    ) -> Result<Response<Body>, ForwardError> {
        let unreachable = |detail: String| ForwardError::Unreachable {
            addr: addr.to_string(),
            detail,
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{addr}{path_and_query}"))
            .header(FORWARDED_HEADER, self.marker.clone());
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        if let Some(auth) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        if let Some(d) = deadline {
            builder = builder.header(DEADLINE_HEADER, d.as_millis().max(1).to_string());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        let call = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, MAX_FORWARD_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Response::from_parts(parts, Body::from(bytes)))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ForwardError::Timeout {
                addr: addr.to_string(),
                after: timeout,
            }),
        }
    }

    /// Posts a JSON body and returns the status and body.
    pub async fn post_json(
        &self,
        addr: &str,
        path: &str,
        body: &impl serde::Serialize,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ForwardError> {
        let json = serde_json::to_vec(body).expect("API bodies serialise");
        let ct = HeaderValue::from_static("application/json");
        let resp = self
            .send(
                addr,
                Method::POST,
                path,
                Some(&ct),
                Bytes::from(json),
                timeout,
                Some(timeout.saturating_sub(timeout / 10)),
            )
            .await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ForwardError::Unreachable {
                addr: addr.to_string(),
                detail: e.to_string(),
            })?
            .to_bytes();
        Ok((status, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on port 0 that answers each request with its
    /// `Authorization` header (or `-`) as the body.
    async fn echo_authorization() -> std::net::SocketAddr {
        use axum::routing::get;
        let app = axum::Router::new().route(
            "/echo",
            get(|headers: axum::http::HeaderMap| async move {
                headers
                    .get(header::AUTHORIZATION)
                    .map_or("-".to_string(), |v| v.to_str().unwrap_or("?").to_string())
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn body_of(f: &Forwarder, addr: std::net::SocketAddr) -> String {
        let resp = f
            .send(
                &f.base(&addr.to_string()),
                Method::GET,
                "/echo",
                None,
                Bytes::new(),
                Duration::from_secs(5),
                None,
            )
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_clients_authorization_goes_with_the_forwarded_request() {
        let addr = echo_authorization().await;
        let f = Forwarder::of_node(2);
        assert_eq!(body_of(&f, addr).await, "-", "none unless given");
        let auth = HeaderValue::from_static("Bearer topod_x");
        let relayed = f.with_authorization(Some(&auth));
        assert_eq!(body_of(&relayed, addr).await, "Bearer topod_x");
        assert_eq!(
            body_of(&f, addr).await,
            "-",
            "the node's own forwarder is unchanged"
        );
    }
}
