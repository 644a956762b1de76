//! `/api/v1/policies`: named path policies (`sudo` on `sys/policies`).
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use keyward_core::{parse_policy_document, Capability};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::wire::{PolicyList, PolicyOut, PolicyWriteRequest};

const SYS_POLICIES: &str = "sys/policies";

/// List policy names.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", responses((status = 200, body = PolicyList)))]
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<PolicyList>> {
    caller.audit.note("policies.list", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_POLICIES)?;
    Ok(Json(PolicyList { policies: st.kw.list_policies().await? }))
}

/// Read a policy.
#[utoipa::path(get, path = "/api/v1/policies/{name}", tag = "policies", params(("name" = String, Path)),
    responses((status = 200, body = PolicyOut), (status = 404, body = crate::wire::ErrorBody)))]
pub async fn read(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<PolicyOut>> {
    caller.audit.note("policies.read", "", &name, vec![]);
    caller.require(Capability::Sudo, SYS_POLICIES)?;
    let p = st.kw.read_policy(&name).await?;
    Ok(Json(PolicyOut { name: p.name, rules: p.rules }))
}

/// Create or replace a policy from rules or a TOML/JSON document.
#[utoipa::path(put, path = "/api/v1/policies/{name}", tag = "policies", params(("name" = String, Path)), request_body = PolicyWriteRequest,
    responses((status = 200, body = PolicyOut), (status = 400, body = crate::wire::ErrorBody)))]
pub async fn write(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<PolicyWriteRequest>,
) -> ApiResult<Json<PolicyOut>> {
    caller.audit.note("policies.write", "", &name, vec![]);
    caller.require(Capability::Sudo, SYS_POLICIES)?;
    let rules = match (req.rules, req.document) {
        (Some(r), None) => r,
        (None, Some(doc)) => parse_policy_document(&doc)?,
        _ => return Err(ApiError::bad_request("give either `rules` or `document`")),
    };
    caller.audit.committed(|e| st.kw.write_policy(&name, rules.clone(), e)).await?;
    tracing::info!(accessor = %caller.accessor(), policy = %name, "policy written");
    Ok(Json(PolicyOut { name, rules }))
}

/// Delete a policy.
#[utoipa::path(delete, path = "/api/v1/policies/{name}", tag = "policies", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::wire::ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.audit.note("policies.delete", "", &name, vec![]);
    caller.require(Capability::Sudo, SYS_POLICIES)?;
    caller.audit.committed(|e| st.kw.delete_policy(&name, e)).await?;
    tracing::info!(accessor = %caller.accessor(), policy = %name, "policy deleted");
    Ok(StatusCode::NO_CONTENT)
}
