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

use super::{denied, done, envelope, not_found, require, unsupported, Op, VaultReq};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

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
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "PATCH requires Content-Type: application/merge-patch+json",
        ))
    }
}

pub(super) async fn route(
    st: &AppState,
    caller: &Caller,
    req: &VaultReq,
    mount: &str,
    rest: &str,
) -> ApiResult<Response> {
    let (family, path) = rest.split_once('/').unwrap_or((rest, ""));
    match family {
        "config" if path.is_empty() => config(st, caller, req, mount).await,
        "data" => data(st, caller, req, mount, path).await,
        "metadata" => metadata(st, caller, req, mount, path).await,
        "subkeys" => subkeys(st, caller, req, mount, path).await,
        "delete" | "undelete" | "destroy" => versions(st, caller, req, mount, family, path).await,
        _ => Err(ApiError::not_found(format!(
            "no handler for route \"{mount}/{family}\": KV v2 paths are data/, metadata/, delete/, undelete/, destroy/, \
             subkeys/ and config"
        ))),
    }
}

async fn config(st: &AppState, caller: &Caller, req: &VaultReq, mount: &str) -> ApiResult<Response> {
    caller.audit.note("kv.config", mount, "", vec![]);
    match req.op {
        Op::Read => {
            if !caller.inner.acl.touches_mount(mount) {
                return Err(denied());
            }
            let c = st.kw.kv_config(mount).await?;
            Ok(envelope(
                req,
                json!({
                    "max_versions": c.max_versions, "cas_required": c.cas_required,
                    "delete_version_after": format_duration(c.delete_version_after_secs.unsigned_abs()),
                }),
                vec![],
            ))
        }
        Op::Write => {
            require(caller, Capability::Sudo, "sys/mounts")?;
            let mut c = st.kw.kv_config(mount).await?;
            if let Some(m) = req.uint("max_versions")? {
                c.max_versions = u32::try_from(m).map_err(|_| ApiError::bad_request("max_versions is too large"))?;
            }
            if let Some(b) = req.bool("cas_required")? {
                c.cas_required = b;
            }
            if let Some(d) = req.duration("delete_version_after")? {
                c.delete_version_after_secs = i64::try_from(d).map_err(|_| ApiError::bad_request("too long"))?;
            }
            caller.audit.committed(|e| st.kw.kv_configure(mount, c, e)).await?;
            Ok(done(req, vec![]))
        }
        _ => Err(unsupported(req)),
    }
}

async fn data(st: &AppState, caller: &Caller, req: &VaultReq, mount: &str, path: &str) -> ApiResult<Response> {
    secret_path(path)?;
    let t = target(mount, path);
    match req.op {
        Op::Read => {
            caller.audit.note("kv.read", mount, path, vec![]);
            require(caller, Capability::Read, &t)?;
            let version =
                super::uint_of("version", req.query.get("version").map(|v| Value::String(v.clone())).as_ref())?;
            let r = match st.kw.kv_read(mount, path, version).await {
                Err(CoreError::NotFound(_)) => return Err(not_found()),
                other => other?,
            };
            caller.audit.detail("version", r.version.version);
            let metadata = version_meta(&r.meta, &r.version);
            let Some(data) = r.data else {
                // Soft-deleted or destroyed: 404, but the metadata still comes back (hvac reads it).
                let body = json!({ "errors": [], "data": { "data": null, "metadata": metadata } });
                return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
            };
            let names: Vec<String> = data.fields().keys().cloned().collect();
            caller.audit.note("kv.read", mount, path, names);
            st.audit.counters.reveals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(envelope(req, json!({ "data": data.fields(), "metadata": metadata }), vec![]))
        }
        Op::Write | Op::Patch => {
            let patching = req.op == Op::Patch;
            if patching {
                require_merge_patch(req)?;
            }
            let data = data_of(req)?;
            let cas = cas(req)?;
            let names: Vec<String> = data.fields().keys().cloned().collect();
            caller.audit.note(if patching { "kv.patch" } else { "kv.write" }, mount, path, names);
            let may = |c| caller.can(c, &t);
            let summary = if patching {
                require(caller, Capability::Patch, &t)?;
                let entry = caller.audit.for_transaction();
                st.kw.kv_merge_patch(mount, path, data, cas, may(Capability::Read), caller.accessor(), entry).await
            } else {
                if !(may(Capability::Create) || may(Capability::Update)) {
                    return Err(denied());
                }
                let entry = caller.audit.for_transaction();
                let rights = (may(Capability::Create), may(Capability::Update), may(Capability::Read));
                st.kw.kv_write(mount, path, data, cas, rights, caller.accessor(), entry).await
            }
            .inspect_err(|_| caller.audit.transaction_failed());
            let summary = match summary {
                Err(CoreError::NotFound(_)) if patching => return Err(not_found()),
                other => other?,
            };
            tracing::info!(accessor = %caller.accessor(), mount = %mount, path = %path, version = summary.version, "secret written (vault api)");
            let (meta, v) = st.kw.kv_version_meta(mount, path, summary.version).await?;
            Ok(envelope(req, version_meta(&meta, &v), vec![]))
        }
        Op::Delete => {
            caller.audit.note("kv.delete", mount, path, vec![]);
            require(caller, Capability::Delete, &t)?;
            let entry = caller.audit.for_transaction();
            st.kw
                .kv_versions(mount, path, VersionAction::Delete, vec![], entry)
                .await
                .inspect_err(|_| caller.audit.transaction_failed())?;
            Ok(done(req, vec![]))
        }
        Op::List => Err(unsupported(req)),
    }
}

