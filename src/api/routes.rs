//! The admin API's routes and handlers.
//!
//! Reads are served from this node's applied state. Writes go through the
//! Raft log on the leader: a follower forwards them (one hop, see
//! [`super::forward`]). The `/v1/node/...` data-plane routes
//! ([`super::dataplane`]) are answered by the node asked, never forwarded. Every write body is JSON (`Content-Type:
//! application/json`), size-limited, with unknown fields refused; nothing is
//! proposed for a refused request.

// Handlers bail out early with a ready `Response` as the error value; it is
// built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};

use super::context::ApiContext;
use super::dataplane;
use super::forward::Forwarder;
use super::membership;
use super::types::*;
use crate::control::proposer::WriteError;
use crate::model::{
    Command, CommandResponse, NodeId, OverlayConfig, Phase, PhaseReport, Rejection, TransitionId,
};

pub(super) type Ctx = State<Arc<ApiContext>>;

/// The admin API router.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/v1/topology", get(topology))
        .route("/v1/topology/switch", post(switch))
        .route("/v1/topology/history", get(history))
        .route("/v1/topology/optimize", post(super::optimize::optimize))
        .route("/v1/monitor", get(super::monitor::monitor))
        .route("/v1/events", get(super::events::events))
        .route("/v1/transitions", get(transition_by_request))
        .route("/v1/transitions/{id}", get(transition))
        .route("/v1/transitions/{id}/reports", post(report))
        .route("/v1/cluster/status", get(status))
        .route("/v1/cluster/snapshot", get(super::backup::snapshot))
        .route("/v1/node/identity", get(identity))
        .route("/v1/cluster/members", get(members).post(membership::join))
        .route(
            "/v1/cluster/links",
            get(super::cluster_links::cluster_links),
        )
        .route(
            "/v1/cluster/members/{id}",
            axum::routing::delete(membership::remove),
        )
        .route(
            "/v1/cluster/members/{id}/promote",
            post(membership::promote),
        )
        .route("/v1/policy", get(policy).put(set_policy))
        .route("/v1/node/stats", get(dataplane::stats))
        .route("/v1/node/summary", get(dataplane::summary))
        .route("/v1/node/app-metrics", post(super::app_metrics::report))
        .route(
            "/v1/node/faults",
            get(dataplane::faults)
                .put(dataplane::set_faults)
                .delete(dataplane::clear_faults),
        )
        .route("/v1/node/broadcast", post(super::chaos::broadcast))
        .route("/v1/node/deliveries", get(super::chaos::deliveries))
        .route("/metrics", get(metrics))
        .route(
            "/v1/tokens",
            get(super::tokens::list).post(super::tokens::create),
        )
        .route(
            "/v1/tokens/{name}",
            axum::routing::delete(super::tokens::revoke),
        )
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .merge(crate::ui::router())
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            super::auth::layer,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(ctx)
}

async fn not_found(State(ctx): Ctx, req: Request) -> Response<Body> {
    ctx.error(
        StatusCode::NOT_FOUND,
        ErrorBody::new(
            codes::NOT_FOUND,
            format!("no route for {}", req.uri().path()),
        ),
    )
}

async fn method_not_allowed(State(ctx): Ctx, req: Request) -> Response<Body> {
    ctx.error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorBody::new(
            codes::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {}", req.method(), req.uri().path()),
        ),
    )
}

// ---- reads ----

async fn topology(State(ctx): Ctx, headers: axum::http::HeaderMap) -> Response<Body> {
    let applied = ctx.applied.borrow().clone();
    let leader = ctx.leader().map(|(id, _)| id);
    let links = ctx
        .dataplane
        .as_ref()
        .and_then(|h| h.status().current.as_ref().map(|c| c.links.clone()))
        .unwrap_or_default();
    let metrics = super::monitor::last_metrics(&ctx, headers.get(header::AUTHORIZATION)).await;
    let info = TopologyInfo::new(&applied.state, applied.members().len(), leader)
        .with_links(links)
        .with_metrics(metrics);
    ctx.json(StatusCode::OK, &info)
}

