//! Transit: named, versioned keys per transit mount (Vault's transit engine): encryption keys
//! (`aes128-gcm96`, `aes256-gcm96`, `chacha20-poly1305`) and signing keys (`ed25519`,
//! `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096`). Every version is a random
//! key wrapped under the master keyring; an ECDSA or RSA version's private key is sealed under
//! it. The plaintext of what callers encrypt is never stored.
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use keyward_crypto::{
    derive_transit_key, open_private_key, open_transit, parse_transit, seal_private_key, seal_transit, Key256,
    Marshaling, SignParams, SigningType, TransitCipher, WrappedKeyDomain,
};
use uuid::Uuid;
use zeroize::Zeroizing;

mod backup;
pub use backup::KeyBackup;

use async_trait::async_trait;

use crate::engine::command::Command;
use crate::{
    now_nanos, AuditEntry, CoreError, KeyManager, KeyTx, Keyward, Mount, MountKind, MountTx, StoreTx, TransitKey,
    TransitKeyConfig,
};

/// The default key type.
pub const AES256_GCM96: &str = "aes256-gcm96";
/// Every key type transit offers.
pub const KEY_TYPES: [&str; 9] = [
    "aes128-gcm96",
    AES256_GCM96,
    "chacha20-poly1305",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
];
const MIN_AUTO_ROTATE_SECS: u64 = 3600;
const MAX_KEY_NAME: usize = 128;

/// Settings of a new transit key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitKeyOptions {
    /// Key type (`aes256-gcm96`, the default).
    pub key_type: Option<String>,
    /// Derive a key per `context`.
    pub derived: bool,
    /// Convergent encryption (not supported: refused).
    pub convergent_encryption: bool,
    /// Whether the key may be exported (cannot be turned off later).
    pub exportable: bool,
    /// Whether a plaintext backup may be taken (cannot be turned off later).
    pub allow_plaintext_backup: bool,
    /// Automatic rotation period (seconds; 0 = off).
    pub auto_rotate_period_secs: u64,
}

/// A change to a transit key's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitKeyChange {
    /// Ciphertexts below this version are refused (0 = 1).
    pub min_decryption_version: Option<u32>,
    /// Encryption uses at least this version (0 = the latest).
    pub min_encryption_version: Option<u32>,
    /// Whether the key may be deleted.
    pub deletion_allowed: Option<bool>,
    /// Whether the key may be exported (cannot be turned off once on).
    pub exportable: Option<bool>,
    /// Whether a plaintext backup may be taken (cannot be turned off once on).
    pub allow_plaintext_backup: Option<bool>,
    /// Automatic rotation period in seconds (0 or at least an hour).
    pub auto_rotate_period_secs: Option<u64>,
}

/// A change to a transit mount's keys, applied by the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitOp {
    /// Create a key unless it exists (then it is returned as it is).
    Create {
        /// Mount name.
        mount: String,
        /// Key name.
        name: String,
        /// Settings.
        options: TransitKeyOptions,
    },
    /// Add a new key version; encryption uses it from now on.
    Rotate {
        /// Mount name.
        mount: String,
        /// Key name.
        name: String,
    },
    /// Change settings.
    Configure {
        /// Mount name.
        mount: String,
        /// Key name.
        name: String,
        /// The change.
        change: TransitKeyChange,
    },
    /// Delete every version below `min_available_version` for good (`trim`): their ciphertexts,
    /// HMACs and signatures can no longer be opened or checked.
    Trim {
        /// Mount name.
        mount: String,
        /// Key name.
        name: String,
        /// The oldest version to keep.
        min_available_version: u32,
    },
    /// Delete a key and every version (only when `deletion_allowed`).
    Delete {
        /// Mount name.
        mount: String,
        /// Key name.
        name: String,
    },
    /// Restore a key from a verified backup, under its own name or `name`; an existing key of
    /// that name is replaced only with `force`.
    Restore {
        /// Mount name.
        mount: String,
        /// The name to restore under (the backup's when `None`).
        name: Option<String>,
        /// Replace an existing key.
        force: bool,
        /// The verified backup.
        backup: KeyBackup,
    },
}

