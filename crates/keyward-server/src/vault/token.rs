//! `auth/token/*`: create, look up, renew and revoke tokens in Vault's shapes. The same rules as
//! the native API: creating, listing and acting on other tokens needs `sudo` on `sys/tokens`;
//! a token may always look up, renew and revoke itself (the `default` policy).
use axum::response::Response;
use keyward_core::{
    format_rfc3339, now_nanos, Capability, CoreError, TokenRecord, TokenRequest, TokenRole, TokenRoleConfig,
};
use keyward_crypto::Token;
use serde_json::{json, Value};

use super::{auth_envelope, denied, done, envelope, keys_answer, not_found, VaultReq};
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Ctx;

fn unix(nanos: i64) -> i64 {
    nanos / 1_000_000_000
}

/// Seconds left, rounded up: a token just issued for 300 s shows 300, not 299.
fn remaining(r: &TokenRecord) -> i64 {
    r.expires_at.map_or(0, |e| ((e - now_nanos()).max(0) + 999_999_999) / 1_000_000_000)
}

/// Whether Vault would call it renewable: it may be, and it expires.
fn renewable(r: &TokenRecord) -> bool {
    r.renewable && r.expires_at.is_some()
}

fn sorted(policies: &[String]) -> Vec<String> {
    let mut p = policies.to_vec();
    p.sort();
    p
}

/// Vault's token lookup data; `id` is the token when the caller holds it (it presented it, or
/// gave it in the body), empty for a lookup by accessor.
fn lookup_data(r: &TokenRecord, id: &str, path: String) -> Value {
    json!({
        "accessor": r.accessor,
        "creation_time": unix(r.created_at),
        "creation_ttl": r.ttl_secs,
        "display_name": format!("token-{}", r.display_name),
        "entity_id": "",
        "expire_time": r.expires_at.map(format_rfc3339),
        "explicit_max_ttl": r.explicit_max_ttl_secs,
        "id": id,
        "issue_time": format_rfc3339(r.created_at),
        "meta": meta(r),
        "num_uses": r.uses_left,
        "orphan": r.parent_accessor.is_none(),
        "path": path,
        "period": (r.period_secs > 0).then_some(r.period_secs),
        "policies": sorted(&r.policies),
        "renewable": renewable(r),
        "ttl": remaining(r),
        "type": r.kind.as_str(),
    })
}

/// Where a token was made, as Vault's lookups show it: the token method's create path (with its
/// role), or the login path of the auth mount that issued it.
async fn path(ctx: &Ctx, r: &TokenRecord) -> ApiResult<String> {
    Ok(match (r.origin.auth_mount.as_str(), r.origin.role.as_str()) {
        ("", "") => "auth/token/create".into(),
        ("", role) => format!("auth/token/create/{role}"),
        (id, _) => {
            let mounts = ctx.st.kw.auth_mounts().await?;
            match mounts.iter().find(|m| m.id.to_string() == id) {
                Some(m) => format!("auth/{}/login", m.path),
                None => "auth/login".into(),
            }
        }
    })
}

/// A token's metadata as Vault shows it (`null` when it has none).
fn meta(r: &TokenRecord) -> Value {
    if r.meta.is_empty() {
        Value::Null
    } else {
        json!(r.meta)
    }
}

/// The `auth` block of a response that issues a token.
pub(crate) fn auth_data(r: &TokenRecord, token: &str) -> Value {
    json!({
        "client_token": token,
        "accessor": r.accessor,
        "policies": sorted(&r.policies),
        "token_policies": sorted(&r.policies),
        "identity_policies": null,
        "metadata": meta(r),
        "lease_duration": remaining(r),
        "renewable": renewable(r),
        "entity_id": "",
        "token_type": r.kind.as_str(),
        "orphan": r.parent_accessor.is_none(),
        "mfa_requirement": null,
        "num_uses": r.uses_left,
    })
}

fn body_token(req: &VaultReq) -> ApiResult<Token> {
    let text = req.str("token")?.ok_or_else(|| ApiError::bad_request("missing \"token\""))?;
    Token::parse(text.trim()).ok_or_else(denied)
}

fn body_accessor(req: &VaultReq) -> ApiResult<String> {
    Ok(req.str("accessor")?.ok_or_else(|| ApiError::bad_request("missing \"accessor\""))?.trim().to_owned())
}

/// The record of a token given in the body: the caller's own, or any with `sudo`.
async fn other(ctx: &Ctx, req: &VaultReq) -> ApiResult<TokenRecord> {
    let record = ctx.st.kw.lookup_token(&body_token(req)?).await;
    ctx.authorize_token(record.as_ref().map_or("", |r| r.accessor.as_str())).map_err(|_| denied())?;
    let record = record.map_err(|_| denied())?;
    ctx.audit.locate("", &record.accessor);
    Ok(record)
}

