//! AppRole: machines log in with a role ID (not secret) and a secret ID (secret, used up or
//! expiring as the role says), and get an orphan token with the role's policies.
use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use keyward_crypto::{random_base62, SecretId};

use super::commands::{invalid_credentials, AddSecretId, AppRoleLogin, DeleteRole, DestroySecretId, PutRole};
use super::{role_key, AppRole, AppRoleConfig, AuthKind, AuthMount, SecretIdRecord};
use crate::{now_nanos, AuditEntry, Caller, CoreError, Keyward, NewToken};

const MAX_NAME: usize = 128;

/// Parses CIDRs (a bare address is a /32 or /128).
pub(crate) fn parse_cidrs(list: &[String]) -> Result<Vec<String>, CoreError> {
    list.iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.to_string())
                .map_err(|_| CoreError::InvalidInput(format!("invalid CIDR {c:?} (e.g. 10.0.0.0/8)")))
        })
        .collect()
}

use crate::tokens::MAX_USES;

/// A secret ID's use count, checked.
fn uses(n: u64) -> Result<u64, CoreError> {
    match n <= MAX_USES {
        true => Ok(n),
        false => Err(CoreError::InvalidInput(format!("a secret ID allows at most {MAX_USES} uses (0: unlimited)"))),
    }
}

/// Whether `ip` is in one of `cidrs` (an empty list allows every address).
pub(crate) fn ip_in(cidrs: &[String], ip: IpAddr) -> bool {
    cidrs.is_empty() || cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).any(|n| n.contains(&ip))
}

pub(crate) fn validate_name(what: &str, name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(CoreError::InvalidInput(format!(
            "{what} {name:?} must be 1-{MAX_NAME} characters of A-Z a-z 0-9 . _ - @"
        ))),
    }
}

/// A role as asked for: what the request set (unset fields keep their current values).
#[derive(Debug, Clone, Default)]
pub struct RoleRequest {
    /// A role ID to use instead of a generated (or the current) one.
    pub role_id: Option<String>,
    /// The settings, applied over the current ones by [`RoleRequest::apply`].
    pub set: Vec<RoleField>,
}

/// One setting of a role.
#[derive(Debug, Clone)]
pub enum RoleField {
    /// `token_policies` (or Vault's older `policies`).
    Policies(Vec<String>),
    /// `token_ttl` in seconds.
    TokenTtl(u64),
    /// `token_max_ttl` in seconds.
    TokenMaxTtl(u64),
    /// `token_explicit_max_ttl` in seconds.
    TokenExplicitMaxTtl(u64),
    /// `token_period` in seconds.
    TokenPeriod(u64),
    /// `token_num_uses`.
    TokenNumUses(u64),
    /// `token_bound_cidrs`.
    TokenBoundCidrs(Vec<String>),
    /// `secret_id_ttl` in seconds.
    SecretIdTtl(u64),
    /// `secret_id_num_uses`.
    SecretIdNumUses(u64),
    /// `secret_id_bound_cidrs`.
    SecretIdBoundCidrs(Vec<String>),
    /// `bind_secret_id`.
    BindSecretId(bool),
}

impl RoleRequest {
    /// The settings after this request, from `base`.
    fn apply(&self, mut c: AppRoleConfig) -> Result<AppRoleConfig, CoreError> {
        for f in &self.set {
            match f {
                RoleField::Policies(p) => c.token_policies = super::policy_list(p)?,
                RoleField::TokenTtl(v) => c.token_ttl = *v,
                RoleField::TokenMaxTtl(v) => c.token_max_ttl = *v,
                RoleField::TokenExplicitMaxTtl(v) => c.token_explicit_max_ttl = *v,
                RoleField::TokenPeriod(v) => c.token_period = *v,
                RoleField::TokenNumUses(v) => c.token_num_uses = *v,
                RoleField::TokenBoundCidrs(v) => c.token_bound_cidrs = parse_cidrs(v)?,
                RoleField::SecretIdTtl(v) => c.secret_id_ttl = *v,
                RoleField::SecretIdNumUses(v) => c.secret_id_num_uses = uses(*v)?,
                RoleField::SecretIdBoundCidrs(v) => c.secret_id_bound_cidrs = parse_cidrs(v)?,
                RoleField::BindSecretId(v) => c.bind_secret_id = *v,
            }
        }
        if !c.bind_secret_id && c.secret_id_bound_cidrs.is_empty() {
            return Err(CoreError::InvalidInput(
                "a role needs bind_secret_id or secret_id_bound_cidrs: otherwise its role ID alone would log in".into(),
            ));
        }
        c.terms().validate()?;
        Ok(c)
    }
}

