//! JWT login (DESIGN §4): CI jobs and Kubernetes pods log in with the token their platform signed.
//! A method's config names where its keys come from — PEM keys in the config, a JWKS URL or an
//! OIDC discovery URL (fetched by the server through [`JwtKeySource`]) — and its roles bind the
//! claims a token must carry. Config and roles are MAC'd rows: whoever could swap the keys or
//! widen a role could mint logins.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use keyward_crypto::{verify_jwt, CryptoError, JwsAlg, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::approle::{ip_in, parse_cidrs, validate_name};
use super::commands::{mount_of, revoke_origin};
use super::{AuthItem, AuthKind, AuthMount, TokenTerms};
use crate::engine::command::{details, Command};
use crate::tokens::NewToken;
use crate::{now_nanos, AuditEntry, Caller, CoreError, KeyManager, Keyward, StoreTx, TokenOrigin, TokenRecord};

/// The kind of a JWT method's config document.
const CONFIG_KIND: &str = "jwt-config";
/// The kind of a JWT role document.
const ROLE_KIND: &str = "jwt-role";
/// How far `exp`, `nbf` and `iat` may be off, in seconds.
const LEEWAY_SECS: i64 = 60;
/// The algorithms a config allows when it names none.
const DEFAULT_ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// A JWT method's config (Vault's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// PEM public keys tokens may be signed with.
    pub jwt_validation_pubkeys: Vec<String>,
    /// A JWKS document's HTTPS URL.
    pub jwks_url: String,
    /// The CA (PEM) that signs `jwks_url`'s certificate, if not a public one.
    pub jwks_ca_pem: String,
    /// An OIDC issuer whose discovery document names the JWKS; tokens must name it as `iss`.
    pub oidc_discovery_url: String,
    /// The CA (PEM) that signs `oidc_discovery_url`'s certificate, if not a public one.
    pub oidc_discovery_ca_pem: String,
    /// The `iss` every token must carry.
    pub bound_issuer: String,
    /// The signature algorithms accepted (default RS256, ES256, EdDSA).
    pub jwt_supported_algs: Vec<String>,
    /// The role a login uses when it names none.
    pub default_role: String,
    /// Fetch keys from non-global addresses (an in-cluster issuer); honoured only when the
    /// server runs with `--auth-allow-private-network`.
    pub allow_private_network: bool,
}

/// Where a config's keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySourceKind<'a> {
    /// PEM keys in the config itself.
    Pem(&'a [String]),
    /// A JWKS document.
    Jwks {
        /// Its HTTPS URL.
        url: &'a str,
        /// The CA that signs its server's certificate (PEM; empty: public roots).
        ca_pem: &'a str,
    },
    /// An OIDC discovery document, which names the JWKS.
    Discovery {
        /// The issuer URL (the document is at `<url>/.well-known/openid-configuration`).
        url: &'a str,
        /// The CA that signs its server's certificate (PEM; empty: public roots).
        ca_pem: &'a str,
    },
}

impl JwtConfig {
    /// Checks the config: exactly one key source, HTTPS URLs, PEM keys that parse, known
    /// algorithms (never `none` or HMAC).
    pub fn validate(&self) -> Result<(), CoreError> {
        let sources =
            [!self.jwt_validation_pubkeys.is_empty(), !self.jwks_url.is_empty(), !self.oidc_discovery_url.is_empty()];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(CoreError::InvalidInput(
                "exactly one of jwt_validation_pubkeys, jwks_url and oidc_discovery_url must be set".into(),
            ));
        }
        for (name, url) in [("jwks_url", &self.jwks_url), ("oidc_discovery_url", &self.oidc_discovery_url)] {
            if !url.is_empty()
                && (!url.starts_with("https://") || url.len() > 2048 || url.chars().any(char::is_whitespace))
            {
                return Err(CoreError::InvalidInput(format!("{name} must be an https:// URL")));
            }
        }
        for pem in &self.jwt_validation_pubkeys {
            VerifyingKey::from_pem(pem).map_err(|e| CoreError::InvalidInput(format!("jwt_validation_pubkeys: {e}")))?;
        }
        self.algs()?;
        Ok(())
    }

    /// The accepted algorithms.
    pub fn algs(&self) -> Result<Vec<JwsAlg>, CoreError> {
        let names: Vec<&str> = if self.jwt_supported_algs.is_empty() {
            DEFAULT_ALGS.to_vec()
        } else {
            self.jwt_supported_algs.iter().map(String::as_str).collect()
        };
        names
            .into_iter()
            .map(|n| {
                JwsAlg::parse(n).ok_or_else(|| {
                    CoreError::InvalidInput(format!(
                        "jwt_supported_algs: {n:?} is not accepted (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA; \
                         never none or HMAC)"
                    ))
                })
            })
            .collect()
    }

    /// Where its keys come from.
    pub fn source(&self) -> KeySourceKind<'_> {
        if !self.jwks_url.is_empty() {
            KeySourceKind::Jwks { url: &self.jwks_url, ca_pem: &self.jwks_ca_pem }
        } else if !self.oidc_discovery_url.is_empty() {
            KeySourceKind::Discovery { url: &self.oidc_discovery_url, ca_pem: &self.oidc_discovery_ca_pem }
        } else {
            KeySourceKind::Pem(&self.jwt_validation_pubkeys)
        }
    }
}

