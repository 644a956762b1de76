//! The key manager: the master keyring, unwrapped data keys (cached by mount and version) and
//! the token key. Unwrapped keys live only here, in zeroizing types.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyward_crypto::{Key256, MasterKeyring, TokenKey, WrappedKey, WrappedKeyDomain};
use uuid::Uuid;

use crate::{AuditKeys, CoreError, KeyReads, Store, StoreTx};

/// An unwrapped key with the mount it belongs to.
type MountKey = (Uuid, Arc<Key256>);

/// Owner id of singleton keys (token key, audit key).
pub(crate) const SYSTEM_OWNER: Uuid = Uuid::nil();

/// Holds the keyring and caches of unwrapped keys.
#[derive(Debug)]
pub struct KeyManager {
    keyring: MasterKeyring,
    deks: RwLock<HashMap<(Uuid, u32), Arc<Key256>>>,
    /// Transit key versions by (key id, version), with their mount (for eviction).
    transit: RwLock<HashMap<(Uuid, u32), MountKey>>,
    token_key: RwLock<Option<Arc<TokenKey>>>,
    audit_keys: RwLock<Option<Arc<AuditKeys>>>,
    auth_keys: RwLock<Option<Arc<AuthKeys>>>,
    wrap_key: RwLock<Option<Arc<Key256>>>,
}

/// The subkeys of the auth key: the password pepper, and the key TOTP seeds are sealed under.
#[derive(Debug)]
pub(crate) struct AuthKeys {
    /// HMAC key the password is run through before Argon2.
    pub pepper: Key256,
    /// AES-256-GCM key sealing TOTP seeds (AAD: mount and user).
    pub totp: Key256,
}

impl AuthKeys {
    fn new(auth_key: &Key256) -> Self {
        Self { pepper: auth_key.derive(b"keyward/auth/pepper"), totp: auth_key.derive(b"keyward/auth/totp") }
    }
}

fn lock_poisoned() -> CoreError {
    CoreError::Unavailable
}

impl KeyManager {
    /// Wraps a keyring.
    pub fn new(keyring: MasterKeyring) -> Self {
        Self {
            keyring,
            deks: RwLock::new(HashMap::new()),
            transit: RwLock::new(HashMap::new()),
            token_key: RwLock::new(None),
            audit_keys: RwLock::new(None),
            auth_keys: RwLock::new(None),
            wrap_key: RwLock::new(None),
        }
    }

    /// The keyring.
    pub fn keyring(&self) -> &MasterKeyring {
        &self.keyring
    }

