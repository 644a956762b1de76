//! Login methods (DESIGN §4): auth mounts like Vault's `sys/auth`, and AppRole. A login is a
//! pipeline operation of class `login`; the token it issues is an orphan whose ACL is its role's
//! policies, and it is revoked with its role, secret ID or auth mount.
mod approle;
mod commands;
mod jwt;
mod model;
mod userpass;

pub(crate) use approle::{parse_cidrs, validate_name};
pub use approle::{NewSecretId, RoleField, RoleRequest, SecretIdRequest};
pub use jwt::{FetchedKeys, JwtConfig, JwtKeySource, JwtRole, JwtRoleConfig, KeySourceKind};
pub use model::{
    role_key, AppRole, AppRoleConfig, AuthItem, AuthKind, AuthMount, LoginFailures, SecretIdRecord, TokenTerms, User,
    UserConfig,
};
pub use userpass::{UserLogin, UserRequest, ENROL_PURPOSE, UI_SESSION_SECS};

use commands::{DisableAuth, EnableAuth};

use crate::{now_nanos, validate_mount_path, AuditEntry, Caller, CoreError, Keyward, DEFAULT_POLICY, ROOT_POLICY};

impl Keyward {
    /// Enables a login method of `kind` at `auth/<path>`.
    pub async fn enable_auth(
        &self,
        path: &str,
        kind: AuthKind,
        description: &str,
        audit: AuditEntry,
    ) -> Result<AuthMount, CoreError> {
        validate_mount_path(path)?;
        if path == "token" {
            return Err(CoreError::Conflict("path is already in use at auth/token/ (the token method)".into()));
        }
        if description.len() > 256 || description.chars().any(char::is_control) {
            return Err(CoreError::InvalidInput("description: at most 256 bytes, no control characters".into()));
        }
        let mount = AuthMount {
            id: uuid::Uuid::new_v4(),
            path: path.to_owned(),
            kind,
            description: description.to_owned(),
            created_at: now_nanos(),
        };
        self.writer.submit(EnableAuth(mount.clone()), audit).await?;
        Ok(mount)
    }

    /// Disables the login method at `auth/<path>`: its roles and secret IDs are deleted and every
    /// token it issued is revoked, in one transaction. Returns how many tokens were revoked.
    pub async fn disable_auth(&self, path: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(DisableAuth(path.to_owned()), audit).await
    }

    /// The enabled login methods.
    pub async fn auth_mounts(&self) -> Result<Vec<AuthMount>, CoreError> {
        Ok(self.store.auth_mounts().await?)
    }

    /// The login method at `auth/<path>`, if any.
    pub async fn find_auth_mount(&self, path: &str) -> Result<Option<AuthMount>, CoreError> {
        Ok(self.store.auth_mounts().await?.into_iter().find(|m| m.path == path))
    }
}

/// Policy names as given: trimmed, validated, each once.
pub(crate) fn policy_list(names: &[String]) -> Result<Vec<String>, CoreError> {
    let mut out: Vec<String> = Vec::new();
    for name in names.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        crate::validate_policy_name(name)?;
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

impl Keyward {
    /// Whether `writer` may write an identity (`what`: "a role", "a user") whose logins get
    /// `policies`: it must hold each (root may grant any) — otherwise writing identities would
    /// mint any policy — and each must exist.
    pub(crate) async fn check_grantable(
        &self,
        writer: &Caller,
        policies: &[String],
        what: &str,
    ) -> Result<(), CoreError> {
        if !writer.acl.is_root() {
            if let Some(p) = policies.iter().find(|p| *p != DEFAULT_POLICY && !writer.token.policies.contains(p)) {
                return Err(CoreError::Forbidden(format!(
                    "{what} can only be given policies its writer holds, and yours lacks {p:?}"
                )));
            }
        }
        let known = self.store.policy_names().await?;
        if let Some(p) = policies.iter().find(|p| *p != ROOT_POLICY && *p != DEFAULT_POLICY && !known.contains(p)) {
            return Err(CoreError::InvalidInput(format!("policy {p:?} does not exist")));
        }
        Ok(())
    }

    /// A login token's terms from its identity's `token_*` settings: TTL (the server's default
    /// for 0), lifetime cap (`token_max_ttl` and `token_explicit_max_ttl`, within the server's
    /// maximum; a periodic token is capped by `token_explicit_max_ttl` alone), `default` added to
    /// its policies.
    pub(crate) fn login_grant(&self, t: &model::TokenTerms) -> model::TokenTerms {
        let server_max = self.config.max_token_ttl_secs;
        let cap = [t.max_ttl, t.explicit_max_ttl].into_iter().filter(|m| *m > 0).min().unwrap_or(0);
        let max = match (t.period, cap) {
            (0, 0) => server_max,
            (0, m) => m.min(server_max),
            (_, m) => m,
        };
        let ttl = match (t.period, t.ttl) {
            (0, 0) => self.config.default_token_ttl_secs,
            (0, ttl) => ttl,
            (p, _) => p.min(server_max),
        };
        let ttl = if max > 0 { ttl.min(max) } else { ttl };
        let mut policies = t.policies.clone();
        if !policies.iter().any(|p| p == DEFAULT_POLICY) {
            policies.push(DEFAULT_POLICY.into());
        }
        model::TokenTerms { policies, ttl, max_ttl: max, explicit_max_ttl: max, period: t.period, num_uses: t.num_uses }
    }

    /// A new orphan token for a login on `grant` (from [`Keyward::login_grant`]; its origin is
    /// filled in by the login's transaction).
    pub(crate) async fn login_token(
        &self,
        display_name: String,
        grant: model::TokenTerms,
        allowed_cidrs: Vec<String>,
        meta: std::collections::BTreeMap<String, String>,
    ) -> Result<(keyward_crypto::Token, crate::TokenRecord), CoreError> {
        let key = self.keys.token_key(self.store.as_ref()).await?;
        let token = keyward_crypto::Token::generate();
        let now = now_nanos();
        let record = crate::TokenRecord {
            allowed_cidrs,
            meta,
            explicit_max_ttl_secs: grant.explicit_max_ttl,
            period_secs: grant.period,
            uses_left: grant.num_uses,
            ..crate::TokenRecord::issued(
                (crate::service::new_accessor(), key.digest(&token).0),
                grant.policies,
                display_name,
                now,
                grant.ttl,
            )
        };
        Ok((token, record))
    }
}