async fn by_accessor(ctx: &Ctx, req: &VaultReq) -> ApiResult<TokenRecord> {
    let accessor = body_accessor(req)?;
    ctx.authorize_token(&accessor).map_err(|_| denied())?;
    ctx.audit.locate("", &accessor);
    match ctx.st.kw.lookup_accessor(&accessor).await {
        Err(CoreError::NotFound(_)) => Err(ApiError::bad_request("invalid accessor")),
        other => Ok(other?),
    }
}

/// `auth/token/lookup-self`: with the presented token as `id`, as Vault answers (the caller holds
/// it already).
pub(crate) async fn lookup_self(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let id = req.presented.as_ref().map_or("", |t| t.expose());
    let token = &ctx.caller()?.inner.token;
    Ok(envelope(&req, lookup_data(token, id, path(&ctx, token).await?), vec![]))
}

/// `auth/token/lookup`: a token given in the body, shown back as `id`.
pub(crate) async fn lookup(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = other(&ctx, &req).await?;
    let id = body_token(&req)?;
    Ok(envelope(&req, lookup_data(&r, id.expose(), path(&ctx, &r).await?), vec![]))
}

/// `auth/token/lookup-accessor`.
pub(crate) async fn lookup_accessor(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = by_accessor(&ctx, &req).await?;
    Ok(envelope(&req, lookup_data(&r, "", path(&ctx, &r).await?), vec![]))
}

/// `auth/token/renew-self` (`increment`).
pub(crate) async fn renew_self(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    let increment = req.duration("increment")?;
    let r = ctx.change(|e| ctx.st.kw.renew_token(&caller.inner.token, increment, e)).await?;
    Ok(auth_envelope(&req, auth_data(&r, ""), vec![]))
}

/// `auth/token/renew`: a token given in the body.
pub(crate) async fn renew(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = other(&ctx, &req).await?;
    let increment = req.duration("increment")?;
    let r = ctx.change(|e| ctx.st.kw.renew_token(&r, increment, e)).await?;
    Ok(auth_envelope(&req, auth_data(&r, ""), vec![]))
}

/// `auth/token/revoke-self`, with its descendants.
pub(crate) async fn revoke_self(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.revoke_accessor(caller.accessor(), e)).await?;
    Ok(done(&req, vec![]))
}

/// `auth/token/revoke`: a token given in the body, with its descendants.
pub(crate) async fn revoke(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = other(&ctx, &req).await?;
    let n = ctx.change(|e| ctx.st.kw.revoke_accessor(&r.accessor, e)).await?;
    tracing::info!(accessor = %ctx.caller()?.accessor(), revoked_accessor = %r.accessor, n, "token revoked (vault api)");
    Ok(done(&req, vec![]))
}

/// `auth/token/revoke-accessor`, with its descendants.
pub(crate) async fn revoke_accessor(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = by_accessor(&ctx, &req).await?;
    ctx.change(|e| ctx.st.kw.revoke_accessor(&r.accessor, e)).await?;
    Ok(done(&req, vec![]))
}

/// `LIST auth/token/accessors`: the accessors of live tokens.
pub(crate) async fn accessors(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.st.kw.list_tokens(after.as_deref(), 1000).await?;
        let n = page.len();
        after = page.last().map(|t| t.accessor.clone());
        keys.extend(page.into_iter().filter(|t| t.is_live(now_nanos())).map(|t| t.accessor));
        if n < 1000 {
            break;
        }
    }
    keys_answer(&req, keys)
}

/// `auth/token/create` (with `role_name`, as `create/<role>`).
pub(crate) async fn create(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let role = match req.str("role_name")?.filter(|r| !r.is_empty()) {
        // The role's own capability is checked, as for `create/<role>`.
        Some(name) => {
            ctx.caller()?.require(Capability::Update, &format!("auth/token/create/{name}")).map_err(|_| denied())?;
            Some(ctx.st.kw.token_role(name).await?)
        }
        None => None,
    };
    create_token(ctx, req, false, role).await
}

/// `auth/token/create-orphan`.
pub(crate) async fn create_orphan(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    create_token(ctx, req, true, None).await
}

/// `auth/token/create/<role>`: a token within the role's allowed policies and settings.
pub(crate) async fn create_with_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let role = match ctx.st.kw.token_role(ctx.param("name")).await {
        Err(CoreError::NotFound(_)) => return Err(ApiError::bad_request("unknown role")),
        other => other?,
    };
    create_token(ctx, req, false, Some(role)).await
}

