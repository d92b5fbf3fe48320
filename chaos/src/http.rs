//! A small JSON client for the nodes' admin API: every call has a
//! deadline and a body limit, and its failure says whether the request
//! may have reached the node (which decides `fail` versus `unknown` in
//! the history).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Method;
use hyper_util::client::legacy::Client;
use serde_json::Value;

/// Largest answer read (a history page of 1000 records fits).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection was made: the request never reached the node.
    #[error("connect: {0}")]
    Connect(String),
    /// The deadline passed after the request may have been sent.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request may have been sent.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not JSON, or too large.
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

impl CallError {
    /// Whether the request certainly did not reach the node.
    pub fn surely_not_sent(&self) -> bool {
        matches!(self, CallError::Connect(_))
    }
}

/// A status and a JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error body, or "".
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// The cluster CA the harness trusts, once its cluster runs secure (set by
/// [`use_cluster_ca`] before any [`Api`] is made); unset: plain HTTP.
static CLUSTER_CA: std::sync::OnceLock<rustls::RootCertStore> = std::sync::OnceLock::new();

/// Makes every [`Api`] made from now on call the nodes over HTTPS, trusting
/// `roots`.
pub fn use_cluster_ca(roots: rustls::RootCertStore) {
    let _set_once = CLUSTER_CA.set(roots);
}

/// The admin token every request carries once the cluster has one (the
/// nodes' `security.initial_admin_token_file`).
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every request send `token` as its bearer token.
pub fn use_token(token: String) {
    let _set_once = TOKEN.set(token);
}

/// A pooled client (connections are reused per node).
#[derive(Clone)]
pub struct Api {
    client: Client<topod::security::client::PeerConnector, Full<Bytes>>,
    scheme: &'static str,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    pub fn new() -> Self {
        let roots = CLUSTER_CA.get().cloned();
        let scheme = if roots.is_some() { "https" } else { "http" };
        Api {
            client: topod::security::client::operator_client(roots, Duration::from_secs(1)),
            scheme,
        }
    }

    /// One request to `{scheme}://{addr}{path}` with a deadline.
    pub async fn call(
        &self,
        addr: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        deadline: Duration,
    ) -> Result<Answer, CallError> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}://{addr}{path}", self.scheme));
        if let Some(t) = TOKEN.get() {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                serde_json::to_vec(v).map_err(|e| CallError::BadAnswer(e.to_string()))?
            }
            None => Vec::new(),
        };
        let req = b
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| CallError::Connect(e.to_string()))?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| {
                if e.is_connect() {
                    CallError::Connect(e.to_string())
                } else {
                    CallError::Transport(e.to_string())
                }
            })?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| CallError::Transport(e.to_string()))?
                .to_bytes();
            let body = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body).map_err(|e| CallError::BadAnswer(e.to_string()))?
            };
            Ok(Answer { status, body })
        };
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| CallError::Timeout(deadline))?
    }

    pub async fn get(
        &self,
        addr: &str,
        path: &str,
        deadline: Duration,
    ) -> Result<Answer, CallError> {
        self.call(addr, Method::GET, path, None, deadline).await
    }
}
