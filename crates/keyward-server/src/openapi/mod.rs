//! The OpenAPI documents: the native API at `/api/v1/openapi.json` and the Vault-compatible API
//! at `/v1/sys/internal/specs/openapi` (Vault's path). Bodies come from the handlers'
//! declarations and the wire types; the operation table then completes every operation
//! (`complete`): its id, path parameters with their schemas, the security it needs and every
//! error status it can answer — so a route cannot be served undocumented.
mod complete;
mod vault;

use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::OpenApi;

use crate::error::ApiResult;
use crate::pipeline::Ctx;
use crate::proxy::routes as proxy;
use crate::routes::{audit, backup, keys, mounts, policies, secrets, tokens};
use crate::vault::VaultReq;
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyward",
        description = "Self-hosted secrets and API-key vault: the native API (/api/v1). \
        The Vault-compatible API (/v1) is described at /v1/sys/internal/specs/openapi."
    ),
    paths(
        mounts::list,
        mounts::create,
        mounts::delete,
        secrets::list,
        secrets::read,
        secrets::write,
        secrets::delete,
        secrets::history,
        secrets::rollback,
        secrets::diff,
        tokens::create,
        tokens::list,
        tokens::lookup_self,
        tokens::revoke_self,
        tokens::lookup,
        tokens::revoke,
        tokens::lookup_accessor,
        tokens::revoke_accessor,
        policies::list,
        policies::read,
        policies::write,
        policies::delete,
        audit::search,
        audit::verify,
        audit::anchor,
        audit::archive,
        backup::backup,
        keys::status,
        keys::rotate,
        keys::rewrap,
        keys::prune,
        keys::migrate,
        keys::jobs,
        keys::job,
        keys::doctor,
        secrets::stale,
        proxy::list,
        proxy::read,
        proxy::put,
        proxy::delete,
        serve_native,
    ),
    components(schemas(
        keyward_api::ErrorBody,
        keyward_api::ErrorDetail,
        keyward_api::ErrorCode,
        wire::MountCreateRequest,
        wire::MountInfo,
        wire::MountList,
        wire::MountDeleted,
        wire::SecretWriteRequest,
        wire::WriteResult,
        wire::RollbackRequest,
        wire::FieldOut,
        wire::SecretView,
        wire::SecretListItem,
        wire::SecretList,
        wire::VersionOut,
        wire::History,
        wire::TokenCreateRequest,
        wire::TokenInfo,
        wire::TokenLogin,
        wire::TokenCreated,
        wire::TokenList,
        wire::TokenBody,
        wire::Revoked,
        wire::PolicyRule,
        wire::PolicyWriteRequest,
        wire::PolicyOut,
        wire::PolicyList,
        wire::AuditQuery,
        wire::AuditEntryOut,
        wire::AuditPage,
        wire::VerifyQuery,
        wire::AuditVerifyReport,
        wire::Anchored,
        wire::ArchiveRequest,
        wire::ArchiveReport,
        wire::ArchiveCheck,
        wire::SpaceReport,
        wire::DiffQuery,
        wire::DiffOut,
        wire::ProxyRouteRequest,
        wire::ProxyRouteOut,
        wire::ProxyRouteList,
        wire::KeyStatus,
        wire::MasterKeyUsage,
        wire::DataKeyUsage,
        wire::KeyJob,
        wire::DoctorReport,
        wire::DekRotated,
        wire::Rewrapped,
        wire::Pruned,
        wire::MigrateRequest,
        wire::DoctorQuery,
        wire::StaleQuery,
        wire::StaleOut,
    ))
)]
struct NativeDoc;

/// The OpenAPI document of the native API (`/api/v1`).
pub fn native_document() -> utoipa::openapi::OpenApi {
    let mut doc = NativeDoc::openapi();
    complete::native(&mut doc);
    doc
}

/// The OpenAPI document of the Vault-compatible API (`/v1`).
pub fn vault_document() -> utoipa::openapi::OpenApi {
    let mut doc = vault::document();
    complete::vault(&mut doc);
    doc
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, body = serde_json::Value, description = "The OpenAPI 3.1 document of the native API")))]
pub(crate) async fn serve_native(_ctx: Ctx, _req: axum::extract::Request) -> ApiResult<Response> {
    Ok(Json(native_document()).into_response())
}

/// The OpenAPI document of the Vault-compatible API (`generic_mount_paths` is accepted and always
/// true: a mount is the `{mount}` parameter).
#[utoipa::path(get, path = "/v1/sys/internal/specs/openapi", tag = "vault-sys", responses((status = 200, body = serde_json::Value, description = "This document")))]
pub(crate) async fn serve_vault(_ctx: Ctx, _req: VaultReq) -> ApiResult<Response> {
    Ok(Json(vault_document()).into_response())
}
