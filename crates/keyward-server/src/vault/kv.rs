//! KV v2 on every kv mount: `data/`, `metadata/`, `delete/`, `undelete/`, `destroy/`,
//! `subkeys/` and `config`, with Vault's shapes, status codes and check-and-set rules.
use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{
    format_duration, format_rfc3339, validate_secret_path, Capability, CoreError, MetadataUpdate, SecretData,
    SecretMeta, SecretVersion, VersionAction,
};
use serde_json::{json, Map, Value};

use super::{done, envelope, envelope_with, keys_answer, not_found, Op, VaultReq};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::pipeline::Ctx;

fn version_meta(meta: &SecretMeta, v: &SecretVersion) -> Value {
    json!({
        "created_time": format_rfc3339(v.created_at),
        "custom_metadata": custom(meta),
        "deletion_time": v.deletion_time.map(format_rfc3339).unwrap_or_default(),
        "destroyed": v.destroyed,
        "version": v.version,
    })
}

fn custom(meta: &SecretMeta) -> Value {
    if meta.custom_metadata.is_empty() {
        Value::Null
    } else {
        json!(meta.custom_metadata)
    }
}

fn target(mount: &str, path: &str) -> String {
    format!("{mount}/{path}")
}

fn secret_path(path: &str) -> ApiResult<()> {
    validate_secret_path(path).map_err(ApiError::from)
}

fn cas(req: &VaultReq) -> ApiResult<Option<u64>> {
    match req.body.get("options") {
        None | Some(Value::Null) => Ok(None),
        // A negative version matches no version, as Vault answers it.
        Some(Value::Object(o)) if o.get("cas").and_then(Value::as_i64).is_some_and(|c| c < 0) => {
            Err(ApiError::bad_request("check-and-set parameter did not match the current version"))
        }
        Some(Value::Object(o)) => super::uint_of("cas", o.get("cas")),
        Some(_) => Err(ApiError::bad_request("\"options\" must be an object")),
    }
}

fn data_of(req: &VaultReq) -> ApiResult<SecretData> {
    match req.body.get("data") {
        Some(Value::Object(m)) => Ok(SecretData::new(m.clone())),
        None | Some(Value::Null) => Err(ApiError::bad_request("no data provided")),
        Some(_) => Err(ApiError::bad_request("\"data\" must be a JSON object")),
    }
}

fn versions_of(req: &VaultReq) -> ApiResult<Vec<u64>> {
    let bad = || ApiError::bad_request("\"versions\" must be a list of version numbers");
    let list = match req.body.get("versions") {
        Some(Value::Array(a)) => a.iter().map(|v| super::uint_of("versions", Some(v))?.ok_or_else(bad)).collect(),
        Some(Value::String(s)) => {
            s.split(',').map(|v| v.trim().parse::<u64>().map_err(|_| bad())).collect::<ApiResult<Vec<u64>>>()
        }
        None | Some(Value::Null) => Ok(vec![]),
        Some(_) => Err(bad()),
    }?;
    if list.is_empty() {
        return Err(ApiError::bad_request("no version number provided"));
    }
    Ok(list)
}

fn require_merge_patch(req: &VaultReq) -> ApiResult<()> {
    if req.merge_patch {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::UnsupportedMediaType, "PATCH requires Content-Type: application/merge-patch+json"))
    }
}

/// The route's mount and secret path (validated), taken out of the context.
fn located(ctx: &mut Ctx) -> ApiResult<(String, String)> {
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    secret_path(&path)?;
    Ok((mount, path))
}

/// `GET {mount}/config`: the engine's settings.
pub(crate) async fn read_config(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let c = ctx.st.kw.kv_config(ctx.param("mount")).await?;
    let data = json!({
        "max_versions": c.max_versions, "cas_required": c.cas_required,
        "delete_version_after": format_duration(c.delete_version_after_secs.unsigned_abs()),
    });
    Ok(envelope(&req, data, vec![]))
}

