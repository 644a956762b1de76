//! Login methods (DESIGN §4): auth mounts like Vault's `sys/auth`, and AppRole. A login is a
//! pipeline operation of class `login`; the token it issues is an orphan whose ACL is its role's
//! policies, and it is revoked with its role, secret ID or auth mount.
mod approle;
mod commands;
mod model;
mod userpass;

pub use approle::{NewSecretId, RoleField, RoleRequest, SecretIdRequest};
pub use model::{
    role_key, AppRole, AppRoleConfig, AuthKind, AuthMount, LoginFailures, SecretIdRecord, User, UserConfig,
};
pub use userpass::{UserLogin, UserRequest, ENROL_PURPOSE};

use commands::{DisableAuth, EnableAuth};

use crate::{now_nanos, validate_mount_path, AuditEntry, CoreError, Keyward};

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
