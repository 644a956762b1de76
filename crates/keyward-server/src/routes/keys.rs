//! Key lifecycle (`sudo` on `sys/keys`): status, data-key rotation, rewrap, prune.
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use keyward_core::{Capability, DoctorReport, KeyJob, KeyStatus};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::wire::{DekRotated, DoctorQuery, MigrateRequest, Pruned, Rewrapped};

const SYS_KEYS: &str = "sys/keys";

/// Master keys and data-key versions with how many keys and blobs still use each.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, description = "key status: keks, deks")))]
pub async fn status(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<KeyStatus>> {
    caller.audit.note("keys.status", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    Ok(Json(st.kw.key_status().await?))
}

/// Add a data-key version to a mount; new writes use it at once.
#[utoipa::path(post, path = "/api/v1/mounts/{mount}/keys/rotate", tag = "keys", params(("mount" = String, Path)),
    responses((status = 200, body = DekRotated)))]
pub async fn rotate(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(mount): ApiPath<String>,
) -> ApiResult<Json<DekRotated>> {
    caller.audit.note("keys.rotate", &mount, "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    let version = caller.audit.committed(|e| st.kw.rotate_dek(&mount, e)).await?;
    tracing::info!(accessor = %caller.accessor(), mount = %mount, version, "data key rotated");
    Ok(Json(DekRotated { mount, version }))
}

/// Re-wrap every key held under an older master key with the active one.
#[utoipa::path(post, path = "/api/v1/keys/rewrap", tag = "keys", responses((status = 200, body = Rewrapped)))]
pub async fn rewrap(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Rewrapped>> {
    caller.audit.note("keys.rewrap", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    let rewrapped = caller.audit.committed(|e| st.kw.rewrap(e)).await?;
    tracing::info!(accessor = %caller.accessor(), rewrapped, "keys rewrapped under the active master key");
    Ok(Json(Rewrapped { rewrapped }))
}

/// Delete a mount's older data-key versions that no blob uses.
#[utoipa::path(post, path = "/api/v1/mounts/{mount}/keys/prune", tag = "keys", params(("mount" = String, Path)),
    responses((status = 200, body = Pruned)))]
pub async fn prune(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(mount): ApiPath<String>,
) -> ApiResult<Json<Pruned>> {
    caller.audit.note("keys.prune", &mount, "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    let (deleted, kept) = caller.audit.committed(|e| st.kw.prune_deks(&mount, e)).await?;
    Ok(Json(Pruned { mount, deleted, kept }))
}

/// Start re-encrypting stored versions under the newest data keys, as a resumable job.
#[utoipa::path(post, path = "/api/v1/keys/migrate", tag = "keys", request_body = MigrateRequest,
    responses((status = 202, description = "the job"), (status = 409, description = "a job is already running", body = crate::wire::ErrorBody)))]
pub async fn migrate(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<MigrateRequest>,
) -> ApiResult<(StatusCode, Json<KeyJob>)> {
    caller.audit.note("keys.migrate", req.mount.as_deref().unwrap_or(""), "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    let job = caller.audit.committed(|e| st.kw.start_migration(req.mount.as_deref(), e)).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Key jobs, newest first.
#[utoipa::path(get, path = "/api/v1/keys/jobs", tag = "keys", responses((status = 200, description = "jobs")))]
pub async fn jobs(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<KeyJob>>> {
    caller.audit.note("keys.jobs", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    Ok(Json(st.kw.key_jobs().await?))
}

/// One key job (poll it for progress).
#[utoipa::path(get, path = "/api/v1/keys/jobs/{id}", tag = "keys", params(("id" = String, Path)), responses((status = 200, description = "the job")))]
pub async fn job(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> ApiResult<Json<KeyJob>> {
    caller.audit.note("keys.job", "", &id.to_string(), vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    Ok(Json(st.kw.key_job(id).await?))
}

/// Health checks of the key hierarchy and the audit chain; with `verify_all=true`, decrypts every
/// stored blob and lists failures by mount, path and version.
#[utoipa::path(get, path = "/api/v1/doctor", tag = "keys", params(DoctorQuery), responses((status = 200, description = "the report")))]
pub async fn doctor(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DoctorQuery>,
) -> ApiResult<Json<DoctorReport>> {
    caller.audit.note("doctor", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    let report = st.kw.doctor(q.verify_all.unwrap_or(false)).await?;
    caller.audit.detail("checked", report.checked);
    caller.audit.detail("failures", report.failures.len());
    if !report.ok {
        tracing::error!(target: "security", failures = report.failures.len(), problems = ?report.problems, "doctor found problems");
    }
    Ok(Json(report))
}
