//! Transit ciphertexts, exactly as Vault prints them: `vault:v<N>:<base64(nonce|ciphertext|tag)>`,
//! AES-256-GCM, AES-128-GCM or ChaCha20-Poly1305 (all through ring) with a random 96-bit nonce;
//! the caller's `associated_data` is bound as AAD.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use ring::aead::{self, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{Aad, CryptoError, Key256};

const PREFIX: &str = "vault:v";
/// AAD domain of transit ciphertexts.
const DOMAIN: &str = "keyward/transit";

fn aad(associated: &[u8]) -> Aad {
    Aad::new(DOMAIN).part(associated)
}

/// The cipher of a transit encryption key type. Every version holds 32 random bytes: AES-128
/// uses the first 16 of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitCipher {
    /// `aes128-gcm96`.
    Aes128Gcm,
    /// `aes256-gcm96`.
    Aes256Gcm,
    /// `chacha20-poly1305`.
    ChaCha20Poly1305,
}

impl TransitCipher {
    /// The cipher of a Vault key type name.
    pub fn parse(key_type: &str) -> Option<Self> {
        match key_type {
            "aes128-gcm96" => Some(Self::Aes128Gcm),
            "aes256-gcm96" => Some(Self::Aes256Gcm),
            "chacha20-poly1305" => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The key bytes this cipher uses of a version's 32 (what `export` shows).
    pub fn key_bytes(self, key: &Key256) -> &[u8] {
        match self {
            Self::Aes128Gcm => &key.expose()[..16],
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => key.expose(),
        }
    }

    /// ring's key for the ciphers without a prepared schedule in [`Key256`].
    fn ring_key(self, key: &Key256) -> LessSafeKey {
        let alg = match self {
            Self::Aes128Gcm => &aead::AES_128_GCM,
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        LessSafeKey::new(UnboundKey::new(alg, self.key_bytes(key)).expect("key length matches the cipher"))
    }
}

/// Encrypts under one key version with `cipher` and formats the ciphertext string.
pub fn seal_transit(cipher: TransitCipher, key: &Key256, version: u32, associated: &[u8], plaintext: &[u8]) -> String {
    let aad = aad(associated);
    let sealed = match cipher {
        TransitCipher::Aes256Gcm => key.seal(&aad, plaintext),
        other => {
            let mut nonce = [0u8; aead::NONCE_LEN];
            rand::rng().fill_bytes(&mut nonce);
            let mut out = nonce.to_vec();
            out.extend_from_slice(plaintext);
            let tag = other
                .ring_key(key)
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(aad.as_bytes()),
                    &mut out[aead::NONCE_LEN..],
                )
                .expect("sealing cannot fail for inputs under 64 GiB");
            out.extend_from_slice(tag.as_ref());
            out
        }
    };
    format!("{PREFIX}{version}:{}", STANDARD.encode(sealed))
}

/// Splits a ciphertext string into its key version and sealed bytes, checking its shape.
pub fn parse_transit(ciphertext: &str) -> Result<(u32, Vec<u8>), CryptoError> {
    let rest = ciphertext.strip_prefix(PREFIX).ok_or(CryptoError::DecryptionFailed)?;
    let (version, body) = rest.split_once(':').ok_or(CryptoError::DecryptionFailed)?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::DecryptionFailed);
    }
    let version: u32 = version.parse().map_err(|_| CryptoError::DecryptionFailed)?;
    if version == 0 {
        return Err(CryptoError::DecryptionFailed);
    }
    let sealed = STANDARD.decode(body).map_err(|_| CryptoError::DecryptionFailed)?;
    Ok((version, sealed))
}