    /// Checks the configured keyring against the key-check values in the database (DESIGN §3)
    /// and stores check values for newly accepted tags. The decision is taken again inside the
    /// exclusive transaction that stores them, from values read there, and a value is only ever
    /// inserted: two servers started at once with different keys under one new tag cannot both
    /// record theirs (the second is refused as a wrong key). Errors name tags, never keys.
    pub async fn check_keyring(&self, store: &dyn Store) -> Result<(), CoreError> {
        let new_tags = self.new_tags(&store.kek_checks().await?, &store.kek_usage().await?)?;
        if new_tags.is_empty() {
            return Ok(());
        }
        let mut tx = store.begin_write(true).await?;
        let new_tags = self.new_tags(&tx.kek_checks().await?, &tx.kek_usage().await?)?;
        for kek in new_tags {
            tx.insert_kek_check(kek.tag.as_str(), &kek.check_value()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The configured KEKs whose check values are to be stored, given the stored `checks` and
    /// `usage`; an error when the keyring does not fit the database.
    fn new_tags(
        &self,
        checks: &[(String, Vec<u8>)],
        usage: &[(String, u64)],
    ) -> Result<Vec<&keyward_crypto::Kek>, CoreError> {
        for (tag, n) in usage {
            if self.keyring.get(tag).is_none() {
                return Err(CoreError::KeyMismatch(format!(
                    "master key tag {tag:?} still wraps {n} key(s) but is not configured: add it after the active key \
                     in KEYWARD_MASTER_KEYS (or the key file) until `keyward keys rewrap` has moved them"
                )));
            }
        }
        let mut verified_any = false;
        let mut new_tags = Vec::new();
        for kek in self.keyring.keks() {
            match checks.iter().find(|(t, _)| t == kek.tag.as_str()) {
                Some((_, stored)) if kek.verifies(stored) => verified_any = true,
                Some(_) => {
                    return Err(CoreError::KeyMismatch(format!(
                        "master key {:?} does not match the key-check value stored in this database (wrong key?)",
                        kek.tag.as_str()
                    )))
                }
                None => new_tags.push(kek),
            }
        }
        let empty = checks.is_empty() && usage.is_empty();
        if !new_tags.is_empty() && !verified_any && !empty {
            let names: Vec<&str> = new_tags.iter().map(|k| k.tag.as_str()).collect();
            return Err(CoreError::KeyMismatch(format!(
                "master key tag(s) {names:?} are new to this database and no configured key matches it: \
                 keep a key it already knows in the keyring"
            )));
        }
        Ok(new_tags)
    }

    /// Wraps a key under the active KEK.
    pub(crate) fn wrap(&self, domain: WrappedKeyDomain, owner: Uuid, version: u32, key: &Key256) -> WrappedKey {
        self.keyring.wrap(domain, owner.as_bytes(), version, key)
    }

    fn cached_dek(&self, mount: Uuid, version: u32) -> Result<Option<Arc<Key256>>, CoreError> {
        Ok(self.deks.read().map_err(|_| lock_poisoned())?.get(&(mount, version)).cloned())
    }

    fn cache_dek(&self, mount: Uuid, version: u32, wrapped: &WrappedKey) -> Result<Arc<Key256>, CoreError> {
        let key = self
            .keyring
            .unwrap_shared(WrappedKeyDomain::Dek, mount.as_bytes(), version, wrapped)
            .map_err(|_| CoreError::Integrity(format!("data key v{version} of the mount")))?;
        self.deks.write().map_err(|_| lock_poisoned())?.insert((mount, version), key.clone());
        Ok(key)
    }

    /// A mount's data key of `version`, read outside any transaction.
    pub(crate) async fn dek(&self, store: &dyn KeyReads, mount: Uuid, version: u32) -> Result<Arc<Key256>, CoreError> {
        if let Some(k) = self.cached_dek(mount, version)? {
            return Ok(k);
        }
        let wrapped = store
            .wrapped_key(WrappedKeyDomain::Dek.label(), mount, version)
            .await?
            .ok_or_else(|| CoreError::Integrity(format!("data key v{version} of the mount (missing)")))?;
        self.cache_dek(mount, version, &wrapped)
    }

    /// A mount's data key of `version`, read inside a write transaction.
    pub(crate) async fn dek_in_tx(
        &self,
        tx: &mut dyn StoreTx,
        mount: Uuid,
        version: u32,
    ) -> Result<Arc<Key256>, CoreError> {
        if let Some(k) = self.cached_dek(mount, version)? {
            return Ok(k);
        }
        let wrapped = tx
            .wrapped_key(WrappedKeyDomain::Dek.label(), mount, version)
            .await?
            .ok_or_else(|| CoreError::Integrity(format!("data key v{version} of the mount (missing)")))?;
        self.cache_dek(mount, version, &wrapped)
    }

    /// Re-wraps a stored key under the active KEK, keeping its domain, owner and version.
    pub(crate) fn rewrap(
        &self,
        domain: &str,
        owner: Uuid,
        version: u32,
        wrapped: &WrappedKey,
    ) -> Result<WrappedKey, CoreError> {
        let d = WrappedKeyDomain::from_label(domain)
            .ok_or_else(|| CoreError::Integrity(format!("a wrapped key of unknown domain {domain:?}")))?;
        let key = self.keyring.unwrap(d, owner.as_bytes(), version, wrapped).map_err(|_| {
            CoreError::Integrity(format!("{domain} v{version} of {owner} (under master key {:?})", wrapped.kek_tag))
        })?;
        Ok(self.wrap(d, owner, version, &key))
    }

    /// A transit key version, unwrapped once and cached.
    pub(crate) async fn transit_key(
        &self,
        store: &dyn Store,
        key: &crate::TransitKey,
        version: u32,
    ) -> Result<Arc<Key256>, CoreError> {
        if let Some((_, k)) = self.transit.read().map_err(|_| lock_poisoned())?.get(&(key.id, version)) {
            return Ok(k.clone());
        }
        let d = WrappedKeyDomain::TransitKey;
        let wrapped = store
            .wrapped_key(d.label(), key.id, version)
            .await?
            .ok_or_else(|| CoreError::Integrity(format!("transit key {:?} v{version} (missing)", key.name)))?;
        let k = self
            .keyring
            .unwrap_shared(d, key.id.as_bytes(), version, &wrapped)
            .map_err(|_| CoreError::Integrity(format!("transit key {:?} v{version}", key.name)))?;
        self.transit.write().map_err(|_| lock_poisoned())?.insert((key.id, version), (key.mount_id, k.clone()));
        Ok(k)
    }

    /// Forgets a deleted transit key.
    pub(crate) fn evict_transit(&self, key: Uuid) {
        if let Ok(mut t) = self.transit.write() {
            t.retain(|(id, _), _| *id != key);
        }
    }

    /// Forgets a mount's pruned data-key versions (their memory is wiped as the last copy drops).
    pub(crate) fn evict_deks(&self, mount: Uuid, versions: &[u32]) {
        if let Ok(mut deks) = self.deks.write() {
            deks.retain(|(m, v), _| *m != mount || !versions.contains(v));
        }
    }

    /// Forgets a deleted mount's data keys and transit keys.
    pub(crate) fn evict_mount(&self, mount: Uuid) {
        if let Ok(mut deks) = self.deks.write() {
            deks.retain(|(m, _), _| *m != mount);
        }
        if let Ok(mut t) = self.transit.write() {
            t.retain(|_, (m, _)| *m != mount);
        }
    }

    /// A singleton key made by initialisation (token key, audit key), unwrapped.
    async fn system_key(
        &self,
        store: &dyn KeyReads,
        domain: WrappedKeyDomain,
        what: &str,
    ) -> Result<Key256, CoreError> {
        let wrapped = store.wrapped_key(domain.label(), SYSTEM_OWNER, 1).await?.ok_or(CoreError::NotInitialized)?;
        self.keyring
            .unwrap(domain, SYSTEM_OWNER.as_bytes(), 1, &wrapped)
            .map_err(|_| CoreError::Integrity(what.to_owned()))
    }

    /// The token key, loaded on first use after initialisation.
    pub(crate) async fn token_key(&self, store: &dyn KeyReads) -> Result<Arc<TokenKey>, CoreError> {
        if let Some(k) = self.token_key.read().map_err(|_| lock_poisoned())?.clone() {
            return Ok(k);
        }
        let key = Arc::new(TokenKey(self.system_key(store, WrappedKeyDomain::TokenKey, "the token key").await?));
        *self.token_key.write().map_err(|_| lock_poisoned())? = Some(key.clone());
        Ok(key)
    }

    /// The audit chain and correlation keys, loaded on first use after initialisation.
    pub(crate) async fn audit_keys(&self, store: &dyn KeyReads) -> Result<Arc<AuditKeys>, CoreError> {
        if let Some(k) = self.audit_keys.read().map_err(|_| lock_poisoned())?.clone() {
            return Ok(k);
        }
        let keys =
            Arc::new(AuditKeys::new(&self.system_key(store, WrappedKeyDomain::AuditKey, "the audit key").await?));
        *self.audit_keys.write().map_err(|_| lock_poisoned())? = Some(keys.clone());
        Ok(keys)
    }

    /// The auth key's subkeys, loaded on first use; it exists once a userpass method was enabled.
    pub(crate) async fn auth_keys(&self, store: &dyn KeyReads) -> Result<Arc<AuthKeys>, CoreError> {
        if let Some(k) = self.auth_keys.read().map_err(|_| lock_poisoned())?.clone() {
            return Ok(k);
        }
        let keys = Arc::new(AuthKeys::new(&self.system_key(store, WrappedKeyDomain::AuthKey, "the auth key").await?));
        *self.auth_keys.write().map_err(|_| lock_poisoned())? = Some(keys.clone());
        Ok(keys)
    }

    /// Makes the auth key inside `tx` unless it exists (the first userpass method).
    pub(crate) async fn ensure_auth_key(&self, tx: &mut dyn crate::StoreTx) -> Result<(), CoreError> {
        let label = WrappedKeyDomain::AuthKey.label();
        if tx.wrapped_key(label, SYSTEM_OWNER, 1).await?.is_none() {
            let key = Key256::generate();
            tx.insert_wrapped_key(label, SYSTEM_OWNER, 1, &self.wrap(WrappedKeyDomain::AuthKey, SYSTEM_OWNER, 1, &key))
                .await?;
        }
        Ok(())
    }

    /// The wrap key, loaded on first use; it exists once a response was wrapped.
    pub(crate) async fn wrap_key(&self, store: &dyn KeyReads) -> Result<Arc<Key256>, CoreError> {
        if let Some(k) = self.wrap_key.read().map_err(|_| lock_poisoned())?.clone() {
            return Ok(k);
        }
        let key = Arc::new(self.system_key(store, WrappedKeyDomain::WrapKey, "the wrap key").await?);
        *self.wrap_key.write().map_err(|_| lock_poisoned())? = Some(key.clone());
        Ok(key)
    }

    /// The wrap key inside `tx`, made there if it does not exist yet (the first wrapped response).
    pub(crate) async fn wrap_key_in(&self, tx: &mut dyn crate::StoreTx) -> Result<Arc<Key256>, CoreError> {
        if let Some(k) = self.wrap_key.read().map_err(|_| lock_poisoned())?.clone() {
            return Ok(k);
        }
        let label = WrappedKeyDomain::WrapKey.label();
        let key = match tx.wrapped_key(label, SYSTEM_OWNER, 1).await? {
            Some(wrapped) => self
                .keyring
                .unwrap(WrappedKeyDomain::WrapKey, SYSTEM_OWNER.as_bytes(), 1, &wrapped)
                .map_err(|_| CoreError::Integrity("the wrap key".to_owned()))?,
            None => {
                let key = Key256::generate();
                let wrapped = self.wrap(WrappedKeyDomain::WrapKey, SYSTEM_OWNER, 1, &key);
                tx.insert_wrapped_key(label, SYSTEM_OWNER, 1, &wrapped).await?;
                key
            }
        };
        Ok(Arc::new(key))
    }

    /// Installs the token key made by initialisation.
    pub(crate) fn set_token_key(&self, key: Arc<TokenKey>) {
        if let Ok(mut slot) = self.token_key.write() {
            *slot = Some(key);
        }
    }
}
