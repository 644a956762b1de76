//! Keyward's cryptography, with no I/O: the master keyring (KEKs), wrapped keys, the secret
//! blob format, tokens, masking, random generators, and the digests keyward computes for others
//! (a proxied request's HMAC signature, a certificate's fingerprint).
//!
//! Every primitive comes from `ring` (AES-256-GCM, HMAC-SHA256, HKDF, and TOTP's HMAC-SHA1) —
//! except the read-only import decoders, which need 16-byte GCM IVs and use `aes-gcm`, and
//! password hashing, which is `argon2` (ring has no memory-hard hash); nonces come from the
//! OS-seeded CSPRNG. Key material lives in zeroizing types whose `Debug` is redacted, and every
//! decryption failure collapses into one opaque error.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aad;
mod aead;
mod backup;
mod blob;
mod digest;
mod ecdsa;
mod error;
mod hashing;
mod import;
mod jws;
mod key;
mod keyring;
mod mask;
mod password;
mod random;
mod row_mac;
mod rsa_keys;
mod signing;
mod token;
mod totp;
mod transit;

pub use aad::Aad;
pub use backup::{
    backup_preamble, BackupOpener, BackupSealer, BACKUP_CHUNK, BACKUP_MAGIC, BACKUP_MAX_HEADER, BACKUP_MAX_SEALED,
};
pub use blob::{blob_dek_version, open_secret_blob, seal_secret_blob, BlobContext, BLOB_HEADER_LEN};
pub use digest::{hmac_sha256_hex, sha256_fingerprint};
pub use error::CryptoError;
pub use hashing::HashAlg;
pub use import::{decrypt_cloak, decrypt_gcm_hex, CloakKey};
pub use jws::{verify_jwt, JwsAlg, VerifyingKey, MIN_RSA_BITS};
pub use key::{Key256, WrappedKey, WrappedKeyDomain};
pub use keyring::{Kek, KekTag, MasterKeyring};
pub use mask::mask_value;
pub use password::{hash_password, verify_password};
pub use random::{random_base62, random_base64_secret};
pub use row_mac::{MacValue, RowInput, RowMacKeys};
pub use signing::{Marshaling, Padding, SaltLength, SignParams, SigningType};
pub use token::{SecretId, Token, TokenDigest, TokenKey, SECRET_ID_PREFIX, TOKEN_PREFIX};
pub use totp::{totp_check, totp_now, totp_seed, totp_uri, TOTP_SEED_LEN, TOTP_STEP_SECS};
pub use transit::{
    derive_transit_key, open_private_key, open_transit, parse_transit, random_bytes, seal_private_key, seal_transit,
    TransitCipher,
};