/// The cipher of an encryption key, or why the key does not encrypt.
fn encrypting(key: &TransitKey) -> Result<TransitCipher, CoreError> {
    TransitCipher::parse(&key.config.key_type)
        .ok_or_else(|| CoreError::InvalidInput(format!("key type {} does not support encryption", key.config.key_type)))
}

/// The signing type of a signing key, or why the key does not sign.
fn signing(key: &TransitKey) -> Result<SigningType, CoreError> {
    SigningType::parse(&key.config.key_type)
        .ok_or_else(|| CoreError::InvalidInput(format!("key type {} does not support signing", key.config.key_type)))
}

/// The version and bytes of a `vault:vN:base64` HMAC or signature, the version checked against
/// the key's (below `min_decryption_version` is refused, as Vault does). `url_safe` for JWS
/// marshaled signatures (unpadded URL-safe base64).
fn versioned(key: &TransitKey, text: &str, what: &str, url_safe: bool) -> Result<(u32, Vec<u8>), CoreError> {
    let bad = || CoreError::InvalidInput(format!("invalid {what}: expected vault:vN:base64"));
    let rest = text.trim().strip_prefix("vault:v").ok_or_else(bad)?;
    let (v, bytes) = rest.split_once(':').ok_or_else(bad)?;
    let v: u32 = v.parse().map_err(|_| bad())?;
    let bytes = if url_safe { URL_SAFE_NO_PAD.decode(bytes) } else { STANDARD.decode(bytes) }.map_err(|_| bad())?;
    if v == 0 || v > key.config.latest_version {
        return Err(CoreError::InvalidInput(format!("invalid {what}: key version is not one of the key's")));
    }
    if v < key.config.min_decryption_version {
        return Err(CoreError::InvalidInput(
            "ciphertext or signature version is disallowed by policy (too old)".into(),
        ));
    }
    Ok((v, bytes))
}

