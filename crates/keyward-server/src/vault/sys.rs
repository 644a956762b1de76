//! `sys/mounts`, `sys/internal/ui/mounts`, `sys/policies/acl` and the legacy `sys/policy`.
use axum::response::Response;
use keyward_core::{validate_mount_path, Capability, CoreError, Mount, MountKind, Policy};
use serde_json::{json, Map, Value};

use super::{denied, done, envelope, envelope_with, not_found, require, unsupported, Op, VaultReq};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

const SYS_MOUNTS: &str = "sys/mounts";
const SYS_POLICIES: &str = "sys/policies";

pub(super) async fn route(st: &AppState, caller: &Caller, req: &VaultReq, rest: &str) -> ApiResult<Response> {
    if rest == "mounts" {
        return list_mounts(st, caller, req).await;
    }
    if let Some(path) = rest.strip_prefix("mounts/") {
        return mount(st, caller, req, path).await;
    }
    if let Some(path) = rest.strip_prefix("internal/ui/mounts/") {
        return ui_mount(st, caller, req, path).await;
    }
    if rest == "policies/acl" || rest == "policy" {
        return list_policies(st, caller, req, rest == "policy").await;
    }
    if let Some(name) = rest.strip_prefix("policies/acl/") {
        return policy(st, caller, req, name, false).await;
    }
    if let Some(name) = rest.strip_prefix("policy/") {
        return policy(st, caller, req, name, true).await;
    }
    caller.audit.note("vault.sys", "", rest, vec![]);
    Err(ApiError::not_found(format!("sys/{rest} is not available in keyward (see the README's Vault API table)")))
}

