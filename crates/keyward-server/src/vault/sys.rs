//! `sys/mounts`, `sys/internal/ui/mounts`, `sys/policies/acl` and the legacy `sys/policy`.
use axum::response::Response;
use keyward_core::{validate_mount_path, Capability, CoreError, KvConfig, Mount, MountKind, Policy};
use serde_json::{json, Map, Value};

use super::{denied, done, envelope, envelope_with, not_found, VaultReq};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

const SYS_MOUNTS: &str = "sys/mounts";

/// A mount's tuning as Vault shows it: its lease TTLs, description and options.
fn tuning(m: &Mount) -> (Value, String, Value) {
    let c = &m.config;
    let secs = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
    let config = json!({ "default_lease_ttl": secs("default_lease_ttl"), "force_no_cache": false,
        "max_lease_ttl": secs("max_lease_ttl") });
    let description = c.get("description").and_then(Value::as_str).unwrap_or_default().to_owned();
    let options = match m.kind {
        MountKind::Kv if KvConfig::of(m).is_v1() => json!({ "version": "1" }),
        MountKind::Kv => json!({ "version": "2" }),
        MountKind::Transit => Value::Null,
    };
    (config, description, options)
}

fn mount_entry(m: &Mount) -> Value {
    let ty = m.kind.as_str();
    let (config, description, options) = tuning(m);
    json!({
        "accessor": format!("{ty}_{}", &m.id.simple().to_string()[..8]),
        "config": config,
        "description": description,
        "external_entropy_access": false,
        "local": false,
        "options": options,
        "plugin_version": "",
        "running_plugin_version": concat!("keyward-", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": false,
        "type": ty,
        "uuid": m.id.to_string(),
    })
}

fn visible(caller: &Caller, m: &Mount) -> bool {
    caller.can(Capability::Sudo, SYS_MOUNTS) || caller.inner.acl.touches_mount(&m.path)
}

/// `GET sys/mounts`: the mounts the caller may see.
pub(crate) async fn list_mounts(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let mut data = Map::new();
    for m in ctx.st.kw.list_mounts().await?.iter().filter(|m| visible(caller, m)) {
        data.insert(format!("{}/", m.path), mount_entry(m));
    }
    // Vault repeats the mount map at the top level for legacy clients.
    Ok(envelope_with(&req, Value::Object(data.clone()), vec![], data))
}

/// `GET sys/mounts/{mount}`.
pub(crate) async fn read_mount(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    match ctx.st.kw.find_mount(ctx.param("mount")).await? {
        Some(m) if visible(caller, &m) => Ok(envelope(&req, mount_entry(&m), vec![])),
        Some(_) => Err(denied()),
        None if caller.can(Capability::Sudo, SYS_MOUNTS) => Err(not_found()),
        None => Err(denied()),
    }
}

/// `POST sys/mounts/{mount}`: enable a kv (always version 2) or transit mount.
pub(crate) async fn create_mount(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let name = ctx.param("mount").to_owned();
    if validate_mount_path(&name).is_err() {
        return Err(ApiError::bad_request(format!(
            "mount path {name:?}: keyward mounts are one segment of A-Z a-z 0-9 . _ -"
        )));
    }
    let ty = req.str("type")?.ok_or_else(|| ApiError::bad_request("missing \"type\" (kv or transit)"))?;
    let version = match req.body.get("options").and_then(|o| o.get("version")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    // Vault's rule: `kv` without a version is KV version 1 (keyward's own CLI makes version 2).
    let (kind, v1) = match ty {
        "kv" | "generic" => (MountKind::Kv, version != "2"),
        "kv-v2" => (MountKind::Kv, false),
        "transit" => (MountKind::Transit, false),
        other => {
            return Err(ApiError::bad_request(format!(
                "secrets engine type {other:?} is not supported by keyward (kv, transit)"
            )))
        }
    };
    if !matches!(version.as_str(), "" | "1" | "2") {
        return Err(ApiError::bad_request(format!("options.version {version:?}: expected 1 or 2")));
    }
    let created = match v1 {
        true => ctx.change(|e| ctx.st.kw.create_kv_v1_mount(&name, e)).await,
        false => ctx.change(|e| ctx.st.kw.create_mount(&name, kind, None, e)).await,
    };
    match created {
        Ok(m) => tracing::info!(mount = %m.path, kind = m.kind.as_str(), kv_v1 = v1, "mount created (vault api)"),
        Err(e) if e.status() == axum::http::StatusCode::CONFLICT => {
            return Err(ApiError::bad_request(format!("path is already in use at {name}/")))
        }
        Err(e) => return Err(e),
    }
    Ok(done(&req, vec![]))
}

/// `DELETE sys/mounts/{mount}`: disable a mount, crypto-shredding it (as Vault: no error when
/// it does not exist).
pub(crate) async fn delete_mount(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let name = ctx.param("mount").to_owned();
    match ctx.audit.committed(|e| ctx.st.kw.delete_mount(&name, e)).await {
        Ok(keys) => {
            tracing::info!(mount = %name, keys_shredded = keys, "mount deleted and crypto-shredded (vault api)")
        }
        Err(CoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(done(&req, vec![]))
}

/// `GET sys/mounts/{mount}/tune`.
pub(crate) async fn read_tune(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let m = match ctx.st.kw.find_mount(ctx.param("mount")).await? {
        Some(m) if visible(caller, &m) => m,
        _ => return Err(denied()),
    };
    let (config, description, options) = tuning(&m);
    let mut data = config;
    data["description"] = json!(description);
    data["options"] = options;
    Ok(envelope(&req, data, vec![]))
}

/// `POST sys/mounts/{mount}/tune`: description, `default_lease_ttl`, `max_lease_ttl`, and
/// `options.version` from 1 to 2 (a settings change: every secret keeps its data).
pub(crate) async fn write_tune(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mut t = keyward_core::MountTuning {
        description: req.str("description")?.map(str::to_owned),
        default_lease_ttl: req.duration("default_lease_ttl")?,
        max_lease_ttl: req.duration("max_lease_ttl")?,
        kv_version: None,
    };
    for key in req.body.keys() {
        match key.as_str() {
            "description" | "default_lease_ttl" | "max_lease_ttl" => {}
            "options" => {
                let version = match req.body.get("options").and_then(|o| o.get("version")) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => {
                        Some(s.parse::<u8>().map_err(|_| ApiError::bad_request("options.version: expected 1 or 2"))?)
                    }
                    Some(Value::Number(n)) => Some(
                        n.as_u64()
                            .and_then(|v| u8::try_from(v).ok())
                            .ok_or_else(|| ApiError::bad_request("options.version: expected 1 or 2"))?,
                    ),
                    Some(_) => return Err(ApiError::bad_request("options.version: expected 1 or 2")),
                };
                t.kv_version = version;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                "{other:?} cannot be tuned on keyward (description, default_lease_ttl, max_lease_ttl, options.version)"
            )))
            }
        }
    }
    let name = ctx.param("mount").to_owned();
    ctx.change(|e| ctx.st.kw.tune_mount(&name, t, e)).await?;
    Ok(done(&req, vec![]))
}

