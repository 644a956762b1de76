//! `/api/v1/tokens`: create, look up, list and revoke tokens.
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use keyward_core::{format_duration, format_rfc3339, parse_duration, Capability, TokenRecord, TokenRequest};
use keyward_crypto::Token;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::wire::{ListQuery, Revoked, TokenBody, TokenCreateRequest, TokenCreated, TokenInfo, TokenList};

const SYS_TOKENS: &str = "sys/tokens";

/// The public view of a token record.
pub fn info(r: TokenRecord) -> TokenInfo {
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
    }
}

fn parse_token(text: &str) -> ApiResult<Token> {
    Token::parse(text.trim()).ok_or_else(|| ApiError::bad_request("that is not a keyward token (kw_ + 43 characters)"))
}

fn require_default(caller: &Caller) -> ApiResult<()> {
    if caller.inner.acl.has_default() {
        Ok(())
    } else {
        Err(ApiError::forbidden("default", "sys/tokens/self"))
    }
}

/// Create a token under the caller (needs `sudo` on `sys/tokens`).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenCreateRequest,
    responses((status = 201, body = TokenCreated), (status = 403, body = crate::wire::ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TokenCreateRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    caller.audit.note("tokens.create", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_TOKENS)?;
    let ttl_secs = req.ttl.as_deref().map(parse_duration).transpose()?;
    let request = TokenRequest {
        policies: req.policies,
        ttl_secs,
        display_name: req.display_name,
        allowed_cidrs: req.allowed_cidrs,
        no_parent: req.no_parent,
        no_default_policy: req.no_default_policy,
        rate_limit: req.rate_limit,
    };
    let new = caller.audit.committed(|e| st.kw.create_token(&caller.inner, request, e)).await?;
    tracing::info!(accessor = %caller.accessor(), new_accessor = %new.record.accessor, policies = ?new.record.policies, "token created");
    Ok((StatusCode::CREATED, Json(TokenCreated { token: new.token.expose().to_owned(), info: info(new.record) })))
}

/// List tokens (accessors and records, never token values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(ListQuery), responses((status = 200, body = TokenList)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<TokenList>> {
    caller.audit.note("tokens.list", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_TOKENS)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut rows = st.kw.list_tokens(q.after.as_deref(), limit + 1).await?;
    let next = (rows.len() > limit as usize).then(|| rows[limit as usize - 1].accessor.clone());
    rows.truncate(limit as usize);
    Ok(Json(TokenList { tokens: rows.into_iter().map(info).collect(), next }))
}

/// The caller's own token.
#[utoipa::path(get, path = "/api/v1/tokens/self", tag = "tokens", responses((status = 200, body = TokenInfo)))]
pub async fn lookup_self(caller: Caller) -> ApiResult<Json<TokenInfo>> {
    caller.audit.note("tokens.lookup-self", "", caller.accessor(), vec![]);
    require_default(&caller)?;
    Ok(Json(info(caller.inner.token)))
}

/// Revoke the caller's own token (and its descendants).
#[utoipa::path(post, path = "/api/v1/tokens/self/revoke", tag = "tokens", responses((status = 200, body = Revoked)))]
pub async fn revoke_self(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Revoked>> {
    caller.audit.note("tokens.revoke-self", "", caller.accessor(), vec![]);
    require_default(&caller)?;
    let revoked = caller.audit.committed(|e| st.kw.revoke_accessor(caller.accessor(), e)).await?;
    tracing::info!(accessor = %caller.accessor(), revoked, "token revoked itself");
    Ok(Json(Revoked { revoked }))
}

/// Look up a token given in the body (its own holder, or `sudo` on `sys/tokens`).
#[utoipa::path(post, path = "/api/v1/tokens/lookup", tag = "tokens", request_body = TokenBody, responses((status = 200, body = TokenInfo)))]
pub async fn lookup(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<Json<TokenInfo>> {
    caller.audit.note("tokens.lookup", "", "", vec![]);
    let record = st.kw.lookup_token(&parse_token(&body.token)?).await;
    let own = record.as_ref().is_ok_and(|r| r.accessor == caller.accessor());
    if !own {
        caller.require(Capability::Sudo, SYS_TOKENS)?;
    }
    Ok(Json(info(record?)))
}

/// Revoke a token given in the body, with its descendants.
#[utoipa::path(post, path = "/api/v1/tokens/revoke", tag = "tokens", request_body = TokenBody, responses((status = 200, body = Revoked)))]
pub async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<Json<Revoked>> {
    caller.audit.note("tokens.revoke", "", "", vec![]);
    let record = st.kw.lookup_token(&parse_token(&body.token)?).await;
    if !record.as_ref().is_ok_and(|r| r.accessor == caller.accessor()) {
        caller.require(Capability::Sudo, SYS_TOKENS)?;
    }
    let accessor = record?.accessor;
    caller.audit.note("tokens.revoke", "", &accessor, vec![]);
    let revoked = caller.audit.committed(|e| st.kw.revoke_accessor(&accessor, e)).await?;
    tracing::info!(accessor = %caller.accessor(), revoked_accessor = %accessor, revoked, "token revoked");
    Ok(Json(Revoked { revoked }))
}

/// Look up a token by accessor.
#[utoipa::path(get, path = "/api/v1/tokens/accessors/{accessor}", tag = "tokens",
    params(("accessor" = String, Path)), responses((status = 200, body = TokenInfo)))]
pub async fn lookup_accessor(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(accessor): ApiPath<String>,
) -> ApiResult<Json<TokenInfo>> {
    caller.audit.note("tokens.lookup-accessor", "", &accessor, vec![]);
    if accessor != caller.accessor() {
        caller.require(Capability::Sudo, SYS_TOKENS)?;
    }
    Ok(Json(info(st.kw.lookup_accessor(&accessor).await?)))
}

/// Revoke a token by accessor, with its descendants.
#[utoipa::path(delete, path = "/api/v1/tokens/accessors/{accessor}", tag = "tokens",
    params(("accessor" = String, Path)), responses((status = 200, body = Revoked)))]
pub async fn revoke_accessor(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(accessor): ApiPath<String>,
) -> ApiResult<Json<Revoked>> {
    caller.audit.note("tokens.revoke", "", &accessor, vec![]);
    if accessor != caller.accessor() {
        caller.require(Capability::Sudo, SYS_TOKENS)?;
    }
    let revoked = caller.audit.committed(|e| st.kw.revoke_accessor(&accessor, e)).await?;
    tracing::info!(accessor = %caller.accessor(), revoked_accessor = %accessor, revoked, "token revoked");
    Ok(Json(Revoked { revoked }))
}
