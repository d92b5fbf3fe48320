//! `POST /v1/topology/optimize`: looks the workload profile up (user or
//! built-in), picks its range for the current member count
//! ([`plan_optimize`]) and proposes that switch with reason
//! `Workload { profile }`, unless it is already current. Forwarded to the
//! leader like every write.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};

use super::context::ApiContext;
use super::routes::{
    bad, parse_json, rejected, wait_for_outcome, write, write_failed, Ctx, Written,
};
use super::types::*;
use crate::api::forward::Forwarder;
use crate::model::{
    Command, CommandResponse, OverlayConfig, ProposeSwitch, Rejection, SwitchReason,
};

pub(super) async fn optimize(State(ctx): Ctx, req: Request) -> Response<Body> {
    let asked = Forwarder::origin(req.headers()).unwrap_or(ctx.node_id);
    write(ctx, req, true, move |ctx, body| async move {
        let request: OptimizeRequest = match parse_json(&ctx, &body) {
            Ok(r) => r,
            Err(r) => return Written::Done(r),
        };
        match run(&ctx, &request, asked).await {
            Ok(r) => Written::Done(r),
            Err(w) => w,
        }
    })
    .await
}

fn unknown_workload(
    ctx: &ApiContext,
    e: &crate::rules::profiles::UnknownWorkload,
) -> Response<Body> {
    ctx.error(
        StatusCode::BAD_REQUEST,
        ErrorBody::new(UNKNOWN_WORKLOAD, e.to_string()),
    )
}

/// Plans and proposes; `Err` is a ready error answer, or `NotLeader` when
/// leadership moved (the request is then forwarded).
async fn run(
    ctx: &ApiContext,
    request: &OptimizeRequest,
    asked: crate::model::NodeId,
) -> Result<Response<Body>, Written> {
    let done = Written::Done;
    let timeout = request.check().map_err(|e| done(bad(ctx, e)))?;
    let applied = ctx.applied.borrow().clone();
    let profile = crate::rules::profiles::lookup(&request.workload, &applied.state.policy)
        .map_err(|e| done(unknown_workload(ctx, &e)))?;
    let node_count = applied.members().len() as u32;
    let plan = plan_optimize(
        &request.workload,
        &profile,
        node_count,
        &applied.state,
        |t| (ctx.overlay_defaults)(t),
    )
    .ok_or_else(|| done(ctx.internal(format!("profile `{}` has no ranges", request.workload))))?;
    let answer = |status, transition_id, transition, code| {
        ctx.json(
            code,
            &OptimizeAnswer {
                workload: request.workload.clone(),
                node_count,
                topology: plan.target,
                status,
                transition_id,
                transition,
                why: plan.why.clone(),
            },
        )
    };
    if plan.already_current {
        return Ok(answer(
            OptimizeStatus::AlreadyCurrent,
            None,
            None,
            StatusCode::OK,
        ));
    }
    let mut config = plan.config.clone();
    if let OverlayConfig::ClientServer(cs) = &mut config {
        if cs.servers.is_empty() {
            cs.servers = ctx
                .metrics()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
        }
    }
    let proposal = ProposeSwitch::new(
        plan.target,
        config,
        SwitchReason::Workload {
            profile: request.workload.clone(),
        },
        request.request_id.clone(),
        format!("optimize@node{asked}"),
    );
    let id = match ctx.proposer.write(Command::ProposeSwitch(proposal)).await {
        Ok(CommandResponse::Accepted { id }) => id,
        Ok(CommandResponse::Rejected(Rejection::AlreadyCurrent { .. })) => {
            return Ok(answer(
                OptimizeStatus::AlreadyCurrent,
                None,
                None,
                StatusCode::OK,
            ))
        }
        Ok(CommandResponse::Rejected(r)) => return Err(done(rejected(ctx, &r))),
        Ok(CommandResponse::Applied | CommandResponse::Batch(_)) => {
            return Err(done(ctx.internal("unexpected answer to a proposal")))
        }
        Err(e) => return Err(write_failed(ctx, e)),
    };
    if !request.waits() {
        let status = TransitionView::lookup(&ctx.applied.borrow().state, id)
            .map_or(TransitionStatus::InProgress, |v| v.status);
        return Ok(answer(status.into(), Some(id), None, StatusCode::ACCEPTED));
    }
    let waited = wait_for_outcome(ctx, id, timeout).await;
    if waited.status() != StatusCode::OK {
        return Err(done(waited));
    }
    let view = TransitionView::lookup(&ctx.applied.borrow().state, id);
    let status = view
        .as_ref()
        .map_or(OptimizeStatus::InProgress, |v| v.status.into());
    Ok(answer(status, Some(id), view, StatusCode::OK))
}
