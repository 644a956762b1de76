//! Userpass: people log in with a password and (unless their user says otherwise) a TOTP code.
//!
//! Passwords are hashed with Argon2id over an HMAC under the auth key's pepper, off the async
//! workers and a few at a time; an unknown user costs the same hash. TOTP seeds are sealed under
//! the auth key's TOTP subkey with the mount and user as AAD, and the last accepted step is kept in
//! the user's MAC'd row, so no code is accepted twice. Failed logins are counted per user in the
//! database (all replicas see them) and per address by the server's lockout; a locked user is
//! refused with the same answer, after the same work, whether the credentials are right or not.
use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use keyward_crypto::{hash_password, totp_check, totp_seed, totp_uri, verify_password, Aad};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::approle::parse_cidrs;
use super::commands::{mount_of, revoke_origin};
use super::{AuthKind, AuthMount, LoginFailures, TokenTerms, User, UserConfig};
use crate::engine::command::{details, Command, Evict, Upkeep};
use crate::keys::AuthKeys;
use crate::{
    now_nanos, AuditEntry, Caller, CoreError, KeyManager, Keyward, NewToken, StoreTx, TokenOrigin, TokenRecord,
};

/// Hashes at once (each takes ~19 MiB and tens of milliseconds of one core).
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// How long an enrolment token lives.
const ENROL_TTL_SECS: u64 = 600;
/// The metadata marking an enrolment-only token.
pub const ENROL_PURPOSE: &str = "totp-enrolment";
const MAX_PASSWORD: usize = 1024;

/// What a login refuses wrong credentials with (never which part was wrong).
fn invalid_login() -> CoreError {
    CoreError::InvalidInput("invalid username, password or TOTP code".into())
}

/// Runs `f` (a password hash or check) on a blocking thread, a few at a time.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, CoreError> {
    let _permit = HASHING.acquire().await.map_err(|_| CoreError::Unavailable)?;
    tokio::task::spawn_blocking(f).await.map_err(|_| CoreError::Unavailable)
}

fn seal_aad(user: &User) -> Aad {
    Aad::new("keyward/totp-seed").part(user.mount_id.as_bytes()).part(user.name.as_bytes())
}

fn validate_password(p: &str) -> Result<(), CoreError> {
    if p.len() < 8 || p.len() > MAX_PASSWORD {
        return Err(CoreError::InvalidInput(format!("a password is 8 to {MAX_PASSWORD} bytes")));
    }
    Ok(())
}

/// The user row key used for its failure count.
fn failures_key(user: &User) -> String {
    format!("userpass/{}", user.key())
}

/// A user as asked for: settings given replace the current ones. `Debug` hides the password.
#[derive(Default)]
pub struct UserRequest {
    /// A new password.
    pub password: Option<Zeroizing<String>>,
    /// `token_policies`.
    pub policies: Option<Vec<String>>,
    /// `token_ttl`.
    pub token_ttl: Option<u64>,
    /// `token_max_ttl`.
    pub token_max_ttl: Option<u64>,
    /// `token_explicit_max_ttl`.
    pub token_explicit_max_ttl: Option<u64>,
    /// `token_period`.
    pub token_period: Option<u64>,
    /// `token_num_uses`.
    pub token_num_uses: Option<u64>,
    /// `token_bound_cidrs`.
    pub token_bound_cidrs: Option<Vec<String>>,
    /// `totp_required`.
    pub totp_required: Option<bool>,
}

impl std::fmt::Debug for UserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRequest")
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("policies", &self.policies)
            .field("token_ttl", &self.token_ttl)
            .field("token_max_ttl", &self.token_max_ttl)
            .field("token_explicit_max_ttl", &self.token_explicit_max_ttl)
            .field("token_period", &self.token_period)
            .field("token_num_uses", &self.token_num_uses)
            .field("token_bound_cidrs", &self.token_bound_cidrs)
            .field("totp_required", &self.totp_required)
            .finish()
    }
}

/// What a password login gave.
#[derive(Debug)]
pub enum UserLogin {
    /// A token with the user's policies.
    Token(NewToken),
    /// The user must enrol TOTP first: a 10-minute token good only for that.
    Enrol(NewToken),
}

/// Stores a user (password hash already computed), revoking its tokens when its password or TOTP
/// state changed.
#[derive(Debug)]
struct PutUser {
    mount: String,
    user: User,
    /// Keep the stored password hash (an update that set none).
    keep_password: bool,
    /// Revoke the user's tokens (a new password).
    revoke: bool,
}

