//! Plaintext backups of transit keys (`backup/<name>`, `restore[/<name>]`): every version's key
//! material with the key's settings, as base64 of a JSON envelope whose `mac` is an HMAC-SHA256,
//! under a subkey of the cluster's integrity key, of the canonical (RFC 8785) JSON of the
//! backup. A changed backup — or one another cluster made — is refused. Only keys with both
//! `exportable` and `allow_plaintext_backup` can be backed up, as in Vault.
use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_crypto::{Key256, SigningType};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{signing, PairRef};
use crate::{CoreError, Keyward, TransitKey, TransitKeyConfig};

/// The format tag inside every backup.
const FORMAT: &str = "keyward-transit-backup/1";
/// The integrity-key subkey backups are authenticated under.
const MAC_LABEL: &[u8] = b"keyward/transit/backup";

/// One version's material: the version key and, for ECDSA and RSA, the private key (base64).
#[derive(Serialize, Deserialize)]
struct Material {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
}

impl Drop for Material {
    fn drop(&mut self) {
        self.key.zeroize();
        self.private_key.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    format: String,
    name: String,
    config: TransitKeyConfig,
    keys: BTreeMap<u32, Material>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    backup: Payload,
    mac: String,
}

/// One restored version: its key and, for ECDSA and RSA, the private and public keys.
type Version = (u32, Zeroizing<[u8; 32]>, Option<(Zeroizing<Vec<u8>>, Vec<u8>)>);

/// A backup whose MAC checked, ready to restore. `Debug` shows no key material.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBackup {
    name: String,
    config: TransitKeyConfig,
    versions: Vec<Version>,
}

impl fmt::Debug for KeyBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyBackup").field("name", &self.name).field("versions", &self.versions.len()).finish()
    }
}

impl KeyBackup {
    /// Opens a backup string whose MAC under `mac_key` holds (the server's is a subkey of the
    /// integrity key; see [`Keyward::transit_read_backup`]). Public for the fuzz targets.
    pub fn open(text: &str, mac_key: &Key256) -> Result<Self, CoreError> {
        open(text, mac_key)
    }

    /// The name the key had.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's settings (no private keys: they are re-sealed for the restored key).
    pub(crate) fn config(&self) -> &TransitKeyConfig {
        &self.config
    }

    /// Each version with its key and, for ECDSA and RSA, its private and public keys.
    pub(crate) fn versions(&self) -> impl Iterator<Item = (u32, Key256, PairRef<'_>)> + '_ {
        self.versions.iter().map(|(v, key, pair)| {
            (*v, Key256::from_bytes(key.clone()), pair.as_ref().map(|(private, public)| (&private[..], &public[..])))
        })
    }
}

fn refused(why: &str) -> CoreError {
    CoreError::InvalidInput(format!("invalid backup: {why}"))
}

impl Keyward {
    async fn backup_mac_key(&self) -> Result<Key256, CoreError> {
        let (_, key) = self.integrity_key().await?.ok_or(CoreError::NotInitialized)?;
        Ok(key.derive(MAC_LABEL))
    }

    /// A plaintext backup of `key` (base64), when it is `exportable` and allows plaintext backup.
    pub async fn transit_backup(&self, key: &TransitKey) -> Result<Zeroizing<String>, CoreError> {
        if !key.config.exportable || !key.config.allow_plaintext_backup {
            return Err(CoreError::InvalidInput(
                "a backup needs a key with exportable and allow_plaintext_backup set (neither can be turned off)"
                    .into(),
            ));
        }
        let pair = signing(key).ok().filter(|t| t.has_key_pair());
        let mut keys = BTreeMap::new();
        for v in key.config.versions.keys().copied() {
            let secret = self.keys.transit_key(self.store.as_ref(), key, v).await?;
            let private_key = match pair {
                Some(t) => Some(STANDARD.encode(&*self.private_key(key, t, v).await?)),
                None => None,
            };
            keys.insert(v, Material { key: STANDARD.encode(secret.expose()), private_key });
        }
        let config = TransitKeyConfig { private_keys: BTreeMap::new(), ..key.config.clone() };
        let backup = Payload { format: FORMAT.into(), name: key.name.clone(), config, keys };
        seal(backup, &self.backup_mac_key().await?)
    }

