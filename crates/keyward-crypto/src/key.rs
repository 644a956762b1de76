use std::fmt;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::aead::{AeadKey, NONCE, TAG};
use crate::{Aad, CryptoError};

/// A 256-bit symmetric key held in zeroizing memory, with a prepared AES-256-GCM schedule.
/// `Debug` never shows the key.
pub struct Key256 {
    bytes: Zeroizing<[u8; 32]>,
    aead: AeadKey,
}

impl Key256 {
    /// A fresh random key from the OS-seeded CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self::from_bytes(bytes)
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        let aead = AeadKey::new(&bytes);
        Self { bytes, aead }
    }

    /// Builds a key from a slice that must be exactly 32 bytes.
    pub fn from_slice(slice: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = slice.try_into().ok()?;
        Some(Self::from_bytes(Zeroizing::new(arr)))
    }

    /// The raw key bytes (for HMAC keys and wrapping).
    pub fn expose(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub(crate) fn aead(&self) -> &AeadKey {
        &self.aead
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.expose());
        let tag = ring::hmac::sign(&k, data);
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    /// An independent subkey derived with HKDF-SHA256 (no salt) for the purpose named by `info`.
    pub fn derive(&self, info: &[u8]) -> Key256 {
        struct Len32;
        impl ring::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(self.expose());
        let mut out = Zeroizing::new([0u8; 32]);
        prk.expand(&[info], Len32).and_then(|okm| okm.fill(out.as_mut())).expect("HKDF output of 32 bytes is valid");
        Key256::from_bytes(out)
    }

    /// Encrypts with AES-256-GCM and a random nonce: `nonce | ciphertext | tag`.
    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.aead.seal_into(aad, plaintext, &mut out);
        out
    }

    /// Opens what [`Key256::seal`] produced under the same AAD.
    pub fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.aead.open(aad, sealed).map(Zeroizing::new)
    }
}

impl Drop for Key256 {
    /// The key bytes zeroize themselves; ring's prepared AES schedule (which begins with the key
    /// itself) does not, so it is overwritten in place with the schedule of an all-zero key,
    /// and `black_box` keeps the compiler from discarding that store as dead.
    fn drop(&mut self) {
        self.aead = AeadKey::new(&[0u8; 32]);
        std::hint::black_box(&self.aead);
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256([REDACTED])")
    }
}

/// What a wrapped key is for; each purpose has its own AAD domain so a wrapped key cannot be
/// swapped into another role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrappedKeyDomain {
    /// A kv mount's data key.
    Dek,
    /// A transit key version.
    TransitKey,
    /// The audit chain key.
    AuditKey,
    /// The key under which token digests are computed.
    TokenKey,
    /// The integrity key, from which the row-MAC keys of untrusted storage are derived.
    IntegrityKey,
    /// A backup's own key (wrapped into the backup file's header, never stored in the database).
    BackupKey,
    /// The auth key: password peppers and TOTP seeds are made and sealed under its subkeys.
    AuthKey,
    /// The wrap key: wrapped responses are sealed under it.
    WrapKey,
}

impl WrappedKeyDomain {
    /// Every domain.
    pub const ALL: [Self; 8] = [
        Self::Dek,
        Self::TransitKey,
        Self::AuditKey,
        Self::TokenKey,
        Self::IntegrityKey,
        Self::BackupKey,
        Self::AuthKey,
        Self::WrapKey,
    ];

    /// The domain of a stored label.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.label() == label)
    }

    /// The AAD domain label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dek => "keyward/dek",
            Self::TransitKey => "keyward/transit-key",
            Self::AuditKey => "keyward/audit-key",
            Self::TokenKey => "keyward/token-key",
            Self::IntegrityKey => "keyward/integrity-key",
            Self::BackupKey => "keyward/backup-key",
            Self::AuthKey => "keyward/auth-key",
            Self::WrapKey => "keyward/wrap-key",
        }
    }
}

/// Format byte of wrapped keys.
const WRAP_FORMAT: u8 = 1;
/// Length of a wrapped 256-bit key: format, nonce, ciphertext, tag.
pub(crate) const WRAPPED_LEN: usize = 1 + NONCE + 32 + TAG;

/// A key encrypted under a master key (KEK), with the tag of that KEK.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// Tag of the KEK that wrapped it.
    pub kek_tag: String,
    /// `0x01 | nonce | ciphertext | tag`.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey").field("kek_tag", &self.kek_tag).finish_non_exhaustive()
    }
}

pub(crate) fn wrap_aad(domain: WrappedKeyDomain, owner: &[u8], version: u32) -> Aad {
    Aad::new(domain.label()).part(owner).part(&version.to_be_bytes())
}

pub(crate) fn wrap_with(kek: &Key256, tag: &str, aad: &Aad, key: &Key256) -> WrappedKey {
    let mut bytes = vec![WRAP_FORMAT];
    kek.aead().seal_into(aad, key.expose(), &mut bytes);
    WrappedKey { kek_tag: tag.to_owned(), bytes }
}

pub(crate) fn unwrap_with(kek: &Key256, aad: &Aad, wrapped: &[u8]) -> Result<Key256, CryptoError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(CryptoError::DecryptionFailed);
    }
    if wrapped[0] != WRAP_FORMAT {
        return Err(CryptoError::UnsupportedFormat(wrapped[0]));
    }
    let plain = Zeroizing::new(kek.aead().open(aad, &wrapped[1..])?);
    Key256::from_slice(&plain).ok_or(CryptoError::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_subkeys_are_distinct_and_stable() {
        let k = Key256::generate();
        let a = k.derive(b"keyward/audit/chain");
        let b = k.derive(b"keyward/audit/correlation");
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), k.expose());
        assert_eq!(a.expose(), k.derive(b"keyward/audit/chain").expose());
    }

    #[test]
    fn debug_is_redacted() {
        let k = Key256::from_bytes(Zeroizing::new([0x41; 32]));
        let s = format!("{k:?}");
        assert!(!s.contains("41") && !s.contains("65") && s.contains("REDACTED"));
    }

    #[test]
    fn wrap_is_bound_to_domain_owner_and_version() {
        let kek = Key256::generate();
        let key = Key256::generate();
        let aad = wrap_aad(WrappedKeyDomain::Dek, b"owner", 1);
        let w = wrap_with(&kek, "v1", &aad, &key);
        assert_eq!(w.bytes.len(), WRAPPED_LEN);
        let back = unwrap_with(&kek, &aad, &w.bytes).unwrap();
        assert_eq!(back.expose(), key.expose());
        for other in [
            wrap_aad(WrappedKeyDomain::TokenKey, b"owner", 1),
            wrap_aad(WrappedKeyDomain::Dek, b"other", 1),
            wrap_aad(WrappedKeyDomain::Dek, b"owner", 2),
        ] {
            assert!(unwrap_with(&kek, &other, &w.bytes).is_err());
        }
        assert!(unwrap_with(&Key256::generate(), &aad, &w.bytes).is_err());
    }
}