async fn create_token(ctx: Ctx, req: VaultReq, orphan: bool, role: Option<TokenRole>) -> ApiResult<Response> {
    let caller = ctx.caller()?;
    for (field, why) in
        [("id", "custom token ids are not supported"), ("entity_alias", "entity aliases are not supported")]
    {
        if req.body.get(field).is_some_and(|v| !v.is_null() && v != "" && v != 0) {
            return Err(ApiError::bad_request(why));
        }
    }
    if req.str("type")?.is_some_and(|t| t != "service" && t != "default") {
        return Err(ApiError::bad_request("only service tokens are supported (batch tokens are not)"));
    }
    let meta = match req.body.get("meta") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(v) => Ok((k.clone(), v.clone())),
                _ => Err(ApiError::bad_request("meta: values must be strings")),
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => return Err(ApiError::bad_request("meta: expected an object of strings")),
    };
    let request = TokenRequest {
        policies: req.strings("policies")?,
        ttl_secs: req.duration("ttl")?.filter(|t| *t > 0),
        display_name: req.str("display_name")?.map(str::to_owned),
        allowed_cidrs: vec![],
        no_parent: orphan || req.bool("no_parent")?.unwrap_or(false),
        no_default_policy: req.bool("no_default_policy")?.unwrap_or(false),
        rate_limit: None,
        explicit_max_ttl_secs: req.duration("explicit_max_ttl")?.filter(|m| *m > 0),
        period_secs: req.duration("period")?.filter(|p| *p > 0),
        num_uses: req.uint("num_uses")?,
        renewable: req.bool("renewable")?,
        meta,
        role,
        kind: keyward_core::TokenKind::Service,
    };
    let new = ctx.change(|e| ctx.st.kw.create_token(&caller.inner, request, e)).await?;
    tracing::info!(accessor = %caller.accessor(), created = %new.record.accessor, "token created (vault api)");
    Ok(auth_envelope(&req, auth_data(&new.record, new.token.expose()), vec![]))
}

/// `POST auth/token/roles/<name>`: creates a role, or updates the fields given. Its writer must
/// hold every policy it allows.
pub(crate) async fn write_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let name = ctx.param("name").to_owned();
    let mut c = match ctx.st.kw.token_role(&name).await {
        Ok(r) => r.config,
        Err(CoreError::NotFound(_)) => TokenRoleConfig::default(),
        Err(e) => return Err(e.into()),
    };
    for key in req.body.keys() {
        let secs = || req.duration(key).map(Option::unwrap_or_default);
        match key.as_str() {
            "allowed_policies" => c.allowed_policies = req.strings(key)?,
            "disallowed_policies" => c.disallowed_policies = req.strings(key)?,
            "orphan" => c.orphan = req.bool(key)?.unwrap_or(false),
            "renewable" => c.renewable = req.bool(key)?.unwrap_or(true),
            "path_suffix" => c.path_suffix = req.str(key)?.unwrap_or_default().to_owned(),
            "token_ttl" => c.token_ttl = secs()?,
            "token_max_ttl" => c.token_max_ttl = secs()?,
            "token_explicit_max_ttl" | "explicit_max_ttl" => c.token_explicit_max_ttl = secs()?,
            "token_period" | "period" => c.token_period = secs()?,
            "token_num_uses" => c.token_num_uses = req.uint(key)?.unwrap_or(0),
            "token_bound_cidrs" | "bound_cidrs" => c.token_bound_cidrs = req.strings(key)?,
            "token_no_default_policy" => c.token_no_default_policy = req.bool(key)?.unwrap_or(false),
            "token_type" if matches!(req.str(key)?, None | Some("default" | "service" | "default-service")) => {}
            "role_name" | "name" if req.str(key)? == Some(name.as_str()) => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not supported by keyward's token roles (see docs/vault-compatibility.md)"
                )))
            }
        }
    }
    let caller = ctx.caller()?;
    ctx.change(|e| ctx.st.kw.write_token_role(&caller.inner, &name, c, e)).await?;
    Ok(done(&req, vec![]))
}

/// `GET auth/token/roles/<name>`.
pub(crate) async fn read_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let r = match ctx.st.kw.token_role(ctx.param("name")).await {
        Err(CoreError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let c = &r.config;
    let data = json!({
        "name": r.name,
        "allowed_policies": c.allowed_policies,
        "disallowed_policies": c.disallowed_policies,
        "orphan": c.orphan,
        "renewable": c.renewable,
        "path_suffix": c.path_suffix,
        "explicit_max_ttl": c.token_explicit_max_ttl,
        "period": c.token_period,
        "token_ttl": c.token_ttl,
        "token_max_ttl": c.token_max_ttl,
        "token_explicit_max_ttl": c.token_explicit_max_ttl,
        "token_period": c.token_period,
        "token_num_uses": c.token_num_uses,
        "token_bound_cidrs": c.token_bound_cidrs,
        "token_no_default_policy": c.token_no_default_policy,
        "token_type": "default-service",
        "allowed_entity_aliases": null,
        "allowed_policies_glob": [],
        "disallowed_policies_glob": [],
    });
    Ok(envelope(&req, data, vec![]))
}

/// `LIST auth/token/roles`.
pub(crate) async fn list_roles(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let keys = ctx.st.kw.token_roles().await?;
    keys_answer(&req, keys)
}

/// `DELETE auth/token/roles/<name>` (its tokens stay, as in Vault).
pub(crate) async fn delete_role(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let name = ctx.param("name").to_owned();
    ctx.change(|e| ctx.st.kw.delete_token_role(&name, e)).await?;
    Ok(done(&req, vec![]))
}
