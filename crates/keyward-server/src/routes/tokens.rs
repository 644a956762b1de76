//! `/api/v1/tokens`: create, look up, list and revoke tokens. Creating and listing need `sudo`
//! on `sys/tokens`; a token may always look up and revoke itself (the `default` policy), and
//! acting on another token needs `sudo` on `sys/tokens`.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{format_duration, format_rfc3339, parse_duration, TokenRecord, TokenRequest};
use keyward_crypto::Token;

use crate::error::{ApiError, ApiResult};
use crate::extract::{json_body, query_of};
use crate::pipeline::Ctx;
use crate::wire::{ListQuery, Revoked, TokenBody, TokenCreateRequest, TokenCreated, TokenInfo, TokenList};

/// The public view of a token record.
pub fn info(r: TokenRecord) -> TokenInfo {
    let login = !r.origin.auth_mount.is_empty();
    TokenInfo {
        accessor: r.accessor,
        display_name: r.display_name,
        policies: r.policies,
        parent_accessor: r.parent_accessor,
        created_time: format_rfc3339(r.created_at),
        expire_time: r.expires_at.map(format_rfc3339),
        ttl: format_duration(r.ttl_secs),
        last_used: r.last_used.map(format_rfc3339),
        revoked: r.revoked,
        allowed_cidrs: r.allowed_cidrs,
        rate_limit: r.rate_limit,
        kind: r.kind.as_str().to_owned(),
        explicit_max_ttl: (r.explicit_max_ttl_secs > 0).then(|| format_duration(r.explicit_max_ttl_secs)),
        period: (r.period_secs > 0).then(|| format_duration(r.period_secs)),
        num_uses: r.uses_left,
        renewable: r.renewable && r.expires_at.is_some(),
        meta: if login { Default::default() } else { r.meta.clone() },
        login: login.then_some(keyward_api::wire::TokenLogin {
            auth_mount: r.origin.auth_mount,
            role: r.origin.role,
            secret_id_accessor: r.origin.secret_id_accessor,
            meta: r.meta,
        }),
    }
}

fn parse_token(text: &str) -> ApiResult<Token> {
    Token::parse(text.trim()).ok_or_else(|| ApiError::bad_request("that is not a keyward token (kw_ + 43 characters)"))
}

/// Create a token under the caller (needs `sudo` on `sys/tokens`).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreateRequest,
    responses((status = 201, body = TokenCreated), (status = 403, body = keyward_api::ErrorBody)))]
pub async fn create(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: TokenCreateRequest = json_body(req).await?;
    let caller = ctx.caller()?;
    let ttl_secs = req.ttl.as_deref().map(parse_duration).transpose()?;
    let seconds = |d: Option<&str>| d.map(parse_duration).transpose().map(|d| d.filter(|s| *s > 0));
    let request = TokenRequest {
        policies: req.policies,
        ttl_secs,
        display_name: req.display_name,
        allowed_cidrs: req.allowed_cidrs,
        no_parent: req.no_parent,
        no_default_policy: req.no_default_policy,
        rate_limit: req.rate_limit,
        explicit_max_ttl_secs: seconds(req.explicit_max_ttl.as_deref())?,
        period_secs: seconds(req.period.as_deref())?,
        num_uses: Some(req.num_uses),
        renewable: req.renewable,
        meta: req.meta,
        role: None,
        kind: keyward_core::TokenKind::Service,
    };
    let new = ctx.change(|e| ctx.st.kw.create_token(&caller.inner, request, e)).await?;
    tracing::info!(accessor = %caller.accessor(), new_accessor = %new.record.accessor, policies = ?new.record.policies, "token created");
    let created = TokenCreated { token: new.token.expose().to_owned(), info: info(new.record) };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// List tokens (accessors and records, never token values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(ListQuery), responses((status = 200, body = TokenList)))]
pub async fn list(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: ListQuery = query_of(&req)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut rows = ctx.st.kw.list_tokens(q.after.as_deref(), limit + 1).await?;
    let next = (rows.len() > limit as usize).then(|| rows[limit as usize - 1].accessor.clone());
    rows.truncate(limit as usize);
    Ok(Json(TokenList { tokens: rows.into_iter().map(info).collect(), next }).into_response())
}

/// The caller's own token.
#[utoipa::path(get, path = "/api/v1/tokens/self", tag = "tokens", responses((status = 200, body = TokenInfo)))]
pub async fn lookup_self(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    ctx.audit.locate("", caller.accessor());
    Ok(Json(info(caller.inner.token.clone())).into_response())
}

/// Revoke the caller's own token (and its descendants).
#[utoipa::path(post, path = "/api/v1/tokens/self/revoke", tag = "tokens", responses((status = 200, body = Revoked)))]
pub async fn revoke_self(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    ctx.audit.locate("", caller.accessor());
    let revoked = ctx.change(|e| ctx.st.kw.revoke_accessor(caller.accessor(), e)).await?;
    tracing::info!(accessor = %caller.accessor(), revoked, "token revoked itself");
    Ok(Json(Revoked { revoked }).into_response())
}

/// Look up a token given in the body (its own holder, or `sudo` on `sys/tokens`).
#[utoipa::path(post, path = "/api/v1/tokens/lookup", tag = "tokens", request_body = TokenBody, responses((status = 200, body = TokenInfo)))]
pub async fn lookup(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let body: TokenBody = json_body(req).await?;
    let record = ctx.st.kw.lookup_token(&parse_token(&body.token)?).await;
    // An unknown token is only told to a caller who may look up any.
    ctx.authorize_token(record.as_ref().map_or("", |r| r.accessor.as_str()))?;
    Ok(Json(info(record?)).into_response())
}

/// Revoke a token given in the body, with its descendants.
#[utoipa::path(post, path = "/api/v1/tokens/revoke", tag = "tokens", request_body = TokenBody, responses((status = 200, body = Revoked)))]
pub async fn revoke(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let body: TokenBody = json_body(req).await?;
    let caller = ctx.caller()?;
    let record = ctx.st.kw.lookup_token(&parse_token(&body.token)?).await;
    ctx.authorize_token(record.as_ref().map_or("", |r| r.accessor.as_str()))?;
    let accessor = record?.accessor;
    ctx.audit.locate("", &accessor);
    let revoked = ctx.change(|e| ctx.st.kw.revoke_accessor(&accessor, e)).await?;
    tracing::info!(accessor = %caller.accessor(), revoked_accessor = %accessor, revoked, "token revoked");
    Ok(Json(Revoked { revoked }).into_response())
}

/// Look up a token by accessor.
#[utoipa::path(get, path = "/api/v1/tokens/accessors/{accessor}", tag = "tokens",
    params(("accessor" = String, Path)), responses((status = 200, body = TokenInfo)))]
pub async fn lookup_accessor(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    ctx.authorize_token(ctx.param("accessor"))?;
    Ok(Json(info(ctx.st.kw.lookup_accessor(ctx.param("accessor")).await?)).into_response())
}

/// Revoke a token by accessor, with its descendants.
#[utoipa::path(delete, path = "/api/v1/tokens/accessors/{accessor}", tag = "tokens",
    params(("accessor" = String, Path)), responses((status = 200, body = Revoked)))]
pub async fn revoke_accessor(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let accessor = ctx.param("accessor").to_owned();
    ctx.authorize_token(&accessor)?;
    let revoked = ctx.change(|e| ctx.st.kw.revoke_accessor(&accessor, e)).await?;
    tracing::info!(accessor = %caller.accessor(), revoked_accessor = %accessor, revoked, "token revoked");
    Ok(Json(Revoked { revoked }).into_response())
}
