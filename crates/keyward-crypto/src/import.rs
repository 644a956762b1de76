//! Read-only decoders of other stores' ciphertexts, for moving in: Cloak's `AES.GCM` binaries
//! (Elixir's Cloak / cloak_ecto) and the common Node `ivHex:authTagHex:cipherHex` strings. Both
//! use AES-256-GCM, often with 16-byte IVs, which `ring` does not take: these use RustCrypto's
//! `aes-gcm`, only here.
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use zeroize::Zeroizing;

use crate::CryptoError;

const TAG: usize = 16;
/// Cloak's AAD for `Cloak.Ciphers.AES.GCM`.
const CLOAK_AAD: &[u8] = b"AES256GCM";

/// A Cloak vault key: its tag, 32 bytes, and the IV length it was configured with (16 by default,
/// 12 when `iv_length: 12`).
pub struct CloakKey {
    /// The key tag written into each ciphertext.
    pub tag: Vec<u8>,
    /// The AES-256 key.
    pub key: Zeroizing<[u8; 32]>,
    /// IV length: 12 or 16.
    pub iv_len: usize,
}

impl std::fmt::Debug for CloakKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloakKey")
            .field("tag", &String::from_utf8_lossy(&self.tag))
            .field("iv_len", &self.iv_len)
            .finish_non_exhaustive()
    }
}

fn gcm_open(key: &[u8; 32], iv: &[u8], aad: &[u8], ct_and_tag: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let payload = Payload { msg: ct_and_tag, aad };
    let out = match iv.len() {
        12 => AesGcm::<Aes256, U12>::new(key.into()).decrypt(iv.into(), payload),
        16 => AesGcm::<Aes256, U16>::new(key.into()).decrypt(iv.into(), payload),
        _ => return Err(CryptoError::Malformed("IV length must be 12 or 16 bytes")),
    };
    out.map(Zeroizing::new).map_err(|_| CryptoError::DecryptionFailed)
}

/// Decrypts a Cloak `AES.GCM` binary: `0x01 | tag length | tag | IV | auth tag[16] | ciphertext`,
/// with the key chosen by its tag, as Cloak's vault does.
pub fn decrypt_cloak(keys: &[CloakKey], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&version, rest) = blob.split_first().ok_or(CryptoError::Malformed("empty ciphertext"))?;
    if version != 1 {
        return Err(CryptoError::UnsupportedFormat(version));
    }
    let (&tag_len, rest) = rest.split_first().ok_or(CryptoError::Malformed("truncated before the key tag"))?;
    let tag_len = usize::from(tag_len);
    if rest.len() < tag_len {
        return Err(CryptoError::Malformed("truncated inside the key tag"));
    }
    let (tag, rest) = rest.split_at(tag_len);
    let key = keys
        .iter()
        .find(|k| k.tag == tag)
        .ok_or_else(|| CryptoError::UnknownKeyTag(String::from_utf8_lossy(tag).into_owned()))?;
    if rest.len() < key.iv_len + TAG {
        return Err(CryptoError::Malformed("truncated before the ciphertext"));
    }
    let (iv, rest) = rest.split_at(key.iv_len);
    let (auth, ct) = rest.split_at(TAG);
    let mut joined = Zeroizing::new(Vec::with_capacity(ct.len() + TAG));
    joined.extend_from_slice(ct);
    joined.extend_from_slice(auth);
    gcm_open(&key.key, iv, CLOAK_AAD, &joined)
}

/// Decrypts `ivHex:authTagHex:cipherHex` (12- or 16-byte IV, no AAD) under a 32-byte key.
pub fn decrypt_gcm_hex(key: &[u8; 32], text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut parts = text.trim().split(':');
    let (Some(iv), Some(auth), Some(ct), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(CryptoError::Malformed("expected ivHex:authTagHex:cipherHex"));
    };
    let hex = |s: &str| hex::decode(s).map_err(|_| CryptoError::Malformed("not hexadecimal"));
    let (iv, auth, ct) = (hex(iv)?, hex(auth)?, Zeroizing::new(hex(ct)?));
    if auth.len() != TAG {
        return Err(CryptoError::Malformed("the auth tag must be 16 bytes"));
    }
    let mut joined = Zeroizing::new(ct.to_vec());
    joined.extend_from_slice(&auth);
    gcm_open(key, &iv, b"", &joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal(key: &[u8; 32], iv: &[u8], aad: &[u8], plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let payload = Payload { msg: plain, aad };
        let mut out = if iv.len() == 12 {
            AesGcm::<Aes256, U12>::new(key.into()).encrypt(iv.into(), payload).unwrap()
        } else {
            AesGcm::<Aes256, U16>::new(key.into()).encrypt(iv.into(), payload).unwrap()
        };
        let tag = out.split_off(out.len() - TAG);
        (out, tag)
    }

    fn cloak_blob(tag: &[u8], key: &[u8; 32], iv: &[u8], plain: &[u8]) -> Vec<u8> {
        let (ct, auth) = seal(key, iv, CLOAK_AAD, plain);
        let mut b = vec![1, tag.len() as u8];
        b.extend_from_slice(tag);
        b.extend_from_slice(iv);
        b.extend_from_slice(&auth);
        b.extend_from_slice(&ct);
        b
    }

    #[test]
    fn cloak_picks_the_key_by_tag() {
        let keys = vec![
            CloakKey { tag: b"AES.GCM.V1".to_vec(), key: Zeroizing::new([1; 32]), iv_len: 16 },
            CloakKey { tag: b"AES.GCM.V2".to_vec(), key: Zeroizing::new([2; 32]), iv_len: 12 },
        ];
        let b1 = cloak_blob(b"AES.GCM.V1", &[1; 32], &[9; 16], b"sk_live_one");
        let b2 = cloak_blob(b"AES.GCM.V2", &[2; 32], &[8; 12], b"sk_live_two");
        assert_eq!(&*decrypt_cloak(&keys, &b1).unwrap(), b"sk_live_one");
        assert_eq!(&*decrypt_cloak(&keys, &b2).unwrap(), b"sk_live_two");
        let unknown = cloak_blob(b"OTHER", &[1; 32], &[9; 16], b"x");
        assert_eq!(decrypt_cloak(&keys, &unknown), Err(CryptoError::UnknownKeyTag("OTHER".into())));
        let mut tampered = b1.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(decrypt_cloak(&keys, &tampered), Err(CryptoError::DecryptionFailed));
        for n in 0..b1.len() {
            assert!(decrypt_cloak(&keys, &b1[..n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn node_gcm_hex() {
        let key = [7u8; 32];
        for iv in [vec![3u8; 12], vec![4u8; 16]] {
            let (ct, tag) = seal(&key, &iv, b"", b"token-123");
            let text = format!("{}:{}:{}", hex::encode(&iv), hex::encode(&tag), hex::encode(&ct));
            assert_eq!(&*decrypt_gcm_hex(&key, &text).unwrap(), b"token-123");
            assert!(decrypt_gcm_hex(&[8; 32], &text).is_err());
        }
        for bad in ["", "a:b", "zz:00:00", "00112233445566778899aabb:00:00", "0011:0011:0011:0011"] {
            assert!(decrypt_gcm_hex(&key, bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..80), text in ".{0,80}") {
            let keys = vec![CloakKey { tag: vec![], key: Zeroizing::new([0; 32]), iv_len: 12 }];
            let _ = decrypt_cloak(&keys, &blob);
            let _ = decrypt_gcm_hex(&[0; 32], &text);
        }
    }
}
