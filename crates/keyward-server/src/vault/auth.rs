//! Login methods on Vault's paths: `sys/auth` (enable, list, disable) and AppRole under
//! `auth/<mount>/…` (roles, role IDs, secret IDs, login), with Vault's field names and shapes.
use std::collections::BTreeMap;

use axum::response::Response;
use keyward_core::{AppRole, AuthKind, AuthMount, RoleField, RoleRequest, SecretIdRecord, SecretIdRequest};
use keyward_crypto::SecretId;
use serde_json::{json, Map, Value};

use super::token::auth_data;
use super::{auth_envelope, done, envelope, envelope_with, keys_answer, not_found, VaultReq};
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

fn unix(nanos: i64) -> String {
    keyward_core::format_rfc3339(nanos)
}

fn mount_entry(m: &AuthMount) -> Value {
    json!({
        "accessor": format!("auth_{}_{}", m.kind.as_str(), &m.id.simple().to_string()[..8]),
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false, "token_type": "default-service" },
        "description": m.description,
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": concat!("keyward-", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": false,
        "type": m.kind.as_str(),
        "uuid": m.id.to_string(),
    })
}

fn token_entry() -> Value {
    json!({
        "accessor": "auth_token_keyward",
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false, "token_type": "default-service" },
        "description": "token based credentials",
        "local": false, "options": null, "seal_wrap": false, "type": "token",
    })
}

/// `GET sys/auth`: the enabled login methods (the token method always).
pub(crate) async fn list_auth(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mut data = Map::new();
    data.insert("token/".into(), token_entry());
    for m in ctx.st.kw.auth_mounts().await? {
        data.insert(format!("{}/", m.path), mount_entry(&m));
    }
    Ok(envelope_with(&req, Value::Object(data.clone()), vec![], data))
}

/// `POST sys/auth/{path}`: enable a login method.
pub(crate) async fn enable_auth(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let path = ctx.param("path").to_owned();
    let kind = req.str("type")?.ok_or_else(|| ApiError::bad_request("missing \"type\" (approle)"))?;
    let kind = AuthKind::parse(kind)?;
    let description = req.str("description")?.unwrap_or_default().to_owned();
    match ctx.change(|e| ctx.st.kw.enable_auth(&path, kind, &description, e)).await {
        Ok(m) => tracing::info!(path = %m.path, kind = m.kind.as_str(), "auth method enabled"),
        Err(e) if e.status() == axum::http::StatusCode::CONFLICT => {
            return Err(ApiError::bad_request(format!("path is already in use at auth/{path}/")))
        }
        Err(e) => return Err(e),
    }
    Ok(done(&req, vec![]))
}