#[async_trait]
impl Command for PutUser {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::Userpass).await?;
        let mut user = User { mount_id: mount.id, ..self.user.clone() };
        match tx.userpass_user_locked(mount.id, &user.name).await? {
            Some(old) => {
                user.created_at = old.created_at;
                user.totp_seed = old.totp_seed;
                user.totp_enrolled = old.totp_enrolled;
                user.totp_last_step = old.totp_last_step;
                if self.keep_password {
                    user.password_hash = old.password_hash;
                }
            }
            None if self.keep_password => {
                return Err(CoreError::InvalidInput(format!("user {:?} does not exist: give a password", user.name)))
            }
            None => {}
        }
        tx.put_userpass_user(&user).await?;
        if !self.revoke {
            return Ok(0);
        }
        let origin =
            TokenOrigin { auth_mount: mount.id.to_string(), role: user.name.clone(), ..TokenOrigin::default() };
        revoke_origin(tx, &origin).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        details([("tokens_revoked", (*n).into())])
    }
}

/// Deletes a user, or resets its TOTP; either revokes its tokens.
#[derive(Debug)]
struct DropUser {
    mount: String,
    name: String,
    /// Only forget the TOTP enrolment (an admin reset).
    totp_only: bool,
}

#[async_trait]
impl Command for DropUser {
    type Reply = u64;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<u64, CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::Userpass).await?;
        let Some(mut user) = tx.userpass_user_locked(mount.id, &self.name).await? else {
            return match self.totp_only {
                true => Err(CoreError::NotFound(format!("user {:?}", self.name))),
                false => Ok(0),
            };
        };
        if self.totp_only {
            user.totp_seed.clear();
            user.totp_enrolled = false;
            tx.put_userpass_user(&user).await?;
        } else {
            tx.delete_userpass_user(&user).await?;
            tx.set_login_failures(&failures_key(&user), None).await?;
        }
        let origin =
            TokenOrigin { auth_mount: mount.id.to_string(), role: user.name.clone(), ..TokenOrigin::default() };
        revoke_origin(tx, &origin).await
    }

    fn evicts(&self) -> Evict<'_> {
        Evict::Callers
    }

    fn audit_details(n: &u64) -> Option<Map<String, Value>> {
        details([("tokens_revoked", (*n).into())])
    }
}

/// Counts a failed login against a user (upkeep: the failed request is audited by itself).
#[derive(Debug)]
struct CountFailure {
    key: String,
    attempts: u32,
    lock_nanos: i64,
}

#[async_trait]
impl Command for CountFailure {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        // Read through the store's pool would race other replicas; the transaction serialises.
        let now = now_nanos();
        let current = tx.login_failures_locked(&self.key).await?;
        let mut f = match current {
            Some(f) if now - f.window_start < self.lock_nanos => f,
            _ => LoginFailures { failures: 0, window_start: now, locked_until: 0 },
        };
        f.failures += 1;
        if f.failures >= self.attempts {
            f.locked_until = now + self.lock_nanos;
            f.failures = 0;
            f.window_start = now;
        }
        tx.set_login_failures(&self.key, Some(&f)).await?;
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }
}

impl Upkeep for CountFailure {}

/// One password login that passed its checks: the TOTP step recorded (refused if another login
/// took it meanwhile), the user's failure count cleared, the token stored.
#[derive(Debug)]
struct UserLoginCommand {
    mount: String,
    name: String,
    /// The TOTP step this login used, if it used one.
    step: Option<u64>,
    token: TokenRecord,
}

#[async_trait]
impl Command for UserLoginCommand {
    type Reply = TokenRecord;
    const ADDS_DETAILS: bool = true;

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<TokenRecord, CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::Userpass).await?;
        let mut user = tx.userpass_user_locked(mount.id, &self.name).await?.ok_or_else(invalid_login)?;
        if let Some(step) = self.step {
            if step <= user.totp_last_step {
                return Err(invalid_login());
            }
            user.totp_last_step = step;
            tx.put_userpass_user(&user).await?;
        }
        tx.set_login_failures(&failures_key(&user), None).await?;
        let origin =
            TokenOrigin { auth_mount: mount.id.to_string(), role: user.name.clone(), ..TokenOrigin::default() };
        let token = TokenRecord { origin, ..self.token.clone() };
        tx.insert_token(&token).await?;
        Ok(token)
    }

    fn audit_details(t: &TokenRecord) -> Option<Map<String, Value>> {
        details([("issued_accessor", t.accessor.clone().into())])
    }
}

