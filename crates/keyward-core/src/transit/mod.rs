//! Transit: named, versioned encryption keys per transit mount (Vault's transit engine with
//! `aes256-gcm96` keys). Key versions are random keys wrapped under the master keyring; the
//! plaintext of what callers encrypt is never stored.
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

use keyward_crypto::{derive_transit_key, open_transit, parse_transit, seal_transit, Key256, WrappedKeyDomain};
use uuid::Uuid;
use zeroize::Zeroizing;

use async_trait::async_trait;

use crate::engine::command::Command;
use crate::{
    now_nanos, AuditEntry, CoreError, KeyManager, KeyTx, Keyward, Mount, MountKind, MountTx, StoreTx, TransitKey,
    TransitKeyConfig,
};

/// The one key type keyward's transit supports.
pub const AES256_GCM96: &str = "aes256-gcm96";
/// The signing key type: each version's 32 secret bytes are an Ed25519 seed.
pub const ED25519: &str = "ed25519";
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
    /// Recorded: keyward never exports keys.
    pub exportable: bool,
    /// Recorded: keyward never exports keys.
    pub allow_plaintext_backup: bool,
    /// Recorded automatic rotation period (seconds).
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
}

/// Refuses encryption with a key type that has none.
fn encrypting(key: &TransitKey) -> Result<(), CoreError> {
    match key.config.key_type.as_str() {
        AES256_GCM96 => Ok(()),
        other => Err(CoreError::InvalidInput(format!("key type {other} does not support encryption"))),
    }
}