async fn versions(
    st: &AppState,
    caller: &Caller,
    req: &VaultReq,
    mount: &str,
    family: &str,
    path: &str,
) -> ApiResult<Response> {
    secret_path(path)?;
    if req.op != Op::Write {
        return Err(unsupported(req));
    }
    let (action, cap, op) = match family {
        "delete" => (VersionAction::Delete, Capability::Delete, "kv.delete"),
        "undelete" => (VersionAction::Undelete, Capability::Update, "kv.undelete"),
        _ => (VersionAction::Destroy, Capability::Destroy, "kv.destroy"),
    };
    caller.audit.note(op, mount, path, vec![]);
    require(caller, cap, &target(mount, path))?;
    let versions = versions_of(req)?;
    caller.audit.detail("versions", json!(versions));
    let entry = caller.audit.for_transaction();
    st.kw.kv_versions(mount, path, action, versions, entry).await.inspect_err(|_| caller.audit.transaction_failed())?;
    Ok(done(req, vec![]))
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

async fn metadata(st: &AppState, caller: &Caller, req: &VaultReq, mount: &str, path: &str) -> ApiResult<Response> {
    if req.op == Op::List {
        return list(st, caller, req, mount, path).await;
    }
    secret_path(path)?;
    let t = target(mount, path);
    match req.op {
        Op::Read => {
            caller.audit.note("kv.metadata.read", mount, path, vec![]);
            require(caller, Capability::List, &t)?;
            let (meta, versions) = match st.kw.kv_metadata(mount, path).await {
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
            Ok(envelope(
                req,
                json!({
                    "cas_required": meta.cas_required,
                    "created_time": format_rfc3339(meta.created_at),
                    "current_version": meta.current_version,
                    "custom_metadata": custom(&meta),
                    "delete_version_after": format_duration(meta.delete_version_after_secs.unsigned_abs()),
                    "max_versions": meta.max_versions,
                    "oldest_version": if meta.current_version == 0 { 0 } else { meta.oldest_version },
                    "updated_time": format_rfc3339(meta.updated_at),
                    "versions": vs,
                }),
                vec![],
            ))
        }
        Op::Write | Op::Patch => {
            let patching = req.op == Op::Patch;
            if patching {
                require_merge_patch(req)?;
            }
            caller.audit.note("kv.metadata.write", mount, path, vec![]);
            // Creating the secret takes `create`, changing it `update` (decided under the row lock).
            let (may_create, may_change) = (caller.can(Capability::Create, &t), caller.can(Capability::Update, &t));
            if !may_create && !may_change {
                return Err(denied());
            }
            let update =
                MetadataUpdate { may_create: may_create && !patching, may_change, ..metadata_update(req, patching)? };
            if patching {
                // PATCH changes an existing entry only.
                if let Err(CoreError::NotFound(_)) = st.kw.kv_metadata(mount, path).await {
                    return Err(not_found());
                }
            }
            let entry = caller.audit.for_transaction();
            st.kw
                .kv_write_metadata(mount, path, update, entry)
                .await
                .inspect_err(|_| caller.audit.transaction_failed())?;
            Ok(done(req, vec![]))
        }
        Op::Delete => {
            caller.audit.note("kv.metadata.delete", mount, path, vec![]);
            require(caller, Capability::Destroy, &t)?;
            let entry = caller.audit.for_transaction();
            match st.kw.delete_secret(mount, path, entry).await {
                Ok(()) => {}
                Err(CoreError::NotFound(_)) => caller.audit.transaction_failed(),
                Err(e) => {
                    caller.audit.transaction_failed();
                    return Err(e.into());
                }
            }
            tracing::info!(accessor = %caller.accessor(), mount = %mount, path = %path, "secret deleted with every version (vault api)");
            Ok(done(req, vec![]))
        }
        Op::List => Err(unsupported(req)),
    }
}

/// LIST: the immediate children of a folder (`foo`, and `bar/` for folders), each shown only
/// when the caller may list some secret under it; an empty result is 404.
async fn list(st: &AppState, caller: &Caller, req: &VaultReq, mount: &str, folder: &str) -> ApiResult<Response> {
    caller.audit.note("kv.list", mount, folder, vec![]);
    if !caller.inner.acl.touches_mount(mount) {
        return Err(denied());
    }
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        secret_path(folder)?;
        format!("{folder}/")
    };
    let mut keys = BTreeSet::new();
    for p in st.kw.kv_paths(mount, &prefix).await? {
        let rest = &p[prefix.len()..];
        let key = match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_owned(),
        };
        if !keys.contains(&key) && caller.can(Capability::List, &target(mount, &p)) {
            keys.insert(key);
        }
    }
    if keys.is_empty() {
        return Err(not_found());
    }
    Ok(envelope(req, json!({ "keys": keys }), vec![]))
}

fn subkeys_of(v: &Value, depth: u64, level: u64) -> Value {
    match v {
        Value::Object(m) if depth == 0 || level < depth => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), subkeys_of(v, depth, level + 1))).collect())
        }
        _ => Value::Null,
    }
}

async fn subkeys(st: &AppState, caller: &Caller, req: &VaultReq, mount: &str, path: &str) -> ApiResult<Response> {
    secret_path(path)?;
    if req.op != Op::Read {
        return Err(unsupported(req));
    }
    caller.audit.note("kv.subkeys", mount, path, vec![]);
    require(caller, Capability::List, &target(mount, path))?;
    let q = |k: &str| super::uint_of(k, req.query.get(k).map(|v| Value::String(v.clone())).as_ref());
    let r = match st.kw.kv_read(mount, path, q("version")?).await {
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
    Ok(envelope(req, json!({ "subkeys": keys, "metadata": metadata }), vec![]))
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
