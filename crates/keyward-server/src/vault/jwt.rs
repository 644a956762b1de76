//! The JWT login method on Vault's paths (`auth/<mount>/config`, `role/<name>`, `login`), with
//! Vault's field names, so hvac's `auth.jwt` helpers work. The OIDC browser flow is not served.
use std::collections::BTreeMap;

use axum::response::Response;
use keyward_core::{CoreError, JwtConfig, JwtRoleConfig};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::token::auth_data;
use super::{auth_envelope, done, envelope, keys_answer, not_found, VaultReq};
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

/// Whether a field holds nothing (Vault's default for it).
fn unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// The OIDC-flow fields a config or role may carry only at their defaults.
const OIDC_ONLY: [&str; 13] = [
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_response_mode",
    "oidc_response_types",
    "provider_config",
    "namespace_in_state",
    "jwt_type",
    "allowed_redirect_uris",
    "oidc_scopes",
    "verbose_oidc_logging",
    "groups_claim",
    "max_age",
    "callback_mode",
];

fn refused(field: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("{field:?} is not supported by keyward's JWT method: {why}"))
}

/// `POST auth/{jwt}/config`: replaces the config.
pub(crate) async fn write_config(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mut c = JwtConfig::default();
    for (key, value) in &req.body {
        let text = || req.str(key).map(|s| s.unwrap_or_default().to_owned());
        match key.as_str() {
            "jwt_validation_pubkeys" => c.jwt_validation_pubkeys = req.strings(key)?,
            "jwks_url" => c.jwks_url = text()?,
            "jwks_ca_pem" => c.jwks_ca_pem = text()?,
            "oidc_discovery_url" => c.oidc_discovery_url = text()?,
            "oidc_discovery_ca_pem" => c.oidc_discovery_ca_pem = text()?,
            "bound_issuer" => c.bound_issuer = text()?,
            "default_role" => c.default_role = text()?,
            "jwt_supported_algs" => c.jwt_supported_algs = req.strings(key)?,
            "allow_private_network" => c.allow_private_network = req.bool(key)?.unwrap_or(false),
            k if OIDC_ONLY.contains(&k) && unset(value) => {}
            k if OIDC_ONLY.contains(&k) => return Err(refused(k, "the OIDC browser flow is not served")),
            "jwks_pairs" => return Err(refused(key, "give one jwks_url")),
            other => return Err(refused(other, "see docs/vault-compatibility.md")),
        }
    }
    let mount = ctx.param("auth").to_owned();
    ctx.change(|e| ctx.st.kw.write_jwt_config(&mount, c, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET auth/{jwt}/config`.
pub(crate) async fn read_config(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let c = ctx.st.kw.jwt_config(ctx.param("auth")).await?.ok_or_else(not_found)?;
    let data = json!({
        "jwt_validation_pubkeys": c.jwt_validation_pubkeys,
        "jwks_url": c.jwks_url,
        "jwks_ca_pem": c.jwks_ca_pem,
        "oidc_discovery_url": c.oidc_discovery_url,
        "oidc_discovery_ca_pem": c.oidc_discovery_ca_pem,
        "bound_issuer": c.bound_issuer,
        "jwt_supported_algs": c.jwt_supported_algs,
        "default_role": c.default_role,
        "allow_private_network": c.allow_private_network,
        "oidc_client_id": "",
        "provider_config": {},
    });
    Ok(envelope(&req, data, vec![]))
}

/// A map field of strings, or of lists of strings (`bound_claims`).
fn lists(req: &VaultReq, key: &str) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let bad = || ApiError::bad_request(format!("{key:?} must be an object of strings or lists of strings"));
    match req.body.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let values = match v {
                    Value::String(s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
                    Value::Array(a) => {
                        a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<_>>().ok_or_else(bad)?
                    }
                    _ => return Err(bad()),
                };
                Ok((k.clone(), values))
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// A map field of strings (`claim_mappings`).
fn strings_map(req: &VaultReq, key: &str) -> ApiResult<BTreeMap<String, String>> {
    let bad = || ApiError::bad_request(format!("{key:?} must be an object of strings"));
    match req.body.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => {
            m.iter().map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())).ok_or_else(bad)).collect()
        }
        Some(_) => Err(bad()),
    }
}

/// `POST auth/{jwt}/role/{name}`: creates a role, or updates the fields given.
pub(crate) async fn write_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    let mut c = match ctx.st.kw.jwt_role(&mount, &name).await {
        Ok(r) => r.config,
        Err(CoreError::NotFound(_)) => JwtRoleConfig::default(),
        Err(e) => return Err(e.into()),
    };
    for (key, value) in &req.body {
        let secs = || req.duration(key).map(Option::unwrap_or_default);
        match key.as_str() {
            // hvac repeats the role's name in the body.
            "name" if req.str(key)? == Some(name.as_str()) => {}
            "name" => return Err(ApiError::bad_request("\"name\" differs from the role name in the path")),
            // A user_claim starting with `/` is a JSON pointer either way.
            "user_claim_json_pointer" => {}
            "role_type" => c.role_type = req.str(key)?.unwrap_or("jwt").to_owned(),
            "user_claim" => c.user_claim = req.str(key)?.unwrap_or_default().to_owned(),
            "bound_audiences" => c.bound_audiences = req.strings(key)?,
            "bound_subject" => c.bound_subject = req.str(key)?.unwrap_or_default().to_owned(),
            "bound_claims" => c.bound_claims = lists(&req, key)?,
            "bound_claims_type" => c.bound_claims_type = req.str(key)?.unwrap_or("string").to_owned(),
            "claim_mappings" => c.claim_mappings = strings_map(&req, key)?,
            "token_policies" | "policies" => c.token_policies = req.strings(key)?,
            "token_ttl" | "ttl" => c.token_ttl = secs()?,
            "token_max_ttl" | "max_ttl" => c.token_max_ttl = secs()?,
            "token_explicit_max_ttl" => c.token_explicit_max_ttl = secs()?,
            "token_period" | "period" => c.token_period = secs()?,
            "token_num_uses" => c.token_num_uses = req.uint(key)?.unwrap_or(0),
            "token_bound_cidrs" | "bound_cidrs" => c.token_bound_cidrs = req.strings(key)?,
            "token_type" if matches!(req.str(key)?, None | Some("default" | "service" | "default-service")) => {}
            "token_no_default_policy" if req.bool(key)? != Some(true) => {}
            "clock_skew_leeway" | "expiration_leeway" | "not_before_leeway" if unset(value) => {}
            "clock_skew_leeway" | "expiration_leeway" | "not_before_leeway" => {
                return Err(refused(key, "the leeway is fixed at 60 s"))
            }
            k if OIDC_ONLY.contains(&k) && unset(value) => {}
            k if OIDC_ONLY.contains(&k) => {
                return Err(refused(k, "the OIDC browser flow and identity groups are not served"))
            }
            other => return Err(refused(other, "see docs/vault-compatibility.md")),
        }
    }
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.write_jwt_role(&caller.inner, &mount, &name, c, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET auth/{jwt}/role/{name}`.
pub(crate) async fn read_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = match ctx.st.kw.jwt_role(ctx.param("auth"), ctx.param("name")).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let c = &r.config;
    let own = json!({
        "role_type": c.role_type,
        "user_claim": c.user_claim,
        "bound_audiences": c.bound_audiences,
        "bound_subject": c.bound_subject,
        "bound_claims": c.bound_claims,
        "bound_claims_type": c.bound_claims_type,
        "claim_mappings": c.claim_mappings,
        "clock_skew_leeway": 60,
        "expiration_leeway": 60,
        "not_before_leeway": 60,
        "allowed_redirect_uris": [],
        "groups_claim": "",
        "oidc_scopes": [],
        "verbose_oidc_logging": false,
    });
    Ok(envelope(&req, super::auth::with_terms(&c.terms(), &c.token_bound_cidrs, own), vec![]))
}

/// `LIST auth/{jwt}/role`.
pub(crate) async fn list_roles(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let names = ctx.st.kw.jwt_roles(ctx.param("auth")).await?;
    keys_answer(&req, names)
}

/// `DELETE auth/{jwt}/role/{name}`: the role and the tokens its logins issued.
pub(crate) async fn delete_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let (mount, name) = (ctx.param("auth").to_owned(), ctx.param("name").to_owned());
    ctx.change(|e| ctx.st.kw.delete_jwt_role(&mount, &name, e)).await?;
    Ok(done(&req, vec![]))
}

/// `POST auth/{jwt}/login` with `role` and `jwt`.
pub(crate) async fn login(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mount = ctx.param("auth").to_owned();
    let role = req.str("role")?.unwrap_or_default().to_owned();
    let jwt =
        Zeroizing::new(req.str("jwt")?.ok_or_else(|| ApiError::bad_request("missing \"jwt\""))?.trim().to_owned());
    let ip = req.entry.remote_addr.parse().map_err(|_| ApiError::bad_request("the client address is unknown"))?;
    ctx.audit.locate(&format!("auth/{mount}"), "login");
    let issued = match ctx.change(|e| ctx.st.kw.jwt_login(&mount, &role, &jwt, ip, &ctx.st.jwks, e)).await {
        Ok(issued) => issued,
        Err(e) => {
            // Refused tokens count toward the address's lockout, as unknown tokens do.
            super::auth::count_failed_login(&ctx, ip, &e);
            return Err(e);
        }
    };
    tracing::info!(auth = %mount, accessor = %issued.record.accessor, "jwt login");
    Ok(auth_envelope(&req, auth_data(&issued.record, issued.token.expose()), vec![]))
}
