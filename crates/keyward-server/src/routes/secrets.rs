//! `/api/v1/mounts/{mount}/secrets/{path}`: masked reads, reveals, writes, history, rollback.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{format_rfc3339, validate_secret_path, Capability, SecretData, SecretPatch, WriteSummary};
use keyward_crypto::mask_value;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{json_body, query_of};
use crate::pipeline::Ctx;
use crate::wire::{
    DiffOut, DiffQuery, FieldOut, History, ListQuery, ReadQuery, RollbackRequest, SecretList, SecretListItem,
    SecretView, SecretWriteRequest, StaleOut, StaleQuery, VersionOut, WriteResult,
};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

fn target(mount: &str, path: &str) -> String {
    format!("{mount}/{path}")
}

fn checked(path: &str) -> ApiResult<()> {
    validate_secret_path(path).map_err(ApiError::from)
}

/// A field's mask: the edges of a string value, `****` for any other JSON.
pub(crate) fn mask(v: &Value) -> String {
    match v {
        Value::String(s) => mask_value(s),
        _ => "****".into(),
    }
}

/// A patch of `target` as `caller` may make it: create only with `create`, change with `update`
/// or `patch`, and whether a value is unchanged told only to holders of `read`.
pub(crate) fn patch_as(caller: &Caller, target: &str, set: SecretData, unset: Vec<String>) -> SecretPatch {
    let may = |c| caller.can(c, target);
    SecretPatch {
        set,
        unset,
        may_create: may(Capability::Create),
        may_change: may(Capability::Update) || may(Capability::Patch),
        may_read: may(Capability::Read),
        ..SecretPatch::default()
    }
}

fn result(mount: String, path: String, s: WriteSummary, created: bool) -> WriteResult {
    WriteResult {
        mount,
        path,
        version: s.version,
        created,
        added: s.added,
        changed: s.changed,
        unchanged: s.unchanged,
        removed: s.removed,
    }
}

/// List a mount's secret paths (environments) with field counts; nothing is decrypted.
#[utoipa::path(get, path = "/api/v1/mounts/{mount}/secrets", tag = "secrets", params(("mount" = String, Path), ListQuery),
    responses((status = 200, body = SecretList), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn list(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: ListQuery = query_of(&req)?;
    let (st, caller, mount) = (&ctx.st, ctx.caller()?, ctx.param("mount").to_owned());
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    // Pages of the mount are read until `limit` rows the caller may list are found: the cursor
    // handed back is the last of those, never a path the caller could not list (with `limit=1`
    // it would enumerate the mount).
    let mut items: Vec<SecretListItem> = Vec::new();
    let mut after = q.after.clone();
    let mut more = false;
    'pages: loop {
        let rows = st.kw.list_secrets(&mount, after.as_deref(), MAX_PAGE).await?;
        let full = rows.len() == MAX_PAGE as usize;
        for r in rows {
            after = Some(r.path.clone());
            if !caller.can(Capability::List, &target(&mount, &r.path)) {
                continue;
            }
            if items.len() == limit as usize {
                more = true;
                break 'pages;
            }
            items.push(SecretListItem {
                path: r.path,
                version: r.current_version,
                fields: r.field_count,
                updated_time: format_rfc3339(r.updated_at),
            });
        }
        if !full {
            break;
        }
    }
    let next = if more { items.last().map(|i| i.path.clone()) } else { None };
    Ok(Json(SecretList { items, next }).into_response())
}

/// Read a secret: masked by default; `?reveal=true` returns plaintext (needs `read`).
#[utoipa::path(get, path = "/api/v1/mounts/{mount}/secrets/{path}", tag = "secrets",
    params(("mount" = String, Path), ("path" = String, Path), ReadQuery),
    responses((status = 200, body = SecretView), (status = 404, body = keyward_api::ErrorBody), (status = 500, description = "integrity check failed", body = keyward_api::ErrorBody)))]
