//! Transit on every transit mount: keys (create, read, list, delete, rotate, config) and
//! encrypt / decrypt / rewrap / datakey, single or `batch_input`. Plaintexts and contexts are
//! base64 both ways, as Vault; plaintexts are never logged or audited.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_core::{Capability, CoreError, TransitKey, TransitKeyChange, TransitKeyOptions, TransitOp};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::{done, envelope, not_found, require, unsupported, Op, VaultReq};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

fn key_info(k: &TransitKey) -> Value {
    let c = &k.config;
    let keys: Map<String, Value> = c.versions.iter().map(|(v, t)| (v.to_string(), json!(t))).collect();
    json!({
        "type": c.key_type,
        "name": k.name,
        "keys": keys,
        "latest_version": c.latest_version,
        "min_available_version": 0,
        "min_decryption_version": c.min_decryption_version,
        "min_encryption_version": c.min_encryption_version,
        "deletion_allowed": c.deletion_allowed,
        "derived": c.derived,
        "kdf": if c.derived { "hkdf_sha256" } else { "" },
        "convergent_encryption": false,
        "exportable": c.exportable,
        "allow_plaintext_backup": c.allow_plaintext_backup,
        "supports_encryption": true,
        "supports_decryption": true,
        "supports_derivation": true,
        "supports_signing": false,
        "imported_key": false,
        "auto_rotate_period": c.auto_rotate_period_secs,
    })
}

fn b64(field: &str, v: Option<&Value>) -> ApiResult<Option<Zeroizing<Vec<u8>>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(Zeroizing::new(Vec::new()))),
        Some(Value::String(s)) => STANDARD
            .decode(s.trim())
            .map(|b| Some(Zeroizing::new(b)))
            .map_err(|_| ApiError::bad_request(format!("failed to base64-decode {field}"))),
        Some(_) => Err(ApiError::bad_request(format!("{field:?} must be a base64 string"))),
    }
}

fn key_name(name: &str) -> ApiResult<&str> {
    keyward_core::validate_key_name(name)?;
    Ok(name)
}

pub(super) async fn route(
    st: &AppState,
    caller: &Caller,
    req: &VaultReq,
    mount: &str,
    rest: &str,
) -> ApiResult<Response> {
    let segs: Vec<&str> = rest.split('/').collect();
    let path = format!("{mount}/{rest}");
    caller.audit.note(&format!("transit.{}", segs[0]), mount, rest, vec![]);
    match segs.as_slice() {
        ["keys"] => {
            if req.op != Op::List {
                return Err(unsupported(req));
            }
            require(caller, Capability::List, &path)?;
            let names = st.kw.transit_key_names(mount).await?;
            if names.is_empty() {
                return Err(not_found());
            }
            Ok(envelope(req, json!({ "keys": names }), vec![]))
        }
        ["keys", name] => keys(st, caller, req, mount, key_name(name)?, &path).await,
        ["keys", name, action @ ("rotate" | "config")] => {
            if req.op != Op::Write {
                return Err(unsupported(req));
            }
            require(caller, Capability::Update, &path)?;
            let name = key_name(name)?.to_owned();
            let op = if *action == "rotate" {
                TransitOp::Rotate { mount: mount.to_owned(), name }
            } else {
                TransitOp::Configure { mount: mount.to_owned(), name, change: change(req)? }
            };
            let k = caller.audit.committed(|e| st.kw.transit_change(op, e)).await?;
            tracing::info!(mount = %mount, key = %k.name, action = %action, version = k.config.latest_version, "transit key changed");
            Ok(envelope(req, key_info(&k), vec![]))
        }
        ["encrypt", name] => crypt(st, caller, req, mount, key_name(name)?, &path, Mode::Encrypt).await,
        ["decrypt", name] => crypt(st, caller, req, mount, key_name(name)?, &path, Mode::Decrypt).await,
        ["rewrap", name] => crypt(st, caller, req, mount, key_name(name)?, &path, Mode::Rewrap).await,
        ["datakey", kind @ ("plaintext" | "wrapped"), name] => {
            datakey(st, caller, req, mount, key_name(name)?, &path, *kind == "plaintext").await
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "transit path {rest:?} is not available in keyward (keys, encrypt, decrypt, rewrap, datakey; see the \
                 README's Vault API table)"
            ),
        )),
    }
}

