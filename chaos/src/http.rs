//! A small JSON client for the nodes' admin API: every call has a
//! deadline and a body limit, and its failure says whether the request
//! may have reached the node (which decides `fail` versus `unknown` in
//! the history).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Method;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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

/// A pooled client (connections are reused per node).
#[derive(Clone)]
pub struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    pub fn new() -> Self {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(Duration::from_secs(1)));
        conn.set_nodelay(true);
        Api {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(5))
                .build(conn),
        }
    }

    /// One request to `http://{addr}{path}` with a deadline.
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
            .uri(format!("http://{addr}{path}"));
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
