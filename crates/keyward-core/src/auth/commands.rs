//! Login-method changes, each in the writer's transaction with its audit entry: enabling and
//! disabling auth mounts, writing and deleting roles, making and destroying secret IDs, and the
//! login itself (its secret ID's use counted and its token stored in one transaction).
use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{AppRole, AuthKind, AuthMount, SecretIdRecord};
use crate::engine::command::{details, Command, Evict};
use crate::tokens::revoke_tree;
use crate::{now_nanos, CoreError, KeyManager, StoreTx, TokenOrigin, TokenRecord};

/// Revokes every live token a login issued under `origin` (and their children); how many.
pub(crate) async fn revoke_origin(tx: &mut dyn StoreTx, origin: &TokenOrigin) -> Result<u64, CoreError> {
    let mut revoked = 0;
    for accessor in tx.tokens_of_origin(origin).await? {
        revoked += revoke_tree(tx, &accessor).await?;
    }
    Ok(revoked)
}

fn revoked_details(n: &u64) -> Option<Map<String, Value>> {
    details([("tokens_revoked", (*n).into())])
}

/// The auth mount at a path, of the kind asked for.
pub(crate) async fn mount_of(tx: &mut dyn StoreTx, path: &str, kind: AuthKind) -> Result<AuthMount, CoreError> {
    match tx.auth_mount(path).await? {
        Some(m) if m.kind == kind => Ok(m),
        _ => Err(CoreError::NotFound(format!("{} auth method at auth/{path}", kind.as_str()))),
    }
}

/// Enables a login method.
#[derive(Debug)]
pub(crate) struct EnableAuth(pub AuthMount);

#[async_trait]
impl Command for EnableAuth {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<(), CoreError> {
        if tx.auth_mount(&self.0.path).await?.is_some() {
            return Err(CoreError::Conflict(format!("path is already in use at auth/{}/", self.0.path)));
        }
        if self.0.kind == AuthKind::Userpass {
            keys.ensure_auth_key(tx).await?;
        }
        tx.insert_auth_mount(&self.0).await?;
        Ok(())
    }
}

/// Disables a login method: its roles and secret IDs go, and every token it issued is revoked.
#[derive(Debug)]
pub(crate) struct DisableAuth(pub String);

#[async_trait]
impl Command for DisableAuth {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        let Some(mount) = tx.auth_mount(&self.0).await? else {
            return Err(CoreError::NotFound(format!("auth method at auth/{}", self.0)));
        };
        let revoked =
            revoke_origin(tx, &TokenOrigin { auth_mount: mount.id.to_string(), ..TokenOrigin::default() }).await?;
        tx.delete_auth_mount(mount.id).await?;
        Ok(revoked)
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        revoked_details(n)
    }
}

/// Writes a role (keeping its role ID and creation time when it exists, unless a role ID is
/// given).
#[derive(Debug)]
pub(crate) struct PutRole {
    pub mount: String,
    pub role: AppRole,
    /// Whether the role ID was given (otherwise an existing role keeps its own).
    pub role_id_given: bool,
}

#[async_trait]
impl Command for PutRole {
    type Reply = AppRole;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<AppRole, CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::AppRole).await?;
        let mut role = AppRole { mount_id: mount.id, ..self.role.clone() };
        if let Some(old) = tx.approle_role_locked(mount.id, &role.name).await? {
            role.created_at = old.created_at;
            if !self.role_id_given {
                role.role_id = old.role_id;
            }
        }
        if let Some(other) = tx.approle_role_by_role_id(mount.id, &role.role_id).await? {
            if other.name != role.name {
                return Err(CoreError::Conflict("role_id is already in use by another role".into()));
            }
        }
        tx.put_approle_role(&role).await?;
        Ok(role)
    }
}

/// Deletes a role with its secret IDs, revoking the tokens it issued.
#[derive(Debug)]
pub(crate) struct DeleteRole {
    pub mount: String,
    pub name: String,
}

#[async_trait]
impl Command for DeleteRole {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::AppRole).await?;
        let Some(role) = tx.approle_role_locked(mount.id, &self.name).await? else { return Ok(0) };
        let origin =
            TokenOrigin { auth_mount: mount.id.to_string(), role: role.name.clone(), ..TokenOrigin::default() };
        let revoked = revoke_origin(tx, &origin).await?;
        tx.delete_approle_role(&role).await?;
        Ok(revoked)
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        revoked_details(n)
    }
}