/// A secret ID as asked for.
#[derive(Debug, Clone, Default)]
pub struct SecretIdRequest {
    /// Metadata copied into the tokens it logs in.
    pub metadata: BTreeMap<String, String>,
    /// Addresses a login with it may come from (within the role's `secret_id_bound_cidrs`).
    pub cidrs: Vec<String>,
    /// Its lifetime in seconds (0 or none: the role's `secret_id_ttl`).
    pub ttl_secs: Option<u64>,
    /// Its logins (none: the role's `secret_id_num_uses`).
    pub num_uses: Option<u64>,
}

/// A new secret ID: shown once, stored only as a digest.
#[derive(Debug)]
pub struct NewSecretId {
    /// The secret ID.
    pub secret_id: SecretId,
    /// Its stored record.
    pub record: SecretIdRecord,
}

impl Keyward {
    /// The auth mount at `path`, if it is an AppRole one.
    async fn approle_mount(&self, path: &str) -> Result<AuthMount, CoreError> {
        self.find_auth_mount(path)
            .await?
            .filter(|m| m.kind == AuthKind::AppRole)
            .ok_or_else(|| CoreError::NotFound(format!("approle auth method at auth/{path}")))
    }

    /// Writes role `name` on the AppRole mount `mount`. The writer must hold every policy the
    /// role grants (root may grant any): otherwise writing a role would mint any policy.
    pub async fn write_approle_role(
        &self,
        writer: &Caller,
        mount: &str,
        name: &str,
        req: RoleRequest,
        audit: AuditEntry,
    ) -> Result<AppRole, CoreError> {
        validate_name("role name", name)?;
        if let Some(id) = &req.role_id {
            validate_name("role_id", id)?;
        }
        let m = self.approle_mount(mount).await?;
        let current = self.store.approle_role(m.id, name).await?;
        let base = current
            .as_ref()
            .map_or_else(|| AppRoleConfig { bind_secret_id: true, ..AppRoleConfig::default() }, |r| r.config.clone());
        let config = req.apply(base)?;
        self.check_grantable(writer, &config.token_policies, "a role").await?;
        let role = AppRole {
            mount_id: m.id,
            name: name.to_owned(),
            role_id: req.role_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            config,
            created_at: now_nanos(),
        };
        let mut audit = audit;
        audit.details.insert("policies".into(), role.config.token_policies.clone().into());
        self.writer.submit(PutRole { mount: mount.to_owned(), role, role_id_given: req.role_id.is_some() }, audit).await
    }

    /// A role.
    pub async fn approle_role(&self, mount: &str, name: &str) -> Result<AppRole, CoreError> {
        let m = self.approle_mount(mount).await?;
        self.store.approle_role(m.id, name).await?.ok_or_else(|| CoreError::NotFound(format!("role {name:?}")))
    }

    /// The roles of a mount.
    pub async fn approle_roles(&self, mount: &str) -> Result<Vec<AppRole>, CoreError> {
        let m = self.approle_mount(mount).await?;
        Ok(self.store.approle_roles(m.id).await?)
    }

    /// Deletes a role with its secret IDs and revokes the tokens it issued; how many.
    pub async fn delete_approle_role(&self, mount: &str, name: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(DeleteRole { mount: mount.to_owned(), name: name.to_owned() }, audit).await
    }

