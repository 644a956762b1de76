//! AES-256-GCM with random 96-bit nonces: `nonce | ciphertext | tag`.
use rand::RngCore;
use ring::aead::{Aad as RingAad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use crate::{Aad, CryptoError};

/// Length of the GCM nonce.
pub(crate) const NONCE: usize = NONCE_LEN;
/// Length of the GCM tag.
pub(crate) const TAG: usize = 16;

/// A prepared AES-256-GCM key.
pub(crate) struct AeadKey(LessSafeKey);

impl AeadKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("32-byte key is valid for AES-256");
        Self(LessSafeKey::new(unbound))
    }

    /// Appends `nonce | ciphertext | tag` of `plaintext` to `out`.
    pub(crate) fn seal_into(&self, aad: &Aad, plaintext: &[u8], out: &mut Vec<u8>) {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        out.reserve(NONCE + plaintext.len() + TAG);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                RingAad::from(aad.as_bytes()),
                &mut out[start..],
            )
            .expect("AES-GCM seal cannot fail for inputs under 64 GiB");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens `nonce | ciphertext | tag`, checking lengths before slicing.
    pub(crate) fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE + TAG {
            return Err(CryptoError::DecryptionFailed);
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::DecryptionFailed)?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, RingAad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        let n = plain.len();
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fresh_nonces() {
        let k = AeadKey::new(&[7u8; 32]);
        let aad = Aad::new("t");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        k.seal_into(&aad, b"hello", &mut a);
        k.seal_into(&aad, b"hello", &mut b);
        assert_ne!(a[..NONCE], b[..NONCE]);
        assert_eq!(k.open(&aad, &a).unwrap(), b"hello");
        assert_eq!(k.open(&Aad::new("u"), &a), Err(CryptoError::DecryptionFailed));
        assert_eq!(k.open(&aad, &a[..10]), Err(CryptoError::DecryptionFailed));
    }
}