/// Stores a new secret ID for a role that still exists.
#[derive(Debug)]
pub(crate) struct AddSecretId {
    pub mount_id: Uuid,
    pub role: String,
    pub record: SecretIdRecord,
}

#[async_trait]
impl Command for AddSecretId {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        if tx.approle_role_locked(self.mount_id, &self.role).await?.is_none() {
            return Err(CoreError::NotFound(format!("role {:?}", self.role)));
        }
        tx.insert_secret_id(&self.record).await?;
        Ok(())
    }
}

/// Destroys a secret ID, revoking the tokens it logged in.
#[derive(Debug)]
pub(crate) struct DestroySecretId {
    pub mount_id: Uuid,
    pub role: String,
    pub accessor: String,
}

#[async_trait]
impl Command for DestroySecretId {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        if !tx.delete_secret_id(&self.accessor).await? {
            return Ok(0);
        }
        let origin = TokenOrigin {
            auth_mount: self.mount_id.to_string(),
            role: self.role.clone(),
            secret_id_accessor: self.accessor.clone(),
        };
        revoke_origin(tx, &origin).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        revoked_details(n)
    }
}

/// One AppRole login, checked and counted inside the transaction: the role by its role ID, the
/// secret ID by digest (locked, so concurrent logins count its uses exactly), both sets of bound
/// CIDRs; then the token is stored. Every refusal says only "invalid role or secret ID" or why
/// the address is refused, never which part was wrong.
#[derive(Debug)]
pub(crate) struct AppRoleLogin {
    pub mount: String,
    pub role_id: String,
    pub secret_id_digest: Option<String>,
    pub ip: std::net::IpAddr,
    /// The token to store, its origin and policies filled in here.
    pub token: TokenRecord,
}

/// What a login refuses with.
pub(crate) fn invalid_credentials() -> CoreError {
    CoreError::InvalidInput("invalid role or secret ID".into())
}

#[async_trait]
impl Command for AppRoleLogin {
    type Reply = TokenRecord;
    const ADDS_DETAILS: bool = true;

    fn audit_details(t: &TokenRecord) -> Option<Map<String, Value>> {
        let meta: Map<String, Value> = t.meta.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
        details([
            ("issued_accessor", t.accessor.clone().into()),
            ("secret_id_accessor", t.origin.secret_id_accessor.clone().into()),
            ("metadata", Value::Object(meta)),
        ])
    }

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<TokenRecord, CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::AppRole).await?;
        let role = tx.approle_role_by_role_id(mount.id, &self.role_id).await?.ok_or_else(invalid_credentials)?;
        let c = &role.config;
        if !super::approle::ip_in(&c.secret_id_bound_cidrs, self.ip) {
            return Err(CoreError::Forbidden("source address not allowed by the role's secret_id_bound_cidrs".into()));
        }
        let mut origin =
            TokenOrigin { auth_mount: mount.id.to_string(), role: role.name.clone(), ..TokenOrigin::default() };
        let mut meta = std::collections::BTreeMap::from([("role_name".to_owned(), role.name.clone())]);
        if c.bind_secret_id {
            let digest = self.secret_id_digest.as_deref().ok_or_else(invalid_credentials)?;
            let mut sid = tx.secret_id_locked(digest).await?.ok_or_else(invalid_credentials)?;
            if sid.role != role.key() {
                return Err(invalid_credentials());
            }
            if sid.expires_at.is_some_and(|e| e <= now_nanos()) {
                return Err(invalid_credentials());
            }
            if !super::approle::ip_in(&sid.cidrs, self.ip) {
                return Err(CoreError::Forbidden("source address not allowed by the secret ID's cidr_list".into()));
            }
            if sid.num_uses > 0 {
                if sid.uses_left <= 1 {
                    tx.delete_secret_id(&sid.accessor).await?;
                } else {
                    sid.uses_left -= 1;
                    tx.update_secret_id(&sid).await?;
                }
            }
            origin.secret_id_accessor.clone_from(&sid.accessor);
            meta.extend(sid.metadata.clone());
        }
        let token = TokenRecord { origin, meta, ..self.token.clone() };
        tx.insert_token(&token).await?;
        Ok(token)
    }
}
