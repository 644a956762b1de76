//! Hashes and HMACs by Vault Transit's algorithm names: SHA-256/384/512 through ring, SHA-224
//! and SHA-3 (which ring lacks) through the RustCrypto `sha2`, `sha3` and `hmac` crates. HMACs
//! are compared in constant time.
use hmac::{Mac, SimpleHmac};
use ring::{digest, hmac as ring_hmac};
use sha2::Digest;

/// A hash algorithm Transit offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-224.
    Sha2_224,
    /// SHA-256.
    Sha2_256,
    /// SHA-384.
    Sha2_384,
    /// SHA-512.
    Sha2_512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

const NAMES: [(&str, HashAlg); 8] = [
    ("sha2-224", HashAlg::Sha2_224),
    ("sha2-256", HashAlg::Sha2_256),
    ("sha2-384", HashAlg::Sha2_384),
    ("sha2-512", HashAlg::Sha2_512),
    ("sha3-224", HashAlg::Sha3_224),
    ("sha3-256", HashAlg::Sha3_256),
    ("sha3-384", HashAlg::Sha3_384),
    ("sha3-512", HashAlg::Sha3_512),
];

impl HashAlg {
    /// The algorithm Vault names `name`.
    pub fn parse(name: &str) -> Option<Self> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    /// Every name, for error messages.
    pub fn names() -> String {
        NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    /// The digest of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let ring = |alg| digest::digest(alg, data).as_ref().to_vec();
        match self {
            HashAlg::Sha2_224 => sha2::Sha224::digest(data).to_vec(),
            HashAlg::Sha2_256 => ring(&digest::SHA256),
            HashAlg::Sha2_384 => ring(&digest::SHA384),
            HashAlg::Sha2_512 => ring(&digest::SHA512),
            HashAlg::Sha3_224 => sha3::Sha3_224::digest(data).to_vec(),
            HashAlg::Sha3_256 => sha3::Sha3_256::digest(data).to_vec(),
            HashAlg::Sha3_384 => sha3::Sha3_384::digest(data).to_vec(),
            HashAlg::Sha3_512 => sha3::Sha3_512::digest(data).to_vec(),
        }
    }

    /// The HMAC of `data` under `key`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn rust_crypto<D: Digest + hmac::digest::core_api::BlockSizeUser>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac =
                <SimpleHmac<D> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("any key length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        let ring = |alg| ring_hmac::sign(&ring_hmac::Key::new(alg, key), data).as_ref().to_vec();
        match self {
            HashAlg::Sha2_224 => rust_crypto::<sha2::Sha224>(key, data),
            HashAlg::Sha2_256 => ring(ring_hmac::HMAC_SHA256),
            HashAlg::Sha2_384 => ring(ring_hmac::HMAC_SHA384),
            HashAlg::Sha2_512 => ring(ring_hmac::HMAC_SHA512),
            HashAlg::Sha3_224 => rust_crypto::<sha3::Sha3_224>(key, data),
            HashAlg::Sha3_256 => rust_crypto::<sha3::Sha3_256>(key, data),
            HashAlg::Sha3_384 => rust_crypto::<sha3::Sha3_384>(key, data),
            HashAlg::Sha3_512 => rust_crypto::<sha3::Sha3_512>(key, data),
        }
    }

    /// Whether `mac` is the HMAC of `data` under `key` (compared in constant time).
    pub fn verify_hmac(self, key: &[u8], data: &[u8], mac: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.hmac(key, data).ct_eq(mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_for_abc() {
        // FIPS 180-4 and FIPS 202 examples for "abc".
        let hex = |a: HashAlg| hex::encode(a.hash(b"abc"));
        assert_eq!(hex(HashAlg::Sha2_224), "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
        assert_eq!(hex(HashAlg::Sha2_256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex(HashAlg::Sha3_256), "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
        assert_eq!(hex(HashAlg::Sha3_224), "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf");
        assert_eq!(
            hex(HashAlg::Sha2_384),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
        assert_eq!(
            hex(HashAlg::Sha2_512),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex(HashAlg::Sha3_384),
            "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25"
        );
        assert_eq!(
            hex(HashAlg::Sha3_512),
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
             10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0"
        );
    }

    #[test]
    fn hmacs_match_rfc_4231_and_verify_in_constant_time() {
        // RFC 4231 test case 2 ("Jefe").
        let mac = HashAlg::Sha2_224.hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(&mac), "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44");
        let mac = HashAlg::Sha2_256.hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let mac384 = HashAlg::Sha2_384.hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(&mac384),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
        );
        let mac512 = HashAlg::Sha2_512.hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(&mac512),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        assert!(HashAlg::Sha2_256.verify_hmac(b"Jefe", b"what do ya want for nothing?", &mac));
        assert!(!HashAlg::Sha2_256.verify_hmac(b"Jefe", b"what do ya want for nothing!", &mac));
        assert!(!HashAlg::Sha3_512.verify_hmac(b"Jefe", b"x", &mac[..4]));
        assert_eq!(HashAlg::parse("sha3-384"), Some(HashAlg::Sha3_384));
        assert_eq!(HashAlg::parse("md5"), None);
    }
}