/// The answer of the `sys/capabilities*` endpoints for `caller`: each path's capabilities (and,
/// for one path, `capabilities`), in `data` and at the top level, as Vault answers.
async fn capabilities_of(ctx: &Ctx, req: &VaultReq, caller: &Caller) -> ApiResult<Response> {
    let mut paths = req.strings("paths")?;
    if let Some(p) = req.str("path")? {
        paths.push(p.to_owned());
    }
    if paths.is_empty() || paths.len() > 100 {
        return Err(ApiError::bad_request("\"paths\": 1 to 100 paths"));
    }
    let mut data = Map::new();
    for p in &paths {
        data.insert(p.clone(), json!(crate::pipeline::capabilities(&ctx.st, caller, p).await?));
    }
    if paths.len() == 1 {
        data.insert("capabilities".into(), data[&paths[0]].clone());
    }
    Ok(envelope_with(req, Value::Object(data.clone()), vec![], data))
}

/// `POST sys/capabilities-self`: what the caller's own token may do on each path.
pub(crate) async fn capabilities_self(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    capabilities_of(&ctx, &req, ctx.caller()?).await
}

/// `POST sys/capabilities`: what another token (`token`) may do on each path.
pub(crate) async fn capabilities_token(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let text = req.str("token")?.ok_or_else(|| ApiError::bad_request("missing \"token\""))?;
    let token = keyward_crypto::Token::parse(text.trim()).ok_or_else(|| ApiError::bad_request("invalid token"))?;
    match ctx.st.kw.authenticate(&token).await? {
        keyward_core::Authentication::Live(inner) => capabilities_of(&ctx, &req, &Caller { inner }).await,
        _ => Err(ApiError::bad_request("invalid token")),
    }
}