/// Stores a user's new TOTP seed (enrolment started) or marks it enrolled.
#[derive(Debug)]
struct SetTotp {
    mount: String,
    name: String,
    /// A new sealed seed (enrolment started), or `None` to mark the pending one enrolled at `step`.
    seed: Option<String>,
    step: u64,
}

#[async_trait]
impl Command for SetTotp {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let mount = mount_of(tx, &self.mount, AuthKind::Userpass).await?;
        let mut user =
            tx.userpass_user_locked(mount.id, &self.name).await?.ok_or_else(|| CoreError::NotFound("user".into()))?;
        match &self.seed {
            Some(seed) => {
                user.totp_seed.clone_from(seed);
                user.totp_enrolled = false;
            }
            None => {
                if self.step <= user.totp_last_step {
                    return Err(CoreError::InvalidInput("that TOTP code was used already".into()));
                }
                user.totp_enrolled = true;
                user.totp_last_step = self.step;
            }
        }
        tx.put_userpass_user(&user).await?;
        Ok(())
    }
}

impl Keyward {
    async fn userpass_mount(&self, path: &str) -> Result<AuthMount, CoreError> {
        self.find_auth_mount(path)
            .await?
            .filter(|m| m.kind == AuthKind::Userpass)
            .ok_or_else(|| CoreError::NotFound(format!("userpass auth method at auth/{path}")))
    }

    async fn auth_keys(&self) -> Result<std::sync::Arc<AuthKeys>, CoreError> {
        self.keys.auth_keys(self.store.as_ref()).await
    }

    /// A user.
    pub async fn userpass_user(&self, mount: &str, name: &str) -> Result<User, CoreError> {
        let m = self.userpass_mount(mount).await?;
        self.store.userpass_user(m.id, name).await?.ok_or_else(|| CoreError::NotFound(format!("user {name:?}")))
    }

    /// The users of a mount.
    pub async fn userpass_users(&self, mount: &str) -> Result<Vec<User>, CoreError> {
        let m = self.userpass_mount(mount).await?;
        Ok(self.store.userpass_users(m.id).await?)
    }

    /// Creates or updates user `name`. The writer must hold every policy the user gets (root may
    /// grant any); a new password revokes the user's tokens.
    pub async fn write_user(
        &self,
        writer: &Caller,
        mount: &str,
        name: &str,
        req: UserRequest,
        audit: AuditEntry,
    ) -> Result<u64, CoreError> {
        super::approle::validate_name("user name", name)?;
        let m = self.userpass_mount(mount).await?;
        let current = self.store.userpass_user(m.id, name).await?;
        let mut config = current.as_ref().map_or_else(UserConfig::default, |u| u.config.clone());
        if let Some(p) = req.policies {
            config.token_policies = super::policy_list(&p)?;
        }
        if let Some(v) = req.token_ttl {
            config.token_ttl = v;
        }
        for (asked, field) in [
            (req.token_max_ttl, &mut config.token_max_ttl),
            (req.token_explicit_max_ttl, &mut config.token_explicit_max_ttl),
            (req.token_period, &mut config.token_period),
            (req.token_num_uses, &mut config.token_num_uses),
        ] {
            if let Some(v) = asked {
                *field = v;
            }
        }
        if let Some(v) = req.token_bound_cidrs {
            config.token_bound_cidrs = parse_cidrs(&v)?;
        }
        if let Some(v) = req.totp_required {
            config.totp_required = v;
        }
        config.terms().validate()?;
        self.check_grantable(writer, &config.token_policies, "a user").await?;
        let password_hash = match &req.password {
            Some(p) => {
                validate_password(p)?;
                let pepper = self.auth_keys().await?;
                let p = p.clone();
                hashing(move || hash_password(&pepper.pepper, p.as_bytes())).await??
            }
            None if current.is_none() => return Err(CoreError::InvalidInput("a new user needs a password".into())),
            None => String::new(),
        };
        let revoke = req.password.is_some() && current.is_some();
        let user = User {
            mount_id: m.id,
            name: name.to_owned(),
            password_hash,
            config,
            totp_seed: String::new(),
            totp_enrolled: false,
            totp_last_step: 0,
            created_at: now_nanos(),
        };
        let cmd = PutUser { mount: mount.to_owned(), user, keep_password: req.password.is_none(), revoke };
        self.writer.submit(cmd, audit).await
    }