fn change(req: &VaultReq) -> ApiResult<TransitKeyChange> {
    let u32_of = |k: &str| -> ApiResult<Option<u32>> {
        req.uint(k)?
            .map(|v| u32::try_from(v).map_err(|_| ApiError::bad_request(format!("{k} is too large"))))
            .transpose()
    };
    Ok(TransitKeyChange {
        min_decryption_version: u32_of("min_decryption_version")?,
        min_encryption_version: u32_of("min_encryption_version")?,
        deletion_allowed: req.bool("deletion_allowed")?,
        exportable: req.bool("exportable")?,
        allow_plaintext_backup: req.bool("allow_plaintext_backup")?,
        auto_rotate_period_secs: req.duration("auto_rotate_period")?,
    })
}

fn options(req: &VaultReq) -> ApiResult<TransitKeyOptions> {
    Ok(TransitKeyOptions {
        key_type: req.str("type")?.map(str::to_owned),
        derived: req.bool("derived")?.unwrap_or(false),
        convergent_encryption: req.bool("convergent_encryption")?.unwrap_or(false),
        exportable: req.bool("exportable")?.unwrap_or(false),
        allow_plaintext_backup: req.bool("allow_plaintext_backup")?.unwrap_or(false),
        auto_rotate_period_secs: req.duration("auto_rotate_period")?.unwrap_or(0),
    })
}