pub async fn read(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: ReadQuery = query_of(&req)?;
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    let (st, caller) = (&ctx.st, ctx.caller()?);
    checked(&path)?;
    let reveal = q.reveal.unwrap_or(false);
    let r = st.kw.read_secret(&mount, &path, q.version).await?;
    let mut fields = Vec::with_capacity(r.data.fields().len());
    for (name, value) in r.data.fields() {
        if q.field.as_deref().is_some_and(|f| f != name) {
            continue;
        }
        let stamp = r.version.field_versions.get(name);
        fields.push(FieldOut {
            name: name.clone(),
            value: if reveal { value.clone() } else { Value::String(mask(value)) },
            version: stamp.map_or(r.version.version, |s| s.version),
            updated_time: format_rfc3339(stamp.map_or(r.version.created_at, |s| s.changed_at)),
        });
    }
    if let Some(f) = &q.field {
        if fields.is_empty() {
            return Err(ApiError::not_found(format!("field {f:?} not found in {mount}/{path}")));
        }
    }
    let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    if reveal {
        st.audit.counters.reveals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(accessor = %caller.accessor(), mount = %mount, path = %path, fields = ?names, "secret revealed");
    }
    ctx.audit.detail("version", r.version.version);
    ctx.audit.fields(names);
    let view = SecretView {
        mount,
        path,
        version: r.version.version,
        current_version: r.meta.current_version,
        created_time: format_rfc3339(r.version.created_at),
        created_by: r.version.created_by.clone(),
        revealed: reveal,
        fields,
    };
    Ok(Json(view).into_response())
}

/// Write one new version: set and/or unset fields (a patch of the current map).
#[utoipa::path(patch, path = "/api/v1/mounts/{mount}/secrets/{path}", tag = "secrets",
    params(("mount" = String, Path), ("path" = String, Path)), request_body = SecretWriteRequest,
    responses((status = 200, body = WriteResult), (status = 400, body = keyward_api::ErrorBody), (status = 413, body = keyward_api::ErrorBody)))]
pub async fn write(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: SecretWriteRequest = json_body(req).await?;
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    let (st, caller) = (&ctx.st, ctx.caller()?);
    checked(&path)?;
    let rotate_after = req.rotate_after.as_deref().map(keyward_core::parse_duration).transpose()?;
    let patch = SecretPatch {
        rotate_after,
        cas: req.cas,
        ..patch_as(caller, &target(&mount, &path), SecretData::new(req.set), req.unset)
    };
    let mut names: Vec<String> = patch.set.fields().keys().cloned().collect();
    names.extend(patch.unset.iter().cloned());
    ctx.audit.fields(names);
    let s = ctx.change(|e| st.kw.patch_secret(&mount, &path, patch, caller.accessor(), e)).await?;
    let created = !(s.added.is_empty() && s.changed.is_empty() && s.removed.is_empty());
    tracing::info!(accessor = %caller.accessor(), mount = %mount, path = %path, version = s.version, created, "secret written");
    Ok(Json(result(mount, path, s, created)).into_response())
}