/// `DELETE sys/auth/{path}`: disable a login method, revoking every token it issued (as Vault:
/// no error when it does not exist).
pub(crate) async fn disable_auth(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let path = ctx.param("path").to_owned();
    match ctx.audit.committed(|e| ctx.st.kw.disable_auth(&path, e)).await {
        Ok(n) => tracing::info!(path = %path, tokens_revoked = n, "auth method disabled"),
        Err(keyward_core::CoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(done(&req, vec![]))
}

/// The `token_*` fields of a role or user as Vault shows them, with `more` fields of its own.
pub(crate) fn with_terms(t: &keyward_core::TokenTerms, cidrs: &[String], more: Value) -> Value {
    let mut v = json!({
        "policies": t.policies,
        "token_policies": t.policies,
        "token_bound_cidrs": cidrs,
        "token_explicit_max_ttl": t.explicit_max_ttl,
        "token_max_ttl": t.max_ttl,
        "token_no_default_policy": false,
        "token_num_uses": t.num_uses,
        "token_period": t.period,
        "token_ttl": t.ttl,
        "token_type": "default",
    });
    if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
        v.extend(more);
    }
    v
}

fn role_data(r: &AppRole) -> Value {
    let c = &r.config;
    let own = json!({
        "bind_secret_id": c.bind_secret_id,
        "local_secret_ids": false,
        "secret_id_bound_cidrs": c.secret_id_bound_cidrs,
        "secret_id_num_uses": c.secret_id_num_uses,
        "secret_id_ttl": c.secret_id_ttl,
    });
    with_terms(&c.terms(), &c.token_bound_cidrs, own)
}

/// The role settings a request sets; fields keyward does not serve are refused by name.
fn role_request(req: &VaultReq) -> ApiResult<RoleRequest> {
    let mut out = RoleRequest { role_id: req.str("role_id")?.map(str::to_owned), set: vec![] };
    for (key, _) in req.body.iter() {
        let field = match key.as_str() {
            "token_policies" | "policies" => RoleField::Policies(req.strings(key)?),
            "token_ttl" => RoleField::TokenTtl(req.duration(key)?.unwrap_or(0)),
            "token_max_ttl" => RoleField::TokenMaxTtl(req.duration(key)?.unwrap_or(0)),
            "token_explicit_max_ttl" => RoleField::TokenExplicitMaxTtl(req.duration(key)?.unwrap_or(0)),
            "token_period" | "period" => RoleField::TokenPeriod(req.duration(key)?.unwrap_or(0)),
            "token_num_uses" => RoleField::TokenNumUses(req.uint(key)?.unwrap_or(0)),
            "token_bound_cidrs" => RoleField::TokenBoundCidrs(req.strings(key)?),
            "secret_id_ttl" => RoleField::SecretIdTtl(req.duration(key)?.unwrap_or(0)),
            "secret_id_num_uses" => RoleField::SecretIdNumUses(req.uint(key)?.unwrap_or(0)),
            "secret_id_bound_cidrs" | "bound_cidr_list" => RoleField::SecretIdBoundCidrs(req.strings(key)?),
            "bind_secret_id" => RoleField::BindSecretId(req.bool(key)?.unwrap_or(true)),
            "role_id" => continue,
            // Vault's defaults, accepted as such.
            "token_type" if matches!(req.str(key)?, None | Some("default" | "service" | "default-service")) => continue,
            "token_no_default_policy" if req.bool(key)? != Some(true) => continue,
            "local_secret_ids" | "enable_local_secret_ids" if req.bool(key)? != Some(true) => continue,
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not supported by keyward's AppRole (see docs/vault-compatibility.md)"
                )))
            }
        };
        out.set.push(field);
    }
    Ok(out)
}

/// `POST auth/{approle}/role/{name}`.
pub(crate) async fn write_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let request = role_request(&req)?;
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.write_approle_role(&caller.inner, &mount, &name, request, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET auth/{approle}/role/{name}`.
pub(crate) async fn read_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    match ctx.st.kw.approle_role(ctx.param("auth"), ctx.param("name")).await {
        Ok(r) => Ok(envelope(&req, role_data(&r), vec![])),
        Err(keyward_core::CoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `LIST auth/{approle}/role`.
pub(crate) async fn list_roles(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let names: Vec<String> = ctx.st.kw.approle_roles(ctx.param("auth")).await?.into_iter().map(|r| r.name).collect();
    keys_answer(&req, names)
}

/// `DELETE auth/{approle}/role/{name}`: the role, its secret IDs and the tokens it issued.
pub(crate) async fn delete_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    ctx.change(|e| ctx.st.kw.delete_approle_role(&mount, &name, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET auth/{approle}/role/{name}/role-id`.
pub(crate) async fn read_role_id(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = ctx.st.kw.approle_role(ctx.param("auth"), ctx.param("name")).await?;
    Ok(envelope(&req, json!({ "role_id": r.role_id }), vec![]))
}

/// `POST auth/{approle}/role/{name}/role-id`: set a custom role ID.
pub(crate) async fn write_role_id(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let role_id = req.str("role_id")?.ok_or_else(|| ApiError::bad_request("missing \"role_id\""))?.to_owned();
    let request = RoleRequest { role_id: Some(role_id), set: vec![] };
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.write_approle_role(&caller.inner, &mount, &name, request, e)).await?;
    Ok(done(&req, vec![]))
}

