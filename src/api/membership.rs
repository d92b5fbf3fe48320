//! Membership changes through the API: join (a learner, refused under
//! another node's UUID, not blocking later changes while it catches up),
//! promote and remove, one at a time under the context's membership lock,
//! each bounded by the request's deadline; openraft's errors mapped to
//! their own codes.

// Handlers bail out early with a ready `Response` as the error value.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{Response, StatusCode};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;

use super::context::ApiContext;
use super::routes::{bad, parse_id, parse_json, write, Ctx, Written};
use super::types::*;
use crate::control::types::NodeAddr;
use crate::model::NodeId;

/// Answer to a membership change.
async fn membership_result(
    ctx: &ApiContext,
    result: Result<
        openraft::raft::ClientWriteResponse<crate::control::types::TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>,
    >,
) -> Written {
    match result {
        Ok(_) => Written::Done(ctx.json(
            StatusCode::OK,
            &MembersView::from(ctx.metrics().membership_config.membership()),
        )),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Written::NotLeader,
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            let (status, code) = match &e {
                ChangeMembershipError::InProgress(_) => {
                    (StatusCode::CONFLICT, codes::MEMBERSHIP_IN_PROGRESS)
                }
                ChangeMembershipError::LearnerNotFound(_) => {
                    (StatusCode::NOT_FOUND, codes::LEARNER_NOT_FOUND)
                }
                ChangeMembershipError::EmptyMembership(_) => {
                    (StatusCode::CONFLICT, codes::EMPTY_MEMBERSHIP)
                }
            };
            Written::Done(ctx.error(status, ErrorBody::new(code, e.to_string())))
        }
        Err(RaftError::Fatal(e)) => Written::Done(ctx.no_leader(codes::INTERNAL, e.to_string())),
    }
}

/// Waits (bounded) until the committed membership equals the effective one:
/// openraft refuses a change while another is in progress.
async fn membership_settled(ctx: &ApiContext) {
    let mut rx = ctx.raft.metrics();
    let settled = async {
        loop {
            let done = {
                let m = rx.borrow_and_update();
                m.membership_config.membership().get_joint_config().len() == 1
                    && m.last_applied.map(|l| l.index)
                        >= m.membership_config.log_id().map(|l| l.index)
            };
            if done || rx.changed().await.is_err() {
                return;
            }
        }
    };
    let _elapsed = tokio::time::timeout(std::time::Duration::from_secs(5), settled).await;
}

pub(super) async fn join(State(ctx): Ctx, req: Request) -> Response<Body> {
    write(ctx, req, true, |ctx, body| async move {
        let r: JoinRequest = match parse_json(&ctx, &body) {
            Ok(r) => r,
            Err(r) => return Written::Done(r),
        };
        let addr = match r.to_node_addr() {
            Ok(a) => a,
            Err(e) => return Written::Done(bad(&ctx, e)),
        };
        let guard = ctx.membership_lock.lock().await;
        membership_settled(&ctx).await;
        if let Some(refused) = known_under_another_uuid(&ctx, r.id, &r.node_uuid) {
            return Written::Done(refused);
        }
        // Not blocking: openraft answers once the membership entry is
        // committed, not when the learner has caught up (which never
        // happens for an unreachable Raft address). The catch-up is waited
        // for below, without the lock, so it holds up no other change.
        let deadline = ctx.proposer.timeout();
        let result =
            match tokio::time::timeout(deadline, ctx.raft.add_learner(r.id, addr, false)).await {
                Ok(result) => result,
                Err(_) => return Written::Done(membership_timeout(&ctx, deadline)),
            };
        drop(guard);
        let Ok(added) = result else {
            return membership_result(&ctx, result).await;
        };
        if caught_up(&ctx, r.id, added.log_id.index, deadline).await {
            return membership_result(&ctx, Ok(added)).await;
        }
        Written::Done(ctx.json(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "status": "catching_up",
                "message": format!(
                    "node {} was added as a learner and has not caught up within {} ms",
                    r.id,
                    deadline.as_millis()
                ),
                "members": MembersView::from(ctx.metrics().membership_config.membership()),
            }),
        ))
    })
    .await
}