/// Keys fetched for a config.
#[derive(Debug, Clone)]
pub struct FetchedKeys {
    /// The verifying keys.
    pub keys: Arc<Vec<VerifyingKey>>,
    /// The issuer the discovery document named (tokens must carry it as `iss`).
    pub issuer: Option<String>,
}

/// Fetches the keys of configs that name a URL (the server: HTTPS, its egress rules, a cache).
#[async_trait]
pub trait JwtKeySource: Send + Sync {
    /// The keys of `config` on auth mount `mount`; `refresh` asks for a fresh fetch (a token
    /// named an unknown key ID), which the source may decline when it fetched recently.
    async fn keys(&self, mount: Uuid, config: &JwtConfig, refresh: bool) -> Result<FetchedKeys, CoreError>;
}

/// A JWT role's settings (Vault's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtRoleConfig {
    /// `jwt` (the OIDC browser flow is not supported).
    pub role_type: String,
    /// The claim that names the caller (shown as the token's display name and audited).
    pub user_claim: String,
    /// Audiences, one of which `aud` must carry.
    pub bound_audiences: Vec<String>,
    /// The `sub` a token must carry.
    pub bound_subject: String,
    /// Claims (a name, or a JSON pointer for nested ones) and the values each may take.
    pub bound_claims: BTreeMap<String, Vec<String>>,
    /// `string` (exact) or `glob` (`*` matches any run of characters).
    pub bound_claims_type: String,
    /// Claims copied into the token's metadata, under the names given.
    pub claim_mappings: BTreeMap<String, String>,
    /// Policies of the tokens its logins get.
    pub token_policies: Vec<String>,
    /// Their TTL in seconds (0: the server's default).
    pub token_ttl: u64,
    /// Their longest TTL in seconds (0: the server's maximum).
    pub token_max_ttl: u64,
    /// Their hard lifetime cap in seconds (0: none beyond `token_max_ttl`).
    pub token_explicit_max_ttl: u64,
    /// Their period in seconds (0: not periodic).
    pub token_period: u64,
    /// How many requests each may make (0: unlimited).
    pub token_num_uses: u64,
    /// Addresses logins may come from and their tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
}

impl Default for JwtRoleConfig {
    fn default() -> Self {
        Self {
            role_type: "jwt".into(),
            user_claim: String::new(),
            bound_audiences: vec![],
            bound_subject: String::new(),
            bound_claims: BTreeMap::new(),
            bound_claims_type: "string".into(),
            claim_mappings: BTreeMap::new(),
            token_policies: vec![],
            token_ttl: 0,
            token_max_ttl: 0,
            token_explicit_max_ttl: 0,
            token_period: 0,
            token_num_uses: 0,
            token_bound_cidrs: vec![],
        }
    }
}

super::model::token_terms!(JwtRoleConfig);