    /// Makes a secret ID for a role.
    pub async fn create_secret_id(
        &self,
        mount: &str,
        role: &str,
        req: SecretIdRequest,
        audit: AuditEntry,
    ) -> Result<NewSecretId, CoreError> {
        let r = self.approle_role(mount, role).await?;
        let cidrs = parse_cidrs(&req.cidrs)?;
        for c in &cidrs {
            let net: IpNet = c.parse().map_err(|_| CoreError::InvalidInput(format!("invalid CIDR {c:?}")))?;
            let within = r.config.secret_id_bound_cidrs.is_empty()
                || r.config
                    .secret_id_bound_cidrs
                    .iter()
                    .filter_map(|b| b.parse::<IpNet>().ok())
                    .any(|b| b.contains(&net));
            if !within {
                return Err(CoreError::InvalidInput(format!(
                    "cidr_list {c} is outside the role's secret_id_bound_cidrs"
                )));
            }
        }
        if req.metadata.len() > 64 || req.metadata.iter().any(|(k, v)| k.len() > 128 || v.len() > 512) {
            return Err(CoreError::InvalidInput("metadata: at most 64 keys, keys of 128 bytes, values of 512".into()));
        }
        let ttl = req.ttl_secs.filter(|t| *t > 0).unwrap_or(r.config.secret_id_ttl);
        let num_uses = uses(req.num_uses.unwrap_or(r.config.secret_id_num_uses))?;
        let now = now_nanos();
        let key = self.keys.token_key(self.store.as_ref()).await?;
        let secret_id = SecretId::generate();
        let record = SecretIdRecord {
            accessor: format!("sid_{}", &*random_base62(24)),
            digest: key.secret_id_digest(&secret_id).0,
            role: role_key(r.mount_id, &r.name),
            metadata: req.metadata,
            cidrs,
            created_at: now,
            expires_at: (ttl > 0)
                .then(|| now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000_000))),
            num_uses,
            uses_left: num_uses,
        };
        let mut audit = audit;
        audit.details.insert("secret_id_accessor".into(), record.accessor.clone().into());
        self.writer
            .submit(AddSecretId { mount_id: r.mount_id, role: r.name.clone(), record: record.clone() }, audit)
            .await?;
        Ok(NewSecretId { secret_id, record })
    }

    /// The secret IDs of a role (records only).
    pub async fn secret_ids(&self, mount: &str, role: &str) -> Result<Vec<SecretIdRecord>, CoreError> {
        let r = self.approle_role(mount, role).await?;
        Ok(self.store.approle_secret_ids(&r.key()).await?)
    }

    /// A role's secret ID by accessor, or by the secret ID itself.
    pub async fn secret_id_record(
        &self,
        mount: &str,
        role: &str,
        accessor: Option<&str>,
        secret_id: Option<&SecretId>,
    ) -> Result<SecretIdRecord, CoreError> {
        let r = self.approle_role(mount, role).await?;
        let found = match (accessor, secret_id) {
            (Some(a), _) => self.store.approle_secret_id(a).await?,
            (None, Some(s)) => {
                let key = self.keys.token_key(self.store.as_ref()).await?;
                self.store.approle_secret_id_by_digest(&key.secret_id_digest(s).0).await?
            }
            (None, None) => None,
        };
        found.filter(|s| s.role == r.key()).ok_or_else(|| CoreError::NotFound("secret ID".into()))
    }

    /// Destroys a role's secret ID (by accessor) and revokes the tokens it logged in; how many.
    pub async fn destroy_secret_id(
        &self,
        mount: &str,
        role: &str,
        accessor: &str,
        audit: AuditEntry,
    ) -> Result<u64, CoreError> {
        let r = self.approle_role(mount, role).await?;
        let cmd = DestroySecretId { mount_id: r.mount_id, role: r.name.clone(), accessor: accessor.to_owned() };
        self.writer.submit(cmd, audit).await
    }

    /// Logs in with a role ID and (when the role binds one) a secret ID from `ip`: an orphan
    /// token with the role's policies, revoked with its role, secret ID or auth mount.
    pub async fn login_approle(
        &self,
        mount: &str,
        role_id: &str,
        secret_id: Option<&str>,
        ip: IpAddr,
        audit: AuditEntry,
    ) -> Result<NewToken, CoreError> {
        let m = self.approle_mount(mount).await?;
        let key = self.keys.token_key(self.store.as_ref()).await?;
        // A malformed secret ID is refused like a wrong one, after the same work.
        let digest = secret_id.map(|s| match SecretId::parse(s) {
            Some(s) => key.secret_id_digest(&s).0,
            None => String::new(),
        });
        if role_id.is_empty() {
            return Err(invalid_credentials());
        }
        // The role's settings decide the token; read again (locked) inside the login.
        let role = self.store.approle_role_with_id(m.id, role_id).await?.ok_or_else(invalid_credentials)?;
        let c = &role.config;
        let grant = self.login_grant(&c.terms());
        let (token, record) = self
            .login_token(format!("approle-{}", role.name), grant, c.token_bound_cidrs.clone(), BTreeMap::new())
            .await?;
        let mut audit = audit;
        for (k, v) in [("method", "approle"), ("role", role.name.as_str()), ("auth_mount", mount)] {
            audit.details.insert(k.into(), v.into());
        }
        let cmd = AppRoleLogin {
            mount: mount.to_owned(),
            role_id: role_id.to_owned(),
            secret_id_digest: digest,
            ip,
            token: record,
        };
        let record = self.writer.submit(cmd, audit).await?;
        Ok(NewToken { token, record })
    }
}
