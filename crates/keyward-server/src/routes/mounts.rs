//! `/api/v1/mounts`: projects (kv) and transit engines.
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use keyward_core::{format_rfc3339, Capability, Mount, MountKind};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::wire::{MountCreateRequest, MountDeleted, MountInfo, MountList};

fn info(m: Mount) -> MountInfo {
    MountInfo {
        path: m.path,
        kind: m.kind.as_str().into(),
        id: m.id.to_string(),
        created_time: format_rfc3339(m.created_at),
    }
}

/// List mounts.
#[utoipa::path(get, path = "/api/v1/mounts", tag = "mounts",
    responses((status = 200, body = MountList), (status = 401, body = crate::wire::ErrorBody)))]
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<MountList>> {
    caller.audit.note("mounts.list", "", "", vec![]);
    let all = caller.can(Capability::Sudo, "sys/mounts");
    let mounts = st
        .kw
        .list_mounts()
        .await?
        .into_iter()
        .filter(|m| all || caller.inner.acl.touches_mount(&m.path))
        .map(info)
        .collect();
    Ok(Json(MountList { mounts }))
}

/// Create a mount (a kv project gets its first data key).
#[utoipa::path(post, path = "/api/v1/mounts", tag = "mounts", request_body = MountCreateRequest,
    responses((status = 201, body = MountInfo), (status = 400, body = crate::wire::ErrorBody), (status = 409, body = crate::wire::ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<MountCreateRequest>,
) -> ApiResult<(StatusCode, Json<MountInfo>)> {
    caller.audit.note("mounts.create", &req.path, "", vec![]);
    caller.require(Capability::Sudo, "sys/mounts")?;
    let kind = MountKind::parse(&req.kind)?;
    let rotate_after = req.rotate_after.as_deref().map(keyward_core::parse_duration).transpose()?;
    let m = caller.audit.committed(|e| st.kw.create_mount(&req.path, kind, rotate_after, e)).await?;
    tracing::info!(mount = %m.path, kind = m.kind.as_str(), "mount created");
    Ok((StatusCode::CREATED, Json(info(m))))
}

/// Delete a mount: its secrets and wrapped data keys go in one transaction (crypto-shred).
#[utoipa::path(delete, path = "/api/v1/mounts/{mount}", tag = "mounts",
    params(("mount" = String, Path, description = "Mount name")),
    responses((status = 200, body = MountDeleted), (status = 404, body = crate::wire::ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(mount): ApiPath<String>,
) -> ApiResult<Json<MountDeleted>> {
    caller.audit.note("mounts.delete", &mount, "", vec![]);
    caller.require(Capability::Sudo, "sys/mounts")?;
    let keys_shredded = caller.audit.committed(|e| st.kw.delete_mount(&mount, e)).await?;
    tracing::info!(mount = %mount, keys_shredded, "mount deleted (crypto-shredded)");
    Ok(Json(MountDeleted { path: mount, keys_shredded }))
}