async fn keys(
    st: &AppState,
    caller: &Caller,
    req: &VaultReq,
    mount: &str,
    name: &str,
    path: &str,
) -> ApiResult<Response> {
    match req.op {
        Op::Read => {
            require(caller, Capability::Read, path)?;
            match st.kw.transit_key(mount, name).await {
                Ok(k) => Ok(envelope(req, key_info(&k), vec![])),
                Err(CoreError::NotFound(_)) => Err(not_found()),
                Err(e) => Err(e.into()),
            }
        }
        Op::Write => {
            if !(caller.can(Capability::Create, path) || caller.can(Capability::Update, path)) {
                return Err(super::denied());
            }
            let op = TransitOp::Create { mount: mount.to_owned(), name: name.to_owned(), options: options(req)? };
            let k = caller.audit.committed(|e| st.kw.transit_change(op, e)).await?;
            tracing::info!(mount = %mount, key = %k.name, "transit key created");
            Ok(envelope(req, key_info(&k), vec![]))
        }
        Op::Delete => {
            require(caller, Capability::Delete, path)?;
            let op = TransitOp::Delete { mount: mount.to_owned(), name: name.to_owned() };
            match caller.audit.committed(|e| st.kw.transit_change(op, e)).await {
                Ok(k) => tracing::info!(mount = %mount, key = %k.name, "transit key deleted"),
                Err(CoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(done(req, vec![]))
        }
        _ => Err(unsupported(req)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Encrypt,
    Decrypt,
    Rewrap,
}

/// One item of a request (the body itself, or an element of `batch_input`).
async fn one(
    st: &AppState,
    key: &TransitKey,
    mode: Mode,
    item: &Map<String, Value>,
    version: Option<u32>,
) -> ApiResult<Value> {
    let context = b64("context", item.get("context"))?;
    let ad = b64("associated_data", item.get("associated_data"))?.unwrap_or_default();
    let ctx = context.as_deref().map(|c| c.as_slice());
    let ciphertext = || -> ApiResult<&str> {
        item.get("ciphertext")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("missing ciphertext to decrypt"))
    };
    match mode {
        Mode::Encrypt => {
            let plain = b64("plaintext", item.get("plaintext"))?
                .ok_or_else(|| ApiError::bad_request("missing plaintext to encrypt"))?;
            let (c, v) = st.kw.transit_encrypt(key, version, &plain, ctx, &ad).await?;
            Ok(json!({ "ciphertext": c, "key_version": v }))
        }
        Mode::Decrypt => {
            let (plain, _) = st.kw.transit_decrypt(key, ciphertext()?, ctx, &ad).await?;
            Ok(json!({ "plaintext": STANDARD.encode(&*plain) }))
        }
        Mode::Rewrap => {
            let (plain, _) = st.kw.transit_decrypt(key, ciphertext()?, ctx, &ad).await?;
            let (c, v) = st.kw.transit_encrypt(key, version, &plain, ctx, &ad).await?;
            Ok(json!({ "ciphertext": c, "key_version": v }))
        }
    }
}

fn error_text(e: &ApiError) -> String {
    if e.status() == StatusCode::FORBIDDEN {
        "permission denied".into()
    } else {
        e.message().to_owned()
    }
}

#[allow(clippy::too_many_arguments)]
async fn crypt(
    st: &AppState,
    caller: &Caller,
    req: &VaultReq,
    mount: &str,
    name: &str,
    path: &str,
    mode: Mode,
) -> ApiResult<Response> {
    if req.op != Op::Write {
        return Err(unsupported(req));
    }
    let key = match st.kw.transit_key(mount, name).await {
        Ok(k) => {
            require(caller, Capability::Update, path)?;
            k
        }
        // Encrypting with a key that does not exist creates it, given `create` (Vault's upsert).
        Err(CoreError::NotFound(_)) if mode == Mode::Encrypt && caller.can(Capability::Create, path) => {
            let op = TransitOp::Create { mount: mount.to_owned(), name: name.to_owned(), options: options(req)? };
            // The request's entry commits with the key it creates.
            caller.audit.detail("created_key", true);
            caller.audit.committed(|e| st.kw.transit_change(op, e)).await?
        }
        Err(CoreError::NotFound(_)) if caller.can(Capability::Update, path) => {
            return Err(ApiError::bad_request("encryption key not found"))
        }
        Err(CoreError::NotFound(_)) => return Err(super::denied()),
        Err(e) => return Err(e.into()),
    };
    let version = req
        .uint("key_version")?
        .map(|v| u32::try_from(v).map_err(|_| ApiError::bad_request("key_version is too large")))
        .transpose()?;
    caller.audit.detail("key", name);
    let Some(batch) = req.body.get("batch_input") else {
        let out = one(st, &key, mode, &req.body, version).await?;
        if let Some(v) = out.get("key_version") {
            caller.audit.detail("key_version", v.clone());
        }
        return Ok(envelope(req, out, vec![]));
    };
    let items = batch.as_array().ok_or_else(|| ApiError::bad_request("\"batch_input\" must be a list"))?;
    if items.is_empty() {
        return Err(ApiError::bad_request("missing batch input to process"));
    }
    let mut results = Vec::with_capacity(items.len());
    let mut failed = 0;
    for item in items {
        let obj = item.as_object().ok_or_else(|| ApiError::bad_request("each batch_input item must be an object"))?;
        let item_version = match obj.get("key_version") {
            Some(v) => super::uint_of("key_version", Some(v))?.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            None => version,
        };
        let mut out = match one(st, &key, mode, obj, item_version).await {
            Ok(v) => v,
            Err(e) => {
                failed += 1;
                json!({ "error": error_text(&e) })
            }
        };
        if let Some(r) = obj.get("reference") {
            out["reference"] = r.clone();
        }
        results.push(out);
    }
    caller.audit.detail("batch", results.len());
    caller.audit.detail("batch_failed", failed);
    let body = json!({ "batch_results": results });
    if failed == results.len() {
        let resp = json!({ "errors": [], "data": body });
        return Ok((StatusCode::BAD_REQUEST, Json(resp)).into_response());
    }
    if failed > 0 {
        if let Some(code) = req.uint("partial_failure_response_code")? {
            let code =
                u16::try_from(code).ok().and_then(|c| StatusCode::from_u16(c).ok()).unwrap_or(StatusCode::BAD_REQUEST);
            let mut resp = envelope(req, body, vec![]);
            *resp.status_mut() = code;
            return Ok(resp);
        }
    }
    Ok(envelope(req, body, vec![]))
}

async fn datakey(
    st: &AppState,
    caller: &Caller,
    req: &VaultReq,
    mount: &str,
    name: &str,
    path: &str,
    with_plaintext: bool,
) -> ApiResult<Response> {
    if req.op != Op::Write {
        return Err(unsupported(req));
    }
    require(caller, Capability::Update, path)?;
    let key = match st.kw.transit_key(mount, name).await {
        Err(CoreError::NotFound(_)) => return Err(ApiError::bad_request("encryption key not found")),
        other => other?,
    };
    let bits = req.uint("bits")?.unwrap_or(256);
    if ![128, 256, 512].contains(&bits) {
        return Err(ApiError::bad_request("invalid bit length: 128, 256 or 512"));
    }
    let context = b64("context", req.body.get("context"))?;
    let plain = keyward_crypto::random_bytes(usize::try_from(bits / 8).unwrap_or(32));
    let (ciphertext, v) =
        st.kw.transit_encrypt(&key, None, &plain, context.as_deref().map(|c| c.as_slice()), b"").await?;
    let mut data = json!({ "ciphertext": ciphertext, "key_version": v });
    if with_plaintext {
        data["plaintext"] = json!(STANDARD.encode(&*plain));
    }
    caller.audit.detail("key", name);
    Ok(envelope(req, data, vec![]))
}
