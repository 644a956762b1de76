//! Key lifecycle (`sudo` on `sys/keys`): status, data-key rotation, rewrap, prune.
use axum::extract::State;
use axum::Json;
use keyward_core::{Capability, KeyStatus};

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::wire::{DekRotated, Pruned, Rewrapped};

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
    let version = st.kw.rotate_dek(&mount).await?;
    caller.audit.detail("dek_version", version);
    tracing::info!(accessor = %caller.accessor(), mount = %mount, version, "data key rotated");
    Ok(Json(DekRotated { mount, version }))
}

/// Re-wrap every key held under an older master key with the active one.
#[utoipa::path(post, path = "/api/v1/keys/rewrap", tag = "keys", responses((status = 200, body = Rewrapped)))]
pub async fn rewrap(State(st): State<AppState>, caller: Caller) -> ApiResult<Json<Rewrapped>> {
    caller.audit.note("keys.rewrap", "", "", vec![]);
    caller.require(Capability::Sudo, SYS_KEYS)?;
    let rewrapped = st.kw.rewrap().await?;
    caller.audit.detail("rewrapped", rewrapped);
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
    let (deleted, kept) = st.kw.prune_deks(&mount).await?;
    caller.audit.detail("deleted", deleted.clone());
    Ok(Json(Pruned { mount, deleted, kept }))
}
