//! The master keyring: the key-encryption keys (KEKs) from the environment or a key file.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use std::sync::Arc;

use crate::key::{unwrap_with, wrap_aad, wrap_with};
use crate::{Aad, CryptoError, Key256, WrappedKey, WrappedKeyDomain};

/// Label whose HMAC under a KEK is that KEK's key-check value.
const CHECK_LABEL: &[u8] = b"keyward/kek-check/v1";

/// A validated KEK tag: 1–32 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KekTag(String);

impl KekTag {
    /// Validates a tag.
    pub fn parse(s: &str) -> Result<Self, CryptoError> {
        let ok = !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(CryptoError::InvalidMasterKey(format!("tag {s:?} must be 1-32 characters of A-Z a-z 0-9 . _ -")))
        }
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One master key with its tag.
#[derive(Debug)]
pub struct Kek {
    /// The tag under which wrapped keys name this KEK.
    pub tag: KekTag,
    key: Key256,
}

impl Kek {
    /// Builds a KEK from its tag and key.
    pub fn new(tag: KekTag, key: Key256) -> Self {
        Self { tag, key }
    }

    /// The key-check value stored in the database: HMAC-SHA256 of a fixed label.
    pub fn check_value(&self) -> [u8; 32] {
        self.key.hmac(CHECK_LABEL)
    }

    /// Constant-time comparison of a stored key-check value with this KEK's.
    pub fn verifies(&self, stored: &[u8]) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.check_value()[..], stored).into()
    }
}

/// The configured KEKs; the first is active (wraps new keys), the others only unwrap.
#[derive(Debug)]
pub struct MasterKeyring {
    keks: Vec<Kek>,
}

impl MasterKeyring {
    /// Builds a keyring from KEKs; the first is active. Tags must be unique.
    pub fn new(keks: Vec<Kek>) -> Result<Self, CryptoError> {
        if keks.is_empty() {
            return Err(CryptoError::InvalidMasterKey("no key given".into()));
        }
        for (i, k) in keks.iter().enumerate() {
            if keks[..i].iter().any(|o| o.tag == k.tag) {
                return Err(CryptoError::InvalidMasterKey(format!("tag {:?} appears twice", k.tag.as_str())));
            }
        }
        Ok(Self { keks })
    }

    /// A keyring with one random KEK tagged `v1` (dev mode).
    pub fn generate() -> Self {
        Self { keks: vec![Kek::new(KekTag("v1".into()), Key256::generate())] }
    }

    /// Parses `tag:base64key[,tag:base64key…]` (commas or newlines between entries), as read from
    /// `KEYWARD_MASTER_KEYS` or a key file. A lone base64 key without a tag is tagged `v1`.
    pub fn parse(spec: &str) -> Result<Self, CryptoError> {
        let entries: Vec<&str> =
            spec.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty() && !e.starts_with('#')).collect();
        if entries.is_empty() {
            return Err(CryptoError::InvalidMasterKey("no key given".into()));
        }
        let mut keks = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let (tag, b64) = match entry.split_once(':') {
                Some((t, k)) => (KekTag::parse(t.trim())?, k.trim()),
                None if entries.len() == 1 => (KekTag("v1".into()), *entry),
                None => {
                    return Err(CryptoError::InvalidMasterKey(format!(
                        "entry {} has no tag (expected tag:base64key)",
                        i + 1
                    )))
                }
            };
            keks.push(Kek::new(tag.clone(), decode_key(b64, &tag)?));
        }
        Self::new(keks)
    }

    /// Parses one base64 key (`KEYWARD_MASTER_KEY`), tagged `v1`.
    pub fn parse_single(b64: &str) -> Result<Self, CryptoError> {
        let tag = KekTag("v1".into());
        let key = decode_key(b64.trim(), &tag)?;
        Self::new(vec![Kek::new(tag, key)])
    }

    /// The active KEK.
    pub fn active(&self) -> &Kek {
        &self.keks[0]
    }

    /// All KEKs, active first.
    pub fn keks(&self) -> &[Kek] {
        &self.keks
    }

    /// The KEK with a tag, if configured.
    pub fn get(&self, tag: &str) -> Option<&Kek> {
        self.keks.iter().find(|k| k.tag.as_str() == tag)
    }

    /// Wraps `key` under the active KEK, bound to its domain, owner and version.
    pub fn wrap(&self, domain: WrappedKeyDomain, owner: &[u8], version: u32, key: &Key256) -> WrappedKey {
        let kek = self.active();
        wrap_with(&kek.key, kek.tag.as_str(), &wrap_aad(domain, owner, version), key)
    }

    /// Unwraps a key with the KEK named by its tag.
    pub fn unwrap(
        &self,
        domain: WrappedKeyDomain,
        owner: &[u8],
        version: u32,
        wrapped: &WrappedKey,
    ) -> Result<Key256, CryptoError> {
        let kek = self.get(&wrapped.kek_tag).ok_or(CryptoError::DecryptionFailed)?;
        unwrap_with(&kek.key, &wrap_aad(domain, owner, version), &wrapped.bytes)
    }

    /// [`MasterKeyring::unwrap`] for a key kept in memory (a cached data or transit key): the key
    /// goes straight to the heap, and the stack the unwrapping used — where moves left copies of
    /// the key and of ring's AES schedule — is overwritten before returning, so no copy outlives
    /// the shared one (whose memory [`Key256`]'s drop wipes). Best effort: the compiler decides
    /// what it copies where, which the memory test checks.
    pub fn unwrap_shared(
        &self,
        domain: WrappedKeyDomain,
        owner: &[u8],
        version: u32,
        wrapped: &WrappedKey,
    ) -> Result<Arc<Key256>, CryptoError> {
        let kek = self.get(&wrapped.kek_tag).ok_or(CryptoError::DecryptionFailed)?;
        let key = unwrap_into_arc(&kek.key, &wrap_aad(domain, owner, version), &wrapped.bytes);
        scrub_stack();
        key
    }
}