/// Opens sealed bytes from [`parse_transit`] with the key of their version.
pub fn open_transit(
    cipher: TransitCipher,
    key: &Key256,
    associated: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let aad = aad(associated);
    if cipher == TransitCipher::Aes256Gcm {
        return key.open(&aad, sealed);
    }
    if sealed.len() < aead::NONCE_LEN + 16 {
        return Err(CryptoError::DecryptionFailed);
    }
    let (nonce, body) = sealed.split_at(aead::NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::DecryptionFailed)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let n = cipher
        .ring_key(key)
        .open_in_place(nonce, aead::Aad::from(aad.as_bytes()), &mut buf)
        .map_err(|_| CryptoError::DecryptionFailed)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// AAD domain of an asymmetric version's private key, sealed under the version's own key.
const PRIVATE_DOMAIN: &str = "keyward/transit-private-key";

fn private_aad(owner: &[u8], version: u32) -> Aad {
    Aad::new(PRIVATE_DOMAIN).part(owner).part(&version.to_be_bytes())
}

/// Seals an ECDSA or RSA version's private key (PKCS#8) under the version's key, bound to the
/// transit key's id (`owner`) and the version, so it cannot be moved to another key or version.
pub fn seal_private_key(key: &Key256, owner: &[u8], version: u32, private: &[u8]) -> Vec<u8> {
    key.seal(&private_aad(owner, version), private)
}

/// Opens what [`seal_private_key`] sealed.
pub fn open_private_key(
    key: &Key256,
    owner: &[u8],
    version: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    key.open(&private_aad(owner, version), sealed)
}

/// A derived key of a transit key version for one `context` (Vault's `derived` keys).
pub fn derive_transit_key(key: &Key256, context: &[u8]) -> Key256 {
    let mut info = b"keyward/transit-context:".to_vec();
    info.extend_from_slice(context);
    key.derive(&info)
}

/// `n` random bytes (data keys, `random`), in zeroizing memory.
pub fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    rand::rng().fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shape_and_round_trip() {
        let k = Key256::generate();
        for cipher in [TransitCipher::Aes128Gcm, TransitCipher::Aes256Gcm, TransitCipher::ChaCha20Poly1305] {
            let c = seal_transit(cipher, &k, 3, b"ad", b"hello");
            assert!(c.starts_with("vault:v3:"));
            let (v, sealed) = parse_transit(&c).unwrap();
            assert_eq!(v, 3);
            assert_eq!(sealed.len(), 12 + 5 + 16);
            assert_eq!(&*open_transit(cipher, &k, b"ad", &sealed).unwrap(), b"hello");
            assert!(open_transit(cipher, &k, b"other", &sealed).is_err());
            assert!(open_transit(cipher, &Key256::generate(), b"ad", &sealed).is_err());
            assert!(open_transit(cipher, &k, b"ad", &sealed[..20]).is_err());
        }
        // One cipher's ciphertext does not open under another's.
        let (_, sealed) = parse_transit(&seal_transit(TransitCipher::Aes128Gcm, &k, 1, b"", b"x")).unwrap();
        assert!(open_transit(TransitCipher::Aes256Gcm, &k, b"", &sealed).is_err());
        assert!(open_transit(TransitCipher::ChaCha20Poly1305, &k, b"", &sealed).is_err());
        assert_eq!(TransitCipher::Aes128Gcm.key_bytes(&k).len(), 16);
        let sealed = seal_private_key(&k, b"key-a", 2, b"pkcs8");
        assert_eq!(&*open_private_key(&k, b"key-a", 2, &sealed).unwrap(), b"pkcs8");
        assert!(open_private_key(&k, b"key-b", 2, &sealed).is_err());
        assert!(open_private_key(&k, b"key-a", 3, &sealed).is_err());
        for bad in
            ["", "vault:v:AAAA", "vault:v0:AAAA", "vault:vx:AAAA", "vault:v1", "vault:v1:!!", "vault:v-1:AA", "v1:AAAA"]
        {
            assert!(parse_transit(bad).is_err(), "{bad}");
        }
        let d1 = derive_transit_key(&k, b"user-1");
        assert_ne!(d1.expose(), derive_transit_key(&k, b"user-2").expose());
        assert_eq!(d1.expose(), derive_transit_key(&k, b"user-1").expose());
    }

    proptest! {
        #[test]
        fn round_trips_and_rejects_every_flip(plain in proptest::collection::vec(any::<u8>(), 0..256), ad in proptest::collection::vec(any::<u8>(), 0..32), v in 1u32..1000, flip in any::<prop::sample::Index>(), which in 0usize..3) {
            let cipher = [TransitCipher::Aes128Gcm, TransitCipher::Aes256Gcm, TransitCipher::ChaCha20Poly1305][which];
            let k = Key256::generate();
            let c = seal_transit(cipher, &k, v, &ad, &plain);
            let (ver, mut sealed) = parse_transit(&c).unwrap();
            prop_assert_eq!(ver, v);
            prop_assert_eq!(&*open_transit(cipher, &k, &ad, &sealed).unwrap(), &plain[..]);
            let i = flip.index(sealed.len());
            sealed[i] ^= 1;
            prop_assert!(open_transit(cipher, &k, &ad, &sealed).is_err());
        }

        #[test]
        fn parser_never_panics(s in ".*") {
            let _ = parse_transit(&s);
        }
    }
}
