//! What login methods store: auth mounts, AppRole roles and secret IDs.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CoreError, Nanos};

/// A login method's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// AppRole: machines log in with a role ID and a secret ID.
    AppRole,
    /// Userpass: people log in with a password and a TOTP code.
    Userpass,
    /// JWT: workloads log in with a token their platform signed (CI jobs, Kubernetes pods).
    Jwt,
}

impl AuthKind {
    /// Its name, as Vault spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::AppRole => "approle",
            AuthKind::Userpass => "userpass",
            AuthKind::Jwt => "jwt",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "approle" => Ok(AuthKind::AppRole),
            "userpass" => Ok(AuthKind::Userpass),
            "jwt" => Ok(AuthKind::Jwt),
            "oidc" => Err(CoreError::InvalidInput(
                "the oidc method (a browser flow) is not supported by keyward: enable type \"jwt\" for workload tokens"
                    .into(),
            )),
            other => Err(CoreError::InvalidInput(format!(
                "auth method type {other:?} is not supported by keyward (approle, userpass, jwt)"
            ))),
        }
    }
}

/// An enabled login method, at `auth/<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMount {
    /// Its id (tokens it issued name it).
    pub id: Uuid,
    /// Where it is mounted, under `auth/`.
    pub path: String,
    /// What it is.
    pub kind: AuthKind,
    /// A human description.
    pub description: String,
    /// When it was enabled.
    pub created_at: Nanos,
}

/// An AppRole role's settings (Vault's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleConfig {
    /// Policies of the tokens its logins get.
    pub token_policies: Vec<String>,
    /// Their TTL in seconds (0: the server's default).
    pub token_ttl: u64,
    /// Their longest TTL in seconds (0: the server's maximum).
    pub token_max_ttl: u64,
    /// Their hard lifetime cap in seconds (0: none beyond `token_max_ttl`).
    #[serde(default)]
    pub token_explicit_max_ttl: u64,
    /// Their period in seconds (0: not periodic).
    #[serde(default)]
    pub token_period: u64,
    /// How many requests each may make (0: unlimited).
    #[serde(default)]
    pub token_num_uses: u64,
    /// Addresses their tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
    /// How long a new secret ID lives, in seconds (0: no expiry).
    pub secret_id_ttl: u64,
    /// How many logins a new secret ID allows (0: unlimited).
    pub secret_id_num_uses: u64,
    /// Addresses a login with one of its secret IDs may come from.
    pub secret_id_bound_cidrs: Vec<String>,
    /// Whether a login needs a secret ID.
    pub bind_secret_id: bool,
}

/// An AppRole role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRole {
    /// Its auth mount.
    pub mount_id: Uuid,
    /// Its name.
    pub name: String,
    /// The role ID a login names (not secret).
    pub role_id: String,
    /// Its settings.
    pub config: AppRoleConfig,
    /// When it was first written.
    pub created_at: Nanos,
}

impl AppRole {
    /// The row key: mount and name.
    pub fn key(&self) -> String {
        role_key(self.mount_id, &self.name)
    }
}

/// The row key of role `name` on mount `mount_id`.
pub fn role_key(mount_id: Uuid, name: &str) -> String {
    format!("{mount_id}/{name}")
}

/// A secret ID as stored: its keyed digest, never itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIdRecord {
    /// Its public accessor.
    pub accessor: String,
    /// HMAC of the secret ID under the token key.
    pub digest: String,
    /// The row key of its role.
    pub role: String,
    /// Metadata given at creation (copied into the tokens it logs in).
    pub metadata: BTreeMap<String, String>,
    /// Addresses a login with it may come from (within the role's).
    pub cidrs: Vec<String>,
    /// When it was made.
    pub created_at: Nanos,
    /// When it stops working.
    pub expires_at: Option<Nanos>,
    /// How many logins it allowed at creation (0: unlimited).
    pub num_uses: u64,
    /// How many are left (when `num_uses` > 0).
    pub uses_left: u64,
}

/// A login method's settings document (a JWT method's config or one of its roles), stored as
/// JSON in a MAC'd row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthItem {
    /// Its auth mount.
    pub mount_id: Uuid,
    /// What it is (`jwt-config`, `jwt-role`).
    pub kind: String,
    /// Its name (empty for a mount's one config).
    pub name: String,
    /// The document.
    pub body: String,
    /// When it was first written.
    pub created_at: Nanos,
}

