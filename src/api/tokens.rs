//! The token routes: `GET /v1/tokens` (this node's applied tokens, never a
//! secret or hash), `POST /v1/tokens` (the leader generates the secret,
//! writes its hash through Raft and answers the secret once) and
//! `DELETE /v1/tokens/{name}`. All need `admin` (`api::auth`).
//!
//! Token commands are written in log envelope `V5`: while a member has
//! not announced that it reads `V5` (a rolling upgrade), they are refused
//! with 409 `upgrade_in_progress` and nothing is written.

#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{Response, StatusCode};

use super::context::ApiContext;
use super::routes::{bad, parse_json, rejected, write, write_failed, Ctx, Written};
use super::types::{
    codes, CreateTokenRequest, CreatedToken, ErrorBody, RevokedToken, TokenView, TokensView,
};
use crate::model::token::{hash_secret, NewToken};
use crate::model::{Command, CommandResponse};

pub(super) async fn list(State(ctx): Ctx) -> Response<Body> {
    let tokens = ctx.applied.borrow().state.tokens.clone();
    let view = TokensView {
        tokens: tokens.records.values().map(TokenView::from).collect(),
    };
    ctx.json(StatusCode::OK, &view)
}

/// 409 unless every member reads the envelope `command` is written in.
fn check_log_version(ctx: &ApiContext, command: &Command) -> Result<(), Response<Body>> {
    let version = command.log_version();
    let members = ctx.applied.borrow().members().into_iter().collect();
    if ctx.log_versions.all_read(&members, ctx.node_id, version) {
        return Ok(());
    }
    Err(ctx.error(
        StatusCode::CONFLICT,
        ErrorBody::new(
            codes::UPGRADE_IN_PROGRESS,
            format!(
                "token changes need log envelope V{version}, which not every member has \
                 announced yet (a rolling upgrade, or a member not heard from since the \
                 leader started); retry when every member runs this build"
            ),
        ),
    ))
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) async fn create(State(ctx): Ctx, req: Request) -> Response<Body> {
    write(ctx, req, true, |ctx, body| async move {
        let r: CreateTokenRequest = match parse_json(&ctx, &body) {
            Ok(r) => r,
            Err(r) => return Written::Done(r),
        };
        let expires_ms = match r.expiry(wall_ms()) {
            Ok(e) => e,
            Err(e) => return Written::Done(bad(&ctx, e)),
        };
        let secret = crate::security::token::generate();
        let command = Command::CreateToken {
            token: NewToken {
                name: r.name.clone(),
                role: r.role,
                hash: hash_secret(&secret),
                expires_ms,
            },
            initial: false,
        };
        if let Err(resp) = check_log_version(&ctx, &command) {
            return Written::Done(resp);
        }
        match ctx.proposer.write(command).await {
            Ok(CommandResponse::Rejected(rej)) => Written::Done(rejected(&ctx, &rej)),
            Ok(_) => {
                let created = ctx
                    .applied
                    .borrow()
                    .state
                    .tokens
                    .records
                    .get(&r.name)
                    .cloned();
                let Some(record) = created else {
                    return Written::Done(ctx.internal("the token was applied but is not there"));
                };
                tracing::info!(name = %r.name, role = %r.role, "token created");
                Written::Done(ctx.json(
                    StatusCode::CREATED,
                    &CreatedToken {
                        view: TokenView::from(&record),
                        token: secret,
                    },
                ))
            }
            Err(e) => write_failed(&ctx, e),
        }
    })
    .await
}

pub(super) async fn revoke(
    State(ctx): Ctx,
    Path(name): Path<String>,
    req: Request,
) -> Response<Body> {
    write(ctx, req, false, move |ctx, _body| async move {
        let command = Command::RevokeToken { name: name.clone() };
        if let Err(resp) = check_log_version(&ctx, &command) {
            return Written::Done(resp);
        }
        match ctx.proposer.write(command).await {
            Ok(CommandResponse::Rejected(rej)) => Written::Done(rejected(&ctx, &rej)),
            Ok(_) => {
                tracing::info!(name = %name, "token revoked");
                Written::Done(ctx.json(StatusCode::OK, &RevokedToken { revoked: name }))
            }
            Err(e) => write_failed(&ctx, e),
        }
    })
    .await
}
