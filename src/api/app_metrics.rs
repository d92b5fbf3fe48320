//! `POST /v1/node/app-metrics`: a local process that does not embed topod
//! reports its application metrics through its node, as a JSON batch:
//!
//! ```json
//! {"gauges": {"app.x": 1.5}, "counters": {"app.y": 3}, "histograms": {"app.z_ms": [12.0, 15.5]}}
//! ```
//!
//! Like the data-plane routes it concerns the node asked: never forwarded,
//! never through Raft. A refused batch (bad name, non-finite or negative
//! sample, a name of another kind, over `app_metrics.max_names`) answers
//! 400 `invalid_app_metrics` with the reason, and nothing of it is
//! recorded. The body is bounded by `api.max_body_bytes`, the samples by
//! [`crate::app_metrics::MAX_BATCH_SAMPLES`].

// Handlers bail out early with a ready `Response` as the error value.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::routes::{parse_json, read_body, Ctx};
use super::types::{codes, ErrorBody};
use crate::app_metrics::Batch;

/// Body of `POST /v1/node/app-metrics`; every section optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppMetricsRequest {
    pub gauges: BTreeMap<String, f64>,
    pub counters: BTreeMap<String, u64>,
    pub histograms: BTreeMap<String, Vec<f64>>,
}

/// Answer of an accepted report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMetricsAccepted {
    /// Names in the report.
    pub recorded: usize,
}

/// `POST /v1/node/app-metrics`.
pub(super) async fn report(State(ctx): Ctx, req: Request) -> Response<Body> {
    let (_, body) = match read_body(&ctx, req, true).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let request: AppMetricsRequest = match parse_json(&ctx, &body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let recorded = request.gauges.len() + request.counters.len() + request.histograms.len();
    let batch = Batch {
        gauges: request.gauges,
        counters: request.counters,
        histograms: request.histograms,
    };
    match ctx.app_metrics.record(&batch) {
        Ok(()) => ctx.json(StatusCode::OK, &AppMetricsAccepted { recorded }),
        Err(e) => ctx.error(
            StatusCode::BAD_REQUEST,
            ErrorBody::new(codes::INVALID_APP_METRICS, e.to_string()),
        ),
    }
}
