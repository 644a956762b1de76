//! Transit on every transit mount: keys (create, read, list, delete, rotate, config, trim,
//! export, backup, restore), encrypt / decrypt / rewrap / datakey, sign / verify, hmac, hash and
//! random, single or `batch_input`. Plaintexts and contexts are base64 both ways, as Vault;
//! plaintexts are never logged or audited.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_core::{Capability, CoreError, TransitKey, TransitKeyChange, TransitKeyOptions, TransitOp};
use keyward_crypto::{HashAlg, Marshaling, Padding, SaltLength, SignParams, SigningType, TransitCipher};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::{done, envelope, keys_answer, not_found, VaultReq};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

/// A key's policy as Vault shows it (never key material; a signing key's public keys).
async fn key_info(ctx: &Ctx, k: &TransitKey) -> ApiResult<Value> {
    let c = &k.config;
    let signer = SigningType::parse(&c.key_type);
    let encrypts = TransitCipher::parse(&c.key_type).is_some();
    // Vault names each version's key pair by its curve or size.
    let pair_name = match signer {
        Some(SigningType::EcdsaP256) => "P-256",
        Some(SigningType::EcdsaP384) => "P-384",
        _ => c.key_type.as_str(),
    };
    let public = ctx.st.kw.transit_public_keys(k).await?;
    let keys: Map<String, Value> = c
        .versions
        .iter()
        .map(|(v, t)| {
            let entry = match public.get(v) {
                Some(pk) => json!({ "creation_time": t, "name": pair_name, "public_key": pk }),
                None => json!(t),
            };
            (v.to_string(), entry)
        })
        .collect();
    Ok(json!({
        "type": c.key_type,
        "name": k.name,
        "keys": keys,
        "latest_version": c.latest_version,
        // Vault shows 0 until a key is trimmed.
        "min_available_version": c.versions.keys().next().copied().filter(|v| *v > 1).unwrap_or(0),
        "min_decryption_version": c.min_decryption_version,
        "min_encryption_version": c.min_encryption_version,
        "deletion_allowed": c.deletion_allowed,
        "derived": c.derived,
        "kdf": if c.derived { "hkdf_sha256" } else { "" },
        "convergent_encryption": false,
        "exportable": c.exportable,
        "allow_plaintext_backup": c.allow_plaintext_backup,
        "supports_encryption": encrypts,
        "supports_decryption": encrypts,
        "supports_derivation": encrypts,
        "supports_signing": signer.is_some(),
        "imported_key": false,
        "auto_rotate_period": c.auto_rotate_period_secs,
    }))
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

/// The route's mount and key name (validated).
fn located(ctx: &Ctx) -> ApiResult<(String, String)> {
    let name = key_name(ctx.param("name"))?.to_owned();
    Ok((ctx.param("mount").to_owned(), name))
}

/// `LIST {mount}/keys`: key names.
pub(crate) async fn list_keys(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let names = ctx.st.kw.transit_key_names(ctx.param("mount")).await?;
    keys_answer(&req, names)
}

/// `GET {mount}/keys/{name}`: a key's policy (never key material).
pub(crate) async fn read_key(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = located(&ctx)?;
    match ctx.st.kw.transit_key(&mount, &name).await {
        Ok(k) => Ok(envelope(&req, key_info(&ctx, &k).await?, vec![])),
        Err(CoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `POST {mount}/keys/{name}`: create a key.
pub(crate) async fn create_key(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = located(&ctx)?;
    let op = TransitOp::Create { mount: mount.clone(), name, options: options(&req)? };
    let k = ctx.change(|e| ctx.st.kw.transit_change(op, e)).await?;
    tracing::info!(mount = %mount, key = %k.name, "transit key created");
    Ok(envelope(&req, key_info(&ctx, &k).await?, vec![]))
}

/// `DELETE {mount}/keys/{name}` (with `deletion_allowed`; no error when it does not exist).
pub(crate) async fn delete_key(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = located(&ctx)?;
    let op = TransitOp::Delete { mount: mount.clone(), name };
    match ctx.audit.committed(|e| ctx.st.kw.transit_change(op, e)).await {
        Ok(k) => tracing::info!(mount = %mount, key = %k.name, "transit key deleted"),
        Err(CoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(done(&req, vec![]))
}

/// What a key-changing request does.
enum KeyChange {
    Rotate,
    Configure,
    Trim,
}

async fn change_key(ctx: Ctx, req: VaultReq, what: KeyChange) -> ApiResult<Response> {
    let (mount, name) = located(&ctx)?;
    let op = match what {
        KeyChange::Rotate => TransitOp::Rotate { mount: mount.clone(), name },
        KeyChange::Configure => TransitOp::Configure { mount: mount.clone(), name, change: change(&req)? },
        KeyChange::Trim => {
            let min = req
                .uint("min_available_version")?
                .ok_or_else(|| ApiError::bad_request("missing min_available_version"))?;
            let min_available_version =
                u32::try_from(min).map_err(|_| ApiError::bad_request("min_available_version is too large"))?;
            TransitOp::Trim { mount: mount.clone(), name, min_available_version }
        }
    };
    let k = ctx.change(|e| ctx.st.kw.transit_change(op, e)).await?;
    tracing::info!(mount = %mount, key = %k.name, version = k.config.latest_version, "transit key changed");
    Ok(envelope(&req, key_info(&ctx, &k).await?, vec![]))
}

/// `POST {mount}/keys/{name}/rotate`: a new key version.
pub(crate) async fn rotate_key(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    change_key(ctx, req, KeyChange::Rotate).await
}

/// `POST {mount}/keys/{name}/config`: a key's settings.
pub(crate) async fn configure_key(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    change_key(ctx, req, KeyChange::Configure).await
}

/// `POST {mount}/keys/{name}/trim`: versions below `min_available_version` are deleted for good.
pub(crate) async fn trim_key(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    change_key(ctx, req, KeyChange::Trim).await
}

/// `POST {mount}/encrypt/{name}` (creating the key if it does not exist, given `create`).
pub(crate) async fn encrypt(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    crypt(ctx, req, Mode::Encrypt).await
}

/// `POST {mount}/decrypt/{name}`.
pub(crate) async fn decrypt(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    crypt(ctx, req, Mode::Decrypt).await
}

/// `POST {mount}/rewrap/{name}`: a ciphertext under the key's latest version.
pub(crate) async fn rewrap(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    crypt(ctx, req, Mode::Rewrap).await
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Encrypt,
    Decrypt,
    Rewrap,
    Hmac(HashAlg),
    Sign(SignParams),
    Verify(HashAlg, SignParams),
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
        Mode::Hmac(alg) => Ok(json!({ "hmac": st.kw.transit_hmac(key, version, alg, &input_of(item)?).await? })),
        Mode::Sign(params) => {
            let (signature, v) = st.kw.transit_sign(key, version, &params, &input_of(item)?).await?;
            Ok(json!({ "signature": signature, "key_version": v }))
        }
        Mode::Verify(alg, params) => {
            let text = |f: &str| item.get(f).and_then(Value::as_str);
            let valid = match (text("hmac"), text("signature")) {
                (Some(mac), None) => st.kw.transit_verify_hmac(key, alg, &input_of(item)?, mac).await?,
                (None, Some(sig)) => st.kw.transit_verify_signature(key, &params, &input_of(item)?, sig).await?,
                _ => return Err(ApiError::bad_request("give exactly one of hmac and signature")),
            };
            Ok(json!({ "valid": valid }))
        }
    }
}

/// An item's base64 `input`, which must be given.
fn input_of(item: &Map<String, Value>) -> ApiResult<Zeroizing<Vec<u8>>> {
    b64("input", item.get("input"))?.ok_or_else(|| ApiError::bad_request("missing input"))
}

fn error_text(e: &ApiError) -> String {
    if e.status() == StatusCode::FORBIDDEN {
        "permission denied".into()
    } else {
        e.message().to_owned()
    }
}

async fn crypt(ctx: Ctx, req: VaultReq, mode: Mode) -> ApiResult<Response> {
    let (mount, name) = located(&ctx)?;
    let (st, caller) = (&ctx.st, ctx.caller()?);
    let path = format!("{mount}/{}", req.path.split_once('/').map_or("", |(_, rest)| rest));
    let key = match st.kw.transit_key(&mount, &name).await {
        // An existing key is used with `update` (encrypting may create one with `create` alone).
        Ok(k) => {
            if !caller.can(Capability::Update, &path) {
                return Err(super::denied());
            }
            k
        }
        // Encrypting with a key that does not exist creates it, given `create` (Vault's upsert).
        Err(CoreError::NotFound(_)) if mode == Mode::Encrypt && caller.can(Capability::Create, &path) => {
            let op = TransitOp::Create { mount: mount.clone(), name: name.clone(), options: options(&req)? };
            // The request's entry commits with the key it creates.
            ctx.audit.detail("created_key", true);
            ctx.change(|e| st.kw.transit_change(op, e)).await?
        }
        Err(CoreError::NotFound(_)) if caller.can(Capability::Update, &path) => {
            return Err(ApiError::bad_request("encryption key not found"))
        }
        Err(CoreError::NotFound(_)) => return Err(super::denied()),
        Err(e) => return Err(e.into()),
    };
    answer(&ctx, &req, &key, mode).await
}

/// Answers one item (the body) or each of `batch_input` (an item's failure is its `error`, and
/// only when every item failed is the answer a 400, as Vault answers).
async fn answer(ctx: &Ctx, req: &VaultReq, key: &TransitKey, mode: Mode) -> ApiResult<Response> {
    let st = &ctx.st;
    let version = req
        .uint("key_version")?
        .map(|v| u32::try_from(v).map_err(|_| ApiError::bad_request("key_version is too large")))
        .transpose()?;
    ctx.audit.detail("key", key.name.as_str());
    let Some(batch) = req.body.get("batch_input") else {
        let out = one(st, key, mode, &req.body, version).await?;
        if let Some(v) = out.get("key_version") {
            ctx.audit.detail("key_version", v.clone());
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
        let mut out = match one(st, key, mode, obj, item_version).await {
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
    ctx.audit.detail("batch", results.len());
    ctx.audit.detail("batch_failed", failed);
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

/// `POST {mount}/datakey/{kind}/{name}`: a fresh data key, encrypted (and in plaintext for
/// `plaintext`).
pub(crate) async fn datakey(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = located(&ctx)?;
    let with_plaintext = match ctx.param("kind") {
        "plaintext" => true,
        "wrapped" => false,
        _ => return Err(ApiError::not_found("datakey kinds are plaintext and wrapped")),
    };
    let st = &ctx.st;
    let key = match st.kw.transit_key(&mount, &name).await {
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
    ctx.audit.detail("key", name.as_str());
    Ok(envelope(&req, data, vec![]))
}

/// The hash algorithm a route or body names (`sha2-256` when neither does).
fn algorithm(ctx: &Ctx, req: &VaultReq, field: &str) -> ApiResult<HashAlg> {
    let name = match ctx.param("algorithm") {
        "" => req.str(field)?.unwrap_or("sha2-256"),
        from_path => from_path,
    };
    HashAlg::parse(name)
        .ok_or_else(|| ApiError::bad_request(format!("unsupported algorithm {name:?} ({})", HashAlg::names())))
}

/// `format`: `hex` (the default of `hash`) or `base64` (of `random`).
fn encoded(req: &VaultReq, bytes: &[u8], default: &str) -> ApiResult<String> {
    match req.str("format")?.unwrap_or(default) {
        "hex" => Ok(hex::encode(bytes)),
        "base64" => Ok(STANDARD.encode(bytes)),
        other => Err(ApiError::bad_request(format!("unsupported encoding format {other:?} (hex or base64)"))),
    }
}

/// `POST {mount}/hash[/{algorithm}]`: the digest of `input`, as `sum`.
pub(crate) async fn hash(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let alg = algorithm(&ctx, &req, "algorithm")?;
    let sum = encoded(&req, &alg.hash(&input_of(&req.body)?), "hex")?;
    Ok(envelope(&req, json!({ "sum": sum }), vec![]))
}

/// The most random bytes one request may ask for.
const MAX_RANDOM: u64 = 1024 * 1024;

/// `POST {mount}/random[/{bytes}]`: `bytes` (default 32) from the platform's CSPRNG.
pub(crate) async fn random(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    if req.str("source")?.is_some_and(|s| s != "platform") {
        return Err(ApiError::bad_request("only source \"platform\" is supported (no seal or entropy device)"));
    }
    let count = match ctx.param("bytes") {
        "" => req.uint("bytes")?.unwrap_or(32),
        n => n.parse().map_err(|_| ApiError::bad_request("the byte count must be a number"))?,
    };
    if count == 0 || count > MAX_RANDOM {
        return Err(ApiError::bad_request(format!("the byte count must be between 1 and {MAX_RANDOM}")));
    }
    let bytes = keyward_crypto::random_bytes(usize::try_from(count).unwrap_or(32));
    let text = encoded(&req, &bytes, "base64")?;
    Ok(envelope(&req, json!({ "random_bytes": text }), vec![]))
}

/// The key an HMAC, signature or verification names (never created on the fly).
async fn hmac_key(ctx: &Ctx) -> ApiResult<TransitKey> {
    let (mount, name) = located(ctx)?;
    match ctx.st.kw.transit_key(&mount, &name).await {
        Err(CoreError::NotFound(_)) => Err(ApiError::bad_request("key not found")),
        other => Ok(other?),
    }
}

/// `POST {mount}/hmac/{name}[/{algorithm}]`: the `vault:vN:` HMAC of `input` (or of each of
/// `batch_input`).
pub(crate) async fn hmac(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let alg = algorithm(&ctx, &req, "algorithm")?;
    let key = hmac_key(&ctx).await?;
    answer(&ctx, &req, &key, Mode::Hmac(alg)).await
}

/// `POST {mount}/verify/{name}[/{algorithm}]` with `hmac` or `signature` (or `batch_input` of
/// them): whether each is valid for its `input`.
pub(crate) async fn verify(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let key = hmac_key(&ctx).await?;
    let alg = algorithm(&ctx, &req, "algorithm")?;
    // Signature options apply when a signature is checked (an HMAC's algorithm is `algorithm`).
    let has_signature = |item: &Map<String, Value>| item.contains_key("signature");
    let signatures = has_signature(&req.body)
        || req
            .body
            .get("batch_input")
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().filter_map(Value::as_object).any(has_signature));
    let params = if signatures { sign_params(&ctx, &req, &key)? } else { SignParams::default() };
    answer(&ctx, &req, &key, Mode::Verify(alg, params)).await
}

/// The options of a signature or its verification: the hash from the route, `hash_algorithm`
/// or `algorithm` (default `sha2-256`), `prehashed`, `signature_algorithm` (`pss` |
/// `pkcs1v15`), `salt_length` (`auto` | `hash` or `-1` | bytes) and `marshaling_algorithm` (`asn1` | `jws`).
fn sign_params(ctx: &Ctx, req: &VaultReq, key: &TransitKey) -> ApiResult<SignParams> {
    let named = !ctx.param("algorithm").is_empty() || req.body.contains_key("hash_algorithm");
    let hash =
        algorithm(ctx, req, if req.body.contains_key("hash_algorithm") { "hash_algorithm" } else { "algorithm" })?;
    let prehashed = req.bool("prehashed")?.unwrap_or(false);
    if key.config.key_type == "ed25519" && ((named && hash != HashAlg::Sha2_256) || prehashed) {
        return Err(ApiError::bad_request("ed25519 signs the input itself: hash_algorithm and prehashed do not apply"));
    }
    let padding = match req.str("signature_algorithm")?.unwrap_or("pss") {
        "pss" => Padding::Pss,
        "pkcs1v15" => Padding::Pkcs1v15,
        other => {
            return Err(ApiError::bad_request(format!("unsupported signature_algorithm {other:?} (pss or pkcs1v15)")))
        }
    };
    let salt = match req.body.get("salt_length") {
        None | Some(Value::Null) => SaltLength::Auto,
        Some(Value::String(s)) if s == "auto" => SaltLength::Auto,
        // Go's rsa.PSSSaltLengthEqualsHash, which Vault also accepts.
        Some(Value::String(s)) if s == "hash" || s == "-1" => SaltLength::Hash,
        Some(v) => {
            let n = super::uint_of("salt_length", Some(v))
                .ok()
                .flatten()
                .ok_or_else(|| ApiError::bad_request("salt_length must be auto, hash or a number of bytes"))?;
            SaltLength::Bytes(usize::try_from(n).unwrap_or(usize::MAX))
        }
    };
    let marshaling = match req.str("marshaling_algorithm")?.unwrap_or("asn1") {
        "asn1" => Marshaling::Asn1,
        "jws" => Marshaling::Jws,
        other => {
            return Err(ApiError::bad_request(format!("unsupported marshaling_algorithm {other:?} (asn1 or jws)")))
        }
    };
    Ok(SignParams { hash, prehashed, padding, salt, marshaling })
}

/// `POST {mount}/sign/{name}[/{algorithm}]`: the `vault:vN:` signature of `input` (or of each
/// of `batch_input`).
pub(crate) async fn sign(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let key = hmac_key(&ctx).await?;
    let params = sign_params(&ctx, &req, &key)?;
    answer(&ctx, &req, &key, Mode::Sign(params)).await
}

/// `GET {mount}/export/{kind}/{name}[/{version}]`: key material of an exportable key (or a
/// signing key's public key), base64 by version; counted as a reveal.
pub(crate) async fn export(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let key = match ctx.st.kw.transit_key(ctx.param("mount"), key_name(ctx.param("name"))?).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let version = match ctx.param("version") {
        "" => None,
        "latest" => Some(key.config.latest_version),
        v => Some(v.parse().map_err(|_| ApiError::bad_request("version must be a number or \"latest\""))?),
    };
    let kind = ctx.param("kind");
    let exported = ctx.st.kw.transit_export(&key, kind, version).await?;
    if kind != "public-key" {
        disclosed(&ctx, &key, kind);
    }
    ctx.audit.detail("export", kind);
    let keys: Map<String, Value> = exported.iter().map(|(v, k)| (v.to_string(), json!(k.as_str()))).collect();
    Ok(envelope(&req, json!({ "name": key.name, "type": key.config.key_type, "keys": keys }), vec![]))
}

/// Records that key material leaves (an export of secret material, a plaintext backup): the
/// audit entry says so, the reveal counter counts it, and the log names the key (never the material).
fn disclosed(ctx: &Ctx, key: &TransitKey, what: &str) {
    ctx.st.audit.counters.reveals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.audit.detail("disclosure", what);
    tracing::info!(mount = %ctx.param("mount"), key = %key.name, what, "transit key material disclosed");
}

/// `GET {mount}/backup/{name}`: a plaintext backup of a key that allows one; counted as a
/// reveal, since it holds every version's key material.
pub(crate) async fn backup(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let key = match ctx.st.kw.transit_key(ctx.param("mount"), key_name(ctx.param("name"))?).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let backup = ctx.st.kw.transit_backup(&key).await?;
    disclosed(&ctx, &key, "backup");
    ctx.audit.detail("key", key.name.as_str());
    Ok(envelope(&req, json!({ "backup": backup.as_str() }), vec![]))
}

/// `POST {mount}/restore[/{name}]`: a key from a backup this cluster made, under its own name or
/// the one given (route or body `name`); an existing key is replaced only with `force`.
pub(crate) async fn restore(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    // The name from the route, or from the body (where vaultrs sends it, and Vault reads it too).
    let name = match ctx.param("name") {
        "" => req.str("name")?.map(|n| key_name(n).map(str::to_owned)).transpose()?,
        n => Some(key_name(n)?.to_owned()),
    };
    let text = req.str("backup")?.ok_or_else(|| ApiError::bad_request("missing backup"))?;
    let backup = ctx.st.kw.transit_read_backup(text).await?;
    let force = req.bool("force")?.unwrap_or(false);
    let mount = ctx.param("mount").to_owned();
    ctx.audit.detail("key", name.as_deref().unwrap_or(backup.name()));
    ctx.audit.detail("force", force);
    let op = TransitOp::Restore { mount: mount.clone(), name, force, backup };
    let k = ctx.change(|e| ctx.st.kw.transit_change(op, e)).await?;
    tracing::info!(mount = %mount, key = %k.name, "transit key restored");
    Ok(done(&req, vec![]))
}