    /// Deletes a user, revoking its tokens.
    pub async fn delete_user(&self, mount: &str, name: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(DropUser { mount: mount.to_owned(), name: name.to_owned(), totp_only: false }, audit).await
    }

    /// Forgets a user's TOTP enrolment (an admin reset): its next password login asks it to
    /// enrol again; its tokens are revoked.
    pub async fn reset_totp(&self, mount: &str, name: &str, audit: AuditEntry) -> Result<u64, CoreError> {
        self.writer.submit(DropUser { mount: mount.to_owned(), name: name.to_owned(), totp_only: true }, audit).await
    }

    /// Whether failures counted under `key` lock logins out now.
    async fn locked(&self, key: &str) -> Result<bool, CoreError> {
        Ok(self.store.login_failures(key).await?.is_some_and(|f| f.locked_until > now_nanos()))
    }

    /// A password (and TOTP) login (the address's own lockout is the server's). With `session`
    /// the token is a web UI session ([`TokenKind::UiSession`](crate::TokenKind)): at most
    /// [`UI_SESSION_SECS`] long, neither periodic, use-limited nor renewable.
    pub async fn login_userpass(
        &self,
        mount: &str,
        name: &str,
        password: Zeroizing<String>,
        code: Option<&str>,
        session: bool,
        audit: AuditEntry,
    ) -> Result<UserLogin, CoreError> {
        let m = self.userpass_mount(mount).await?;
        let keys = self.auth_keys().await?;
        let user = self.store.userpass_user(m.id, name).await?;
        // An unknown user costs the same hash (of a random password, made once), so the
        // answer's timing does not tell whether the user exists.
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let pepper = keys.clone();
        let pw = password.clone();
        let password_ok = hashing(move || {
            let hash = hash.unwrap_or_else(|| {
                DUMMY
                    .get_or_init(|| {
                        hash_password(&keyward_crypto::Key256::generate(), b"no such user").unwrap_or_default()
                    })
                    .clone()
            });
            verify_password(&pepper.pepper, pw.as_bytes(), &hash)
        })
        .await?;
        let Some(user) = user else { return Err(invalid_login()) };
        let fkey = failures_key(&user);
        if self.locked(&fkey).await? {
            // Right or wrong, the same answer after the same work.
            return Err(CoreError::Locked(
                "too many failed logins for this user; try again later (an administrator can wait it out, not lift it)"
                    .into(),
            ));
        }
        let mut step = None;
        let enrolled = user.totp_enrolled && !user.totp_seed.is_empty();
        let code_ok = match (user.config.totp_required, enrolled, code) {
            (false, _, _) => true,
            (true, false, _) => true, // not enrolled yet: the password leads to enrolment only
            (true, true, Some(code)) => {
                let seed = self.open_seed(&keys, &user)?;
                step = totp_check(&seed, code, unix_now(), Some(user.totp_last_step));
                step.is_some()
            }
            (true, true, None) => false,
        };
        if !password_ok || !code_ok {
            let lock = self.config.login_lockout_secs;
            if self.config.login_lockout_attempts > 0 && lock > 0 {
                let cmd = CountFailure {
                    key: fkey,
                    attempts: self.config.login_lockout_attempts,
                    lock_nanos: i64::try_from(lock).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000_000),
                };
                // Counted off the answer's path: a known user's failure must not take longer to
                // answer than an unknown one's (which has nothing to count).
                let writer = self.writer.clone();
                tokio::spawn(async move {
                    if let Err(e) = writer.maintain(cmd).await {
                        tracing::warn!(error = %e, "could not count a failed login");
                    }
                });
            }
            return Err(invalid_login());
        }
        let enrol = user.config.totp_required && !enrolled;
        let c = &user.config;
        let grant = match enrol {
            true => TokenTerms { ttl: ENROL_TTL_SECS, explicit_max_ttl: ENROL_TTL_SECS, ..TokenTerms::default() },
            false => self.login_grant(&c.terms()),
        };
        let grant = match session {
            true => session_terms(grant),
            false => grant,
        };
        let mut meta = BTreeMap::from([("username".to_owned(), user.name.clone())]);
        if enrol {
            meta.insert("purpose".into(), ENROL_PURPOSE.into());
            meta.insert("auth_path".into(), mount.to_owned());
        }
        let cidrs = if enrol { vec![] } else { c.token_bound_cidrs.clone() };
        let (token, mut record) = self.login_token(format!("userpass-{}", user.name), grant, cidrs, meta).await?;
        if session {
            record.kind = crate::TokenKind::UiSession;
            record.renewable = false;
        }
        let mut audit = audit;
        for (k, v) in [("method", "userpass"), ("user", user.name.as_str()), ("auth_mount", mount)] {
            audit.details.insert(k.into(), v.into());
        }
        audit.details.insert("enrolment".into(), enrol.into());
        let cmd = UserLoginCommand { mount: mount.to_owned(), name: user.name.clone(), step, token: record };
        let record = self.writer.submit(cmd, audit).await?;
        let issued = NewToken { token, record };
        Ok(if enrol { UserLogin::Enrol(issued) } else { UserLogin::Token(issued) })
    }

    fn open_seed(&self, keys: &AuthKeys, user: &User) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        use base64::Engine;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&user.totp_seed)
            .map_err(|_| CoreError::Integrity(format!("the TOTP seed of user {:?}", user.name)))?;
        Ok(keys.totp.open(&seal_aad(user), &sealed)?)
    }

    /// Starts (or, with a current code, restarts) a user's TOTP enrolment: a new seed, sealed
    /// and stored, returned as an `otpauth://` URI. A user already enrolled must give a current
    /// code; otherwise an administrator resets it first.
    pub async fn totp_enrol_start(
        &self,
        mount: &str,
        name: &str,
        current_code: Option<&str>,
        audit: AuditEntry,
    ) -> Result<Zeroizing<String>, CoreError> {
        let user = self.userpass_user(mount, name).await?;
        let keys = self.auth_keys().await?;
        if user.totp_enrolled {
            let seed = self.open_seed(&keys, &user)?;
            let ok = current_code.and_then(|c| totp_check(&seed, c, unix_now(), Some(user.totp_last_step)));
            if ok.is_none() {
                return Err(CoreError::Forbidden(
                    "this user is enrolled: re-enrolling needs a current code (or an administrator's totp reset)"
                        .into(),
                ));
            }
        }
        use base64::Engine;
        let seed = totp_seed();
        let sealed = base64::engine::general_purpose::STANDARD.encode(keys.totp.seal(&seal_aad(&user), &seed));
        self.writer
            .submit(SetTotp { mount: mount.to_owned(), name: name.to_owned(), seed: Some(sealed), step: 0 }, audit)
            .await?;
        Ok(totp_uri("keyward", &format!("{name}@{mount}"), &seed))
    }

    /// Completes enrolment with a code from the new seed.
    pub async fn totp_enrol_confirm(
        &self,
        mount: &str,
        name: &str,
        code: &str,
        audit: AuditEntry,
    ) -> Result<(), CoreError> {
        let user = self.userpass_user(mount, name).await?;
        if user.totp_seed.is_empty() || user.totp_enrolled {
            return Err(CoreError::InvalidInput("no enrolment is in progress for this user".into()));
        }
        let keys = self.auth_keys().await?;
        let seed = self.open_seed(&keys, &user)?;
        let step = totp_check(&seed, code, unix_now(), Some(user.totp_last_step))
            .ok_or_else(|| CoreError::InvalidInput("that code does not match the new TOTP seed".into()))?;
        self.writer.submit(SetTotp { mount: mount.to_owned(), name: name.to_owned(), seed: None, step }, audit).await
    }
}

/// The longest a web UI session lives, from its login.
pub const UI_SESSION_SECS: u64 = 8 * 3600;

/// A login's terms made a web UI session's: within [`UI_SESSION_SECS`], not periodic, no use limit.
fn session_terms(grant: TokenTerms) -> TokenTerms {
    let cap = |t: u64| if t == 0 { UI_SESSION_SECS } else { t.min(UI_SESSION_SECS) };
    TokenTerms { ttl: cap(grant.ttl), explicit_max_ttl: cap(grant.explicit_max_ttl), period: 0, num_uses: 0, ..grant }
}

fn unix_now() -> u64 {
    u64::try_from(now_nanos() / 1_000_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_request_never_shows_its_password() {
        let r = UserRequest { password: Some(Zeroizing::new("hunter2-canary".into())), ..Default::default() };
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2-canary") && shown.contains("REDACTED"), "{shown}");
    }
}