/// `POST sys/capabilities-accessor`: what the token with `accessor` may do on each path.
pub(crate) async fn capabilities_accessor(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let accessor = req.str("accessor")?.ok_or_else(|| ApiError::bad_request("missing \"accessor\""))?;
    match ctx.st.kw.caller_by_accessor(accessor.trim()).await? {
        Some(inner) => capabilities_of(&ctx, &req, &Caller { inner }).await,
        None => Err(ApiError::bad_request("invalid accessor")),
    }
}

/// `GET sys/internal/ui/mounts/{path}`: the mount holding a path (clients detect KV versions).
pub(crate) async fn ui_mount(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let name = ctx.param("path").split('/').next().unwrap_or_default();
    let Some(m) = ctx.st.kw.find_mount(name).await? else {
        return Err(if caller.can(Capability::Sudo, SYS_MOUNTS) { not_found() } else { denied() });
    };
    if !visible(caller, &m) {
        return Err(denied());
    }
    let mut entry = mount_entry(&m);
    entry["path"] = json!(format!("{}/", m.path));
    Ok(envelope(&req, entry, vec![]))
}

/// `LIST sys/policies/acl`: policy names.
pub(crate) async fn list_policies(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    Ok(envelope(&req, json!({ "keys": ctx.st.kw.list_policies().await? }), vec![]))
}

/// `GET sys/policy`: policy names, in `data` and at the top level (the legacy form).
pub(crate) async fn list_policies_legacy(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let names = ctx.st.kw.list_policies().await?;
    let mut top = Map::new();
    top.insert("keys".into(), json!(names));
    top.insert("policies".into(), json!(names));
    Ok(envelope_with(&req, json!({ "keys": names, "policies": names }), vec![], top))
}

fn render_native(p: &Policy) -> String {
    let mut out = format!("# keyward native policy {:?} (rules on <mount>/<path>)\n", p.name);
    for r in &p.rules {
        let caps: Vec<String> = r.capabilities.iter().map(|c| format!("{:?}", c.as_str())).collect();
        out.push_str(&format!("path {:?} {{\n  capabilities = [{}]\n}}\n", r.path, caps.join(", ")));
    }
    out
}

async fn read_policy_as(ctx: Ctx, req: VaultReq, field: &str) -> ApiResult<Response> {
    let p = match ctx.st.kw.read_policy(ctx.param("name")).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let text = p.hcl.clone().unwrap_or_else(|| render_native(&p));
    let data = json!({ "name": p.name, field: text });
    // The legacy path repeats the policy at the top level, as Vault does (node-vault reads it there).
    let top = if field == "rules" { data.as_object().cloned().unwrap_or_default() } else { Map::new() };
    Ok(envelope_with(&req, data, vec![], top))
}

/// `GET sys/policies/acl/{name}`: the policy as written (`policy`).
pub(crate) async fn read_policy(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    read_policy_as(ctx, req, "policy").await
}

/// `GET sys/policy/{name}`: the policy as written (the legacy form: `rules`).
pub(crate) async fn read_policy_legacy(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    read_policy_as(ctx, req, "rules").await
}

/// `PUT sys/policies/acl/{name}` (and the legacy `sys/policy/{name}`): an HCL or JSON policy,
/// translated into native rules at write time.
pub(crate) async fn write_policy(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let name = ctx.param("name").to_owned();
    let text = match (req.str("policy")?, req.str("rules")?) {
        (Some(t), _) | (None, Some(t)) => t.to_owned(),
        (None, None) => return Err(ApiError::bad_request("missing \"policy\" (the HCL text)")),
    };
    let warnings = ctx.change(|e| ctx.st.kw.write_policy_hcl(&name, &text, e)).await?;
    tracing::info!(policy = %name, "policy written (vault api)");
    Ok(done(&req, warnings))
}

/// `DELETE sys/policies/acl/{name}` (and the legacy path): no error when it does not exist.
pub(crate) async fn delete_policy(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let name = ctx.param("name").to_owned();
    match ctx.audit.committed(|e| ctx.st.kw.delete_policy(&name, e)).await {
        Ok(()) | Err(CoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(done(&req, vec![]))
}
