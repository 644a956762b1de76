//! Response wrapping on the Vault API: `X-Vault-Wrap-TTL` on any request answers `wrap_info`
//! (a one-time wrapping token) instead of the response, which is sealed and stored by the core;
//! `sys/wrapping/unwrap` (once), `lookup` (without consuming), `rewrap` and `wrap`.
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{format_rfc3339, WrapInfo};
use keyward_crypto::Token;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{envelope, VaultReq};
use crate::app::{AppState, MAX_BODY};
use crate::audit::AuditCtx;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

/// The TTL a request asks its response to be wrapped for (`X-Vault-Wrap-TTL`: seconds or a
/// duration like `5m`), checked against the server's maximum.
pub(crate) fn requested_ttl(parts: &Parts, st: &AppState) -> ApiResult<Option<u64>> {
    let Some(v) = parts.headers.get("x-vault-wrap-ttl") else { return Ok(None) };
    let bad = || ApiError::bad_request("X-Vault-Wrap-TTL must be a duration (e.g. 300 or 5m)");
    let text = v.to_str().map_err(|_| bad())?.trim();
    let secs = match text.bytes().all(|b| b.is_ascii_digit()) {
        true => text.parse::<u64>().map_err(|_| bad())?,
        false => keyward_core::parse_duration(text).map_err(|_| bad())?,
    };
    let max = st.kw.config().max_wrap_ttl_secs;
    if secs == 0 || secs > max {
        return Err(ApiError::bad_request(format!(
            "X-Vault-Wrap-TTL must be between 1s and the server's --max-wrap-ttl of {}",
            keyward_core::format_duration(max)
        )));
    }
    Ok(Some(secs))
}

/// Vault's `wrap_info` envelope.
fn wrap_envelope(request_id: &str, info: &WrapInfo) -> Response {
    Json(json!({
        "request_id": request_id, "lease_id": "", "renewable": false, "lease_duration": 0, "data": null,
        "wrap_info": {
            "token": info.token.expose(),
            "accessor": info.accessor,
            "ttl": info.ttl_secs,
            "creation_time": format_rfc3339(info.created_at),
            "creation_path": info.creation_path,
            "wrapped_accessor": "",
        },
        "warnings": null, "auth": null,
    }))
    .into_response()
}

/// Wraps a handler's answer: a 200 is sealed and stored, and `wrap_info` goes back instead
/// (anything else — an error, a 204 — goes back as it is).
pub(crate) async fn wrap_response(
    st: &AppState,
    audit: &AuditCtx,
    resp: Response,
    creation_path: &str,
    mount: &str,
    ttl: u64,
) -> ApiResult<Response> {
    if resp.status() != StatusCode::OK {
        return Ok(resp);
    }
    let body = axum::body::to_bytes(resp.into_body(), MAX_BODY * 16)
        .await
        .map_err(|_| ApiError::bad_request("the response is too large to wrap"))?;
    let body = Zeroizing::new(body.to_vec());
    let request_id: String = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["request_id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let entry = audit.entry_now("sys.wrapping.wrap", 200);
    let mount = (!mount.is_empty()).then_some(mount);
    let info = st.kw.wrap(creation_path, mount, body, ttl, entry).await?;
    audit.detail("wrapping_accessor", info.accessor.clone());
    tracing::info!(wrapping_accessor = %info.accessor, creation_path = %creation_path, ttl, "response wrapped");
    Ok(wrap_envelope(&request_id, &info))
}

/// The wrapping token a request names: `token` in the body, else the presented one.
fn wrapping_token(ctx: &Ctx, req: &VaultReq) -> ApiResult<Token> {
    let invalid = || ApiError::bad_request("wrapping token is not valid or does not exist");
    match req.str("token")?.filter(|t| !t.trim().is_empty()) {
        Some(t) => Token::parse(t.trim()).ok_or_else(invalid),
        None => {
            let caller = ctx.caller()?;
            if caller.inner.token.kind != keyward_core::TokenKind::Wrapping {
                return Err(ApiError::bad_request(
                    "give the wrapping token as \"token\", or present it as the client token",
                ));
            }
            req.presented.as_ref().and_then(|t| Token::parse(t.expose())).ok_or_else(invalid)
        }
    }
}

/// `POST sys/wrapping/unwrap`: the wrapped response, as it was answered; once.
pub(crate) async fn unwrap(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let token = wrapping_token(&ctx, &req)?;
    let body = ctx.change(|e| ctx.st.kw.unwrap_response(&token, e)).await?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("the wrapped response is not JSON"))?;
    Ok(Json(value).into_response())
}

/// `sys/wrapping/lookup`: what a wrapping token holds, without consuming it.
pub(crate) async fn lookup(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let token = wrapping_token(&ctx, &req)?;
    let l = ctx.st.kw.wrap_lookup(&token).await?;
    let data = json!({
        "creation_path": l.creation_path,
        "creation_time": format_rfc3339(l.created_at),
        "creation_ttl": l.ttl_secs,
    });
    Ok(envelope(&req, data, vec![]))
}

/// `POST sys/wrapping/rewrap`: the same response under a new wrapping token; the old one dies.
pub(crate) async fn rewrap(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let token = wrapping_token(&ctx, &req)?;
    let info = ctx.change(|e| ctx.st.kw.rewrap_response(&token, e)).await?;
    Ok(wrap_envelope(&req.request_id, &info))
}

/// `POST sys/wrapping/wrap`: the body, answered as data (the pipeline wraps it).
pub(crate) async fn wrap(_ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    Ok(envelope(&req, Value::Object(req.body.clone()), vec![]))
}