/// Validates a transit key name: 1-128 characters of `A-Z a-z 0-9 . _ -`.
pub fn validate_key_name(name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_KEY_NAME
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidInput(format!(
            "transit key name must be 1-{MAX_KEY_NAME} characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

async fn transit_mount(tx: &mut dyn MountTx, name: &str) -> Result<Mount, CoreError> {
    match tx.mount(name).await? {
        Some(m) if m.kind == MountKind::Transit => Ok(m),
        Some(_) => Err(CoreError::InvalidInput(format!("mount {name:?} is not a transit mount"))),
        None => Err(CoreError::NotFound(format!("mount {name:?}"))),
    }
}

async fn key_for_update(tx: &mut dyn StoreTx, mount: &str, name: &str) -> Result<TransitKey, CoreError> {
    let m = transit_mount(tx, mount).await?;
    tx.transit_key_for_update(m.id, name).await?.ok_or_else(|| CoreError::NotFound(format!("transit key {name:?}")))
}

/// A key pair generated for a new ECDSA or RSA version before the writer runs (RSA takes
/// seconds): the private key (PKCS#8) and the public key (SubjectPublicKeyInfo DER).
#[derive(Clone)]
struct NewKeyPair {
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl fmt::Debug for NewKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewKeyPair([REDACTED])")
    }
}

/// A version's private key (PKCS#8) and public key (SubjectPublicKeyInfo DER), for ECDSA and RSA.
type PairRef<'a> = Option<(&'a [u8], &'a [u8])>;

/// Stores version `version` of `key`: `secret` wrapped under the keyring and, for an ECDSA or
/// RSA key, the key pair's public key and its private key sealed under `secret`.
async fn store_version(
    tx: &mut dyn KeyTx,
    keys: &KeyManager,
    key: &mut TransitKey,
    version: u32,
    secret: &Key256,
    pair: PairRef<'_>,
) -> Result<(), CoreError> {
    let wrapped = keys.wrap(WrappedKeyDomain::TransitKey, key.id, version, secret);
    tx.insert_wrapped_key(WrappedKeyDomain::TransitKey.label(), key.id, version, &wrapped).await?;
    let needs_pair = SigningType::parse(&key.config.key_type).is_some_and(SigningType::has_key_pair);
    match (needs_pair, pair) {
        (true, Some((private, public))) => {
            let sealed = seal_private_key(secret, key.id.as_bytes(), version, private);
            key.config.private_keys.insert(version, STANDARD.encode(sealed));
            key.config.public_keys.insert(version, STANDARD.encode(public));
        }
        (false, None) => {}
        _ => {
            return Err(CoreError::Conflict(format!("key {:?} changed type while a version was made: retry", key.name)))
        }
    }
    Ok(())
}

async fn add_version(
    tx: &mut dyn KeyTx,
    keys: &KeyManager,
    key: &mut TransitKey,
    pair: Option<&NewKeyPair>,
) -> Result<(), CoreError> {
    let next = key.config.latest_version + 1;
    let pair = pair.map(|p| (&p.private[..], &p.public[..]));
    store_version(tx, keys, key, next, &Key256::generate(), pair).await?;
    key.config.latest_version = next;
    key.config.versions.insert(next, now_nanos() / 1_000_000_000);
    Ok(())
}

fn check_auto_rotate(secs: u64) -> Result<(), CoreError> {
    if secs != 0 && secs < MIN_AUTO_ROTATE_SECS {
        return Err(CoreError::InvalidInput("auto rotate period must be 0 to disable or at least an hour".into()));
    }
    Ok(())
}

/// Applies a [`TransitOp`], with the key pair of a new ECDSA or RSA version: its reply is the
/// key's new state (the deleted key for a delete).
#[derive(Debug)]
struct TransitChange {
    op: TransitOp,
    pair: Option<NewKeyPair>,
}

#[async_trait]
impl Command for TransitChange {
    type Reply = TransitKey;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<TransitKey, CoreError> {
        apply(tx, keys, &self.op, self.pair.as_ref()).await
    }
}

/// Refuses a key type transit does not offer, and derivation of a key that does not encrypt.
fn check_key_type(key_type: &str, derived: bool) -> Result<(), CoreError> {
    if !KEY_TYPES.contains(&key_type) {
        return Err(CoreError::InvalidInput(format!(
            "key type {key_type:?} is not supported (transit offers {})",
            KEY_TYPES.join(", ")
        )));
    }
    if derived && TransitCipher::parse(key_type).is_none() {
        return Err(CoreError::InvalidInput(format!("key derivation is for encryption keys, not {key_type}")));
    }
    Ok(())
}

async fn apply(
    tx: &mut dyn StoreTx,
    keys: &KeyManager,
    op: &TransitOp,
    pair: Option<&NewKeyPair>,
) -> Result<TransitKey, CoreError> {
    match op {
        TransitOp::Create { mount, name, options } => {
            validate_key_name(name)?;
            let key_type = options.key_type.as_deref().unwrap_or(AES256_GCM96);
            check_key_type(key_type, options.derived)?;
            if options.convergent_encryption {
                return Err(CoreError::InvalidInput("convergent encryption is not supported".into()));
            }
            check_auto_rotate(options.auto_rotate_period_secs)?;
            let m = transit_mount(tx, mount).await?;
            if let Some(existing) = tx.transit_key_for_update(m.id, name).await? {
                return Ok(existing);
            }
            let mut key = TransitKey {
                id: Uuid::new_v4(),
                mount_id: m.id,
                name: name.clone(),
                config: TransitKeyConfig {
                    key_type: key_type.into(),
                    latest_version: 0,
                    min_decryption_version: 1,
                    min_encryption_version: 0,
                    deletion_allowed: false,
                    derived: options.derived,
                    exportable: options.exportable,
                    allow_plaintext_backup: options.allow_plaintext_backup,
                    auto_rotate_period_secs: options.auto_rotate_period_secs,
                    ..TransitKeyConfig::default()
                },
            };
            add_version(tx, keys, &mut key, pair).await?;
            tx.insert_transit_key(&key).await?;
            Ok(key)
        }
        TransitOp::Rotate { mount, name } => {
            let mut key = key_for_update(tx, mount, name).await?;
            add_version(tx, keys, &mut key, pair).await?;
            tx.update_transit_key(&key).await?;
            Ok(key)
        }
        TransitOp::Configure { mount, name, change } => {
            let mut key = key_for_update(tx, mount, name).await?;
            configure(&mut key.config, change)?;
            tx.update_transit_key(&key).await?;
            Ok(key)
        }
        TransitOp::Trim { mount, name, min_available_version: min } => {
            let mut key = key_for_update(tx, mount, name).await?;
            let c = &key.config;
            if *min == 0 || *min > c.latest_version {
                return Err(CoreError::InvalidInput(
                    "min_available_version must be between 1 and the latest key version".into(),
                ));
            }
            if *min > c.min_decryption_version || (c.min_encryption_version > 0 && *min > c.min_encryption_version) {
                return Err(CoreError::InvalidInput(
                    "cannot trim past min_decryption_version or min_encryption_version: raise them first".into(),
                ));
            }
            let gone: Vec<u32> = key.config.versions.keys().copied().filter(|v| v < min).collect();
            for v in gone {
                tx.delete_wrapped_key(WrappedKeyDomain::TransitKey.label(), key.id, v).await?;
                key.config.versions.remove(&v);
                key.config.public_keys.remove(&v);
                key.config.private_keys.remove(&v);
            }
            tx.update_transit_key(&key).await?;
            Ok(key)
        }
        TransitOp::Delete { mount, name } => {
            let key = key_for_update(tx, mount, name).await?;
            if !key.config.deletion_allowed {
                return Err(CoreError::InvalidInput("deletion is not allowed for this key".into()));
            }
            tx.delete_transit_key(key.id).await?;
            Ok(key)
        }
        TransitOp::Restore { mount, name, force, backup } => {
            let name = name.as_deref().unwrap_or(backup.name());
            validate_key_name(name)?;
            check_key_type(&backup.config().key_type, backup.config().derived)?;
            let m = transit_mount(tx, mount).await?;
            if let Some(existing) = tx.transit_key_for_update(m.id, name).await? {
                if !force {
                    // Vault answers 400 here, and clients expect it.
                    return Err(CoreError::InvalidInput(format!(
                        "key {name:?} already exists: restore with force to replace it"
                    )));
                }
                tx.delete_transit_key(existing.id).await?;
            }
            let mut key = TransitKey {
                id: Uuid::new_v4(),
                mount_id: m.id,
                name: name.to_owned(),
                config: TransitKeyConfig {
                    public_keys: BTreeMap::new(),
                    private_keys: BTreeMap::new(),
                    ..backup.config().clone()
                },
            };
            for (version, secret, pair) in backup.versions() {
                store_version(tx, keys, &mut key, version, &secret, pair).await?;
            }
            tx.insert_transit_key(&key).await?;
            Ok(key)
        }
    }
}

fn configure(c: &mut TransitKeyConfig, change: &TransitKeyChange) -> Result<(), CoreError> {
    let latest = c.latest_version;
    let min_dec = change.min_decryption_version.map(|v| v.max(1)).unwrap_or(c.min_decryption_version);
    let min_enc = change.min_encryption_version.unwrap_or(c.min_encryption_version);
    if min_dec > latest {
        return Err(CoreError::InvalidInput(format!(
            "cannot set min decryption version of {min_dec}, latest key version is {latest}"
        )));
    }
    if min_enc > latest {
        return Err(CoreError::InvalidInput(format!(
            "cannot set min encryption version of {min_enc}, latest key version is {latest}"
        )));
    }
    if min_enc != 0 && min_enc < min_dec {
        return Err(CoreError::InvalidInput(
            "min encryption version should not be less than min decryption version".into(),
        ));
    }
    if change.exportable == Some(false) && c.exportable {
        return Err(CoreError::InvalidInput("exportability cannot be disabled after enabling".into()));
    }
    if change.allow_plaintext_backup == Some(false) && c.allow_plaintext_backup {
        return Err(CoreError::InvalidInput("allow_plaintext_backup cannot be disabled after enabling".into()));
    }
    if let Some(p) = change.auto_rotate_period_secs {
        check_auto_rotate(p)?;
        c.auto_rotate_period_secs = p;
    }
    c.min_decryption_version = min_dec;
    c.min_encryption_version = min_enc;
    if let Some(d) = change.deletion_allowed {
        c.deletion_allowed = d;
    }
    c.exportable |= change.exportable.unwrap_or(false);
    c.allow_plaintext_backup |= change.allow_plaintext_backup.unwrap_or(false);
    Ok(())
}

fn bad_ciphertext() -> CoreError {
    CoreError::InvalidInput("invalid ciphertext: cipher: message authentication failed".into())
}

impl Keyward {
    /// Applies a change to a transit key, with its audit entry, and returns its new state (the
    /// deleted key for delete). A new ECDSA or RSA version's key pair is generated first, off
    /// the async threads, so the writer never waits for RSA key generation.
    pub async fn transit_change(&self, op: TransitOp, audit: AuditEntry) -> Result<TransitKey, CoreError> {
        let pair = self.key_pair_for(&op).await?;
        let replaced = match &op {
            TransitOp::Restore { mount, name, backup, .. } => {
                self.transit_key(mount, name.as_deref().unwrap_or(backup.name())).await.ok()
            }
            _ => None,
        };
        let forgetting = matches!(op, TransitOp::Delete { .. } | TransitOp::Trim { .. });
        let key = self.writer.submit(TransitChange { op, pair }, audit).await?;
        if forgetting {
            // A deleted key's versions, or trimmed ones, must not stay in memory.
            self.keys.evict_transit(key.id);
        }
        if let Some(old) = replaced.filter(|old| old.id != key.id) {
            self.keys.evict_transit(old.id);
        }
        Ok(key)
    }

    /// The key pair a create or rotation of an ECDSA or RSA key needs.
    async fn key_pair_for(&self, op: &TransitOp) -> Result<Option<NewKeyPair>, CoreError> {
        let key_type = match op {
            TransitOp::Create { mount, name, options } => match self.transit_key(mount, name).await {
                Ok(_) => return Ok(None), // it exists: create returns it as it is
                Err(_) => options.key_type.clone().unwrap_or_else(|| AES256_GCM96.into()),
            },
            TransitOp::Rotate { mount, name } => match self.transit_key(mount, name).await {
                Ok(k) => k.config.key_type,
                Err(_) => return Ok(None), // the writer reports what is missing
            },
            _ => return Ok(None),
        };
        let Some(t) = SigningType::parse(&key_type).filter(|t| t.has_key_pair()) else { return Ok(None) };
        let (private, public) =
            tokio::task::spawn_blocking(move || t.generate()).await.map_err(|_| CoreError::Unavailable)??;
        Ok(Some(NewKeyPair { private, public }))
    }

    /// Rotates every transit key whose `auto_rotate_period` has passed since its latest version,
    /// as of `now_secs` (Unix seconds), each with its audit entry (`transit.keys.auto-rotate`);
    /// returns how many. The leader runs it (one replica).
    pub async fn rotate_due_transit_keys(&self, now_secs: i64) -> Result<u64, CoreError> {
        let mut rotated = 0;
        for m in self.store.list_mounts().await?.into_iter().filter(|m| m.kind == MountKind::Transit) {
            for name in self.store.transit_key_names(m.id).await? {
                let Some(key) = self.store.transit_key(m.id, &name).await? else { continue };
                if !key.config.rotation_due(now_secs) {
                    continue;
                }
                let audit = AuditEntry {
                    operation: "transit.keys.auto-rotate".into(),
                    status: 200,
                    time: crate::format_rfc3339(now_nanos()),
                    mount: m.path.clone(),
                    path: format!("keys/{name}"),
                    details: [("scheduled".to_owned(), true.into())].into_iter().collect(),
                    ..AuditEntry::default()
                };
                self.transit_change(TransitOp::Rotate { mount: m.path.clone(), name }, audit).await?;
                rotated += 1;
            }
        }
        Ok(rotated)
    }

    /// A transit key by name.
    pub async fn transit_key(&self, mount: &str, name: &str) -> Result<TransitKey, CoreError> {
        let m = self.mount_of(mount, MountKind::Transit).await?;
        self.store.transit_key(m.id, name).await?.ok_or_else(|| CoreError::NotFound(format!("transit key {name:?}")))
    }

    /// A transit mount's key names.
    pub async fn transit_key_names(&self, mount: &str) -> Result<Vec<String>, CoreError> {
        let m = self.mount_of(mount, MountKind::Transit).await?;
        Ok(self.store.transit_key_names(m.id).await?)
    }

    async fn version_key(
        &self,
        key: &TransitKey,
        version: u32,
        context: Option<&[u8]>,
    ) -> Result<Arc<Key256>, CoreError> {
        let k = self.keys.transit_key(self.store.as_ref(), key, version).await?;
        match (key.config.derived, context) {
            (false, _) => Ok(k),
            (true, Some(ctx)) if !ctx.is_empty() => Ok(Arc::new(derive_transit_key(&k, ctx))),
            (true, _) => Err(CoreError::InvalidInput(
                "missing 'context' for key derivation; the key was created using a derived key, which means \
                 additional, per-request information must be included in order to perform operations with the key"
                    .into(),
            )),
        }
    }

    /// Encrypts under the latest version (or `version`, which must be allowed by the key's
    /// `min_encryption_version`): returns the `vault:vN:…` string and N.
    pub async fn transit_encrypt(
        &self,
        key: &TransitKey,
        version: Option<u32>,
        plaintext: &[u8],
        context: Option<&[u8]>,
        associated: &[u8],
    ) -> Result<(String, u32), CoreError> {
        let c = &key.config;
        let cipher = encrypting(key)?;
        let v = match version.filter(|v| *v > 0) {
            None => c.latest_version,
            Some(v) if v > c.latest_version => {
                return Err(CoreError::InvalidInput(
                    "requested version for encryption is greater than the latest key version".into(),
                ))
            }
            Some(v) if v < c.min_encryption_version || v < c.min_decryption_version => {
                return Err(CoreError::InvalidInput(
                    "requested version for encryption is less than the minimum encryption key version".into(),
                ))
            }
            Some(v) => v,
        };
        let k = self.version_key(key, v, context).await?;
        Ok((seal_transit(cipher, &k, v, associated, plaintext), v))
    }

    /// The private key of a signing key's version: the Ed25519 seed, or the ECDSA or RSA
    /// PKCS#8 document opened from under the version's key.
    async fn private_key(
        &self,
        key: &TransitKey,
        t: SigningType,
        version: u32,
    ) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let secret = self.keys.transit_key(self.store.as_ref(), key, version).await?;
        if !t.has_key_pair() {
            return Ok(Zeroizing::new(secret.expose().to_vec()));
        }
        let broken = || CoreError::Integrity(format!("transit key {:?} v{version} (its private key)", key.name));
        let sealed = key.config.private_keys.get(&version).ok_or_else(broken)?;
        let sealed = STANDARD.decode(sealed).map_err(|_| broken())?;
        open_private_key(&secret, key.id.as_bytes(), version, &sealed).map_err(|_| broken())
    }

    /// The public key of a signing key's version (raw for Ed25519, else SubjectPublicKeyInfo DER).
    async fn public_key(&self, key: &TransitKey, t: SigningType, version: u32) -> Result<Vec<u8>, CoreError> {
        if !t.has_key_pair() {
            let seed = self.keys.transit_key(self.store.as_ref(), key, version).await?;
            return Ok(SigningType::seed_public(&seed)?);
        }
        let broken = || CoreError::Integrity(format!("transit key {:?} v{version} (its public key)", key.name));
        STANDARD.decode(key.config.public_keys.get(&version).ok_or_else(broken)?).map_err(|_| broken())
    }

    /// The public keys of a signing key's versions as Vault shows them (base64 for Ed25519, PEM
    /// otherwise), by version; empty for other types.
    pub async fn transit_public_keys(&self, key: &TransitKey) -> Result<BTreeMap<u32, String>, CoreError> {
        let mut out = BTreeMap::new();
        if let Ok(t) = signing(key) {
            for v in key.config.versions.keys() {
                out.insert(*v, t.public_text(&self.public_key(key, t, *v).await?));
            }
        }
        Ok(out)
    }

    /// The `vault:vN:` signature of `input` under the latest version (or `version`), and N. JWS
    /// marshaled signatures are unpadded URL-safe base64, as Vault prints them.
    pub async fn transit_sign(
        &self,
        key: &TransitKey,
        version: Option<u32>,
        params: &SignParams,
        input: &[u8],
    ) -> Result<(String, u32), CoreError> {
        let t = signing(key)?;
        let v = version.filter(|v| *v > 0).unwrap_or(key.config.latest_version);
        if v > key.config.latest_version
            || v < key.config.min_encryption_version
            || !key.config.versions.contains_key(&v)
        {
            return Err(CoreError::InvalidInput("invalid key version for signing".into()));
        }
        let sig = t.sign(&self.private_key(key, t, v).await?, params, input)?;
        let text = match params.marshaling {
            Marshaling::Jws => URL_SAFE_NO_PAD.encode(sig),
            Marshaling::Asn1 => STANDARD.encode(sig),
        };
        Ok((format!("vault:v{v}:{text}"), v))
    }

    /// Whether `signature` (`vault:vN:…`) is a valid signature of `input`; versions below
    /// `min_decryption_version` are refused.
    pub async fn transit_verify_signature(
        &self,
        key: &TransitKey,
        params: &SignParams,
        input: &[u8],
        signature: &str,
    ) -> Result<bool, CoreError> {
        let t = signing(key)?;
        let (v, sig) = versioned(key, signature, "signature", params.marshaling == Marshaling::Jws)?;
        if !key.config.versions.contains_key(&v) {
            return Err(CoreError::InvalidInput("invalid signature: its key version was trimmed".into()));
        }
        Ok(t.verify(&self.public_key(key, t, v).await?, params, input, &sig)?)
    }

    /// A key's material for `export/<kind>/<name>[/<version>]` by version, all only when the key
    /// is `exportable`: `encryption-key` (base64 of an encryption key's bytes; an RSA key's
    /// private key, as Vault), `signing-key` (a signing key's private key), `hmac-key` (any key's
    /// HMAC key) — and `public-key` of a signing key always. Never before `min_decryption_version`.
    pub async fn transit_export(
        &self,
        key: &TransitKey,
        kind: &str,
        version: Option<u32>,
    ) -> Result<BTreeMap<u32, Zeroizing<String>>, CoreError> {
        let c = &key.config;
        let cipher = TransitCipher::parse(&c.key_type);
        let signer = SigningType::parse(&c.key_type);
        let rsa = matches!(signer, Some(SigningType::Rsa(_)));
        let fits = match kind {
            "encryption-key" => cipher.is_some() || rsa,
            "signing-key" | "public-key" => signer.is_some(),
            "hmac-key" => true,
            _ => {
                return Err(CoreError::InvalidInput(
                    "export type must be encryption-key, signing-key, hmac-key or public-key".into(),
                ))
            }
        };
        if !fits {
            return Err(CoreError::InvalidInput(format!("a {} key has no {kind}", c.key_type)));
        }
        if kind != "public-key" && !c.exportable {
            return Err(CoreError::InvalidInput(
                "key is not exportable (set exportable when creating it or in its config; it cannot be turned off)"
                    .into(),
            ));
        }
        let versions: Vec<u32> = match version {
            Some(v) if !c.versions.contains_key(&v) || v < c.min_decryption_version => {
                return Err(CoreError::InvalidInput(format!("version {v} is not an available version of the key")))
            }
            Some(v) => vec![v],
            None => c.versions.keys().copied().filter(|v| *v >= c.min_decryption_version).collect(),
        };
        let mut out = BTreeMap::new();
        for v in versions {
            let text = match (kind, cipher, signer) {
                ("hmac-key", _, _) => Zeroizing::new(STANDARD.encode(self.hmac_key(key, v).await?.expose())),
                ("encryption-key", Some(cipher), _) => {
                    let secret = self.keys.transit_key(self.store.as_ref(), key, v).await?;
                    Zeroizing::new(STANDARD.encode(cipher.key_bytes(&secret)))
                }
                ("public-key", _, Some(t)) => Zeroizing::new(t.public_text(&self.public_key(key, t, v).await?)),
                (_, _, Some(t)) => t.private_text(&self.private_key(key, t, v).await?)?,
                _ => return Err(CoreError::InvalidInput(format!("a {} key has no {kind}", c.key_type))),
            };
            out.insert(v, text);
        }
        Ok(out)
    }

    /// The HMAC key of a key version: derived from it under its own label, so an HMAC never
    /// uses the encryption key itself.
    async fn hmac_key(&self, key: &TransitKey, version: u32) -> Result<Key256, CoreError> {
        Ok(self.keys.transit_key(self.store.as_ref(), key, version).await?.derive(b"keyward/transit/hmac"))
    }

    /// The `vault:vN:…` HMAC of `input` under the latest version (or `version`).
    pub async fn transit_hmac(
        &self,
        key: &TransitKey,
        version: Option<u32>,
        alg: keyward_crypto::HashAlg,
        input: &[u8],
    ) -> Result<String, CoreError> {
        let v = version.filter(|v| *v > 0).unwrap_or(key.config.latest_version);
        if v > key.config.latest_version {
            return Err(CoreError::InvalidInput("invalid key version: greater than the latest".into()));
        }
        if v < key.config.min_encryption_version {
            return Err(CoreError::InvalidInput("invalid key version: below min_encryption_version".into()));
        }
        let mac = alg.hmac(self.hmac_key(key, v).await?.expose(), input);
        Ok(format!("vault:v{v}:{}", STANDARD.encode(mac)))
    }

    /// Whether `hmac` (`vault:vN:…`) is the HMAC of `input`; versions below
    /// `min_decryption_version` are refused.
    pub async fn transit_verify_hmac(
        &self,
        key: &TransitKey,
        alg: keyward_crypto::HashAlg,
        input: &[u8],
        hmac: &str,
    ) -> Result<bool, CoreError> {
        let (v, mac) = versioned(key, hmac, "HMAC", false)?;
        Ok(alg.verify_hmac(self.hmac_key(key, v).await?.expose(), input, &mac))
    }

    /// Decrypts a `vault:vN:…` string; versions below `min_decryption_version` are refused.
    pub async fn transit_decrypt(
        &self,
        key: &TransitKey,
        ciphertext: &str,
        context: Option<&[u8]>,
        associated: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, u32), CoreError> {
        let cipher = encrypting(key)?;
        let (v, sealed) = parse_transit(ciphertext.trim()).map_err(|_| bad_ciphertext())?;
        if v > key.config.latest_version {
            return Err(CoreError::InvalidInput("invalid ciphertext: key version is greater than the latest".into()));
        }
        if v < key.config.min_decryption_version {
            return Err(CoreError::InvalidInput(
                "ciphertext or signature version is disallowed by policy (too old)".into(),
            ));
        }
        let k = self.version_key(key, v, context).await?;
        let plain = open_transit(cipher, &k, associated, &sealed).map_err(|_| bad_ciphertext())?;
        Ok((plain, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(latest: u32) -> TransitKeyConfig {
        TransitKeyConfig {
            key_type: AES256_GCM96.into(),
            latest_version: latest,
            min_decryption_version: 1,
            min_encryption_version: 0,
            deletion_allowed: false,
            derived: false,
            exportable: false,
            allow_plaintext_backup: false,
            auto_rotate_period_secs: 0,
            ..TransitKeyConfig::default()
        }
    }

    #[test]
    fn configuration_rules_follow_vault() {
        let mut c = config(3);
        let err = configure(&mut c, &TransitKeyChange { min_decryption_version: Some(4), ..Default::default() });
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("cannot set min decryption version of 4, latest key version is 3"));
        configure(&mut c, &TransitKeyChange { min_decryption_version: Some(2), ..Default::default() }).unwrap();
        assert_eq!(c.min_decryption_version, 2);
        assert!(configure(&mut c, &TransitKeyChange { min_encryption_version: Some(1), ..Default::default() }).is_err());
        configure(&mut c, &TransitKeyChange { min_encryption_version: Some(3), ..Default::default() }).unwrap();
        assert!(
            configure(&mut c, &TransitKeyChange { auto_rotate_period_secs: Some(60), ..Default::default() }).is_err()
        );
        configure(&mut c, &TransitKeyChange { exportable: Some(true), ..Default::default() }).unwrap();
        assert!(configure(&mut c, &TransitKeyChange { exportable: Some(false), ..Default::default() }).is_err());
        assert!(validate_key_name("orders-v2").is_ok());
        assert!(
            validate_key_name("a/b").is_err() && validate_key_name("").is_err() && validate_key_name("..").is_err()
        );
    }
}