    /// Checks a backup's MAC and shape and opens it for a restore.
    pub async fn transit_read_backup(&self, text: &str) -> Result<KeyBackup, CoreError> {
        open(text, &self.backup_mac_key().await?)
    }
}

/// The backup string of `backup`, MAC'd under `mac_key`.
fn seal(backup: Payload, mac_key: &Key256) -> Result<Zeroizing<String>, CoreError> {
    let canonical = Zeroizing::new(serde_jcs::to_vec(&backup).map_err(|e| refused(&e.to_string()))?);
    let mac = hex::encode(mac_key.hmac(&canonical));
    let json = Zeroizing::new(serde_json::to_vec(&Envelope { backup, mac }).map_err(|e| refused(&e.to_string()))?);
    Ok(Zeroizing::new(STANDARD.encode(&*json)))
}

/// Opens a backup string whose MAC under `mac_key` holds and whose versions match its settings.
fn open(text: &str, mac_key: &Key256) -> Result<KeyBackup, CoreError> {
    let json = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| refused("not base64"))?);
    let envelope: Envelope = serde_json::from_slice(&json).map_err(|_| refused("not a keyward transit backup"))?;
    if envelope.backup.format != FORMAT {
        return Err(refused("not a keyward transit backup of a format this server reads"));
    }
    let canonical =
        Zeroizing::new(serde_jcs::to_vec(&envelope.backup).map_err(|_| refused("not a keyward transit backup"))?);
    let expected = mac_key.hmac(&canonical);
    let mac = hex::decode(&envelope.mac).unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..])) {
        return Err(refused("its integrity check failed: it was changed, or another keyward cluster made it"));
    }
    let b = &envelope.backup;
    let c = &b.config;
    let listed: Vec<u32> = c.versions.keys().copied().collect();
    if listed != b.keys.keys().copied().collect::<Vec<_>>() || listed.last() != Some(&c.latest_version) {
        return Err(refused("its versions do not match its settings"));
    }
    let pair = SigningType::parse(&c.key_type).is_some_and(SigningType::has_key_pair);
    let mut versions = Vec::with_capacity(b.keys.len());
    for (v, m) in &b.keys {
        let key = Zeroizing::new(STANDARD.decode(&m.key).map_err(|_| refused("a version key is not base64"))?);
        if key.len() != 32 {
            return Err(refused("a version key is not 32 bytes"));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&key);
        let keys = match (pair, &m.private_key, c.public_keys.get(v)) {
            (true, Some(private), Some(public)) => Some((
                Zeroizing::new(STANDARD.decode(private).map_err(|_| refused("a private key is not base64"))?),
                STANDARD.decode(public).map_err(|_| refused("a public key is not base64"))?,
            )),
            (false, None, None) => None,
            _ => return Err(refused("its key pairs do not match its key type")),
        };
        versions.push((*v, bytes, keys));
    }
    Ok(KeyBackup { name: b.name.clone(), config: c.clone(), versions })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn backup(pairs: bool) -> Payload {
        let config = TransitKeyConfig {
            key_type: if pairs { "ecdsa-p256" } else { "aes256-gcm96" }.into(),
            latest_version: 2,
            min_decryption_version: 1,
            versions: [(1, 100), (2, 200)].into_iter().collect(),
            public_keys: if pairs {
                [(1, "AQI=".into()), (2, "AwQ=".into())].into_iter().collect()
            } else {
                BTreeMap::new()
            },
            ..TransitKeyConfig::default()
        };
        let material =
            |v: u8| Material { key: STANDARD.encode([v; 32]), private_key: pairs.then(|| STANDARD.encode([v, v])) };
        Payload {
            format: FORMAT.into(),
            name: "signer".into(),
            config,
            keys: [(1, material(1)), (2, material(2))].into_iter().collect(),
        }
    }

    #[test]
    fn round_trips_under_its_key_only() {
        let k = Key256::generate();
        for pairs in [false, true] {
            let text = seal(backup(pairs), &k).unwrap();
            let opened = open(&text, &k).unwrap();
            assert_eq!(opened.name(), "signer");
            let versions: Vec<_> =
                opened.versions().map(|(v, key, pair)| (v, key.expose()[0], pair.is_some())).collect();
            assert_eq!(versions, [(1, 1, pairs), (2, 2, pairs)]);
            assert!(format!("{opened:?}").contains("versions: 2") && !format!("{opened:?}").contains("AQI"));
            let err = open(&text, &Key256::generate()).unwrap_err().to_string();
            assert!(err.contains("integrity check failed"), "{err}");
        }
        // A MAC'd backup whose versions disagree with its settings is still refused.
        let mut odd = backup(false);
        odd.config.latest_version = 3;
        assert!(open(&seal(odd, &k).unwrap(), &k).unwrap_err().to_string().contains("versions"));
        let mut unpaired = backup(true);
        if let Some(m) = unpaired.keys.get_mut(&2) {
            m.private_key = None;
        }
        assert!(open(&seal(unpaired, &k).unwrap(), &k).unwrap_err().to_string().contains("key pairs"));
    }

    proptest! {
        #[test]
        fn any_changed_byte_is_refused(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = Key256::generate();
            let text = seal(backup(true), &k).unwrap();
            let mut json = STANDARD.decode(text.as_str()).unwrap();
            let i = at.index(json.len());
            json[i] ^= 1 << bit;
            // Either it no longer parses, or its MAC (over the canonical JSON) fails — unless the
            // flip only changed insignificant whitespace or escaping, which changes nothing.
            if let Ok(opened) = open(&STANDARD.encode(&json), &k) {
                prop_assert_eq!(opened, open(&text, &k).unwrap());
            }
        }

        #[test]
        fn the_parser_never_panics(s in ".*") {
            let _ = open(&s, &Key256::generate());
            let _ = open(&STANDARD.encode(s.as_bytes()), &Key256::generate());
        }
    }
}