/// The version and bytes of a `vault:vN:base64` HMAC or signature, the version checked against
/// the key's (below `min_decryption_version` is refused, as Vault does).
fn versioned(key: &TransitKey, text: &str, what: &str) -> Result<(u32, Vec<u8>), CoreError> {
    let bad = || CoreError::InvalidInput(format!("invalid {what}: expected vault:vN:base64"));
    let rest = text.trim().strip_prefix("vault:v").ok_or_else(bad)?;
    let (v, bytes) = rest.split_once(':').ok_or_else(bad)?;
    let v: u32 = v.parse().map_err(|_| bad())?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(bytes).map_err(|_| bad())?;
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

async fn add_version(tx: &mut dyn KeyTx, keys: &KeyManager, key: &mut TransitKey) -> Result<(), CoreError> {
    let next = key.config.latest_version + 1;
    let k = Key256::generate();
    let wrapped = keys.wrap(WrappedKeyDomain::TransitKey, key.id, next, &k);
    tx.insert_wrapped_key(WrappedKeyDomain::TransitKey.label(), key.id, next, &wrapped).await?;
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

/// Applies a [`TransitOp`]: its reply is the key's new state (the deleted key for a delete).
#[derive(Debug)]
struct TransitChange(TransitOp);

#[async_trait]
impl Command for TransitChange {
    type Reply = TransitKey;

    async fn apply(&self, tx: &mut dyn StoreTx, keys: &KeyManager) -> Result<TransitKey, CoreError> {
        apply(tx, keys, &self.0).await
    }
}

async fn apply(tx: &mut dyn StoreTx, keys: &KeyManager, op: &TransitOp) -> Result<TransitKey, CoreError> {
    match op {
        TransitOp::Create { mount, name, options } => {
            validate_key_name(name)?;
            let key_type = options.key_type.as_deref().unwrap_or(AES256_GCM96);
            if key_type != AES256_GCM96 && key_type != ED25519 {
                return Err(CoreError::InvalidInput(format!(
                    "key type {key_type:?} is not supported (keyward's transit offers {AES256_GCM96} and {ED25519})"
                )));
            }
            if key_type == ED25519 && options.derived {
                return Err(CoreError::InvalidInput("derived ed25519 keys are not supported".into()));
            }
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
                    versions: BTreeMap::new(),
                },
            };
            add_version(tx, keys, &mut key).await?;
            tx.insert_transit_key(&key).await?;
            Ok(key)
        }
        TransitOp::Rotate { mount, name } => {
            let mut key = key_for_update(tx, mount, name).await?;
            add_version(tx, keys, &mut key).await?;
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
    /// deleted key for delete).
    pub async fn transit_change(&self, op: TransitOp, audit: AuditEntry) -> Result<TransitKey, CoreError> {
        let forgetting = matches!(op, TransitOp::Delete { .. } | TransitOp::Trim { .. });
        let key = self.writer.submit(TransitChange(op), audit).await?;
        if forgetting {
            // A deleted key's versions, or trimmed ones, must not stay in memory.
            self.keys.evict_transit(key.id);
        }
        Ok(key)
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
        encrypting(key)?;
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
        Ok((seal_transit(&k, v, associated, plaintext), v))
    }

    /// The Ed25519 seed of a signing key's version.
    async fn signing_seed(&self, key: &TransitKey, version: u32) -> Result<Arc<Key256>, CoreError> {
        if key.config.key_type != ED25519 {
            return Err(CoreError::InvalidInput(format!(
                "key type {} does not support signing (create an {ED25519} key)",
                key.config.key_type
            )));
        }
        self.keys.transit_key(self.store.as_ref(), key, version).await
    }

    /// The public keys of a signing key's versions (base64), by version; empty for other types.
    pub async fn transit_public_keys(&self, key: &TransitKey) -> Result<BTreeMap<u32, String>, CoreError> {
        let mut out = BTreeMap::new();
        if key.config.key_type == ED25519 {
            for v in key.config.versions.keys() {
                let public = keyward_crypto::ed25519_public(&*self.signing_seed(key, *v).await?)?;
                out.insert(*v, base64::engine::general_purpose::STANDARD.encode(public));
            }
        }
        Ok(out)
    }

    /// The `vault:vN:` Ed25519 signature of `input` under the latest version (or `version`).
    pub async fn transit_sign(
        &self,
        key: &TransitKey,
        version: Option<u32>,
        input: &[u8],
    ) -> Result<String, CoreError> {
        let v = version.filter(|v| *v > 0).unwrap_or(key.config.latest_version);
        if v > key.config.latest_version || v < key.config.min_encryption_version {
            return Err(CoreError::InvalidInput("invalid key version for signing".into()));
        }
        let sig = keyward_crypto::ed25519_sign(&*self.signing_seed(key, v).await?, input)?;
        Ok(format!("vault:v{v}:{}", base64::engine::general_purpose::STANDARD.encode(sig)))
    }

    /// Whether `signature` (`vault:vN:…`) is a valid signature of `input`; versions below
    /// `min_decryption_version` are refused.
    pub async fn transit_verify_signature(
        &self,
        key: &TransitKey,
        input: &[u8],
        signature: &str,
    ) -> Result<bool, CoreError> {
        let (v, sig) = versioned(key, signature, "signature")?;
        let public = keyward_crypto::ed25519_public(&*self.signing_seed(key, v).await?)?;
        Ok(keyward_crypto::ed25519_verify(&public, input, &sig))
    }

    /// A key's material for `export/<kind>/<name>[/<version>]` (base64 by version): `encryption-key`
    /// and `signing-key` of a key of that sort, `hmac-key` of any — all only when the key is
    /// `exportable` —, and `public-key` of a signing key always. Never before `min_decryption_version`.
    pub async fn transit_export(
        &self,
        key: &TransitKey,
        kind: &str,
        version: Option<u32>,
    ) -> Result<BTreeMap<u32, Zeroizing<String>>, CoreError> {
        let c = &key.config;
        let signing = c.key_type == ED25519;
        let allowed = match kind {
            "encryption-key" => !signing && c.exportable,
            "signing-key" => signing && c.exportable,
            "hmac-key" => c.exportable,
            "public-key" => signing,
            _ => {
                return Err(CoreError::InvalidInput(
                    "export type must be encryption-key, signing-key, hmac-key or public-key".into(),
                ))
            }
        };
        if !allowed {
            return Err(CoreError::InvalidInput(match (kind, c.exportable) {
                ("public-key" | "signing-key", _) if !signing => {
                    format!("{kind} is for signing keys, and this key is {}", c.key_type)
                }
                ("encryption-key", _) if signing => "encryption-key is for encryption keys".into(),
                _ => "key is not exportable (set exportable when creating it; it cannot be turned on later)".into(),
            }));
        }
        let versions: Vec<u32> = match version {
            Some(v) if !c.versions.contains_key(&v) || v < c.min_decryption_version => {
                return Err(CoreError::InvalidInput(format!("version {v} is not an available version of the key")))
            }
            Some(v) => vec![v],
            None => c.versions.keys().copied().filter(|v| *v >= c.min_decryption_version).collect(),
        };
        let b64 = |b: &[u8]| Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(b));
        let mut out = BTreeMap::new();
        for v in versions {
            let secret = self.keys.transit_key(self.store.as_ref(), key, v).await?;
            let text = match kind {
                "encryption-key" => b64(secret.expose()),
                "hmac-key" => b64(self.hmac_key(key, v).await?.expose()),
                public_or_signing => {
                    let public = keyward_crypto::ed25519_public(&secret)?;
                    match public_or_signing {
                        // Vault's Ed25519 private key: the seed, then the public key.
                        "signing-key" => b64(&Zeroizing::new([&secret.expose()[..], &public].concat())),
                        _ => b64(&public),
                    }
                }
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
        Ok(format!("vault:v{v}:{}", base64::engine::general_purpose::STANDARD.encode(mac)))
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
        let (v, mac) = versioned(key, hmac, "HMAC")?;
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
        encrypting(key)?;
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
        let plain = open_transit(&k, associated, &sealed).map_err(|_| bad_ciphertext())?;
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
            versions: BTreeMap::new(),
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
