//! Token roles (`auth/token/roles/<name>`, Vault's shapes): a role lets a caller that may use it
//! create tokens within the role's allowed policies — even ones it does not hold — so writing a
//! role needs every policy it allows. Roles are MAC'd rows (`auth_items` under the token method's
//! fixed id).
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{AuthItem, TokenTerms};
use crate::engine::command::Command;
use crate::{now_nanos, AuditEntry, Caller, CoreError, KeyManager, Keyward, StoreTx, DEFAULT_POLICY};

/// The token method's id in `auth_items` (it has no auth mount row: it is always there).
const TOKEN_METHOD: Uuid = Uuid::nil();
/// The kind of a token role document.
const ROLE_KIND: &str = "token-role";

/// A token role's settings (Vault's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenRoleConfig {
    /// Policies its tokens may have (empty: the creator's own, as without a role).
    pub allowed_policies: Vec<String>,
    /// Policies its tokens may never have.
    pub disallowed_policies: Vec<String>,
    /// Its tokens are orphans (not revoked with their creator).
    pub orphan: bool,
    /// Its tokens may be renewed.
    pub renewable: bool,
    /// Added to the path its tokens show (`auth/token/create/<role>/<suffix>`).
    pub path_suffix: String,
    /// Their TTL in seconds (0: the server's default).
    pub token_ttl: u64,
    /// Their longest TTL in seconds (0: the server's maximum).
    pub token_max_ttl: u64,
    /// Their hard lifetime cap in seconds.
    pub token_explicit_max_ttl: u64,
    /// Their period in seconds (0: not periodic).
    pub token_period: u64,
    /// How many requests each may make (0: unlimited).
    pub token_num_uses: u64,
    /// Addresses they may be used from.
    pub token_bound_cidrs: Vec<String>,
    /// Do not add `default` to their policies.
    pub token_no_default_policy: bool,
}

impl Default for TokenRoleConfig {
    fn default() -> Self {
        Self {
            allowed_policies: vec![],
            disallowed_policies: vec![],
            orphan: false,
            renewable: true,
            path_suffix: String::new(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_explicit_max_ttl: 0,
            token_period: 0,
            token_num_uses: 0,
            token_bound_cidrs: vec![],
            token_no_default_policy: false,
        }
    }
}

impl TokenRoleConfig {
    /// Checks and normalises a role: policy names, CIDRs, terms, a path suffix of path
    /// characters.
    fn validate(&mut self) -> Result<(), CoreError> {
        self.allowed_policies = crate::auth::policy_list(&self.allowed_policies)?;
        self.disallowed_policies = crate::auth::policy_list(&self.disallowed_policies)?;
        self.token_bound_cidrs = crate::auth::parse_cidrs(&self.token_bound_cidrs)?;
        let ok_suffix = self.path_suffix.len() <= 128
            && self.path_suffix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_suffix {
            return Err(CoreError::InvalidInput("path_suffix: at most 128 of a-z, A-Z, 0-9, -, _ and .".into()));
        }
        self.terms().validate()
    }

    /// Its `token_*` settings.
    fn terms(&self) -> TokenTerms {
        TokenTerms {
            policies: self.allowed_policies.clone(),
            ttl: self.token_ttl,
            max_ttl: self.token_max_ttl,
            explicit_max_ttl: self.token_explicit_max_ttl,
            period: self.token_period,
            num_uses: self.token_num_uses,
        }
    }

    /// The policies a token created against the role gets for `asked` (the allowed ones when
    /// none are asked for), `default` added unless disallowed or declined; an error names the
    /// first one the role does not allow. `None` when the role allows the creator's own
    /// policies only (the usual rule then applies).
    pub(crate) fn policies_for(&self, asked: &[String], no_default: bool) -> Result<Option<Vec<String>>, CoreError> {
        if self.allowed_policies.is_empty() {
            if let Some(p) = asked.iter().find(|p| self.disallowed_policies.contains(p)) {
                return Err(CoreError::Forbidden(format!("the token role disallows policy {p:?}")));
            }
            return Ok(None);
        }
        let mut out: Vec<String> = if asked.is_empty() { self.allowed_policies.clone() } else { asked.to_vec() };
        if let Some(p) = out.iter().find(|p| {
            (*p != DEFAULT_POLICY && !self.allowed_policies.contains(p)) || self.disallowed_policies.contains(p)
        }) {
            return Err(CoreError::Forbidden(format!("the token role does not allow policy {p:?}")));
        }
        let default_ok = !no_default && !self.token_no_default_policy;
        if default_ok
            && !self.disallowed_policies.iter().any(|p| p == DEFAULT_POLICY)
            && !out.iter().any(|p| p == DEFAULT_POLICY)
        {
            out.push(DEFAULT_POLICY.into());
        }
        out.retain(|p| p != DEFAULT_POLICY || default_ok);
        Ok(Some(out))
    }
}

/// A token role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRole {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: TokenRoleConfig,
}

/// Stores or deletes a token role.
#[derive(Debug)]
enum RoleChange {
    Put(AuthItem),
    Delete(String),
}

#[async_trait]
impl Command for RoleChange {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        match self {
            RoleChange::Put(item) => Ok(tx.put_auth_item(item).await?),
            RoleChange::Delete(name) => match tx.delete_auth_item(TOKEN_METHOD, ROLE_KIND, name).await? {
                true => Ok(()),
                false => Err(CoreError::NotFound(format!("token role {name:?}"))),
            },
        }
    }
}

impl Keyward {
    /// Creates or replaces a token role; its writer must hold every policy it allows.
    pub async fn write_token_role(
        &self,
        writer: &Caller,
        name: &str,
        mut config: TokenRoleConfig,
        audit: AuditEntry,
    ) -> Result<(), CoreError> {
        crate::auth::validate_name("role name", name)?;
        config.validate()?;
        self.check_grantable(writer, &config.allowed_policies, "a token role").await?;
        let body = serde_json::to_string(&config).map_err(|e| CoreError::InvalidInput(e.to_string()))?;
        let created_at =
            self.store.auth_item(TOKEN_METHOD, ROLE_KIND, name).await?.map_or_else(now_nanos, |i| i.created_at);
        let item = AuthItem { mount_id: TOKEN_METHOD, kind: ROLE_KIND.into(), name: name.to_owned(), body, created_at };
        self.writer.submit(RoleChange::Put(item), audit).await
    }

    /// A token role.
    pub async fn token_role(&self, name: &str) -> Result<TokenRole, CoreError> {
        let item = self
            .store
            .auth_item(TOKEN_METHOD, ROLE_KIND, name)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("token role {name:?}")))?;
        let config = serde_json::from_str(&item.body).map_err(|_| crate::StoreError::Corrupt("token role".into()))?;
        Ok(TokenRole { name: item.name, config })
    }

    /// The names of the token roles.
    pub async fn token_roles(&self) -> Result<Vec<String>, CoreError> {
        Ok(self.store.auth_items(TOKEN_METHOD, ROLE_KIND).await?.into_iter().map(|i| i.name).collect())
    }

    /// Deletes a token role (the tokens made with it stay, as in Vault).
    pub async fn delete_token_role(&self, name: &str, audit: AuditEntry) -> Result<(), CoreError> {
        self.writer.submit(RoleChange::Delete(name.to_owned()), audit).await
    }
}