async fn history(
    State(ctx): Ctx,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response<Body> {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                ErrorBody::new(codes::BAD_REQUEST, e.body_text()),
            )
        }
    };
    let applied = ctx.applied.borrow().clone();
    ctx.json(StatusCode::OK, &HistoryPage::new(&applied.state, &query))
}

async fn transition(State(ctx): Ctx, Path(id): Path<String>) -> Response<Body> {
    let id = match parse_id(&ctx, &id, "transition id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    let applied = ctx.applied.borrow().clone();
    match TransitionView::lookup(&applied.state, id) {
        Some(view) => ctx.json(StatusCode::OK, &view),
        None => ctx.error(
            StatusCode::NOT_FOUND,
            ErrorBody::new(
                codes::NOT_FOUND,
                format!("no transition {id} in the history"),
            ),
        ),
    }
}

/// `GET /v1/transitions?request_id=X`: the newest transition proposed
/// with that idempotency key (404 if none is in the history).
async fn transition_by_request(
    State(ctx): Ctx,
    query: Result<Query<RequestQuery>, axum::extract::rejection::QueryRejection>,
) -> Response<Body> {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad(&ctx, BadRequest::new(e.body_text())),
    };
    let applied = ctx.applied.borrow().clone();
    match TransitionView::by_request(&applied.state, &query.request_id) {
        Some(view) => ctx.json(StatusCode::OK, &view),
        None => ctx.error(
            StatusCode::NOT_FOUND,
            ErrorBody::new(
                codes::NOT_FOUND,
                format!(
                    "no transition proposed with request_id `{}` in the history",
                    query.request_id
                ),
            ),
        ),
    }
}

async fn status(State(ctx): Ctx) -> Response<Body> {
    let m = ctx.metrics();
    let api_addr = m
        .membership_config
        .membership()
        .get_node(&ctx.node_id)
        .map(|n| n.api_addr.clone())
        .unwrap_or_default();
    let mut status = ClusterStatus::from_metrics(&m, api_addr);
    status.leader = ctx.leader().map(|(id, _)| id);
    status.commit_index = committed_index(&ctx).await;
    ctx.json(StatusCode::OK, &status)
}

/// `GET /v1/node/identity`: who this node is, before and after it joins a
/// cluster (used by bootstrapping voters to learn each other's UUIDs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub node_id: NodeId,
    pub node_uuid: String,
    pub cluster_id: String,
    /// How this node proves who it is (absent from older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityView>,
}

/// `security` of [`NodeIdentity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityView {
    /// `mutual_tls`, or `insecure` (`security.insecure = true`).
    pub mode: String,
    /// The node certificate's end of validity, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_expires_unix: Option<u64>,
    /// Whole days it has left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_days_left: Option<u64>,
    /// Within `security.expiry_warning_days` of expiring.
    #[serde(default)]
    pub certificate_expiring_soon: bool,
    /// The admin API's own certificate (`security.api_cert`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_certificate_expires_unix: Option<u64>,
}

impl SecurityView {
    fn of(ctx: &ApiContext) -> SecurityView {
        let Some(tls) = &ctx.tls else {
            return SecurityView {
                mode: "insecure".into(),
                certificate_expires_unix: None,
                certificate_days_left: None,
                certificate_expiring_soon: false,
                api_certificate_expires_unix: None,
            };
        };
        let not_after = tls.identity().not_after;
        let (soon, left) = crate::security::reload::expiring(
            not_after,
            std::time::SystemTime::now(),
            ctx.expiry_warning,
        );
        SecurityView {
            mode: "mutual_tls".into(),
            certificate_expires_unix: Some(crate::security::identity::unix_secs(not_after)),
            certificate_days_left: Some(left.as_secs() / 86_400),
            certificate_expiring_soon: soon,
            api_certificate_expires_unix: tls
                .api_cert_expiry()
                .map(crate::security::identity::unix_secs),
        }
    }
}

