//! The secret blob: one version's whole value, sealed under its mount's data key.
//!
//! Layout: `"KW" | 0x01 | dek_version u32 BE | nonce[12] | ciphertext | tag[16]`.
//! AAD (length-prefixed): `keyward/kv`, the 7 header bytes, mount UUID, secret UUID, version.
use zeroize::Zeroizing;

use crate::aead::{NONCE, TAG};
use crate::{Aad, CryptoError, Key256};

const MAGIC: &[u8; 2] = b"KW";
const FORMAT: u8 = 1;
/// Length of the blob header (`"KW" | format | dek_version`).
pub const BLOB_HEADER_LEN: usize = 7;

/// Where a blob belongs: opening it anywhere else fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobContext {
    /// The mount's UUID bytes.
    pub mount: [u8; 16],
    /// The secret's UUID bytes (random, made when the path is first written).
    pub secret: [u8; 16],
    /// The version number.
    pub version: u64,
}

fn aad(header: &[u8], ctx: &BlobContext) -> Aad {
    Aad::new("keyward/kv").part(header).part(&ctx.mount).part(&ctx.secret).part(&ctx.version.to_be_bytes())
}

/// Seals `plaintext` under `dek` (version `dek_version`) for the row described by `ctx`.
pub fn seal_secret_blob(dek: &Key256, dek_version: u32, ctx: &BlobContext, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOB_HEADER_LEN + NONCE + plaintext.len() + TAG);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&dek_version.to_be_bytes());
    let aad = aad(&out[..BLOB_HEADER_LEN], ctx);
    dek.aead().seal_into(&aad, plaintext, &mut out);
    out
}

/// Reads the data-key version from a blob's header, checking magic, format and length.
pub fn blob_dek_version(blob: &[u8]) -> Result<u32, CryptoError> {
    if blob.len() < BLOB_HEADER_LEN + NONCE + TAG || &blob[..2] != MAGIC {
        return Err(CryptoError::DecryptionFailed);
    }
    if blob[2] != FORMAT {
        return Err(CryptoError::UnsupportedFormat(blob[2]));
    }
    let v: [u8; 4] = blob[3..BLOB_HEADER_LEN].try_into().map_err(|_| CryptoError::DecryptionFailed)?;
    Ok(u32::from_be_bytes(v))
}

/// Opens a blob for the row `ctx`; fails opaquely on any tampering or misplacement.
pub fn open_secret_blob(dek: &Key256, ctx: &BlobContext, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    blob_dek_version(blob)?;
    let (header, sealed) = blob.split_at(BLOB_HEADER_LEN);
    dek.aead().open(&aad(header, ctx), sealed).map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(version: u64) -> BlobContext {
        BlobContext { mount: [1; 16], secret: [2; 16], version }
    }

    #[test]
    fn layout_is_as_documented() {
        let dek = Key256::generate();
        let b = seal_secret_blob(&dek, 0x0102_0304, &ctx(1), b"{}");
        assert_eq!(&b[..7], &[b'K', b'W', 1, 1, 2, 3, 4]);
        assert_eq!(b.len(), 7 + 12 + 2 + 16);
        assert_eq!(blob_dek_version(&b).unwrap(), 0x0102_0304);
    }

    #[test]
    fn misplaced_blobs_fail() {
        let dek = Key256::generate();
        let b = seal_secret_blob(&dek, 1, &ctx(1), b"value");
        assert!(open_secret_blob(&dek, &ctx(2), &b).is_err());
        let mut other = ctx(1);
        other.secret = [3; 16];
        assert!(open_secret_blob(&dek, &other, &b).is_err());
        other = ctx(1);
        other.mount = [9; 16];
        assert!(open_secret_blob(&dek, &other, &b).is_err());
        assert!(open_secret_blob(&Key256::generate(), &ctx(1), &b).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(plain in proptest::collection::vec(any::<u8>(), 0..2048), dv in any::<u32>(), v in any::<u64>()) {
            let dek = Key256::generate();
            let b = seal_secret_blob(&dek, dv, &ctx(v), &plain);
            prop_assert_eq!(blob_dek_version(&b).unwrap(), dv);
            prop_assert_eq!(&open_secret_blob(&dek, &ctx(v), &b).unwrap()[..], &plain[..]);
        }

        #[test]
        fn any_single_byte_flip_is_detected(plain in proptest::collection::vec(any::<u8>(), 0..256), idx in any::<prop::sample::Index>(), bit in 0u8..8) {
            let dek = Key256::generate();
            let mut b = seal_secret_blob(&dek, 1, &ctx(1), &plain);
            let i = idx.index(b.len());
            b[i] ^= 1 << bit;
            prop_assert!(open_secret_blob(&dek, &ctx(1), &b).is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let dek = Key256::generate();
            let _ = blob_dek_version(&data);
            prop_assert!(open_secret_blob(&dek, &ctx(1), &data).is_err());
        }

        #[test]
        fn truncation_is_detected(plain in proptest::collection::vec(any::<u8>(), 0..256), cut in any::<prop::sample::Index>()) {
            let dek = Key256::generate();
            let b = seal_secret_blob(&dek, 1, &ctx(1), &plain);
            let n = cut.index(b.len());
            prop_assert!(open_secret_blob(&dek, &ctx(1), &b[..n]).is_err());
        }
    }
}
