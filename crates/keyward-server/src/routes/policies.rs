//! `/api/v1/policies`: named path policies (`sudo` on `sys/policies`).
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::parse_policy_document;

use crate::error::{ApiError, ApiResult};
use crate::extract::json_body;
use crate::outward;
use crate::pipeline::Ctx;
use crate::wire::{PolicyList, PolicyOut, PolicyWriteRequest};

/// Every policy name, built-ins first.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", responses((status = 200, body = PolicyList)))]
pub async fn list(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    Ok(Json(PolicyList { policies: ctx.st.kw.list_policies().await? }).into_response())
}

/// A policy's rules.
#[utoipa::path(get, path = "/api/v1/policies/{name}", tag = "policies", params(("name" = String, Path)),
    responses((status = 200, body = PolicyOut), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn read(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let p = ctx.st.kw.read_policy(ctx.param("name")).await?;
    Ok(Json(PolicyOut { name: p.name, rules: outward::rules_out(&p.rules) }).into_response())
}

/// Create or replace a policy (`rules`, or a TOML/JSON `document`).
#[utoipa::path(put, path = "/api/v1/policies/{name}", tag = "policies", params(("name" = String, Path)), request_body = PolicyWriteRequest,
    responses((status = 200, body = PolicyOut), (status = 400, body = keyward_api::ErrorBody)))]
pub async fn write(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: PolicyWriteRequest = json_body(req).await?;
    let name = ctx.param("name").to_owned();
    let rules = match (req.rules, req.document) {
        (Some(r), None) => outward::rules_in(r)?,
        (None, Some(doc)) => parse_policy_document(&doc)?,
        _ => return Err(ApiError::bad_request("give either `rules` or `document`")),
    };
    ctx.change(|e| ctx.st.kw.write_policy(&name, rules.clone(), e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), policy = %name, "policy written");
    Ok(Json(PolicyOut { name, rules: outward::rules_out(&rules) }).into_response())
}

/// Delete a policy; tokens holding it lose what it granted at once.
#[utoipa::path(delete, path = "/api/v1/policies/{name}", tag = "policies", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn delete(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let name = ctx.param("name").to_owned();
    ctx.change(|e| ctx.st.kw.delete_policy(&name, e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), policy = %name, "policy deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