/// Delete a secret path (environment) with every version.
#[utoipa::path(delete, path = "/api/v1/mounts/{mount}/secrets/{path}", tag = "secrets",
    params(("mount" = String, Path), ("path" = String, Path)),
    responses((status = 204), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn delete(mut ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    checked(&path)?;
    ctx.change(|e| ctx.st.kw.delete_secret(&mount, &path, e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), mount = %mount, path = %path, "secret deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The stored versions of a secret (times, authors, field names).
#[utoipa::path(get, path = "/api/v1/mounts/{mount}/history/{path}", tag = "secrets",
    params(("mount" = String, Path), ("path" = String, Path)),
    responses((status = 200, body = History), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn history(mut ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    checked(&path)?;
    let versions = ctx
        .st
        .kw
        .history(&mount, &path)
        .await?
        .into_iter()
        .map(|v| VersionOut {
            version: v.version,
            created_time: format_rfc3339(v.created_at),
            created_by: v.created_by,
            deletion_time: v.deletion_time.map(format_rfc3339).unwrap_or_default(),
            destroyed: v.destroyed,
            fields: v.fields,
        })
        .collect();
    Ok(Json(History { mount, path, versions }).into_response())
}

/// Write a new version equal to an older one.
#[utoipa::path(post, path = "/api/v1/mounts/{mount}/rollback/{path}", tag = "secrets",
    params(("mount" = String, Path), ("path" = String, Path)), request_body = RollbackRequest,
    responses((status = 200, body = WriteResult), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn rollback(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let req: RollbackRequest = json_body(req).await?;
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    let (st, caller) = (&ctx.st, ctx.caller()?);
    checked(&path)?;
    ctx.audit.detail("from_version", req.version);
    let may_read = caller.can(Capability::Read, &target(&mount, &path));
    let s = ctx.change(|e| st.kw.rollback(&mount, &path, req.version, may_read, caller.accessor(), e)).await?;
    let created = !(s.added.is_empty() && s.changed.is_empty() && s.removed.is_empty());
    tracing::info!(accessor = %caller.accessor(), mount = %mount, path = %path, from = req.version, version = s.version, "secret rolled back");
    Ok(Json(result(mount, path, s, created)).into_response())
}

/// Compare two environments on the server: names only (needs `read` on both).
#[utoipa::path(get, path = "/api/v1/mounts/{mount}/diff", tag = "secrets", params(("mount" = String, Path), DiffQuery),
    responses((status = 200, body = DiffOut), (status = 403, body = keyward_api::ErrorBody), (status = 404, body = keyward_api::ErrorBody)))]
pub async fn diff(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: DiffQuery = query_of(&req)?;
    let (st, mount) = (&ctx.st, ctx.param("mount").to_owned());
    checked(&q.a)?;
    checked(&q.b)?;
    ctx.audit.locate(&mount, &q.a);
    ctx.audit.detail("other_path", q.b.clone());
    // Equality is information about values: it takes `read` on both sides.
    ctx.authorize_on(&[&target(&mount, &q.a), &target(&mount, &q.b)])?;
    let d = st.kw.diff_secrets(&mount, &q.a, &q.b).await?;
    let mut names: Vec<String> =
        d.only_in_a.iter().chain(&d.only_in_b).chain(&d.different).chain(&d.same).cloned().collect();
    names.sort();
    names.dedup();
    ctx.audit.fields(names);
    let out = DiffOut {
        mount,
        a: q.a,
        b: q.b,
        only_in_a: d.only_in_a,
        only_in_b: d.only_in_b,
        different: d.different,
        same: d.same,
    };
    Ok(Json(out).into_response())
}

/// Fields not changed for longer than their limit (path `rotate_after`, mount default, or
/// `older_than`), computed from stored change times without decrypting anything. Needs `list` on
/// `sys/stale`; shows only fields of paths the caller may list.
#[utoipa::path(get, path = "/api/v1/stale", tag = "secrets", params(StaleQuery), responses((status = 200, body = Vec<StaleOut>)))]
pub async fn stale(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let q: StaleQuery = query_of(&req)?;
    let (st, caller) = (&ctx.st, ctx.caller()?);
    ctx.audit.locate(q.mount.as_deref().unwrap_or(""), "");
    let older_than = q.older_than.as_deref().map(keyward_core::parse_duration).transpose()?;
    let fields = st.kw.stale_fields(q.mount.as_deref(), older_than).await?;
    let out: Vec<StaleOut> = fields
        .into_iter()
        .filter(|f| caller.can(Capability::List, &target(&f.mount, &f.path)))
        .map(|f| StaleOut {
            changed_time: format_rfc3339(f.changed_at),
            age: keyward_core::format_duration(f.age_secs),
            limit: keyward_core::format_duration(f.limit_secs),
            mount: f.mount,
            path: f.path,
            field: f.field,
            version: f.version,
        })
        .collect();
    Ok(Json(out).into_response())
}
