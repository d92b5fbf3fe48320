//! What the API handlers share: the node's Raft handle, applied state,
//! proposer, forwarder, limits and data-plane handle, plus the JSON error
//! responses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use metrics_exporter_prometheus::PrometheusHandle;
use openraft::RaftMetrics;
use serde::Serialize;

use super::forward::Forwarder;
use super::types::{codes, ErrorBody, LeaderHint, SERVED_BY_HEADER};
use crate::control::applied::AppliedRx;
use crate::control::proposer::Proposer;
use crate::control::readiness::{self, LeaderContact, NotServing, View};
use crate::control::types::{NodeAddr, Raft};
use crate::executor::ExecutorHandle;
use crate::model::{NodeId, OverlayConfig, Topology};

/// The configured overlay defaults of each topology.
pub type OverlayDefaults = Arc<dyn Fn(Topology) -> OverlayConfig + Send + Sync>;

/// Shared state of the API handlers.
pub struct ApiContext {
    pub node_id: NodeId,
    /// `security.insecure`: no tokens asked, no peer identity checked.
    pub insecure: bool,
    /// This node's certificate material (a secure node).
    pub tls: Option<Arc<crate::security::TlsContext>>,
    /// `security.expiry_warning_days`.
    pub expiry_warning: Duration,
    /// Whether the admin API asks for bearer tokens (`api::auth`).
    /// Transitional rule until mutual TLS lands: `!insecure` and
    /// `security.initial_admin_token_file` set (without node certificates,
    /// nodes could not call each other's API with tokens enforced).
    pub require_tokens: bool,
    /// `security.metrics`: whether `/metrics` needs a `read` token.
    pub metrics_access: crate::config::MetricsAccess,
    /// The log envelope each peer reads: token commands (`V5`) are
    /// written only when every member reads them.
    pub log_versions: crate::control::log_versions::LogVersions,
    /// This node's UUID (created with its data dir).
    pub node_uuid: String,
    pub cluster_id: String,
    pub raft: Raft,
    pub applied: AppliedRx,
    pub proposer: Arc<Proposer>,
    /// Phase and health reports go through the leader's batcher.
    pub reports: crate::control::report_batch::ReportBatcher,
    pub forwarder: Forwarder,
    pub overlay_defaults: OverlayDefaults,
    pub prometheus: PrometheusHandle,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Deadline of a forwarded request (plus any `wait`).
    pub forward_timeout: Duration,
    /// Set when storage failed: the node stops serving.
    pub fatal: Arc<AtomicBool>,
    /// Serialises membership changes (openraft refuses concurrent ones).
    pub membership_lock: tokio::sync::Mutex<()>,
    /// When this node last accepted an AppendEntries from its leader.
    pub leader_contact: LeaderContact,
    /// How recent a leader's quorum ack, or a follower's contact with its
    /// leader, must be for the node to serve (the election timeout's
    /// maximum).
    pub ready_window: Duration,
    /// The same for a learner, whose idle heartbeats are thinned
    /// (`raft.learner_heartbeat_ms`): `RaftConfig::learner_ready_window`.
    pub learner_ready_window: Duration,
    /// The data plane's executor (`None` on a node started with a
    /// control-plane-only executor: the `/v1/node/stats` and
    /// `/v1/node/faults` routes then answer 409 `no_data_plane`).
    pub dataplane: Option<ExecutorHandle>,
    /// This node's deliveries of chaos-harness broadcasts (`Some` in chaos
    /// mode with a data plane).
    pub deliveries: Option<Arc<crate::api::deliveries::DeliveryLog>>,
    /// Where this node's monitor publishes its rounds (it runs while the
    /// node leads).
    pub monitor: crate::monitor::MonitorHandle,
    /// This node's topology events (`GET /v1/events`) and the SSE client
    /// limit.
    pub events: crate::node::events::EventHub,
    /// This node's application metrics (`POST /v1/node/app-metrics`, the
    /// summary's `app`, `topod_app_*` at `/metrics`).
    pub app_metrics: crate::app_metrics::AppMetrics,
}

impl ApiContext {
    /// A consistent copy of the Raft metrics.
    pub fn metrics(&self) -> RaftMetrics<NodeId, NodeAddr> {
        self.raft.metrics().borrow().clone()
    }

