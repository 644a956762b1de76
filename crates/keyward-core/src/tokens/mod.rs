//! Tokens: authentication by keyed digest, creation under a parent, lookup, revocation.
use ipnet::IpNet;
use keyward_crypto::Token;

mod commands;
mod rate;
mod roles;

pub use rate::Rate;
pub use roles::{TokenRole, TokenRoleConfig};

pub(crate) use commands::revoke_tree;
use commands::{CreateToken, RenewToken, RevokeToken, TouchToken, UseToken};

use crate::service::new_accessor;
use crate::{
    now_nanos, Acl, AuditEntry, CoreError, Keyward, PolicyRow, StoreError, TokenRecord, DEFAULT_POLICY, ROOT_POLICY,
};

/// `last_used` is written at most this often per token.
const TOUCH_EVERY_NANOS: i64 = 60_000_000_000;
const MAX_DISPLAY_NAME: usize = 128;
/// Why an expired or revoked token is not renewed.
pub(crate) const NOT_RENEWABLE: &str = "the token is expired or revoked: it cannot be renewed";

/// An authenticated caller: its live token record and the ACL of its policies, bounded by its
/// ancestors'.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token record.
    pub token: TokenRecord,
    /// What its policies grant, within what every live ancestor's grant.
    pub acl: Acl,
    /// The earliest expiry among its ancestors: the caller is live only before it.
    pub ancestors_expire_at: Option<crate::Nanos>,
}

impl Caller {
    /// Whether the token and every ancestor are live at `now` (revocation reaches descendants
    /// in the same transaction; expiry is checked here).
    pub fn is_live(&self, now: crate::Nanos) -> bool {
        self.token.is_live(now) && self.ancestors_expire_at.is_none_or(|e| e > now)
    }
}

/// What a presented token turned out to be.
#[derive(Debug)]
pub enum Authentication {
    /// A live token whose ancestors are all live (shared with the read cache, not copied).
    Live(std::sync::Arc<Caller>),
    /// A token keyward issued that is expired or revoked (or whose ancestor is).
    NotLive,
    /// No token with this digest exists: a guess, a typo, or a token from elsewhere.
    Unknown,
}

/// What a new token should be.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Policy names (a non-root parent may only pass on policies it holds).
    pub policies: Vec<String>,
    /// Lifetime in seconds (default and maximum from the configuration; never past the parent's).
    pub ttl_secs: Option<u64>,
    /// A label shown in listings and audit entries.
    pub display_name: Option<String>,
    /// Source CIDRs the token may be used from (within the parent's, if it has any).
    pub allowed_cidrs: Vec<String>,
    /// Create an orphan, not revoked with its parent (root only).
    pub no_parent: bool,
    /// Do not add the `default` policy.
    pub no_default_policy: bool,
    /// Its own request rate limit (`100/s`); within the parent's, which it inherits by default.
    pub rate_limit: Option<String>,
    /// A hard cap on its lifetime in seconds from creation, renewals included (Vault's
    /// `explicit_max_ttl`; none: the server's maximum).
    pub explicit_max_ttl_secs: Option<u64>,
    /// Make it periodic with this period in seconds: renewable indefinitely, each renewal for
    /// one period (within `explicit_max_ttl` if one is set).
    pub period_secs: Option<u64>,
    /// Limit it to this many requests (none or 0: unlimited).
    pub num_uses: Option<u64>,
    /// Make it non-renewable (`Some(false)`).
    pub renewable: Option<bool>,
    /// Metadata shown by lookups.
    pub meta: std::collections::BTreeMap<String, String>,
    /// The token role it is created against: its allowed policies replace the creator's as the
    /// bound, and its settings are the defaults.
    pub role: Option<TokenRole>,
    /// What it is for (a service token unless said).
    pub kind: crate::TokenKind,
}

/// The most uses a token or secret ID may be limited to (0: unlimited).
pub(crate) const MAX_USES: u64 = 1_000_000_000;

/// Most metadata entries a token carries, and the longest key and value.
const MAX_META: (usize, usize, usize) = (64, 128, 512);

/// Checks token metadata: a bounded number of short entries without control characters.
pub(crate) fn validate_meta(meta: &std::collections::BTreeMap<String, String>) -> Result<(), CoreError> {
    let (entries, key_len, value_len) = MAX_META;
    let bad = |s: &str, max: usize| s.len() > max || s.chars().any(char::is_control);
    if meta.len() > entries || meta.iter().any(|(k, v)| k.is_empty() || bad(k, key_len) || bad(v, value_len)) {
        return Err(CoreError::InvalidInput(format!(
            "meta: at most {entries} entries, keys of 1 to {key_len} bytes and values of at most {value_len}, \
             without control characters"
        )));
    }
    Ok(())
}