impl JwtRoleConfig {
    /// Checks a role: a JWT role that names its user claim, its audiences and at least a subject
    /// or a claim binding (a role bound only to an issuer would admit every repository on
    /// GitHub).
    pub fn validate(&mut self) -> Result<(), CoreError> {
        match self.role_type.as_str() {
            "jwt" => {}
            "oidc" => {
                return Err(CoreError::NotSupported(
                    "role_type \"oidc\" (the browser login flow) is not supported by keyward; use role_type \"jwt\" \
                     with tokens your platform issues"
                        .into(),
                ))
            }
            other => return Err(CoreError::InvalidInput(format!("role_type {other:?}: expected \"jwt\""))),
        }
        if self.user_claim.trim().is_empty() {
            return Err(CoreError::InvalidInput("user_claim is required (e.g. \"sub\")".into()));
        }
        if self.bound_audiences.iter().all(|a| a.trim().is_empty()) {
            return Err(CoreError::InvalidInput("bound_audiences is required".into()));
        }
        if self.bound_subject.is_empty() && self.bound_claims.is_empty() {
            return Err(CoreError::InvalidInput(
                "a role needs bound_subject or bound_claims: bound only to an issuer, it would admit every token that \
                 issuer signs (every repository on GitHub)"
                    .into(),
            ));
        }
        if !matches!(self.bound_claims_type.as_str(), "string" | "glob") {
            return Err(CoreError::InvalidInput("bound_claims_type must be \"string\" or \"glob\"".into()));
        }
        if self.bound_claims.values().any(Vec::is_empty) {
            return Err(CoreError::InvalidInput("bound_claims: every claim needs at least one value".into()));
        }
        if self.claim_mappings.values().any(|k| k.is_empty() || k.len() > 128 || k.chars().any(char::is_control)) {
            return Err(CoreError::InvalidInput("claim_mappings: metadata names of 1 to 128 bytes".into()));
        }
        self.token_policies = super::policy_list(&self.token_policies)?;
        self.token_bound_cidrs = parse_cidrs(&self.token_bound_cidrs)?;
        self.terms().validate()
    }
}

/// A JWT role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRole {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: JwtRoleConfig,
}

/// A claim by name, or by JSON pointer when it starts with `/`.
fn claim<'a>(claims: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if key.starts_with('/') {
        // A pointer into the claims object: go through a borrowed wrapper without copying.
        let mut parts = key.split('/').skip(1).map(|p| p.replace("~1", "/").replace("~0", "~"));
        let first = parts.next()?;
        let mut v = claims.get(&first)?;
        for p in parts {
            v = match v {
                Value::Object(m) => m.get(&p)?,
                Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    } else {
        claims.get(key)
    }
}

/// A scalar claim as text (strings, numbers, booleans).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None::<usize>, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn refuse(why: &str) -> CoreError {
    CoreError::InvalidInput(format!("invalid JWT: {why}"))
}

/// A number claim (`exp`, `nbf`, `iat`) in whole seconds.
fn seconds(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, CoreError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            // Fractions are truncated; a value out of range is as bad as a missing one.
            let v = n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f as i64));
            v.map(Some).ok_or_else(|| refuse(&format!("{name} is not a time")))
        }
        Some(_) => Err(refuse(&format!("{name} is not a number"))),
    }
}

/// What a token's checked claims give a login: the user claim's value and the token metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckedClaims {
    /// The user claim's value.
    user: String,
    /// `role` and the mapped claims.
    meta: BTreeMap<String, String>,
}

