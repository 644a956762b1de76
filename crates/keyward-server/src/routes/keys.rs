//! Key lifecycle (`sudo` on `sys/keys`): status, data-key rotation, rewrap, prune, re-encryption
//! jobs and the doctor.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::{ApiError, ApiResult};
use crate::extract::{json_body, query_of};
use crate::outward;
use crate::pipeline::Ctx;
use crate::wire::{DekRotated, DoctorQuery, DoctorReport, KeyJob, KeyStatus, MigrateRequest, Pruned, Rewrapped};

/// Master keys and data-key versions, with how many keys and blobs each holds.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, body = KeyStatus)))]
pub async fn status(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    Ok(Json(outward::key_status(ctx.st.kw.key_status().await?)).into_response())
}

/// Add a data-key version to a mount; new writes use it at once.
#[utoipa::path(post, path = "/api/v1/mounts/{mount}/keys/rotate", tag = "keys", params(("mount" = String, Path)),
    responses((status = 200, body = DekRotated)))]
pub async fn rotate(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let mount = ctx.param("mount").to_owned();
    let version = ctx.change(|e| ctx.st.kw.rotate_dek(&mount, e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), mount = %mount, version, "data key rotated");
    Ok(Json(DekRotated { mount, version }).into_response())
}

/// Re-wrap every key held under an older master key with the active one.
#[utoipa::path(post, path = "/api/v1/keys/rewrap", tag = "keys", responses((status = 200, body = Rewrapped)))]
pub async fn rewrap(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let rewrapped = ctx.change(|e| ctx.st.kw.rewrap(e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), rewrapped, "keys rewrapped under the active master key");
    Ok(Json(Rewrapped { rewrapped }).into_response())
}

/// Delete a mount's older data-key versions that no blob uses.
#[utoipa::path(post, path = "/api/v1/mounts/{mount}/keys/prune", tag = "keys", params(("mount" = String, Path)),
    responses((status = 200, body = Pruned)))]
pub async fn prune(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let mount = ctx.param("mount").to_owned();
    let (deleted, kept) = ctx.change(|e| ctx.st.kw.prune_deks(&mount, e)).await?;
    Ok(Json(Pruned { mount, deleted, kept }).into_response())
}

/// Start re-encrypting every stored version under its mount's newest data key.
#[utoipa::path(post, path = "/api/v1/keys/migrate", tag = "keys", request_body = MigrateRequest,
    responses((status = 202, body = KeyJob), (status = 409, description = "a job is already running", body = keyward_api::ErrorBody)))]
pub async fn migrate(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: MigrateRequest = json_body(req).await?;
    ctx.audit.locate(req.mount.as_deref().unwrap_or(""), "");
    let job = ctx.change(|e| ctx.st.kw.start_migration(req.mount.as_deref(), e)).await?;
    Ok((StatusCode::ACCEPTED, Json(outward::key_job(job))).into_response())
}

/// Key jobs, newest first.
#[utoipa::path(get, path = "/api/v1/keys/jobs", tag = "keys", responses((status = 200, body = Vec<KeyJob>)))]
pub async fn jobs(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    Ok(Json(ctx.st.kw.key_jobs().await?.into_iter().map(outward::key_job).collect::<Vec<_>>()).into_response())
}

/// One key job.
#[utoipa::path(get, path = "/api/v1/keys/jobs/{id}", tag = "keys", params(("id" = String, Path)), responses((status = 200, body = KeyJob)))]
pub async fn job(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let id = uuid::Uuid::parse_str(ctx.param("id")).map_err(|_| ApiError::bad_request("invalid job id (a UUID)"))?;
    Ok(Json(outward::key_job(ctx.st.kw.key_job(id).await?)).into_response())
}

/// Check every key and, with `verify_all`, every stored blob.
#[utoipa::path(get, path = "/api/v1/doctor", tag = "keys", params(DoctorQuery), responses((status = 200, body = DoctorReport)))]
pub async fn doctor(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: DoctorQuery = query_of(&req)?;
    let report = ctx.st.kw.doctor(q.verify_all.unwrap_or(false)).await?;
    ctx.audit.detail("checked", report.checked);
    ctx.audit.detail("failures", report.failures.len());
    if !report.ok {
        tracing::error!(target: "security", failures = report.failures.len(), problems = ?report.problems, "doctor found problems");
    }
    Ok(Json(outward::doctor(report)).into_response())
}