/// 504 for a membership change that did not finish within `deadline` (it
/// may still take effect).
fn membership_timeout(ctx: &ApiContext, deadline: std::time::Duration) -> Response<Body> {
    ctx.error(
        StatusCode::GATEWAY_TIMEOUT,
        ErrorBody::new(
            codes::TIMEOUT,
            format!(
                "the membership change did not finish within {} ms; it may still take effect",
                deadline.as_millis()
            ),
        ),
    )
}

/// The 409 answer when the membership lists node `id` under a UUID other
/// than `uuid`, whatever its role: a voter whose disk was wiped must not
/// rejoin with an empty log (it could vote without the entries it helped
/// commit), and a learner entry of another data dir must be removed first.
/// An entry without a UUID (an initial voter that did not answer at
/// bootstrap) cannot be checked.
fn known_under_another_uuid(ctx: &ApiContext, id: NodeId, uuid: &str) -> Option<Response<Body>> {
    let m = ctx.metrics();
    let known = m.membership_config.membership().get_node(&id)?;
    if known.node_uuid.is_empty() {
        tracing::warn!(
            node = id,
            "join of a member whose UUID is unknown: not checked"
        );
        return None;
    }
    if known.node_uuid == uuid {
        return None;
    }
    Some(ctx.error(
        StatusCode::CONFLICT,
        ErrorBody::new(
            codes::NODE_UUID_MISMATCH,
            format!(
                "node {id} is a member under UUID {}, but the join comes from UUID {uuid}: its \
                 data dir was wiped or another node took its id. Remove node {id} \
                 (`topoctl remove {id}`) before it joins again",
                known.node_uuid
            ),
        ),
    ))
}

/// Waits up to `deadline` until the leader has replicated up to `index`
/// to `id`.
async fn caught_up(
    ctx: &ApiContext,
    id: NodeId,
    index: u64,
    deadline: std::time::Duration,
) -> bool {
    let mut rx = ctx.raft.metrics();
    let wait = async {
        loop {
            let matched = rx
                .borrow_and_update()
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).copied().flatten())
                .map(|l| l.index);
            if matched >= Some(index) {
                return true;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    };
    tokio::time::timeout(deadline, wait).await.unwrap_or(false)
}

pub(super) async fn promote(
    State(ctx): Ctx,
    Path(id): Path<String>,
    req: Request,
) -> Response<Body> {
    let id = match parse_id(&ctx, &id, "node id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    write(ctx, req, false, move |ctx, _| async move {
        let _guard = ctx.membership_lock.lock().await;
        change_members(&ctx, ChangeMembers::AddVoterIds(BTreeSet::from([id]))).await
    })
    .await
}

/// One membership change, once the previous one has settled. The caller
/// holds `membership_lock`.
async fn change_members(ctx: &ApiContext, change: ChangeMembers<NodeId, NodeAddr>) -> Written {
    membership_settled(ctx).await;
    let deadline = ctx.proposer.timeout();
    match tokio::time::timeout(deadline, ctx.raft.change_membership(change, false)).await {
        Ok(result) => membership_result(ctx, result).await,
        Err(_) => Written::Done(membership_timeout(ctx, deadline)),
    }
}

pub(super) async fn remove(
    State(ctx): Ctx,
    Path(id): Path<String>,
    req: Request,
) -> Response<Body> {
    let id = match parse_id(&ctx, &id, "node id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    write(ctx, req, false, move |ctx, _| async move {
        let _guard = ctx.membership_lock.lock().await;
        membership_settled(&ctx).await;
        let is_voter = ctx
            .metrics()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id);
        if is_voter {
            let w = change_members(&ctx, ChangeMembers::RemoveVoters(BTreeSet::from([id]))).await;
            if !matches!(&w, Written::Done(r) if r.status() == StatusCode::OK) {
                return w;
            }
        }
        change_members(&ctx, ChangeMembers::RemoveNodes(BTreeSet::from([id]))).await
    })
    .await
}