fn mount_entry(m: &Mount) -> Value {
    let (ty, options) = match m.kind {
        MountKind::Kv => ("kv", json!({ "version": "2" })),
        MountKind::Transit => ("transit", Value::Null),
    };
    json!({
        "accessor": format!("{ty}_{}", &m.id.simple().to_string()[..8]),
        "config": { "default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0 },
        "description": "",
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

async fn list_mounts(st: &AppState, caller: &Caller, req: &VaultReq) -> ApiResult<Response> {
    caller.audit.note("vault.mounts.list", "", "", vec![]);
    if req.op != Op::Read {
        return Err(unsupported(req));
    }
    let mut data = Map::new();
    for m in st.kw.list_mounts().await?.iter().filter(|m| visible(caller, m)) {
        data.insert(format!("{}/", m.path), mount_entry(m));
    }
    // Vault repeats the mount map at the top level for legacy clients.
    Ok(envelope_with(req, Value::Object(data.clone()), vec![], data))
}

async fn mount(st: &AppState, caller: &Caller, req: &VaultReq, path: &str) -> ApiResult<Response> {
    let name = path.trim_end_matches('/');
    caller.audit.note("vault.mounts", name, "", vec![]);
    match req.op {
        Op::Read => {
            let m = st.kw.store().mount(name).await.map_err(CoreError::from)?;
            match m {
                Some(m) if visible(caller, &m) => Ok(envelope(req, mount_entry(&m), vec![])),
                Some(_) => Err(denied()),
                None if caller.can(Capability::Sudo, SYS_MOUNTS) => Err(not_found()),
                None => Err(denied()),
            }
        }
        Op::Write => {
            require(caller, Capability::Sudo, SYS_MOUNTS)?;
            if validate_mount_path(name).is_err() {
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
            let mut warnings = vec![];
            let kind = match ty {
                "kv" | "kv-v2" | "generic" => {
                    if version != "2" && ty != "kv-v2" {
                        warnings.push("keyward's kv mounts are always KV version 2".to_owned());
                    }
                    MountKind::Kv
                }
                "transit" => MountKind::Transit,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "secrets engine type {other:?} is not supported by keyward (kv, transit)"
                    )))
                }
            };
            match caller.audit.committed(|e| st.kw.create_mount(name, kind, None, e)).await {
                Ok(m) => tracing::info!(mount = %m.path, kind = m.kind.as_str(), "mount created (vault api)"),
                Err(CoreError::Conflict(_)) => {
                    return Err(ApiError::bad_request(format!("path is already in use at {name}/")))
                }
                Err(e) => return Err(e.into()),
            }
            Ok(done(req, warnings))
        }
        Op::Delete => {
            require(caller, Capability::Sudo, SYS_MOUNTS)?;
            match caller.audit.committed(|e| st.kw.delete_mount(name, e)).await {
                Ok(keys) => {
                    tracing::info!(mount = %name, keys_shredded = keys, "mount deleted and crypto-shredded (vault api)");
                }
                Err(CoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(done(req, vec![]))
        }
        _ => Err(unsupported(req)),
    }
}

async fn ui_mount(st: &AppState, caller: &Caller, req: &VaultReq, path: &str) -> ApiResult<Response> {
    let name = path.split('/').next().unwrap_or_default();
    caller.audit.note("vault.mounts.preflight", name, "", vec![]);
    if req.op != Op::Read {
        return Err(unsupported(req));
    }
    let Some(m) = st.kw.store().mount(name).await.map_err(CoreError::from)? else {
        return Err(if caller.can(Capability::Sudo, SYS_MOUNTS) { not_found() } else { denied() });
    };
    if !visible(caller, &m) {
        return Err(denied());
    }
    let mut entry = mount_entry(&m);
    entry["path"] = json!(format!("{}/", m.path));
    Ok(envelope(req, entry, vec![]))
}

async fn list_policies(st: &AppState, caller: &Caller, req: &VaultReq, legacy: bool) -> ApiResult<Response> {
    caller.audit.note("vault.policies.list", "", "", vec![]);
    require(caller, Capability::Sudo, SYS_POLICIES)?;
    let names = st.kw.list_policies().await?;
    match (req.op, legacy) {
        (Op::List, _) => Ok(envelope(req, json!({ "keys": names }), vec![])),
        (Op::Read, true) => {
            // The legacy list answers `policies` both in `data` and at the top level.
            let mut top = Map::new();
            top.insert("keys".into(), json!(names));
            top.insert("policies".into(), json!(names));
            Ok(envelope_with(req, json!({ "keys": names, "policies": names }), vec![], top))
        }
        _ => Err(unsupported(req)),
    }
}

/// A native policy shown as HCL-shaped text (it was not written through the Vault API).
fn render_native(p: &Policy) -> String {
    let mut out = format!("# keyward native policy {:?} (rules on <mount>/<path>)\n", p.name);
    for r in &p.rules {
        let caps: Vec<String> = r.capabilities.iter().map(|c| format!("{:?}", c.as_str())).collect();
        out.push_str(&format!("path {:?} {{\n  capabilities = [{}]\n}}\n", r.path, caps.join(", ")));
    }
    out
}

async fn policy(st: &AppState, caller: &Caller, req: &VaultReq, name: &str, legacy: bool) -> ApiResult<Response> {
    caller.audit.note("vault.policy", "", name, vec![]);
    require(caller, Capability::Sudo, SYS_POLICIES)?;
    match req.op {
        Op::Read => {
            let p = match st.kw.read_policy(name).await {
                Err(CoreError::NotFound(_)) => return Err(not_found()),
                other => other?,
            };
            let text = p.hcl.clone().unwrap_or_else(|| render_native(&p));
            let field = if legacy { "rules" } else { "policy" };
            Ok(envelope(req, json!({ "name": p.name, field: text }), vec![]))
        }
        Op::Write => {
            let text = match (req.str("policy")?, req.str("rules")?) {
                (Some(t), _) | (None, Some(t)) => t.to_owned(),
                (None, None) => return Err(ApiError::bad_request("missing \"policy\" (the HCL text)")),
            };
            let warnings = caller.audit.committed(|e| st.kw.write_policy_hcl(name, &text, e)).await?;
            tracing::info!(policy = %name, "policy written (vault api)");
            Ok(done(req, warnings))
        }
        Op::Delete => {
            match caller.audit.committed(|e| st.kw.delete_policy(name, e)).await {
                Ok(()) | Err(CoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(done(req, vec![]))
        }
        _ => Err(unsupported(req)),
    }
}
