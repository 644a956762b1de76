//! The OpenAPI document of the native and Vault-compatible APIs, served at `/api/v1/openapi.json`.
use axum::Json;
use utoipa::OpenApi;

use crate::error::ApiResult;
use crate::pipeline::Ctx;
use crate::proxy::routes as proxy;
use crate::routes::{audit, keys, mounts, policies, secrets, tokens};
use crate::vault::probes as sys;
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(title = "keyward", description = "Self-hosted secrets and API-key vault: native API (/api/v1) and Vault-compatible API (/v1)."),
    paths(
        mounts::list, mounts::create, mounts::delete,
        secrets::list, secrets::read, secrets::write, secrets::delete, secrets::history, secrets::rollback, secrets::diff,
        tokens::create, tokens::list, tokens::lookup_self, tokens::revoke_self, tokens::lookup, tokens::revoke,
        tokens::lookup_accessor, tokens::revoke_accessor,
        policies::list, policies::read, policies::write, policies::delete,
        audit::search, audit::verify, audit::anchor,
        keys::status, keys::rotate, keys::rewrap, keys::prune, keys::migrate, keys::jobs, keys::job, keys::doctor, secrets::stale,
        sys::health, sys::seal_status, sys::init_status, sys::init,
        proxy::list, proxy::read, proxy::put, proxy::delete,
    ),
    components(schemas(
        keyward_api::ErrorBody, keyward_api::ErrorDetail, keyward_api::ErrorCode, wire::MountCreateRequest, wire::MountInfo, wire::MountList, wire::MountDeleted,
        wire::SecretWriteRequest, wire::WriteResult, wire::RollbackRequest, wire::FieldOut, wire::SecretView,
        wire::SecretListItem, wire::SecretList, wire::VersionOut, wire::History, wire::InitResponse, wire::Health,
        wire::TokenCreateRequest, wire::TokenInfo, wire::TokenCreated, wire::TokenList, wire::TokenBody, wire::Revoked,
        wire::PolicyWriteRequest, wire::PolicyOut, wire::PolicyList, wire::AuditQuery, wire::AuditPage, wire::VerifyQuery,
        wire::DiffQuery, wire::DiffOut, wire::ProxyRouteRequest, wire::ProxyRouteOut, wire::ProxyRouteList, wire::Anchored, wire::DekRotated, wire::Rewrapped, wire::Pruned, wire::MigrateRequest, wire::DoctorQuery, wire::StaleQuery, wire::StaleOut,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("kw_…").build()),
        );
    }
}

/// The OpenAPI document: the native API and the Vault-compatible API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    crate::vault::openapi::describe(&mut doc);
    doc
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve(_ctx: Ctx, _req: axum::extract::Request) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(Json(openapi_document()).into_response())
}
