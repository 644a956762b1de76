use thiserror::Error;

/// Errors of the crypto layer. Decryption failures are deliberately opaque: they never say
/// which byte, key or field was wrong.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed, or the ciphertext is malformed, truncated or bound elsewhere.
    #[error("integrity check failed: the ciphertext was modified, truncated or does not belong here")]
    DecryptionFailed,
    /// A master key specification could not be parsed.
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    /// An imported ciphertext names a key tag that was not given.
    #[error("no key was given for key tag {0:?}")]
    UnknownKeyTag(String),
    /// An imported ciphertext does not have the expected shape.
    #[error("malformed ciphertext: {0}")]
    Malformed(&'static str),
    /// A public key (JWKS or PEM) could not be used.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A JWT was refused; the reason names no claim value.
    #[error("invalid JWT: {0}")]
    InvalidJwt(&'static str),
    /// A JWT names a key ID the key set does not hold.
    #[error("invalid JWT: its key ID is not among the configured keys")]
    UnknownJwtKey,
    /// An operation this key or algorithm does not offer; the reason names no key material.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A blob or wrapped key has an unknown format version.
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedFormat(u8),
}
