//! Passwords: Argon2id (RFC 9106, OWASP's 19 MiB / 2 passes / 1 lane) over an HMAC of the
//! password under a pepper key kept wrapped under the KEK — a copy of the database alone cannot
//! start guessing. Hashes are PHC strings.
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::{random_bytes, CryptoError, Key256};

/// Memory cost in KiB.
const M_COST: u32 = 19 * 1024;
/// Passes.
const T_COST: u32 = 2;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST, T_COST, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// What Argon2 is given: the HMAC of the password under the pepper.
fn peppered(pepper: &Key256, password: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(pepper.hmac(password))
}

/// Hashes a password (seconds of CPU on purpose: run it off the async workers).
pub fn hash_password(pepper: &Key256, password: &[u8]) -> Result<String, CryptoError> {
    let salt = SaltString::encode_b64(&random_bytes(16)).map_err(|_| CryptoError::Malformed("password salt"))?;
    argon2()
        .hash_password(&*peppered(pepper, password), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Malformed("password hash"))
}

/// Whether `password` matches `phc` (constant time in the password; a malformed hash is false).
pub fn verify_password(pepper: &Key256, password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(&*peppered(pepper, password), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let pepper = Key256::generate();
        let h = hash_password(&pepper, b"correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&pepper, b"correct horse", &h));
        assert!(!verify_password(&pepper, b"correct horsf", &h));
        assert!(!verify_password(&Key256::generate(), b"correct horse", &h), "another pepper");
        assert!(!verify_password(&pepper, b"x", "not a hash"));
        assert_ne!(h, hash_password(&pepper, b"correct horse").unwrap(), "salted");
    }
}
