//! `GET /v1/monitor` and the `metrics` of `GET /v1/topology`: the leader's
//! last monitor round. The monitor runs only on the leader, so a follower
//! asks the leader (one hop, marked like a forwarded write).

#![allow(clippy::result_large_err)]

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;

use super::context::ApiContext;
use super::routes::Ctx;
use super::types::{codes, MonitorView, FORWARDED_HEADER};
use crate::model::ClusterMetrics;

/// Deadline of a follower's `GET /v1/monitor` to the leader.
pub const MONITOR_FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Deadline of a follower's fetch of the metrics for `GET /v1/topology`
/// (short: the topology is answered without them when it passes).
pub const METRICS_FETCH_TIMEOUT: Duration = Duration::from_millis(500);

/// The leader's base URL, or the 503 answer (with the hint) when this
/// node cannot ask it.
fn leader_addr(ctx: &ApiContext) -> Result<String, Response<Body>> {
    match ctx.leader_target().filter(|(id, _)| *id != ctx.node_id) {
        Some((_, Some(addr))) => Ok(addr),
        Some((leader, None)) => Err(ctx.no_leader(
            codes::NO_LEADER,
            format!("leader {leader} has no known address"),
        )),
        None => Err(ctx.no_leader(codes::NO_LEADER, "no leader is known; retry shortly")),
    }
}

/// `GET /v1/monitor`.
pub(super) async fn monitor(State(ctx): Ctx, req: Request) -> Response<Body> {
    if ctx.proposer.is_leader() {
        return ctx.json(
            StatusCode::OK,
            &MonitorView {
                round: ctx.monitor.last(),
            },
        );
    }
    if req.headers().contains_key(FORWARDED_HEADER) {
        return ctx.no_leader(
            codes::NOT_LEADER,
            "this node is not the leader and the request was already forwarded once",
        );
    }
    let addr = match leader_addr(&ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let sent = ctx
        .forwarder
        .with_authorization(req.headers().get(axum::http::header::AUTHORIZATION))
        .send(
            &addr,
            Method::GET,
            "/v1/monitor",
            None,
            Bytes::new(),
            MONITOR_FORWARD_TIMEOUT,
            None,
        )
        .await;
    match sent {
        Ok(resp) => ctx.served(resp),
        Err(e) => ctx.no_leader(codes::FORWARD_FAILED, e.to_string()),
    }
}

/// The last round's metrics for `GET /v1/topology`: this node's own
/// monitor while it leads, otherwise the leader's `GET /v1/monitor` within
/// [`METRICS_FETCH_TIMEOUT`]; `None` when there is no round yet or the
/// leader cannot be asked (logged at debug: the topology is still
/// answered).
pub(super) async fn last_metrics(
    ctx: &ApiContext,
    authorization: Option<&axum::http::HeaderValue>,
) -> Option<(ClusterMetrics, crate::model::AppAggregates)> {
    if ctx.proposer.is_leader() {
        return ctx
            .monitor
            .last()
            .map(|r| (r.metrics.clone(), r.app.clone()));
    }
    let addr = leader_addr(ctx).ok()?;
    let fetched = async {
        let resp = ctx
            .forwarder
            .with_authorization(authorization)
            .send(
                &addr,
                Method::GET,
                "/v1/monitor",
                None,
                Bytes::new(),
                METRICS_FETCH_TIMEOUT,
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("leader answered {}", resp.status()));
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let view: MonitorView =
            serde_json::from_slice(&body).map_err(|e| format!("bad monitor view: {e}"))?;
        Ok::<_, String>(view.round.map(|r| (r.metrics.clone(), r.app.clone())))
    };
    match fetched.await {
        Ok(m) => m,
        Err(error) => {
            tracing::debug!(%error, leader = %addr, "no metrics for GET /v1/topology");
            None
        }
    }
}
