//! `/api/v1/mounts`: projects (kv) and transit engines.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{format_rfc3339, Capability, Mount, MountKind};

use crate::error::ApiResult;
use crate::extract::json_body;
use crate::pipeline::Ctx;
use crate::wire::{MountCreateRequest, MountDeleted, MountInfo, MountList};

fn info(m: Mount) -> MountInfo {
    MountInfo {
        path: m.path,
        kind: m.kind.as_str().into(),
        id: m.id.to_string(),
        created_time: format_rfc3339(m.created_at),
    }
}

/// List the mounts the caller may see (every mount with `sudo` on `sys/mounts`).
#[utoipa::path(get, path = "/api/v1/mounts", tag = "mounts",
    responses((status = 200, body = MountList), (status = 401, body = keyward_api::ErrorBody)))]
pub async fn list(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let all = caller.can(Capability::Sudo, "sys/mounts");
    let mounts = ctx
        .st
        .kw
        .list_mounts()
        .await?
        .into_iter()
        .filter(|m| all || caller.inner.acl.touches_mount(&m.path))
        .map(info)
        .collect();
    Ok(Json(MountList { mounts }).into_response())
}

/// Create a mount.
#[utoipa::path(post, path = "/api/v1/mounts", tag = "mounts", request_body = MountCreateRequest,
    responses((status = 201, body = MountInfo), (status = 400, body = keyward_api::ErrorBody), (status = 409, body = keyward_api::ErrorBody)))]
pub async fn create(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: MountCreateRequest = json_body(req).await?;
    ctx.audit.locate(&req.path, "");
    let kind = MountKind::parse(&req.kind)?;
    let rotate_after = req.rotate_after.as_deref().map(keyward_core::parse_duration).transpose()?;
    let m = ctx.change(|e| ctx.st.kw.create_mount(&req.path, kind, rotate_after, e)).await?;
    tracing::info!(mount = %m.path, kind = m.kind.as_str(), "mount created");
    Ok((StatusCode::CREATED, Json(info(m))).into_response())
}

/// Delete a mount and crypto-shred it: its data keys go in the same transaction.
#[utoipa::path(delete, path = "/api/v1/mounts/{mount}", tag = "mounts",
    params(("mount" = String, Path, description = "Mount name")),
    responses((status = 200, body = MountDeleted), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn delete(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let mount = ctx.param("mount").to_owned();
    let keys_shredded = ctx.change(|e| ctx.st.kw.delete_mount(&mount, e)).await?;
    tracing::info!(mount = %mount, keys_shredded, "mount deleted (crypto-shredded)");
    Ok(Json(MountDeleted { path: mount, keys_shredded }).into_response())
}
