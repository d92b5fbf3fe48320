//! `GET /v1/cluster/snapshot`: a backup file of the replicated state, as
//! this node has applied it ([`crate::control::store::Backup`]).
//!
//! Any node answers, from one applied value (a committed prefix of the
//! log at one index), once it is serving: a node that is catching up, has
//! no leader or leads without a quorum answers 503 `not_ready` rather
//! than hand out an old state. The body is bounded by
//! [`MAX_BACKUP_BYTES`]; `x-topod-snapshot-index` and
//! `x-topod-snapshot-term` name the index it was taken at.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Response, StatusCode};

use super::context::ApiContext;
use super::types::ErrorBody;
use crate::control::store::{Backup, MAX_BACKUP_BYTES};

/// Header naming the applied index of the snapshot served.
pub const SNAPSHOT_INDEX_HEADER: &str = "x-topod-snapshot-index";
/// Header naming the term of that index.
pub const SNAPSHOT_TERM_HEADER: &str = "x-topod-snapshot-term";

pub(super) async fn snapshot(State(ctx): State<Arc<ApiContext>>) -> Response<Body> {
    if ctx.is_fatal() {
        return ctx.internal("storage failed; the node is stopping");
    }
    let committed = super::routes::committed_index(&ctx).await.unwrap_or(0);
    if let Err(e) = ctx.serving(committed) {
        return ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new("not_ready", format!("no snapshot from this node now: {e}")),
        );
    }
    let applied = ctx.applied.borrow().clone();
    let Some(last) = applied.last_applied else {
        return ctx.error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorBody::new("not_ready", "nothing applied yet"),
        );
    };
    let taken_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let backup = Backup {
        cluster_id: ctx.cluster_id.clone(),
        node_id: ctx.node_id,
        taken_at_ms,
        applied: (*applied).clone(),
    };
    let bytes = match backup.to_bytes() {
        Ok(b) => b,
        Err(e) => {
            return ctx.internal(format!(
                "snapshot not served (limit {MAX_BACKUP_BYTES} bytes): {e}"
            ))
        }
    };
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(SNAPSHOT_INDEX_HEADER, HeaderValue::from(last.index));
    h.insert(SNAPSHOT_TERM_HEADER, HeaderValue::from(last.leader_id.term));
    ctx.served(resp)
}