impl AuthItem {
    /// The row key: mount, kind and name.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.mount_id, self.kind, self.name)
    }
}

/// A userpass user's settings (Vault's field names, and `totp_required`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Policies of the tokens the user's logins get.
    pub token_policies: Vec<String>,
    /// Their TTL in seconds (0: the server's default).
    pub token_ttl: u64,
    /// Their longest TTL in seconds (0: the server's maximum).
    pub token_max_ttl: u64,
    /// Their hard lifetime cap in seconds (0: none beyond `token_max_ttl`).
    #[serde(default)]
    pub token_explicit_max_ttl: u64,
    /// Their period in seconds (0: not periodic).
    #[serde(default)]
    pub token_period: u64,
    /// How many requests each may make (0: unlimited).
    #[serde(default)]
    pub token_num_uses: u64,
    /// Addresses their tokens may be used from.
    pub token_bound_cidrs: Vec<String>,
    /// Whether a login needs a TOTP code (default); `false` is for service accounts and clients
    /// without MFA support.
    pub totp_required: bool,
}

impl Default for UserConfig {
    fn default() -> Self {
        Self {
            token_policies: vec![],
            token_ttl: 0,
            token_max_ttl: 0,
            token_explicit_max_ttl: 0,
            token_period: 0,
            token_num_uses: 0,
            token_bound_cidrs: vec![],
            totp_required: true,
        }
    }
}

/// The `token_*` settings of a role or user: what its logins' tokens get.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenTerms {
    /// `token_policies`.
    pub policies: Vec<String>,
    /// `token_ttl` (0: the server's default).
    pub ttl: u64,
    /// `token_max_ttl` (0: the server's maximum).
    pub max_ttl: u64,
    /// `token_explicit_max_ttl` (0: none).
    pub explicit_max_ttl: u64,
    /// `token_period` (0: not periodic).
    pub period: u64,
    /// `token_num_uses` (0: unlimited).
    pub num_uses: u64,
}

impl TokenTerms {
    /// Checks the settings against each other: a TTL within the maximum.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.max_ttl > 0 && self.ttl > self.max_ttl {
            return Err(CoreError::InvalidInput("token_ttl must not be longer than token_max_ttl".into()));
        }
        if self.num_uses > crate::tokens::MAX_USES {
            return Err(CoreError::InvalidInput(format!("token_num_uses must be at most {}", crate::tokens::MAX_USES)));
        }
        Ok(())
    }
}

/// `terms()` for a settings struct with Vault's flat `token_*` fields.
macro_rules! token_terms {
    ($($config:ty),+) => {$(
        impl $config {
            /// Its `token_*` settings.
            pub fn terms(&self) -> TokenTerms {
                TokenTerms {
                    policies: self.token_policies.clone(),
                    ttl: self.token_ttl,
                    max_ttl: self.token_max_ttl,
                    explicit_max_ttl: self.token_explicit_max_ttl,
                    period: self.token_period,
                    num_uses: self.token_num_uses,
                }
            }
        }
    )+};
}
pub(crate) use token_terms;

token_terms!(AppRoleConfig, UserConfig);

/// A userpass user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its auth mount.
    pub mount_id: Uuid,
    /// Its name.
    pub name: String,
    /// Argon2id PHC string over the peppered password.
    pub password_hash: String,
    /// Its settings.
    pub config: UserConfig,
    /// Its TOTP seed sealed under the auth key (base64), empty before enrolment starts.
    pub totp_seed: String,
    /// Whether enrolment completed (a code was checked against the seed).
    pub totp_enrolled: bool,
    /// The last TOTP step accepted (an equal or earlier one is refused).
    pub totp_last_step: u64,
    /// When it was created.
    pub created_at: Nanos,
}

impl User {
    /// The row key: mount and name.
    pub fn key(&self) -> String {
        role_key(self.mount_id, &self.name)
    }
}

/// Failed logins counted against one user or address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures in the current window.
    pub failures: u32,
    /// When the window began.
    pub window_start: Nanos,
    /// Locked until then (0: not locked).
    pub locked_until: Nanos,
}