/// How much stack [`MasterKeyring::unwrap_shared`] overwrites below its frame: more than the
/// deepest unwrapping path uses (ring's key schedule, the AEAD, the moves between them).
const STACK_SCRUB: usize = 32 * 1024;

/// Unwraps into a shared key; never inlined, so that its frame, and every frame below it that
/// held copies of the key or its schedule, lies in the stack that [`scrub_stack`] overwrites.
#[inline(never)]
fn unwrap_into_arc(kek: &Key256, aad: &Aad, wrapped: &[u8]) -> Result<Arc<Key256>, CryptoError> {
    unwrap_with(kek, aad, wrapped).map(Arc::new)
}

/// Overwrites `STACK_SCRUB` bytes of the stack below the caller's frame with zeros.
#[inline(never)]
fn scrub_stack() {
    let mut zeros = [0u8; STACK_SCRUB];
    std::hint::black_box(&mut zeros);
}

fn decode_key(b64: &str, tag: &KekTag) -> Result<Key256, CryptoError> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::InvalidMasterKey(format!("key {:?} is not valid base64", tag.as_str())))?,
    );
    Key256::from_slice(&bytes).ok_or_else(|| {
        CryptoError::InvalidMasterKey(format!(
            "key {:?} must decode to 32 bytes (got {}); make one with `keyward gen key`",
            tag.as_str(),
            bytes.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    #[test]
    fn parses_lists_and_single_keys() {
        let r = MasterKeyring::parse(&format!("v2:{K2}, v1:{K1}")).unwrap();
        assert_eq!(r.active().tag.as_str(), "v2");
        assert_eq!(r.keks().len(), 2);
        let r = MasterKeyring::parse(&format!("# comment\nv1:{K1}\n")).unwrap();
        assert_eq!(r.active().tag.as_str(), "v1");
        assert_eq!(MasterKeyring::parse(K1).unwrap().active().tag.as_str(), "v1");
        assert_eq!(MasterKeyring::parse_single(K1).unwrap().active().tag.as_str(), "v1");
    }

    #[test]
    fn rejects_bad_specs_without_echoing_keys() {
        for bad in ["", "v1:notbase64!", "v1:AAAA", &format!("v1:{K1},v1:{K2}"), &format!("bad tag:{K1}")] {
            let err = MasterKeyring::parse(bad).unwrap_err().to_string();
            assert!(!err.contains(K1) && !err.contains(K2), "{err}");
        }
    }

    #[test]
    fn check_values_distinguish_keys_and_old_tags_unwrap() {
        let old = MasterKeyring::parse(&format!("v1:{K1}")).unwrap();
        let w = old.wrap(WrappedKeyDomain::TokenKey, b"o", 1, &Key256::generate());
        let both = MasterKeyring::parse(&format!("v2:{K2},v1:{K1}")).unwrap();
        assert!(both.unwrap(WrappedKeyDomain::TokenKey, b"o", 1, &w).is_ok());
        assert!(both.get("v1").unwrap().verifies(&old.active().check_value()));
        assert!(!both.active().verifies(&old.active().check_value()));
        let new_only = MasterKeyring::parse(&format!("v2:{K2}")).unwrap();
        assert!(new_only.unwrap(WrappedKeyDomain::TokenKey, b"o", 1, &w).is_err());
    }
}
