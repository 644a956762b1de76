//! Transit ciphertexts, exactly as Vault prints them: `vault:v<N>:<base64(nonce|ciphertext|tag)>`,
//! AES-256-GCM with a random 96-bit nonce; the caller's `associated_data` is bound as AAD.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{Aad, CryptoError, Key256};

const PREFIX: &str = "vault:v";
/// AAD domain of transit ciphertexts.
const DOMAIN: &str = "keyward/transit";

fn aad(associated: &[u8]) -> Aad {
    Aad::new(DOMAIN).part(associated)
}

/// Encrypts under one key version and formats the ciphertext string.
pub fn seal_transit(key: &Key256, version: u32, associated: &[u8], plaintext: &[u8]) -> String {
    let sealed = key.seal(&aad(associated), plaintext);
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
pub fn open_transit(key: &Key256, associated: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    key.open(&aad(associated), sealed)
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
        let c = seal_transit(&k, 3, b"ad", b"hello");
        assert!(c.starts_with("vault:v3:"));
        let (v, sealed) = parse_transit(&c).unwrap();
        assert_eq!(v, 3);
        assert_eq!(sealed.len(), 12 + 5 + 16);
        assert_eq!(&*open_transit(&k, b"ad", &sealed).unwrap(), b"hello");
        assert!(open_transit(&k, b"other", &sealed).is_err());
        assert!(open_transit(&Key256::generate(), b"ad", &sealed).is_err());
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
        fn round_trips_and_rejects_every_flip(plain in proptest::collection::vec(any::<u8>(), 0..256), ad in proptest::collection::vec(any::<u8>(), 0..32), v in 1u32..1000, flip in any::<prop::sample::Index>()) {
            let k = Key256::generate();
            let c = seal_transit(&k, v, &ad, &plain);
            let (ver, mut sealed) = parse_transit(&c).unwrap();
            prop_assert_eq!(ver, v);
            prop_assert_eq!(&*open_transit(&k, &ad, &sealed).unwrap(), &plain[..]);
            let i = flip.index(sealed.len());
            sealed[i] ^= 1;
            prop_assert!(open_transit(&k, &ad, &sealed).is_err());
        }

        #[test]
        fn parser_never_panics(s in ".*") {
            let _ = parse_transit(&s);
        }
    }
}