/// Checks verified claims against the time (`now`, seconds), the expected issuer and a role's
/// bindings. Each refusal says which rule failed, never a claim's value.
fn check_claims(
    claims: &Map<String, Value>,
    now: i64,
    issuer: Option<&str>,
    role: &JwtRole,
) -> Result<CheckedClaims, CoreError> {
    let exp = seconds(claims, "exp")?.ok_or_else(|| refuse("exp is required"))?;
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(refuse("expired"));
    }
    if seconds(claims, "nbf")?.is_some_and(|nbf| now.saturating_add(LEEWAY_SECS) < nbf) {
        return Err(refuse("not yet valid (nbf)"));
    }
    if seconds(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS)) {
        return Err(refuse("issued in the future (iat)"));
    }
    if let Some(expected) = issuer.filter(|i| !i.is_empty()) {
        if claims.get("iss").and_then(Value::as_str) != Some(expected) {
            return Err(refuse("the issuer (iss) does not match"));
        }
    }
    let c = &role.config;
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !auds.iter().any(|a| c.bound_audiences.iter().any(|b| b == a)) {
        return Err(refuse("the audience (aud) does not match the role's bound_audiences"));
    }
    if !c.bound_subject.is_empty() && claims.get("sub").and_then(Value::as_str) != Some(c.bound_subject.as_str()) {
        return Err(refuse("the subject (sub) does not match the role's bound_subject"));
    }
    let glob = c.bound_claims_type == "glob";
    for (name, allowed) in &c.bound_claims {
        let values: Vec<String> = match claim(claims, name) {
            Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v).into_iter().collect(),
            None => vec![],
        };
        let fits = |v: &String| allowed.iter().any(|a| if glob { glob_match(a, v) } else { a == v });
        if !values.iter().any(fits) {
            return Err(refuse(&format!("claim {name:?} does not match the role's bound_claims")));
        }
    }
    let user = claim(claims, &c.user_claim)
        .and_then(scalar)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| refuse(&format!("the user claim {:?} is missing or not a string", c.user_claim)))?;
    let mut meta = BTreeMap::from([("role".to_owned(), role.name.clone())]);
    for (source, target) in &c.claim_mappings {
        match claim(claims, source) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let text = scalar(v).ok_or_else(|| refuse(&format!("claim {source:?} to map is not a string")))?;
                meta.insert(target.clone(), text.chars().take(512).collect());
            }
        }
    }
    crate::tokens::validate_meta(&meta)?;
    Ok(CheckedClaims { user, meta })
}

/// A JWT login refused for its token, as the client sees it.
fn jwt_error(e: CryptoError) -> CoreError {
    match e {
        CryptoError::InvalidJwt(why) => refuse(why),
        CryptoError::UnknownJwtKey => refuse("its key ID (kid) is not among the configured keys"),
        other => CoreError::InvalidInput(other.to_string()),
    }
}

/// Stores a JWT method's config or role.
#[derive(Debug)]
struct PutItem {
    mount: String,
    item: AuthItem,
}

#[async_trait]
impl Command for PutItem {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let m = mount_of(tx, &self.mount, AuthKind::Jwt).await?;
        tx.put_auth_item(&AuthItem { mount_id: m.id, ..self.item.clone() }).await?;
        Ok(())
    }
}

/// Deletes a JWT role and revokes the tokens its logins issued.
#[derive(Debug)]
struct DeleteJwtRole {
    mount: String,
    name: String,
}

#[async_trait]
impl Command for DeleteJwtRole {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        let m = mount_of(tx, &self.mount, AuthKind::Jwt).await?;
        if !tx.delete_auth_item(m.id, ROLE_KIND, &self.name).await? {
            return Err(CoreError::NotFound(format!("role {:?}", self.name)));
        }
        let origin = TokenOrigin { auth_mount: m.id.to_string(), role: self.name.clone(), ..TokenOrigin::default() };
        revoke_origin(tx, &origin).await
    }

    fn evicts(&self) -> crate::engine::command::Evict<'_> {
        crate::engine::command::Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        details([("tokens_revoked", (*n).into())])
    }
}

/// Stores a JWT login's token, once its mount and role are found again inside the transaction
/// (a role deleted meanwhile issues nothing).
#[derive(Debug)]
struct JwtLogin {
    mount: String,
    role: String,
    token: TokenRecord,
}

#[async_trait]
impl Command for JwtLogin {
    type Reply = TokenRecord;
    const ADDS_DETAILS: bool = true;

    fn audit_details(t: &TokenRecord) -> Option<Map<String, Value>> {
        let meta: Map<String, Value> = t.meta.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        details([("issued_accessor", t.accessor.clone().into()), ("metadata", Value::Object(meta))])
    }

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<TokenRecord, CoreError> {
        let m = mount_of(tx, &self.mount, AuthKind::Jwt).await?;
        let origin = TokenOrigin { auth_mount: m.id.to_string(), role: self.role.clone(), ..TokenOrigin::default() };
        let token = TokenRecord { origin, ..self.token.clone() };
        tx.insert_token(&token).await?;
        Ok(token)
    }
}