/// Seconds as nanoseconds, saturating.
pub(crate) fn secs_nanos(s: u64) -> crate::Nanos {
    i64::try_from(s).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000_000)
}

/// A freshly minted token: shown once, stored only as a digest.
#[derive(Debug)]
pub struct NewToken {
    /// The token text.
    pub token: Token,
    /// Its stored record.
    pub record: TokenRecord,
}

/// A new token's own rate limit: the one asked for, which must be within the parent's (whose
/// limit it inherits when none is asked for), normalised (`600/m`).
fn child_rate(asked: Option<&str>, parent: Option<&str>) -> Result<Option<String>, CoreError> {
    let parent = parent.map(str::parse::<Rate>).transpose()?;
    let Some(asked) = asked.map(str::parse::<Rate>).transpose()? else { return Ok(parent.map(|p| p.to_string())) };
    if let Some(p) = parent.filter(|p| !asked.within(*p)) {
        return Err(CoreError::Forbidden(format!("rate limit {asked} is above the creating token's own limit of {p}")));
    }
    Ok(Some(asked.to_string()))
}

fn parse_cidrs(cidrs: &[String]) -> Result<Vec<IpNet>, CoreError> {
    cidrs
        .iter()
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| CoreError::InvalidInput(format!("invalid CIDR {c:?} (e.g. 10.0.0.0/8 or 2001:db8::/32)")))
        })
        .collect()
}

/// Whether `ip` is allowed by a token's CIDR list (an empty list allows every address).
pub(crate) fn ip_allowed(record: &TokenRecord, ip: std::net::IpAddr) -> bool {
    match parse_cidrs(&record.allowed_cidrs) {
        Ok(nets) => nets.is_empty() || nets.iter().any(|n| n.contains(&ip)),
        Err(_) => false,
    }
}

impl TokenRecord {
    /// Whether the token may be used from `ip`.
    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        ip_allowed(self, ip)
    }
}

impl Keyward {
    /// Authenticates a presented token by its keyed digest: the token and each of its ancestors
    /// must be live, and its ACL is bounded by theirs. Records the use at most once a minute, off
    /// the request path.
    pub async fn authenticate(&self, token: &Token) -> Result<Authentication, CoreError> {
        let key = self.keys.token_key(self.store.as_ref()).await?;
        let digest = key.digest(token);
        let now = now_nanos();
        let cached = self.cache.as_ref().and_then(|c| c.caller(&digest.0));
        let caller = match cached {
            Some(c) => c,
            None => {
                let generation = self.cache.as_ref().map(|c| c.callers_generation());
                // A token whose row, an ancestor's or a policy's fails its MAC is refused (the
                // store logs which row).
                let chain = match self.store.token_chain(&digest.0).await {
                    Err(StoreError::Tampered { .. }) => return Ok(Authentication::NotLive),
                    other => other?,
                };
                let caller = match self.caller_of(chain).await {
                    Err(CoreError::Store(StoreError::Tampered { .. })) => return Ok(Authentication::NotLive),
                    other => other?,
                };
                let Some(caller) = caller else { return Ok(Authentication::Unknown) };
                let caller = std::sync::Arc::new(caller);
                if let (Some(cache), Some(g)) = (&self.cache, generation) {
                    cache.put_caller(g, digest.0.clone(), caller.clone());
                }
                caller
            }
        };
        if !caller.is_live(now) {
            return Ok(Authentication::NotLive);
        }
        if caller.token.last_used.is_none_or(|t| now - t > TOUCH_EVERY_NANOS) {
            if let Some(cache) = &self.cache {
                cache.touched(&digest.0, now);
            }
            let writer = self.writer.clone();
            let accessor = caller.token.accessor.clone();
            tokio::spawn(async move {
                if let Err(e) = writer.maintain(TouchToken { accessor, at: now }).await {
                    tracing::warn!(error = %e, "could not record token use");
                }
            });
        }
        Ok(Authentication::Live(caller))
    }

    /// Takes one request from a use-limited caller (any other is returned as it is): the caller
    /// with the uses it has left, or `None` when it has none — the last one was taken by a
    /// concurrent request (each use is a row-locked write, so N uses admit exactly N requests).
    pub async fn spend_use(&self, caller: std::sync::Arc<Caller>) -> Result<Option<std::sync::Arc<Caller>>, CoreError> {
        if caller.token.uses_left == 0 {
            return Ok(Some(caller));
        }
        let left = self.writer.maintain(UseToken { accessor: caller.token.accessor.clone() }).await?;
        Ok(left.map(|left| {
            let mut c = (*caller).clone();
            c.token.uses_left = left;
            c.token.revoked = left == 0;
            std::sync::Arc::new(c)
        }))
    }