/// `POST {mount}/config`: change the engine's settings.
pub(crate) async fn write_config(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mount = ctx.param("mount").to_owned();
    let mut c = ctx.st.kw.kv_config(&mount).await?;
    if let Some(m) = req.uint("max_versions")? {
        c.max_versions = u32::try_from(m).map_err(|_| ApiError::bad_request("max_versions is too large"))?;
    }
    if let Some(b) = req.bool("cas_required")? {
        c.cas_required = b;
    }
    if let Some(d) = req.duration("delete_version_after")? {
        c.delete_version_after_secs = i64::try_from(d).map_err(|_| ApiError::bad_request("too long"))?;
    }
    ctx.change(|e| ctx.st.kw.kv_configure(&mount, c, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET {mount}/data/{path}`: a version's plaintext (the current one unless `?version=`).
pub(crate) async fn read_data(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let version = super::uint_of("version", req.query.get("version").map(|v| Value::String(v.clone())).as_ref())?;
    let r = match ctx.st.kw.kv_read(&mount, &path, version).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    ctx.audit.detail("version", r.version.version);
    let metadata = version_meta(&r.meta, &r.version);
    let Some(data) = r.data else {
        // Soft-deleted or destroyed: 404, but the metadata still comes back (hvac reads it).
        let body = json!({ "errors": [], "data": { "data": null, "metadata": metadata } });
        return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    ctx.audit.fields(data.fields().keys().cloned().collect());
    ctx.st.audit.counters.reveals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(envelope(&req, json!({ "data": data.fields(), "metadata": metadata }), vec![]))
}

/// `POST {mount}/data/{path}` (replace the whole map, as a new version) and `PATCH` (a JSON merge
/// patch of the live current version).
pub(crate) async fn write_data(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let caller = ctx.caller()?;
    let patching = req.op == Op::Patch;
    if patching {
        require_merge_patch(&req)?;
    }
    let data = data_of(&req)?;
    let cas = cas(&req)?;
    ctx.audit.fields(data.fields().keys().cloned().collect());
    let t = target(&mount, &path);
    let may = |c| caller.can(c, &t);
    let (st, accessor) = (&ctx.st, caller.accessor());
    let summary = match patching {
        true => {
            ctx.change(|e| st.kw.kv_merge_patch(&mount, &path, data, cas, may(Capability::Read), accessor, e)).await
        }
        false => {
            let rights = (may(Capability::Create), may(Capability::Update), may(Capability::Read));
            ctx.change(|e| st.kw.kv_write(&mount, &path, data, cas, rights, accessor, e)).await
        }
    };
    let summary = match summary {
        Err(e) if patching && e.status() == StatusCode::NOT_FOUND => return Err(not_found()),
        other => other?,
    };
    tracing::info!(accessor = %accessor, mount = %mount, path = %path, version = summary.version, "secret written (vault api)");
    let (meta, v) = st.kw.kv_version_meta(&mount, &path, summary.version).await?;
    Ok(envelope(&req, version_meta(&meta, &v), vec![]))
}

/// The lease Vault's KV version 1 reads carry (its default lease TTL, 32 days).
const V1_LEASE_SECS: u64 = 32 * 24 * 3600;

/// `GET {mount}/{path}` on a KV version 1 mount: the map itself, unversioned.
pub(crate) async fn v1_read(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let r = match ctx.st.kw.kv_read(&mount, &path, None).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let Some(data) = r.data else { return Err(not_found()) };
    ctx.audit.fields(data.fields().keys().cloned().collect());
    ctx.st.audit.counters.reveals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Vault's KV version 1 answers with the mount's default lease (32 days, not renewable).
    let lease = Map::from_iter([("lease_duration".to_owned(), json!(V1_LEASE_SECS))]);
    Ok(envelope_with(&req, Value::Object(data.fields().clone()), vec![], lease))
}

/// `POST {mount}/{path}` on a KV version 1 mount: the body is the whole new map.
pub(crate) async fn v1_write(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let caller = ctx.caller()?;
    if req.body.is_empty() {
        return Err(ApiError::bad_request("no data provided"));
    }
    let data = SecretData::new(req.body.clone());
    ctx.audit.fields(data.fields().keys().cloned().collect());
    let t = target(&mount, &path);
    let rights =
        (caller.can(Capability::Create, &t), caller.can(Capability::Update, &t), caller.can(Capability::Read, &t));
    let (st, accessor) = (&ctx.st, caller.accessor());
    ctx.change(|e| st.kw.kv_write(&mount, &path, data, None, rights, accessor, e)).await?;
    tracing::info!(accessor = %accessor, mount = %mount, path = %path, "secret written (vault api, kv v1)");
    Ok(done(&req, vec![]))
}

/// `DELETE {mount}/{path}` on a KV version 1 mount: the secret is gone (no history to keep).
pub(crate) async fn v1_delete(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    match ctx.audit.committed(|e| ctx.st.kw.delete_secret(&mount, &path, e)).await {
        Ok(()) | Err(CoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(done(&req, vec![]))
}

/// `DELETE {mount}/data/{path}`: soft-delete the current version.
pub(crate) async fn delete_data(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    ctx.change(|e| ctx.st.kw.kv_versions(&mount, &path, VersionAction::Delete, vec![], e)).await?;
    Ok(done(&req, vec![]))
}

async fn change_versions(mut ctx: Ctx, req: VaultReq, action: VersionAction) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let versions = versions_of(&req)?;
    ctx.audit.detail("versions", json!(versions));
    ctx.change(|e| ctx.st.kw.kv_versions(&mount, &path, action, versions, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST {mount}/delete/{path}`: soft-delete versions.
pub(crate) async fn delete_versions(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    change_versions(ctx, req, VersionAction::Delete).await
}

/// `POST {mount}/undelete/{path}`: undo soft deletes.
pub(crate) async fn undelete_versions(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    change_versions(ctx, req, VersionAction::Undelete).await
}

/// `POST {mount}/destroy/{path}`: destroy versions for good.
pub(crate) async fn destroy_versions(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    change_versions(ctx, req, VersionAction::Destroy).await
}

fn metadata_update(req: &VaultReq, patching: bool) -> ApiResult<MetadataUpdate> {
    let mut u = MetadataUpdate {
        max_versions: req
            .uint("max_versions")?
            .map(|m| u32::try_from(m).map_err(|_| ApiError::bad_request("max_versions is too large")))
            .transpose()?,
        cas_required: req.bool("cas_required")?,
        delete_version_after_secs: req
            .duration("delete_version_after")?
            .map(|d| i64::try_from(d).map_err(|_| ApiError::bad_request("delete_version_after is too long")))
            .transpose()?,
        ..Default::default()
    };
    let bad = || ApiError::bad_request("\"custom_metadata\" must map strings to strings");
    match req.body.get("custom_metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) if patching => {
            let mut p = BTreeMap::new();
            for (k, v) in m {
                p.insert(k.clone(), if v.is_null() { None } else { Some(v.as_str().ok_or_else(bad)?.to_owned()) });
            }
            u.custom_metadata_patch = Some(p);
        }
        Some(Value::Object(m)) => {
            let mut c = BTreeMap::new();
            for (k, v) in m {
                c.insert(k.clone(), v.as_str().ok_or_else(bad)?.to_owned());
            }
            u.custom_metadata = Some(c);
        }
        Some(_) => return Err(bad()),
    }
    Ok(u)
}

/// `GET {mount}/metadata/{path}`: the secret's metadata and versions (nothing decrypted).
pub(crate) async fn read_metadata(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let (meta, versions) = match ctx.st.kw.kv_metadata(&mount, &path).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let mut vs = Map::new();
    for v in &versions {
        vs.insert(
            v.version.to_string(),
            json!({
                "created_time": format_rfc3339(v.created_at),
                "deletion_time": v.deletion_time.map(format_rfc3339).unwrap_or_default(),
                "destroyed": v.destroyed,
            }),
        );
    }
    let data = json!({
        "cas_required": meta.cas_required,
        "created_time": format_rfc3339(meta.created_at),
        "current_version": meta.current_version,
        "custom_metadata": custom(&meta),
        "delete_version_after": format_duration(meta.delete_version_after_secs.unsigned_abs()),
        "max_versions": meta.max_versions,
        "oldest_version": if meta.current_version == 0 { 0 } else { meta.oldest_version },
        "updated_time": format_rfc3339(meta.updated_at),
        "versions": vs,
    });
    Ok(envelope(&req, data, vec![]))
}

/// `POST|PATCH {mount}/metadata/{path}`: change a secret's metadata; POST creates it (`create`),
/// PATCH changes an existing one only.
pub(crate) async fn write_metadata(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let caller = ctx.caller()?;
    let patching = req.op == Op::Patch;
    if patching {
        require_merge_patch(&req)?;
        if let Err(CoreError::NotFound(_)) = ctx.st.kw.kv_metadata(&mount, &path).await {
            return Err(not_found());
        }
    }
    // Creating the secret takes `create`, changing it `update` (decided under the row lock).
    let t = target(&mount, &path);
    let (may_create, may_change) = (caller.can(Capability::Create, &t), caller.can(Capability::Update, &t));
    let update = MetadataUpdate { may_create: may_create && !patching, may_change, ..metadata_update(&req, patching)? };
    ctx.change(|e| ctx.st.kw.kv_write_metadata(&mount, &path, update, e)).await?;
    Ok(done(&req, vec![]))
}

/// `DELETE {mount}/metadata/{path}`: the secret with every version, for good (as Vault: no
/// error when it does not exist).
pub(crate) async fn delete_metadata(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    match ctx.audit.committed(|e| ctx.st.kw.delete_secret(&mount, &path, e)).await {
        Ok(()) | Err(CoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(accessor = %ctx.caller()?.accessor(), mount = %mount, path = %path, "secret deleted with every version (vault api)");
    Ok(done(&req, vec![]))
}

/// `LIST {mount}/metadata/{folder}`: the immediate children of a folder (`foo`, and `bar/` for
/// folders), each shown only when the caller may list some secret under it; none is 404.
pub(crate) async fn list(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let (mount, folder) = (ctx.param("mount"), ctx.param("path"));
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        secret_path(folder)?;
        format!("{folder}/")
    };
    let mut keys = BTreeSet::new();
    for p in ctx.st.kw.kv_paths(mount, &prefix).await? {
        let rest = &p[prefix.len()..];
        let key = match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_owned(),
        };
        if !keys.contains(&key) && caller.can(Capability::List, &target(mount, &p)) {
            keys.insert(key);
        }
    }
    keys_answer(&req, keys.into_iter().collect())
}

fn subkeys_of(v: &Value, depth: u64, level: u64) -> Value {
    match v {
        Value::Object(m) if depth == 0 || level < depth => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), subkeys_of(v, depth, level + 1))).collect())
        }
        _ => Value::Null,
    }
}

/// `GET {mount}/subkeys/{path}`: the map's keys, every leaf `null` (nothing decrypted leaves).
pub(crate) async fn subkeys(mut ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let q = |k: &str| super::uint_of(k, req.query.get(k).map(|v| Value::String(v.clone())).as_ref());
    let r = match ctx.st.kw.kv_read(&mount, &path, q("version")?).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let metadata = version_meta(&r.meta, &r.version);
    let Some(data) = r.data else {
        let body = json!({ "errors": [], "data": { "subkeys": null, "metadata": metadata } });
        return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    let depth = q("depth")?.unwrap_or(0);
    let keys: Map<String, Value> = data.fields().iter().map(|(k, v)| (k.clone(), subkeys_of(v, depth, 1))).collect();
    Ok(envelope(&req, json!({ "subkeys": keys, "metadata": metadata }), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_hide_every_leaf() {
        let v = json!({"a": "secret", "b": {"c": 1, "d": {"e": true}}});
        assert_eq!(subkeys_of(&v, 0, 0), json!({"a": null, "b": {"c": null, "d": {"e": null}}}));
        assert_eq!(subkeys_of(&v, 1, 0), json!({"a": null, "b": null}));
    }
}
