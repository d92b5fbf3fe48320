//! Fetching every member's summary (`GET /v1/node/summary?window_ms=`)
//! with bounded concurrency and a per-member deadline.
//!
//! A member that does not answer in time, cannot be reached, answers with
//! an error status or a body that does not decode is reported with the
//! reason and counted as unreachable: a connectivity and partition signal
//! for the round, never an error that stops it. A member without a data
//! plane (409 `no_data_plane`) answered: it is live, with no overlay
//! figures.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;

use crate::model::{NodeId, NodeSummary};

/// Largest summary accepted, bytes (a summary with the maximum link list
/// is about 120 KB of JSON).
pub const MAX_SUMMARY_BYTES: usize = 1 << 20;

/// A member to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    /// Where its API routes are called, `scheme://host:port`
    /// ([`crate::security::PeerHttp::api_base`]).
    pub base: String,
}

/// Why a member's summary was not received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatherError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("summary does not decode: {0}")]
    Decode(String),
    #[error("answered as node {0}")]
    WrongNode(NodeId),
}

/// What one gathering brought back.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// Summaries received, ascending by node (a member without a data
    /// plane is here with `topology: None`).
    pub summaries: Vec<NodeSummary>,
    /// Members that did not answer, ascending, with the reason.
    pub failures: Vec<(NodeId, GatherError)>,
    /// Bytes of summaries received.
    pub bytes: u64,
}

impl Gathered {
    /// The members that did not answer.
    pub fn unreachable(&self) -> Vec<NodeId> {
        self.failures.iter().map(|(n, _)| *n).collect()
    }
}

/// One member's answer: its summary and the bytes it took.
type Answer = Result<(NodeSummary, usize), GatherError>;

/// Fetches summaries.
#[derive(Clone)]
pub struct Gatherer {
    http: Client<crate::security::client::PeerConnector, Empty<Bytes>>,
    concurrency: usize,
    timeout: Duration,
}

impl Gatherer {
    /// A gatherer asking at most `concurrency` members at once, each
    /// within `timeout`.
    pub fn new(peer: &crate::security::PeerHttp, concurrency: usize, timeout: Duration) -> Self {
        Gatherer {
            http: peer.client(timeout, Duration::from_secs(90), 4),
            concurrency: concurrency.max(1),
            timeout,
        }
    }

    /// Asks every member for its summary over `window`.
    pub async fn gather(&self, members: &[Member], window: Duration) -> Gathered {
        let window_ms = window.as_millis().max(1);
        let mut answers: Vec<(NodeId, Answer)> = futures::stream::iter(members.iter().cloned())
            .map(|m| async move {
                let r = self.fetch(&m, window_ms).await;
                (m.id, r)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        answers.sort_by_key(|(id, _)| *id);
        let mut out = Gathered::default();
        for (id, answer) in answers {
            match answer {
                Ok((s, bytes)) => {
                    out.bytes += bytes as u64;
                    out.summaries.push(s);
                }
                Err(e) => out.failures.push((id, e)),
            }
        }
        out
    }

    async fn fetch(&self, m: &Member, window_ms: u128) -> Answer {
        let uri = format!("{}/v1/node/summary?window_ms={window_ms}", m.base);
        let request = hyper::Request::get(uri)
            .body(Empty::new())
            .map_err(|e| GatherError::Unreachable(e.to_string()))?;
        let call = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| GatherError::Unreachable(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_SUMMARY_BYTES)
                .collect()
                .await
                .map_err(|e| GatherError::Unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, GatherError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| GatherError::Timeout(self.timeout))??;
        if status == StatusCode::CONFLICT && is_no_data_plane(&body) {
            let summary = NodeSummary {
                node: m.id,
                ..NodeSummary::default()
            };
            return Ok((summary, body.len()));
        }
        if status != StatusCode::OK {
            return Err(GatherError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        let summary: NodeSummary =
            serde_json::from_slice(&body).map_err(|e| GatherError::Decode(e.to_string()))?;
        if summary.node != m.id {
            return Err(GatherError::WrongNode(summary.node));
        }
        Ok((summary, body.len()))
    }
}

fn is_no_data_plane(body: &[u8]) -> bool {
    serde_json::from_slice::<crate::api::types::ErrorBody>(body)
        .is_ok_and(|e| e.error.code == "no_data_plane")
}