    /// The caller a token is, found by its accessor (for `sys/capabilities-accessor`): `None`
    /// when no token has it, or it is not live.
    pub async fn caller_by_accessor(&self, accessor: &str) -> Result<Option<std::sync::Arc<Caller>>, CoreError> {
        let Some(record) = self.store.token_by_accessor(accessor).await? else { return Ok(None) };
        let chain = self.store.token_chain(&record.digest).await?;
        let caller = self.caller_of(chain).await?;
        Ok(caller.filter(|c| c.is_live(now_nanos())).map(std::sync::Arc::new))
    }

    /// The caller of a token chain (the token, then its ancestors nearest first); `None` when
    /// the chain is empty. An ancestor that is missing or revoked makes the caller not live.
    async fn caller_of(&self, chain: Vec<TokenRecord>) -> Result<Option<Caller>, CoreError> {
        let mut chain = chain.into_iter();
        let Some(token) = chain.next() else { return Ok(None) };
        let ancestors: Vec<TokenRecord> = chain.collect();
        let mut names: Vec<String> = token.policies.clone();
        for a in &ancestors {
            names.extend(a.policies.iter().cloned());
        }
        names.sort();
        names.dedup();
        let (stored, missing) = self.store_policies(&names).await?;
        let mut acl = Acl::new(&token.policies, &stored);
        let mut expire = None::<crate::Nanos>;
        if let Some(name) = missing {
            // Deleting a policy leaves a tombstone: a row simply gone was removed outside keyward,
            // and what it denied cannot be known. Never skip it: refuse the token.
            tracing::error!(target: "security", accessor = %token.accessor, policy = %name,
                "a token names a policy with no row and no tombstone (removed outside keyward): refused");
            expire = Some(i64::MIN);
        }
        let mut expected_parent = token.parent_accessor.clone();
        for a in &ancestors {
            acl = acl.bounded_by(Acl::new(&a.policies, &stored));
            if expected_parent.as_deref() != Some(a.accessor.as_str()) || a.revoked {
                expire = Some(i64::MIN);
            }
            if let Some(e) = a.expires_at {
                expire = Some(expire.map_or(e, |x| x.min(e)));
            }
            expected_parent.clone_from(&a.parent_accessor);
        }
        if expected_parent.is_some() {
            // An ancestor the database no longer holds: never trust what it would have bounded.
            tracing::warn!(target: "security", accessor = %token.accessor, "a token's ancestor is missing: refused");
            expire = Some(i64::MIN);
        }
        Ok(Some(Caller { token, acl, ancestors_expire_at: expire }))
    }

    /// The stored (custom) policies among `names` that are in force, and the first name with no
    /// row at all (not even the tombstone of a deletion).
    async fn store_policies(&self, names: &[String]) -> Result<(Vec<crate::Policy>, Option<String>), CoreError> {
        // The built-ins are never stored: no query for them.
        let custom: Vec<String> = names.iter().filter(|n| *n != ROOT_POLICY && *n != DEFAULT_POLICY).cloned().collect();
        let rows = self.store.policies(&custom).await?;
        let missing = custom.into_iter().find(|n| !rows.iter().any(|r| r.name() == n));
        let live = rows
            .into_iter()
            .filter_map(|r| match r {
                PolicyRow::Live(p) => Some(p),
                PolicyRow::Deleted(_) => None,
            })
            .collect();
        Ok((live, missing))
    }

