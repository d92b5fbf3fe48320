//! This node's data-plane routes: `GET /v1/node/stats`,
//! `GET /v1/node/summary?window_ms=N` and the fault filter (`GET`, `PUT`,
//! `DELETE /v1/node/faults`).
//!
//! They describe or change the node asked, so they are never forwarded and
//! never go through Raft. On a node without a data plane they answer 409
//! `no_data_plane`; fault writes answer 409 `chaos_disabled` unless
//! `transport.chaos` is on, and then nothing changed.

// Handlers bail out early with a ready `Response` as the error value.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};

use super::context::ApiContext;
use super::routes::{bad, parse_json, read_body, Ctx};
use super::types::{
    codes, summary_window, ErrorBody, FaultsRequest, FaultsView, NodeStats,
    DEFAULT_SUMMARY_WINDOW_MS,
};
use crate::executor::{ChannelError, ExecutorHandle};
use crate::transport::TransportError;

/// `GET /v1/node/stats`.
pub(super) async fn stats(State(ctx): Ctx) -> Response<Body> {
    let h = match ctx.dataplane() {
        Ok(h) => h,
        Err(r) => return r,
    };
    let window = Duration::from_millis(DEFAULT_SUMMARY_WINDOW_MS);
    let summary = match h.summary(window).await {
        Ok(s) => s,
        Err(e) => return stopped(&ctx, e),
    };
    let stats = NodeStats::new(&h.status(), &h.transport_stats(), summary);
    ctx.json(StatusCode::OK, &stats)
}

/// `GET /v1/node/summary?window_ms=N` (1..=600000, default 60000).
pub(super) async fn summary(State(ctx): Ctx, req: Request) -> Response<Body> {
    let h = match ctx.dataplane() {
        Ok(h) => h,
        Err(r) => return r,
    };
    let window = match summary_window(req.uri().query()) {
        Ok(w) => w,
        Err(e) => return bad(&ctx, e),
    };
    match h.summary(window).await {
        Ok(mut s) => {
            s.app = ctx.app_metrics.summary(window);
            ctx.json(StatusCode::OK, &s)
        }
        Err(e) => stopped(&ctx, e),
    }
}

/// The executor stopped under a request (the node is shutting down): 500.
fn stopped(ctx: &ApiContext, e: ChannelError) -> Response<Body> {
    ctx.internal(format!("no summary: {e}"))
}

fn faults_view(ctx: &ApiContext, h: &ExecutorHandle) -> FaultsView {
    FaultsView::new(ctx.node_id, h.chaos_enabled(), h.faults().as_ref())
}

/// `GET /v1/node/faults`: the installed rules (answers with chaos off
/// too, showing `chaos_enabled: false` and no rules).
pub(super) async fn faults(State(ctx): Ctx) -> Response<Body> {
    match ctx.dataplane() {
        Ok(h) => ctx.json(StatusCode::OK, &faults_view(&ctx, h)),
        Err(r) => r,
    }
}

/// The answer to a refused fault change; nothing changed.
fn refused(ctx: &ApiContext, e: TransportError) -> Response<Body> {
    match e {
        TransportError::ChaosDisabled => ctx.error(
            StatusCode::CONFLICT,
            ErrorBody::new(codes::CHAOS_DISABLED, e.to_string()),
        ),
        TransportError::InvalidFault(m) => ctx.error(
            StatusCode::BAD_REQUEST,
            ErrorBody::new(codes::BAD_REQUEST, format!("invalid fault rule: {m}")),
        ),
        other => ctx.internal(other.to_string()),
    }
}

/// `PUT /v1/node/faults`: replaces the rule set.
pub(super) async fn set_faults(State(ctx): Ctx, req: Request) -> Response<Body> {
    let h = match ctx.dataplane() {
        Ok(h) => h.clone(),
        Err(r) => return r,
    };
    let (_, body) = match read_body(&ctx, req, true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let request: FaultsRequest = match parse_json(&ctx, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // Chaos mode is checked once the body parses and before the rules are
    // validated: a node that refuses every rule says so, rather than
    // pointing at a value it would refuse anyway.
    if !h.chaos_enabled() {
        return refused(&ctx, TransportError::ChaosDisabled);
    }
    let rules = match request.to_rules(ctx.node_id) {
        Ok(r) => r,
        Err(e) => return bad(&ctx, e),
    };
    match h.set_faults(rules) {
        Ok(()) => {
            tracing::warn!(rules = request.rules.len(), "fault rules installed");
            ctx.json(StatusCode::OK, &faults_view(&ctx, &h))
        }
        Err(e) => refused(&ctx, e),
    }
}

/// `DELETE /v1/node/faults`: removes every rule.
pub(super) async fn clear_faults(State(ctx): Ctx) -> Response<Body> {
    let h = match ctx.dataplane() {
        Ok(h) => h,
        Err(r) => return r,
    };
    match h.clear_faults() {
        Ok(()) => {
            tracing::warn!("fault rules cleared");
            ctx.json(StatusCode::OK, &faults_view(&ctx, h))
        }
        Err(e) => refused(&ctx, e),
    }
}