    /// The leader id and its API address, when known. A leader this
    /// follower has not heard from for twice the readiness window (the
    /// time after which openraft's own timer would have started an
    /// election and forgotten it) is not named: with pre-vote, a cut-off
    /// follower does not campaign, so Raft's metrics keep naming it.
    pub fn leader(&self) -> Option<(NodeId, Option<String>)> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let window = self.window_of(&m);
        if id != self.node_id && self.leader_contact.since(id).is_none_or(|d| d > window * 2) {
            return None;
        }
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.api_addr.clone());
        Some((id, addr))
    }

    /// The leader (when another node) and the base URL this node calls it
    /// at ([`Forwarder::base_of`]), as [`Self::leader`] knows it.
    pub fn leader_target(&self) -> Option<(NodeId, Option<String>)> {
        let (id, _) = self.leader()?;
        let m = self.raft.metrics();
        let m = m.borrow();
        let base = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| self.forwarder.base_of(n));
        Some((id, base))
    }

    /// Whether this node can serve a write or a current read now, given
    /// the `committed` index (see [`crate::control::readiness`]).
    pub fn serving(&self, committed: u64) -> Result<(), NotServing> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leader = m.current_leader;
        let view = View {
            me: self.node_id,
            leader,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            since_leader_contact: leader.and_then(|l| self.leader_contact.since(l)),
            leader_quorum_ms: leader.and_then(|l| self.leader_contact.leader_quorum_ms(l)),
            applied: self.applied.borrow().applied_index(),
            committed,
        };
        readiness::check(&view, self.window_of(&m))
    }

    /// The readiness window of this node's role now: a learner's is
    /// longer, as it hears idle heartbeats less often.
    fn window_of(
        &self,
        m: &openraft::RaftMetrics<NodeId, crate::control::types::NodeAddr>,
    ) -> Duration {
        let voter = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == self.node_id);
        if voter {
            self.ready_window
        } else {
            self.learner_ready_window
        }
    }

    /// Whether a write can be run or forwarded now: [`Self::serving`]
    /// without the catch-up (a follower behind its leader still forwards).
    /// The 503 answer when not: no leader hint, since the leader this
    /// node knows is itself or one it lost contact with.
    #[allow(clippy::result_large_err)]
    pub fn can_write(&self) -> Result<(), Response<Body>> {
        match self.serving(0) {
            Ok(()) | Err(NotServing::CatchingUp { .. }) => Ok(()),
            Err(NotServing::NoLeader) => {
                Err(self.no_leader(codes::NO_LEADER, "no leader is known; retry shortly"))
            }
            Err(e @ NotServing::NoQuorum { .. }) => Err(self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new(codes::NO_QUORUM, e.to_string()),
            )),
            Err(e @ (NotServing::LeaderSilent { .. } | NotServing::LeaderWithoutQuorum { .. })) => {
                Err(self.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorBody::new(codes::NO_LEADER, e.to_string()),
                ))
            }
        }
    }

    /// The data plane, or the 409 `no_data_plane` answer (a handler's early
    /// return, built once per request, so its size does not matter).
    #[allow(clippy::result_large_err)]
    pub fn dataplane(&self) -> Result<&ExecutorHandle, Response<Body>> {
        self.dataplane.as_ref().ok_or_else(|| {
            self.error(
                StatusCode::CONFLICT,
                ErrorBody::new(
                    codes::NO_DATA_PLANE,
                    format!(
                        "node {} runs no data plane (started without the overlay executor)",
                        self.node_id
                    ),
                ),
            )
        })
    }

    /// Whether storage failed.
    pub fn is_fatal(&self) -> bool {
        self.fatal.load(Ordering::SeqCst)
    }

    /// Adds the served-by header.
    pub fn served(&self, mut resp: Response<Body>) -> Response<Body> {
        if !resp.headers().contains_key(SERVED_BY_HEADER) {
            resp.headers_mut().insert(
                SERVED_BY_HEADER,
                HeaderValue::from_str(&self.node_id.to_string()).expect("digits are a header"),
            );
        }
        resp
    }

    /// A JSON answer.
    pub fn json<T: Serialize>(&self, status: StatusCode, body: &T) -> Response<Body> {
        self.served((status, Json(body)).into_response())
    }

    /// A JSON error answer.
    pub fn error(&self, status: StatusCode, body: ErrorBody) -> Response<Body> {
        self.json(status, &body)
    }

    /// 503 with the leader hint (when this node cannot serve a write).
    pub fn no_leader(&self, code: &str, message: impl Into<String>) -> Response<Body> {
        let mut body = ErrorBody::new(code, message);
        if let Some((id, api_addr)) = self.leader() {
            body = body.with_leader(LeaderHint { id, api_addr });
        }
        self.error(StatusCode::SERVICE_UNAVAILABLE, body)
    }

    /// 500 for an unexpected failure.
    pub fn internal(&self, message: impl Into<String>) -> Response<Body> {
        self.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody::new(codes::INTERNAL, message),
        )
    }
}