    /// Creates a token under `parent`. A non-root parent can only pass on policies it holds, its
    /// own source-IP restriction, and a lifetime that ends no later than its own.
    pub async fn create_token(
        &self,
        parent: &Caller,
        req: TokenRequest,
        audit: AuditEntry,
    ) -> Result<NewToken, CoreError> {
        let is_root = parent.acl.is_root();
        let mut req = req;
        if let Some(role) = &req.role {
            let c = &role.config;
            req.no_parent |= c.orphan;
            req.ttl_secs = req.ttl_secs.or((c.token_ttl > 0).then_some(c.token_ttl));
            req.period_secs = req.period_secs.or((c.token_period > 0).then_some(c.token_period));
            req.num_uses = req.num_uses.filter(|n| *n > 0).or((c.token_num_uses > 0).then_some(c.token_num_uses));
            req.renewable = Some(c.renewable && req.renewable.unwrap_or(true));
            let caps = [req.explicit_max_ttl_secs.unwrap_or(0), c.token_max_ttl, c.token_explicit_max_ttl];
            req.explicit_max_ttl_secs = caps.into_iter().filter(|m| *m > 0).min();
            if !c.token_bound_cidrs.is_empty() {
                req.allowed_cidrs.clone_from(&c.token_bound_cidrs);
            }
        }
        let asked = crate::auth::policy_list(&req.policies)?;
        let from_role = match &req.role {
            Some(role) => role.config.policies_for(&asked, req.no_default_policy)?,
            None => None,
        };
        let mut policies = from_role.clone().unwrap_or(asked);
        if from_role.is_none() && !req.no_default_policy && !policies.iter().any(|p| p == DEFAULT_POLICY) {
            policies.push(DEFAULT_POLICY.into());
        }
        if policies.is_empty() {
            return Err(CoreError::InvalidInput("a token needs at least one policy".into()));
        }
        // A role that names its allowed policies bounds them instead of the creator's.
        if !is_root && from_role.is_none() {
            if let Some(p) = policies.iter().find(|p| *p != DEFAULT_POLICY && !parent.token.policies.contains(p)) {
                return Err(CoreError::Forbidden(format!(
                    "a token can only be given policies its creator holds, and yours lacks {p:?}"
                )));
            }
        }
        let orphan_by_role = req.role.as_ref().is_some_and(|r| r.config.orphan);
        if req.no_parent && !orphan_by_role && !parent.acl.allows(crate::Capability::Sudo, "sys/tokens") {
            return Err(CoreError::Forbidden("creating an orphan token needs sudo on sys/tokens".into()));
        }
        if parent.token.uses_left > 0 {
            // Its children would outlive the uses that bound it.
            return Err(CoreError::Forbidden("a use-limited token cannot create tokens".into()));
        }
        validate_meta(&req.meta)?;
        if req.num_uses.is_some_and(|n| n > MAX_USES) {
            return Err(CoreError::InvalidInput(format!("num_uses must be at most {MAX_USES} (0: unlimited)")));
        }
        let known = self.store.policy_names().await?;
        if let Some(p) = policies.iter().find(|p| *p != ROOT_POLICY && *p != DEFAULT_POLICY && !known.contains(p)) {
            return Err(CoreError::InvalidInput(format!("policy {p:?} does not exist")));
        }
        let max = self.config.max_token_ttl_secs;
        let period = req.period_secs.unwrap_or(0);
        if period > max {
            return Err(CoreError::InvalidInput(format!(
                "period must be at most the maximum TTL of {}",
                crate::format_duration(max)
            )));
        }
        let explicit_max = req.explicit_max_ttl_secs.unwrap_or(0).min(max);
        // A periodic token lives one period at a time, whatever `ttl` says (Vault's rule).
        let ttl = match period {
            0 => req.ttl_secs.unwrap_or(self.config.default_token_ttl_secs),
            p => p,
        };
        let ttl = if explicit_max > 0 { ttl.min(explicit_max) } else { ttl };
        if ttl == 0 || ttl > max {
            return Err(CoreError::InvalidInput(format!(
                "ttl must be between 1s and the maximum of {}",
                crate::format_duration(max)
            )));
        }
        let now = now_nanos();
        let mut expires_at = now.saturating_add(secs_nanos(ttl));
        if !req.no_parent {
            for pe in [parent.token.expires_at, parent.ancestors_expire_at].into_iter().flatten() {
                expires_at = expires_at.min(pe);
            }
        }
        let parent_nets = parse_cidrs(&parent.token.allowed_cidrs)?;
        let child_nets = parse_cidrs(&req.allowed_cidrs)?;
        let allowed_cidrs = if child_nets.is_empty() {
            parent.token.allowed_cidrs.clone()
        } else {
            if !parent_nets.is_empty() {
                if let Some(c) = child_nets.iter().find(|c| !parent_nets.iter().any(|p| p.contains(*c))) {
                    return Err(CoreError::Forbidden(format!(
                        "CIDR {c} is outside the creating token's allowed addresses"
                    )));
                }
            }
            child_nets.iter().map(ToString::to_string).collect()
        };
        let display_name = req.display_name.unwrap_or_else(|| "token".into());
        if display_name.len() > MAX_DISPLAY_NAME || display_name.chars().any(char::is_control) {
            return Err(CoreError::InvalidInput(format!(
                "display name must be at most {MAX_DISPLAY_NAME} bytes without control characters"
            )));
        }
        let rate_limit = child_rate(req.rate_limit.as_deref(), parent.token.rate_limit.as_deref())?;
        // A role's tokens show where they came from (Vault's `path`), by the role and its suffix.
        let role_path = req.role.as_ref().map_or_else(String::new, |r| match r.config.path_suffix.as_str() {
            "" => r.name.clone(),
            suffix => format!("{}/{suffix}", r.name),
        });
        let key = self.keys.token_key(self.store.as_ref()).await?;
        let token = Token::generate();
        let record = TokenRecord {
            parent_accessor: (!req.no_parent).then(|| parent.token.accessor.clone()),
            expires_at: Some(expires_at),
            allowed_cidrs,
            rate_limit,
            origin: crate::TokenOrigin { role: role_path, ..crate::TokenOrigin::default() },
            meta: req.meta,
            explicit_max_ttl_secs: explicit_max,
            period_secs: period,
            uses_left: req.num_uses.unwrap_or(0),
            renewable: req.renewable.unwrap_or(true),
            kind: req.kind,
            ..TokenRecord::issued((new_accessor(), key.digest(&token).0), policies, display_name, now, ttl)
        };
        let mut audit = audit;
        audit.details.insert("created_accessor".into(), record.accessor.clone().into());
        audit.details.insert("policies".into(), record.policies.clone().into());
        self.writer.submit(CreateToken(record.clone()), audit).await?;
        Ok(NewToken { token, record })
    }

