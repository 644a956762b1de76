//! Transit signing keys: Ed25519 through ring, each key version's 32 secret bytes its seed.
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::{CryptoError, Key256};

fn pair(seed: &Key256) -> Result<Ed25519KeyPair, CryptoError> {
    Ed25519KeyPair::from_seed_unchecked(seed.expose()).map_err(|_| CryptoError::InvalidKey("not an Ed25519 seed"))
}

/// The Ed25519 public key of a seed.
pub fn ed25519_public(seed: &Key256) -> Result<Vec<u8>, CryptoError> {
    Ok(pair(seed)?.public_key().as_ref().to_vec())
}

/// The Ed25519 signature of `message`.
pub fn ed25519_sign(seed: &Key256, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(pair(seed)?.sign(message).as_ref().to_vec())
}

/// Whether `signature` is `public`'s signature of `message`.
pub fn ed25519_verify(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public).verify(message, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8032_test_1() {
        let seed = Key256::from_slice(
            &hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap(),
        )
        .unwrap();
        let public = ed25519_public(&seed).unwrap();
        assert_eq!(hex::encode(&public), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = ed25519_sign(&seed, b"").unwrap();
        assert_eq!(
            hex::encode(&sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(ed25519_verify(&public, b"", &sig));
        assert!(!ed25519_verify(&public, b"x", &sig));
    }
}