fn secret_id_request(req: &VaultReq) -> ApiResult<SecretIdRequest> {
    if !req.strings("token_bound_cidrs")?.is_empty() {
        // Not silently dropped: the caller meant to narrow where its tokens work.
        return Err(ApiError::bad_request(
            "a secret ID's own token_bound_cidrs is not supported by keyward: set token_bound_cidrs on the role",
        ));
    }
    let metadata: BTreeMap<String, String> = match req.body.get("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::String(s)) if s.is_empty() => BTreeMap::new(),
        // Vault takes it as a JSON-encoded string; an object is accepted too.
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|_| ApiError::bad_request("\"metadata\" must be a JSON object of strings, encoded as a string"))?,
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone())
            .map_err(|_| ApiError::bad_request("\"metadata\" must be an object of strings"))?,
        Some(_) => return Err(ApiError::bad_request("\"metadata\" must be a JSON-encoded object of strings")),
    };
    Ok(SecretIdRequest {
        metadata,
        cidrs: req.strings("cidr_list")?,
        ttl_secs: req.duration("ttl")?,
        num_uses: req.uint("num_uses")?,
    })
}

fn secret_id_data(s: &SecretIdRecord) -> Value {
    let ttl = s.expires_at.map_or(0, |e| ((e - s.created_at) / 1_000_000_000).max(0));
    json!({
        "cidr_list": s.cidrs,
        "creation_time": unix(s.created_at),
        "expiration_time": s.expires_at.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), unix),
        "last_updated_time": unix(s.created_at),
        "metadata": s.metadata,
        "secret_id_accessor": s.accessor,
        "secret_id_num_uses": if s.num_uses == 0 { 0 } else { s.uses_left },
        "secret_id_ttl": ttl,
        "token_bound_cidrs": [],
    })
}

/// `POST auth/{approle}/role/{name}/secret-id`: a new secret ID, shown once.
pub(crate) async fn create_secret_id(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let request = secret_id_request(&req)?;
    let made = ctx.change(|e| ctx.st.kw.create_secret_id(&mount, &name, request, e)).await?;
    let ttl = made.record.expires_at.map_or(0, |e| (e - made.record.created_at) / 1_000_000_000);
    Ok(envelope(
        &req,
        json!({
            "secret_id": made.secret_id.expose(),
            "secret_id_accessor": made.record.accessor,
            "secret_id_ttl": ttl,
            "secret_id_num_uses": made.record.num_uses,
        }),
        vec![],
    ))
}

/// `LIST auth/{approle}/role/{name}/secret-id`: the accessors.
pub(crate) async fn list_secret_ids(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let keys: Vec<String> =
        ctx.st.kw.secret_ids(ctx.param("auth"), ctx.param("name")).await?.into_iter().map(|s| s.accessor).collect();
    keys_answer(&req, keys)
}

fn body_secret_id(req: &VaultReq) -> ApiResult<Option<SecretId>> {
    let text = req.str("secret_id")?.ok_or_else(|| ApiError::bad_request("missing \"secret_id\""))?;
    Ok(SecretId::parse(text.trim()))
}

fn body_secret_id_accessor(req: &VaultReq) -> ApiResult<String> {
    Ok(req
        .str("secret_id_accessor")?
        .ok_or_else(|| ApiError::bad_request("missing \"secret_id_accessor\""))?
        .trim()
        .to_owned())
}

/// `POST auth/{approle}/role/{name}/secret-id/lookup` (by secret ID) and
/// `…/secret-id-accessor/lookup` (by accessor).
pub(crate) async fn lookup_secret_id(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let by_accessor = req.path.contains("secret-id-accessor");
    let kw = &ctx.st.kw;
    let found = match by_accessor {
        true => {
            kw.secret_id_record(ctx.param("auth"), ctx.param("name"), Some(&body_secret_id_accessor(&req)?), None).await
        }
        false => match body_secret_id(&req)? {
            Some(s) => kw.secret_id_record(ctx.param("auth"), ctx.param("name"), None, Some(&s)).await,
            None => Err(keyward_core::CoreError::NotFound("secret ID".into())),
        },
    };
    match found {
        Ok(s) => Ok(envelope(&req, secret_id_data(&s), vec![])),
        // Vault answers an unknown secret ID with an empty 204.
        Err(keyward_core::CoreError::NotFound(_)) if !by_accessor => Ok(done(&req, vec![])),
        Err(e) => Err(e.into()),
    }
}