    /// The record of a presented token (for `lookup` with a token).
    pub async fn lookup_token(&self, token: &Token) -> Result<TokenRecord, CoreError> {
        let key = self.keys.token_key(self.store.as_ref()).await?;
        self.store.token_by_digest(&key.digest(token).0).await?.ok_or_else(|| CoreError::NotFound("token".into()))
    }

    /// A token record by accessor.
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<TokenRecord, CoreError> {
        self.store.token_by_accessor(accessor).await?.ok_or_else(|| CoreError::NotFound("token".into()))
    }

    /// Revokes a token and every token created under it, with its audit entry; returns how many
    /// were revoked.
    pub async fn revoke_accessor(&self, accessor: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(RevokeToken { accessor: accessor.to_owned() }, audit).await
    }

    /// Renews a live token (an expired or revoked one stays dead, checked again inside the write):
    /// its expiry moves to `now + increment` (its own TTL by default), never past
    /// its creation time plus the configured maximum TTL, nor past its parent's expiry. Tokens
    /// without expiry (root) stay as they are. Returns the updated record.
    pub async fn renew_token(
        &self,
        record: &TokenRecord,
        increment_secs: Option<u64>,
        audit: AuditEntry,
    ) -> Result<TokenRecord, CoreError> {
        let now = now_nanos();
        if !record.is_live(now) {
            return Err(CoreError::InvalidInput(NOT_RENEWABLE.into()));
        }
        if !record.renewable {
            return Err(CoreError::InvalidInput("this token is not renewable".into()));
        }
        let Some(_) = record.expires_at else { return Ok(record.clone()) };
        // A periodic token renews for its period, with no cap but its explicit_max_ttl.
        let (increment, cap) = match (record.period_secs, record.explicit_max_ttl_secs) {
            (0, 0) => (increment_secs.filter(|i| *i > 0).unwrap_or(record.ttl_secs), self.config.max_token_ttl_secs),
            (0, m) => {
                (increment_secs.filter(|i| *i > 0).unwrap_or(record.ttl_secs), m.min(self.config.max_token_ttl_secs))
            }
            (p, 0) => (p, u64::MAX),
            (p, m) => (p, m),
        };
        let mut expires_at =
            now.saturating_add(secs_nanos(increment)).min(record.created_at.saturating_add(secs_nanos(cap)));
        if let Some(parent) = &record.parent_accessor {
            if let Some(pe) = self.store.token_by_accessor(parent).await?.and_then(|p| p.expires_at) {
                expires_at = expires_at.min(pe);
            }
        }
        let expires_at = expires_at.max(record.expires_at.unwrap_or(now));
        self.writer.submit(RenewToken { accessor: record.accessor.clone(), expires_at }, audit).await?;
        Ok(TokenRecord { expires_at: Some(expires_at), ..record.clone() })
    }

    /// A page of tokens (records only: tokens themselves are never stored).
    pub async fn list_tokens(&self, after: Option<&str>, limit: u32) -> Result<Vec<TokenRecord>, CoreError> {
        Ok(self.store.list_tokens(after, limit).await?)
    }
}
