//! The chaos harness's node routes: `POST /v1/node/broadcast` (an
//! application broadcast with an id the harness chose) and
//! `GET /v1/node/deliveries` (this node's deliveries of them, from
//! [`super::deliveries::DeliveryLog`]).
//!
//! Local to the node asked, never forwarded, never through Raft. Served
//! only in chaos mode: otherwise 409 `chaos_disabled`, and nothing was
//! sent; 409 `no_data_plane` on a node without the overlay executor.

// Handlers bail out early with a ready `Response` as the error value.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{Response, StatusCode};
use bytes::Bytes;

use super::context::ApiContext;
use super::deliveries::DeliveryLog;
use super::routes::{bad, parse_json, read_body, Ctx};
use super::types::{
    codes, BroadcastAccepted, BroadcastRequest, DeliveriesQuery, ErrorBody, HarnessMessage,
};
use crate::executor::{ChannelError, ExecutorHandle};

/// Code of a broadcast refused because this node runs no overlay yet.
pub const NO_OVERLAY: &str = "no_overlay";

/// The data plane and the delivery log, or the 409 answer.
fn chaos_parts(ctx: &ApiContext) -> Result<(ExecutorHandle, Arc<DeliveryLog>), Response<Body>> {
    let h = ctx.dataplane()?;
    match (&ctx.deliveries, h.chaos_enabled()) {
        (Some(log), true) => Ok((h.clone(), log.clone())),
        _ => Err(ctx.error(
            StatusCode::CONFLICT,
            ErrorBody::new(
                codes::CHAOS_DISABLED,
                "chaos mode is off (transport.chaos = false): harness broadcasts are refused",
            ),
        )),
    }
}

/// `POST /v1/node/broadcast`: 202 once queued on the current overlay.
pub(super) async fn broadcast(State(ctx): Ctx, req: Request) -> Response<Body> {
    let (h, _) = match chaos_parts(&ctx) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (_, body) = match read_body(&ctx, req, true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let request: BroadcastRequest = match parse_json(&ctx, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(e) = request.validate() {
        return bad(&ctx, e);
    }
    let msg = HarnessMessage {
        id: request.id.clone(),
        payload: request.payload,
    };
    let data = match serde_json::to_vec(&msg) {
        Ok(d) => Bytes::from(d),
        Err(e) => return ctx.internal(format!("encoding the harness message: {e}")),
    };
    match h.broadcast(&request.channel, data).await {
        Ok(()) => ctx.json(
            StatusCode::ACCEPTED,
            &BroadcastAccepted {
                node_id: ctx.node_id,
                id: request.id,
            },
        ),
        Err(e @ ChannelError::NoOverlay) => ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new(NO_OVERLAY, e.to_string()),
        ),
        Err(e) => ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new(codes::INTERNAL, e.to_string()),
        ),
    }
}

/// `GET /v1/node/deliveries?after=&limit=`.
pub(super) async fn deliveries(
    State(ctx): Ctx,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response<Body> {
    let (_, log) = match chaos_parts(&ctx) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                ErrorBody::new(codes::BAD_REQUEST, e.body_text()),
            )
        }
    };
    let limit = match query.effective_limit() {
        Ok(l) => l,
        Err(e) => return bad(&ctx, e),
    };
    ctx.json(StatusCode::OK, &log.page(query.after.unwrap_or(0), limit))
}