impl Keyward {
    async fn jwt_mount(&self, path: &str) -> Result<AuthMount, CoreError> {
        match self.find_auth_mount(path).await? {
            Some(m) if m.kind == AuthKind::Jwt => Ok(m),
            _ => Err(CoreError::NotFound(format!("jwt auth method at auth/{path}"))),
        }
    }

    /// Writes the config of the JWT method at `auth/<mount>`.
    pub async fn write_jwt_config(&self, mount: &str, config: JwtConfig, audit: AuditEntry) -> Result<(), CoreError> {
        let m = self.jwt_mount(mount).await?;
        config.validate()?;
        let body = serde_json::to_string(&config).map_err(|e| CoreError::InvalidInput(e.to_string()))?;
        let item =
            AuthItem { mount_id: m.id, kind: CONFIG_KIND.into(), name: String::new(), body, created_at: now_nanos() };
        self.writer.submit(PutItem { mount: mount.to_owned(), item }, audit).await
    }

    /// The config of the JWT method at `auth/<mount>` (`None` before one is written).
    pub async fn jwt_config(&self, mount: &str) -> Result<Option<JwtConfig>, CoreError> {
        let m = self.jwt_mount(mount).await?;
        self.jwt_config_of(m.id).await
    }

    async fn jwt_config_of(&self, mount_id: Uuid) -> Result<Option<JwtConfig>, CoreError> {
        let Some(item) = self.store.auth_item(mount_id, CONFIG_KIND, "").await? else { return Ok(None) };
        serde_json::from_str(&item.body).map(Some).map_err(|_| crate::StoreError::Corrupt("jwt config".into()).into())
    }

    /// Creates or replaces a JWT role; its writer must hold every policy it grants.
    pub async fn write_jwt_role(
        &self,
        writer: &Caller,
        mount: &str,
        name: &str,
        mut config: JwtRoleConfig,
        audit: AuditEntry,
    ) -> Result<(), CoreError> {
        validate_name("role name", name)?;
        let m = self.jwt_mount(mount).await?;
        config.validate()?;
        self.check_grantable(writer, &config.token_policies, "a role").await?;
        let body = serde_json::to_string(&config).map_err(|e| CoreError::InvalidInput(e.to_string()))?;
        let created_at = self.store.auth_item(m.id, ROLE_KIND, name).await?.map_or_else(now_nanos, |i| i.created_at);
        let item = AuthItem { mount_id: m.id, kind: ROLE_KIND.into(), name: name.to_owned(), body, created_at };
        self.writer.submit(PutItem { mount: mount.to_owned(), item }, audit).await
    }

    /// A JWT role.
    pub async fn jwt_role(&self, mount: &str, name: &str) -> Result<JwtRole, CoreError> {
        let m = self.jwt_mount(mount).await?;
        self.jwt_role_of(m.id, name).await?.ok_or_else(|| CoreError::NotFound(format!("role {name:?}")))
    }

    async fn jwt_role_of(&self, mount_id: Uuid, name: &str) -> Result<Option<JwtRole>, CoreError> {
        let Some(item) = self.store.auth_item(mount_id, ROLE_KIND, name).await? else { return Ok(None) };
        let config = serde_json::from_str(&item.body).map_err(|_| crate::StoreError::Corrupt("jwt role".into()))?;
        Ok(Some(JwtRole { name: item.name, config }))
    }

    /// The names of a JWT method's roles.
    pub async fn jwt_roles(&self, mount: &str) -> Result<Vec<String>, CoreError> {
        let m = self.jwt_mount(mount).await?;
        Ok(self.store.auth_items(m.id, ROLE_KIND).await?.into_iter().map(|i| i.name).collect())
    }

    /// Deletes a JWT role and revokes the tokens its logins issued; returns how many.
    pub async fn delete_jwt_role(&self, mount: &str, name: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(DeleteJwtRole { mount: mount.to_owned(), name: name.to_owned() }, audit).await
    }