async fn identity(State(ctx): Ctx) -> Response<Body> {
    let id = NodeIdentity {
        node_id: ctx.node_id,
        node_uuid: ctx.node_uuid.clone(),
        cluster_id: ctx.cluster_id.clone(),
        security: Some(SecurityView::of(&ctx)),
    };
    ctx.json(StatusCode::OK, &id)
}

async fn members(State(ctx): Ctx) -> Response<Body> {
    let m = ctx.metrics();
    ctx.json(
        StatusCode::OK,
        &MembersView::from(m.membership_config.membership()),
    )
}

async fn policy(State(ctx): Ctx) -> Response<Body> {
    let applied = ctx.applied.borrow().clone();
    ctx.json(StatusCode::OK, &PolicyView::from(&applied.state.policy))
}

async fn metrics(State(ctx): Ctx) -> Response<Body> {
    let mut text = ctx.prometheus.render();
    text.push_str(&ctx.app_metrics.render());
    if let Some(h) = &ctx.dataplane {
        text.push_str(&super::exposition::render(
            &h.status(),
            &h.transport_stats(),
        ));
    }
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    ctx.served(resp)
}

async fn livez(State(ctx): Ctx) -> Response<Body> {
    if ctx.is_fatal() {
        return ctx.internal("storage failed; the node is stopping");
    }
    ctx.json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

pub(super) async fn committed_index(ctx: &ApiContext) -> Option<u64> {
    ctx.raft
        .with_raft_state(|s| s.committed.map(|l| l.index))
        .await
        .ok()
        .flatten()
}

async fn readyz(State(ctx): Ctx) -> Response<Body> {
    let not_ready = |why: String| {
        ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new("not_ready", why),
        )
    };
    if ctx.is_fatal() {
        return not_ready("storage failed".into());
    }
    let committed = committed_index(&ctx).await.unwrap_or(0);
    if let Err(e) = ctx.serving(committed) {
        return not_ready(e.to_string());
    }
    let leader = ctx.leader().map(|(id, _)| id);
    let applied = ctx.applied.borrow().applied_index();
    ctx.json(
        StatusCode::OK,
        &serde_json::json!({"status": "ready", "leader": leader, "applied_index": applied}),
    )
}

// ---- writes ----

/// The result of running a write on this node.
pub(super) enum Written {
    Done(Response<Body>),
    /// This node turned out not to be the leader: forward.
    NotLeader,
}

pub(super) fn bad(ctx: &ApiContext, e: BadRequest) -> Response<Body> {
    ctx.error(StatusCode::BAD_REQUEST, e.into())
}

pub(super) fn parse_id(ctx: &ApiContext, raw: &str, what: &str) -> Result<u64, Response<Body>> {
    raw.parse::<u64>().map_err(|_| {
        bad(
            ctx,
            BadRequest::new(format!("{what} `{raw}` is not a number")),
        )
    })
}

/// Decodes a request body, answering 400 on error ([`decode_json`]).
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    ctx: &ApiContext,
    body: &Bytes,
) -> Result<T, Response<Body>> {
    decode_json(body).map_err(|e| bad(ctx, e))
}

/// Decodes a request body, which must be a JSON object: serde's derived
/// structs would also take a JSON array, filling fields by position, which
/// no client means and which bypasses the unknown-field check. Pure (the
/// fuzz target `api_json` runs it).
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, BadRequest> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(BadRequest::new("invalid JSON body: expected a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| BadRequest::new(format!("invalid JSON body: {e}")))
}

/// Reads the body: JSON content type and size limit checked.
pub(super) async fn read_body(
    ctx: &ApiContext,
    req: Request,
    needs_body: bool,
) -> Result<(axum::http::request::Parts, Bytes), Response<Body>> {
    let (parts, body) = req.into_parts();
    if needs_body {
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ctx.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorBody::new(
                    codes::UNSUPPORTED_MEDIA_TYPE,
                    format!("expected Content-Type: application/json, got `{ct}`"),
                ),
            ));
        }
    }
    match Limited::new(body, ctx.max_body_bytes).collect().await {
        Ok(c) => Ok((parts, c.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ctx.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::new(
                codes::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {} bytes", ctx.max_body_bytes),
            ),
        )),
        Err(e) => Err(ctx.error(
            StatusCode::BAD_REQUEST,
            ErrorBody::new(codes::BAD_REQUEST, format!("reading the body: {e}")),
        )),
    }
}