/// `POST auth/{approle}/role/{name}/secret-id/destroy` and `…/secret-id-accessor/destroy`:
/// the secret ID goes and the tokens it logged in are revoked.
pub(crate) async fn destroy_secret_id(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let accessor = match req.path.contains("secret-id-accessor") {
        true => body_secret_id_accessor(&req)?,
        false => match body_secret_id(&req)? {
            Some(s) => match ctx.st.kw.secret_id_record(&mount, &name, None, Some(&s)).await {
                Ok(r) => r.accessor,
                Err(keyward_core::CoreError::NotFound(_)) => return Ok(done(&req, vec![])),
                Err(e) => return Err(e.into()),
            },
            None => return Ok(done(&req, vec![])),
        },
    };
    ctx.change(|e| ctx.st.kw.destroy_secret_id(&mount, &name, &accessor, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST auth/{approle}/login`: `role_id` and `secret_id` for a token.
pub(crate) async fn login(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mount = ctx.param("auth").to_owned();
    let role_id = req.str("role_id")?.ok_or_else(|| ApiError::bad_request("missing \"role_id\""))?.to_owned();
    let secret_id = req.str("secret_id")?.map(str::to_owned);
    let ip = req.entry.remote_addr.parse().map_err(|_| ApiError::bad_request("the client address is unknown"))?;
    ctx.audit.locate(&format!("auth/{mount}"), "login");
    let issued = match ctx.change(|e| ctx.st.kw.login_approle(&mount, &role_id, secret_id.as_deref(), ip, e)).await {
        Ok(issued) => issued,
        Err(e) => {
            // Secret IDs are guessed per address, like tokens: failures count toward the
            // address's lockout (never a per-role lock: a role ID is not secret, and a lock on it
            // would let anyone shut a role's workloads out).
            count_failed_login(&ctx, ip, &e);
            return Err(e);
        }
    };
    tracing::info!(auth = %mount, accessor = %issued.record.accessor, "approle login");
    Ok(auth_envelope(&req, auth_data(&issued.record, issued.token.expose()), vec![]))
}

/// Counts a refused login (a 400: wrong credentials) toward its address's lockout.
pub(crate) fn count_failed_login(ctx: &Ctx, ip: std::net::IpAddr, e: &ApiError) {
    if e.status() != axum::http::StatusCode::BAD_REQUEST {
        return;
    }
    if let Some(lock) = ctx.st.guards.lockout.record_failure(ip, &ctx.st.guards.config) {
        ctx.st.audit.counters.lockouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ctx.audit.detail("lockout_secs", lock.as_secs());
        tracing::warn!(target: "security", client_ip = %ip, lockout_secs = lock.as_secs(), "client locked out after repeated failed logins");
    }
}

fn user_data(u: &keyward_core::User) -> Value {
    let c = &u.config;
    with_terms(
        &c.terms(),
        &c.token_bound_cidrs,
        json!({ "totp_required": c.totp_required, "totp_enrolled": u.totp_enrolled }),
    )
}

fn password_of(req: &VaultReq) -> ApiResult<Option<zeroize::Zeroizing<String>>> {
    Ok(req.str("password")?.map(|p| zeroize::Zeroizing::new(p.to_owned())))
}

/// `POST auth/{userpass}/users/{name}`: create or update a user.
pub(crate) async fn write_user(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let mut request = keyward_core::UserRequest { password: password_of(&req)?, ..Default::default() };
    for key in req.body.keys() {
        match key.as_str() {
            "password" => {}
            "token_policies" | "policies" => request.policies = Some(req.strings(key)?),
            "token_ttl" => request.token_ttl = req.duration(key)?,
            "token_max_ttl" => request.token_max_ttl = req.duration(key)?,
            "token_explicit_max_ttl" => request.token_explicit_max_ttl = req.duration(key)?,
            "token_period" | "period" => request.token_period = req.duration(key)?,
            "token_num_uses" => request.token_num_uses = req.uint(key)?,
            "token_bound_cidrs" | "bound_cidrs" => request.token_bound_cidrs = Some(req.strings(key)?),
            "totp_required" => request.totp_required = req.bool(key)?,
            "token_type" if matches!(req.str(key)?, None | Some("default" | "service" | "default-service")) => {}
            "token_no_default_policy" if req.bool(key)? != Some(true) => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not supported by keyward's userpass (see docs/vault-compatibility.md)"
                )))
            }
        }
    }
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.write_user(&caller.inner, &mount, &name, request, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET auth/{userpass}/users/{name}` (never the password or the TOTP seed).
pub(crate) async fn read_user(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    match ctx.st.kw.userpass_user(ctx.param("auth"), ctx.param("name")).await {
        Ok(u) => Ok(envelope(&req, user_data(&u), vec![])),
        Err(keyward_core::CoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `LIST auth/{userpass}/users`.
pub(crate) async fn list_users(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let names: Vec<String> = ctx.st.kw.userpass_users(ctx.param("auth")).await?.into_iter().map(|u| u.name).collect();
    keys_answer(&req, names)
}

/// `DELETE auth/{userpass}/users/{name}`: the user goes and its tokens are revoked.
pub(crate) async fn delete_user(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    ctx.change(|e| ctx.st.kw.delete_user(&mount, &name, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST auth/{userpass}/users/{name}/password`: a new password; the user's tokens are revoked.
pub(crate) async fn set_password(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let password = password_of(&req)?.ok_or_else(|| ApiError::bad_request("missing \"password\""))?;
    let request = keyward_core::UserRequest { password: Some(password), ..Default::default() };
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.write_user(&caller.inner, &mount, &name, request, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST auth/{userpass}/users/{name}/totp/enroll`: a new TOTP seed as an `otpauth://` URI (with
/// the user's enrolment token, or `update` on the path); an enrolled user gives a current `code`.
pub(crate) async fn totp_enroll(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let code = req.str("code")?.map(str::to_owned);
    let uri = ctx.change(|e| ctx.st.kw.totp_enrol_start(&mount, &name, code.as_deref(), e)).await?;
    Ok(envelope(
        &req,
        json!({ "url": uri.as_str(), "confirm": format!("auth/{mount}/users/{name}/totp/confirm") }),
        vec![],
    ))
}

/// `POST auth/{userpass}/users/{name}/totp/confirm`: a `code` from the new seed completes enrolment.
pub(crate) async fn totp_confirm(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let code = req.str("code")?.ok_or_else(|| ApiError::bad_request("missing \"code\""))?.to_owned();
    ctx.change(|e| ctx.st.kw.totp_enrol_confirm(&mount, &name, &code, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST auth/{userpass}/users/{name}/totp/reset`: forget the user's TOTP enrolment (an
/// administrator's reset, audited); its tokens are revoked.
pub(crate) async fn totp_reset(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    ctx.change(|e| ctx.st.kw.reset_totp(&mount, &name, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST auth/{userpass}/login/{name}`: `password`, and the TOTP code in `X-Vault-MFA: totp:<code>`
/// (or a `totp` field). A user not enrolled yet gets a 10-minute token good only for enrolling.
pub(crate) async fn login_user(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let password = password_of(&req)?.ok_or_else(|| ApiError::bad_request("missing \"password\""))?;
    let from_header = req.mfa.as_ref().map(|h| h.trim().strip_prefix("totp:").unwrap_or(h.trim()).to_owned());
    let code = match from_header {
        Some(c) => Some(c),
        None => req.str("totp")?.map(str::to_owned),
    };
    let ip: std::net::IpAddr =
        req.entry.remote_addr.parse().map_err(|_| ApiError::bad_request("the client address is unknown"))?;
    ctx.audit.locate(&format!("auth/{mount}"), "login");
    let result = ctx.change(|e| ctx.st.kw.login_userpass(&mount, &name, password, code.as_deref(), false, e)).await;
    let login = match result {
        Ok(l) => l,
        Err(e) => {
            if e.status() == axum::http::StatusCode::BAD_REQUEST {
                if let Some(lock) = ctx.st.guards.lockout.record_failure(ip, &ctx.st.guards.config) {
                    ctx.st.audit.counters.lockouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ctx.audit.detail("lockout_secs", lock.as_secs());
                    tracing::warn!(target: "security", client_ip = %ip, lockout_secs = lock.as_secs(), "client locked out after repeated failed logins");
                }
            }
            return Err(e);
        }
    };
    match login {
        keyward_core::UserLogin::Token(t) => Ok(auth_envelope(&req, auth_data(&t.record, t.token.expose()), vec![])),
        keyward_core::UserLogin::Enrol(t) => Ok(auth_envelope(
            &req,
            auth_data(&t.record, t.token.expose()),
            vec![format!(
                "TOTP enrolment required: this token (10 minutes) is good only for POST auth/{mount}/users/{name}/totp/enroll, then …/totp/confirm"
            )],
        )),
    }
}