    /// The claims of `jwt` once its signature verifies under the config's keys, and the issuer a
    /// discovery document named. An unknown key ID asks the source for fresh keys once.
    async fn verified_claims(
        &self,
        mount_id: Uuid,
        config: &JwtConfig,
        jwt: &str,
        source: &dyn JwtKeySource,
    ) -> Result<(Map<String, Value>, Option<String>), CoreError> {
        let algs = config.algs()?;
        if let KeySourceKind::Pem(pems) = config.source() {
            let keys = pems.iter().map(|p| VerifyingKey::from_pem(p)).collect::<Result<Vec<_>, _>>()?;
            return verify_jwt(jwt, &keys, &algs).map(|c| (c, None)).map_err(jwt_error);
        }
        let fetched = source.keys(mount_id, config, false).await?;
        match verify_jwt(jwt, &fetched.keys, &algs) {
            Err(CryptoError::UnknownJwtKey) => {
                let fresh = source.keys(mount_id, config, true).await?;
                verify_jwt(jwt, &fresh.keys, &algs).map(|c| (c, fresh.issuer)).map_err(jwt_error)
            }
            other => other.map(|c| (c, fetched.issuer)).map_err(jwt_error),
        }
    }

    /// Logs in with a JWT on the method at `auth/<mount>` as `role` (the config's `default_role`
    /// when empty): the signature, the time claims, the issuer and the role's bindings must all
    /// hold. The token is an orphan with the role's policies and the mapped claims as metadata.
    pub async fn jwt_login(
        &self,
        mount: &str,
        role: &str,
        jwt: &str,
        ip: IpAddr,
        source: &dyn JwtKeySource,
        audit: AuditEntry,
    ) -> Result<NewToken, CoreError> {
        let m = self.jwt_mount(mount).await?;
        let config = self
            .jwt_config_of(m.id)
            .await?
            .ok_or_else(|| CoreError::InvalidInput(format!("the JWT method at auth/{mount} is not configured")))?;
        let name = if role.is_empty() { config.default_role.as_str() } else { role };
        if name.is_empty() {
            return Err(CoreError::InvalidInput("missing \"role\"".into()));
        }
        let role = self
            .jwt_role_of(m.id, name)
            .await?
            .ok_or_else(|| CoreError::InvalidInput(format!("role {name:?} could not be found")))?;
        let (claims, discovered) = self.verified_claims(m.id, &config, jwt, source).await?;
        let issuer = if config.bound_issuer.is_empty() { discovered } else { Some(config.bound_issuer.clone()) };
        let now = now_nanos() / 1_000_000_000;
        let checked = check_claims(&claims, now, issuer.as_deref(), &role)?;
        let c = &role.config;
        if !ip_in(&c.token_bound_cidrs, ip) {
            return Err(CoreError::Forbidden("source address not allowed by the role's token_bound_cidrs".into()));
        }
        let grant = self.login_grant(&c.terms());
        let display: String = checked.user.chars().filter(|ch| !ch.is_control()).take(100).collect();
        let (token, record) =
            self.login_token(format!("jwt-{display}"), grant, c.token_bound_cidrs.clone(), checked.meta).await?;
        let mut audit = audit;
        for (k, v) in
            [("method", "jwt"), ("role", role.name.as_str()), ("user", display.as_str()), ("auth_mount", mount)]
        {
            audit.details.insert(k.into(), v.into());
        }
        let cmd = JwtLogin { mount: mount.to_owned(), role: role.name.clone(), token: record };
        let record = self.writer.submit(cmd, audit).await?;
        Ok(NewToken { token, record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(config: Value) -> JwtRole {
        let mut c: JwtRoleConfig = serde_json::from_value(config).unwrap();
        c.validate().unwrap();
        JwtRole { name: "ci".into(), config: c }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn claims_are_checked_rule_by_rule() {
        let r = role(json!({"user_claim": "sub", "bound_audiences": ["keyward"],
            "bound_claims": {"repository": ["acme/app"], "/ctx/ref": ["refs/heads/main"]},
            "claim_mappings": {"repository": "repo", "run_id": "run"}}));
        let good = json!({"iss": "https://t.example", "aud": ["other", "keyward"], "sub": "repo:acme/app",
            "repository": "acme/app", "ctx": {"ref": "refs/heads/main"}, "run_id": 42, "exp": NOW + 300});
        let ok = check_claims(&claims(good.clone()), NOW, Some("https://t.example"), &r).unwrap();
        assert_eq!(ok.user, "repo:acme/app");
        assert_eq!(ok.meta.get("repo").map(String::as_str), Some("acme/app"));
        assert_eq!(ok.meta.get("run").map(String::as_str), Some("42"));
        assert_eq!(ok.meta.get("role").map(String::as_str), Some("ci"));
        let refused = |patch: Value, issuer: Option<&str>| {
            let mut c = claims(good.clone());
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
            check_claims(&c, NOW, issuer, &r).unwrap_err().to_string()
        };
        assert!(refused(json!({"exp": NOW - 61}), None).contains("expired"));
        assert!(
            check_claims(
                &claims(json!({"exp": NOW - 59, "aud": "keyward", "sub": "x", "repository": "acme/app",
            "ctx": {"ref": "refs/heads/main"}})),
                NOW,
                None,
                &r
            )
            .is_ok(),
            "within the leeway"
        );
        assert!(refused(json!({"exp": null}), None).contains("exp is required"));
        assert!(refused(json!({"nbf": NOW + 120}), None).contains("nbf"));
        assert!(refused(json!({"iat": NOW + 120}), None).contains("iat"));
        assert!(refused(json!({}), Some("https://other.example")).contains("issuer"));
        assert!(refused(json!({"aud": "someone-else"}), None).contains("audience"));
        assert!(refused(json!({"repository": "evil/app"}), None).contains("\"repository\""));
        assert!(refused(json!({"ctx": {"ref": "refs/heads/dev"}}), None).contains("/ctx/ref"));
        assert!(refused(json!({"sub": null}), None).contains("user claim"));
        // No value of a claim ever appears in a refusal.
        assert!(!refused(json!({"repository": "evil/app"}), None).contains("evil"));
    }

    #[test]
    fn globs_and_list_claims_match_as_vaults_do() {
        assert!(glob_match("repo:acme/*:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYc"));
        assert!(!glob_match("repo:acme/*", "repo:evil/acme/x"));
        assert!(!glob_match("repo:acme/*:main", "repo:evil/x:main"));
        let r = role(json!({"user_claim": "sub", "bound_audiences": ["k"], "bound_claims_type": "glob",
            "bound_claims": {"groups": ["team-*"]}}));
        let c = json!({"aud": "k", "sub": "u", "groups": ["staff", "team-payments"], "exp": NOW + 10});
        assert!(check_claims(&claims(c), NOW, None, &r).is_ok());
        let c = json!({"aud": "k", "sub": "u", "groups": ["staff"], "exp": NOW + 10});
        assert!(check_claims(&claims(c), NOW, None, &r).is_err());
    }

    #[test]
    fn roles_must_bind_more_than_an_issuer() {
        let bad = |v: Value| {
            let mut c: JwtRoleConfig = serde_json::from_value(v).unwrap();
            c.validate().unwrap_err()
        };
        assert!(bad(json!({"bound_audiences": ["k"], "bound_subject": "s"})).to_string().contains("user_claim"));
        assert!(bad(json!({"user_claim": "sub", "bound_subject": "s"})).to_string().contains("bound_audiences"));
        assert!(bad(json!({"user_claim": "sub", "bound_audiences": ["k"]})).to_string().contains("bound_subject"));
        assert!(matches!(
            bad(json!({"role_type": "oidc", "user_claim": "sub", "bound_audiences": ["k"], "bound_subject": "s"})),
            CoreError::NotSupported(_)
        ));
    }

    #[test]
    fn a_config_has_exactly_one_key_source_and_no_hmac() {
        let c = |v: Value| serde_json::from_value::<JwtConfig>(v).unwrap().validate();
        assert!(c(json!({})).is_err());
        assert!(c(json!({"jwks_url": "https://a/k", "oidc_discovery_url": "https://a"})).is_err());
        assert!(c(json!({"jwks_url": "http://a/k"})).is_err());
        assert!(c(json!({"jwks_url": "https://a/k"})).is_ok());
        assert!(c(json!({"jwks_url": "https://a/k", "jwt_supported_algs": ["HS256"]})).is_err());
        assert!(c(json!({"jwks_url": "https://a/k", "jwt_supported_algs": ["none"]})).is_err());
        assert!(c(json!({"jwt_validation_pubkeys": ["not a pem"]})).is_err());
    }
}