/// Runs a write here if this node leads, otherwise forwards it.
pub(super) async fn write<F, Fut>(
    ctx: Arc<ApiContext>,
    req: Request,
    needs_body: bool,
    op: F,
) -> Response<Body>
where
    F: FnOnce(Arc<ApiContext>, Bytes) -> Fut,
    Fut: Future<Output = Written>,
{
    if ctx.is_fatal() {
        return ctx.no_leader(codes::INTERNAL, "storage failed; the node is stopping");
    }
    let (parts, body) = match read_body(&ctx, req, needs_body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let deadline = match sender_deadline(&ctx, &parts.headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    // On the minority side of a partition: fail at once rather than wait
    // for a commit (or a forward) that cannot come.
    if let Err(r) = ctx.can_write() {
        return r;
    }
    if ctx.proposer.is_leader() {
        let run = op(ctx.clone(), body.clone());
        let written = match deadline {
            None => run.await,
            Some(d) => match tokio::time::timeout(d, run).await {
                Ok(w) => w,
                Err(_) => return deadline_passed(&ctx, d),
            },
        };
        match written {
            Written::Done(r) => return r,
            Written::NotLeader => {}
        }
    }
    forward(&ctx, &parts, body, deadline).await
}

/// What a forwarder keeps of its deadline for itself: the leader's answer
/// (a 504 at the deadline) must arrive before the forwarder gives up.
const FORWARD_MARGIN: std::time::Duration = std::time::Duration::from_millis(100);

/// The sender's deadline from [`DEADLINE_HEADER`], if it sent one.
fn sender_deadline(
    ctx: &ApiContext,
    headers: &axum::http::HeaderMap,
) -> Result<Option<std::time::Duration>, Response<Body>> {
    let Some(raw) = headers.get(DEADLINE_HEADER) else {
        return Ok(None);
    };
    let ms = raw
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    match ms {
        Some(ms) => Ok(Some(std::time::Duration::from_millis(ms))),
        None => Err(bad(
            ctx,
            BadRequest::new(format!(
                "header {DEADLINE_HEADER} must be a number of milliseconds >= 1, got `{}`",
                String::from_utf8_lossy(raw.as_bytes())
            )),
        )),
    }
}

/// 504 when the sender's deadline passed while the write ran here.
fn deadline_passed(ctx: &ApiContext, d: std::time::Duration) -> Response<Body> {
    ctx.error(
        StatusCode::GATEWAY_TIMEOUT,
        ErrorBody::new(
            codes::TIMEOUT,
            format!(
                "the sender's deadline ({} ms, {DEADLINE_HEADER}) passed; the write may still \
                 take effect",
                d.as_millis()
            ),
        ),
    )
}

async fn forward(
    ctx: &ApiContext,
    parts: &axum::http::request::Parts,
    body: Bytes,
    deadline: Option<std::time::Duration>,
) -> Response<Body> {
    if parts.headers.contains_key(FORWARDED_HEADER) {
        return ctx.no_leader(
            codes::NOT_LEADER,
            "this node is not the leader and the request was already forwarded once",
        );
    }
    let Some((leader, addr)) = ctx.leader_target().filter(|(id, _)| *id != ctx.node_id) else {
        return ctx.no_leader(codes::NO_LEADER, "no leader is known; retry shortly");
    };
    let Some(addr) = addr else {
        return ctx.no_leader(
            codes::NO_LEADER,
            format!("leader {leader} has no known address"),
        );
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let ct = parts.headers.get(header::CONTENT_TYPE);
    // The leader's wait is bounded by what remains of ours.
    let timeout = deadline.map_or(ctx.forward_timeout, |d| d.min(ctx.forward_timeout));
    let leader_deadline = timeout
        .saturating_sub(FORWARD_MARGIN)
        .max(std::time::Duration::from_millis(1));
    match ctx
        .forwarder
        .with_authorization(parts.headers.get(header::AUTHORIZATION))
        .send(
            &addr,
            parts.method.clone(),
            pq,
            ct,
            body,
            timeout,
            Some(leader_deadline),
        )
        .await
    {
        Ok(resp) => ctx.served(resp),
        Err(e) => ctx.error(
            StatusCode::BAD_GATEWAY,
            ErrorBody::new(codes::FORWARD_FAILED, e.to_string()),
        ),
    }
}

/// Maps a proposer error to an answer (or to forwarding).
pub(super) fn write_failed(ctx: &ApiContext, e: WriteError) -> Written {
    match e {
        WriteError::ForwardToLeader { .. } => Written::NotLeader,
        WriteError::Timeout(_) => Written::Done(ctx.error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorBody::new(codes::TIMEOUT, e.to_string()),
        )),
        WriteError::Fatal(_) => Written::Done(ctx.no_leader(codes::INTERNAL, e.to_string())),
        WriteError::Refused(_) => Written::Done(ctx.internal(e.to_string())),
    }
}

pub(super) fn rejected(ctx: &ApiContext, r: &Rejection) -> Response<Body> {
    let status = match r {
        Rejection::InvalidConfig { .. }
        | Rejection::InvalidPolicy { .. }
        | Rejection::InvalidToken { .. }
        | Rejection::UnknownTopology { .. } => StatusCode::BAD_REQUEST,
        Rejection::UnknownToken { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    ctx.error(status, r.into())
}

async fn switch(State(ctx): Ctx, req: Request) -> Response<Body> {
    // Who asked: the node the client called, also after forwarding.
    let asked = Forwarder::origin(req.headers()).unwrap_or(ctx.node_id);
    write(ctx, req, true, move |ctx, body| async move {
        let request: SwitchRequest = match parse_json(&ctx, &body) {
            Ok(r) => r,
            Err(r) => return Written::Done(r),
        };
        let mut proposal =
            match request.to_proposal(|t| (ctx.overlay_defaults)(t), format!("api@node{asked}")) {
                Ok(p) => p,
                Err(e) => return Written::Done(bad(&ctx, e)),
            };
        if let OverlayConfig::ClientServer(cs) = &mut proposal.config {
            if cs.servers.is_empty() {
                let m = ctx.metrics();
                cs.servers = m.membership_config.membership().voter_ids().collect();
            }
        }
        let answer = match ctx.proposer.write(Command::ProposeSwitch(proposal)).await {
            Ok(a) => a,
            Err(e) => return write_failed(&ctx, e),
        };
        let id = match answer {
            CommandResponse::Accepted { id } => id,
            CommandResponse::Rejected(r) => return Written::Done(rejected(&ctx, &r)),
            CommandResponse::Applied | CommandResponse::Batch(_) => {
                return Written::Done(ctx.internal("unexpected answer to a proposal"))
            }
        };
        if !request.waits() {
            let status = TransitionView::lookup(&ctx.applied.borrow().state, id)
                .map_or(TransitionStatus::InProgress, |v| v.status);
            return Written::Done(ctx.json(
                StatusCode::ACCEPTED,
                &SwitchAccepted {
                    transition_id: id,
                    status,
                },
            ));
        }
        let timeout = request
            .wait_timeout()
            .unwrap_or(std::time::Duration::from_millis(DEFAULT_WAIT_TIMEOUT_MS));
        Written::Done(wait_for_outcome(&ctx, id, timeout).await)
    })
    .await
}

/// Waits until transition `id` is committed or aborted.
pub(super) async fn wait_for_outcome(
    ctx: &ApiContext,
    id: TransitionId,
    timeout: std::time::Duration,
) -> Response<Body> {
    let mut rx = ctx.applied.clone();
    let wait = async {
        loop {
            let view = TransitionView::lookup(&rx.borrow_and_update().state, id);
            match view {
                Some(v) if v.status.is_final() => return Ok(v),
                None => return Err(false),
                Some(_) => {}
            }
            // The applied state's sender goes away only when the node stops.
            if rx.changed().await.is_err() {
                return Err(true);
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(Ok(view)) => ctx.json(StatusCode::OK, &view),
        Ok(Err(true)) => ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new(
                codes::SHUTTING_DOWN,
                format!(
                    "this node is shutting down; transition {id} was accepted and goes on: \
                     GET /v1/transitions/{id} on another node"
                ),
            ),
        ),
        Ok(Err(false)) => ctx.internal(format!("transition {id} left the history")),
        Err(_) => ctx.error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorBody::new(
                codes::TIMEOUT,
                format!(
                    "transition {id} undecided after {} ms; it goes on",
                    timeout.as_millis()
                ),
            ),
        ),
    }
}

/// Body of `POST /v1/transitions/{id}/reports`: a node's phase report
/// (sent by the nodes' executors).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub node: NodeId,
    pub phase: PhaseView,
}

impl From<&PhaseView> for Phase {
    fn from(p: &PhaseView) -> Self {
        match p {
            PhaseView::Prepared => Phase::Prepared,
            PhaseView::Failed { reason } => Phase::Failed {
                reason: reason.clone(),
            },
            PhaseView::Verified => Phase::Verified,
            PhaseView::Unhealthy { reason } => Phase::Unhealthy {
                reason: reason.clone(),
            },
        }
    }
}

async fn report(State(ctx): Ctx, Path(id): Path<String>, req: Request) -> Response<Body> {
    let id = match parse_id(&ctx, &id, "transition id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    // A secure node takes a report only from the node it is about, and only
    // as the leader: a follower does not relay it (the leader would see
    // the follower's certificate); the reporter retries with the leader.
    let peer = req.extensions().get::<crate::security::PeerNode>().copied();
    if ctx.tls.is_some() && !ctx.proposer.is_leader() {
        return ctx.no_leader(
            codes::NOT_LEADER,
            "phase reports go to the leader itself; this node is not the leader",
        );
    }
    let (parts, bytes) = match read_body(&ctx, req, true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r: ReportRequest = match parse_json(&ctx, &bytes) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !super::auth::report_allowed(peer, r.node) {
        let d = super::auth::Denied::Forbidden(format!(
            "a node reports phases only for itself: this report names node {}",
            r.node
        ));
        return super::auth::denied(&ctx, &d);
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    write(ctx, req, true, move |ctx, _body| async move {
        let report = PhaseReport {
            id,
            node: r.node,
            phase: Phase::from(&r.phase),
        };
        match ctx.reports.submit(report).await {
            Ok(CommandResponse::Rejected(rej)) => Written::Done(rejected(&ctx, &rej)),
            Ok(_) => {
                Written::Done(ctx.json(StatusCode::OK, &serde_json::json!({"status": "applied"})))
            }
            Err(e) => write_failed(&ctx, e),
        }
    })
    .await
}

async fn set_policy(State(ctx): Ctx, req: Request) -> Response<Body> {
    write(ctx, req, true, |ctx, body| async move {
        let value: serde_json::Value = match parse_json(&ctx, &body) {
            Ok(v) => v,
            Err(r) => return Written::Done(r),
        };
        let r = match PolicyRequest::from_json(&value) {
            Ok(r) => r,
            Err(e) => return Written::Done(bad(&ctx, e)),
        };
        let update = match r.to_update(|t| (ctx.overlay_defaults)(t)) {
            Ok(u) => u,
            Err(e) => return Written::Done(bad(&ctx, e)),
        };
        match ctx.proposer.write(Command::SetPolicy(update)).await {
            Ok(CommandResponse::Rejected(rej)) => Written::Done(rejected(&ctx, &rej)),
            Ok(_) => {
                let view = PolicyView::from(&ctx.applied.borrow().state.policy);
                Written::Done(ctx.json(StatusCode::OK, &view))
            }
            Err(e) => write_failed(&ctx, e),
        }
    })
    .await
}
