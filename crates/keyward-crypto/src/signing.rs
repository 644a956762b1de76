//! Transit signing keys: Ed25519 through ring (each version's 32 secret bytes its seed), ECDSA on
//! P-256 and P-384 and RSA (key pairs generated per version, see `ecdsa` and `rsa_keys`), and
//! the options of `sign` and `verify` as Vault names them.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use zeroize::Zeroizing;

use crate::ecdsa::Curve;
use crate::{rsa_keys, CryptoError, HashAlg, Key256};

/// A signing key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningType {
    /// `ed25519`.
    Ed25519,
    /// `ecdsa-p256`.
    EcdsaP256,
    /// `ecdsa-p384`.
    EcdsaP384,
    /// `rsa-2048`, `rsa-3072`, `rsa-4096`: the modulus size in bits.
    Rsa(usize),
}

/// RSA signature padding (`signature_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `pss`, Vault's default.
    Pss,
    /// `pkcs1v15`.
    Pkcs1v15,
}

/// PSS salt length (`salt_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltLength {
    /// `auto`: signing uses the hash length; verifying accepts the hash length or the longest.
    Auto,
    /// `hash`: the hash length.
    Hash,
    /// A number of bytes (verification only).
    Bytes(usize),
}

/// How an ECDSA signature is encoded (`marshaling_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marshaling {
    /// `asn1`: DER, what OpenSSL and X.509 use (the default).
    Asn1,
    /// `jws`: fixed-width `r || s`, as JWS (and so JWTs) use.
    Jws,
}

/// The options of one signature or verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignParams {
    /// The hash of the input (`hash_algorithm`, default `sha2-256`).
    pub hash: HashAlg,
    /// Whether the input is already the digest.
    pub prehashed: bool,
    /// RSA padding.
    pub padding: Padding,
    /// RSA-PSS salt length.
    pub salt: SaltLength,
    /// ECDSA signature encoding.
    pub marshaling: Marshaling,
}

impl Default for SignParams {
    fn default() -> Self {
        Self {
            hash: HashAlg::Sha2_256,
            prehashed: false,
            padding: Padding::Pss,
            salt: SaltLength::Auto,
            marshaling: Marshaling::Asn1,
        }
    }
}

impl SignParams {
    /// The digest a signature covers: the input's hash, or the input when prehashed.
    pub(crate) fn digest(&self, input: &[u8]) -> Vec<u8> {
        if self.prehashed {
            input.to_vec()
        } else {
            self.hash.hash(input)
        }
    }
}

impl SigningType {
    /// The signing type of a Vault key type name.
    pub fn parse(key_type: &str) -> Option<Self> {
        Some(match key_type {
            "ed25519" => Self::Ed25519,
            "ecdsa-p256" => Self::EcdsaP256,
            "ecdsa-p384" => Self::EcdsaP384,
            "rsa-2048" => Self::Rsa(2048),
            "rsa-3072" => Self::Rsa(3072),
            "rsa-4096" => Self::Rsa(4096),
            _ => return None,
        })
    }

    fn curve(self) -> Option<Curve> {
        match self {
            Self::EcdsaP256 => Some(Curve::P256),
            Self::EcdsaP384 => Some(Curve::P384),
            _ => None,
        }
    }

    /// Whether each version holds a generated key pair (ECDSA, RSA) rather than an Ed25519 seed.
    pub fn has_key_pair(self) -> bool {
        self != Self::Ed25519
    }

    /// A new key pair: the private key (PKCS#8 DER) and the public key (SubjectPublicKeyInfo
    /// DER). RSA generation takes seconds: run it off the async threads.
    pub fn generate(self) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        match (self, self.curve()) {
            (_, Some(curve)) => curve.generate(),
            (Self::Rsa(bits), _) => rsa_keys::generate(bits),
            _ => Err(CryptoError::Unsupported("Ed25519 keys are seeds, not generated key pairs")),
        }
    }

    /// The public key of an Ed25519 seed (32 raw bytes).
    pub fn seed_public(seed: &Key256) -> Result<Vec<u8>, CryptoError> {
        Ok(pair(seed)?.public_key().as_ref().to_vec())
    }

    /// The signature of `input` under `private` (an Ed25519 seed, or a PKCS#8 document).
    pub fn sign(self, private: &[u8], p: &SignParams, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match (self, self.curve()) {
            (_, Some(curve)) => curve.sign(private, p, input),
            (Self::Rsa(_), _) => rsa_keys::sign(private, p, input),
            _ => {
                ed25519_only(p)?;
                let seed = Key256::from_slice(private).ok_or(CryptoError::InvalidKey("not an Ed25519 seed"))?;
                Ok(pair(&seed)?.sign(input).as_ref().to_vec())
            }
        }
    }

    /// Whether `sig` is a signature of `input` under `public` (raw for Ed25519, otherwise
    /// SubjectPublicKeyInfo DER). A malformed signature is simply not valid.
    pub fn verify(self, public: &[u8], p: &SignParams, input: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
        match (self, self.curve()) {
            (_, Some(curve)) => curve.verify(public, p, input, sig),
            (Self::Rsa(_), _) => rsa_keys::verify(public, p, input, sig),
            _ => {
                ed25519_only(p)?;
                Ok(UnparsedPublicKey::new(&ED25519, public).verify(input, sig).is_ok())
            }
        }
    }

    /// A public key as Vault shows it: base64 of the raw key for Ed25519, PEM `PUBLIC KEY` otherwise.
    pub fn public_text(self, public: &[u8]) -> String {
        match self {
            Self::Ed25519 => STANDARD.encode(public),
            _ => spki::der::pem::encode_string("PUBLIC KEY", spki::der::pem::LineEnding::LF, public)
                .unwrap_or_else(|_| unreachable!("PEM encoding of bytes in memory cannot fail")),
        }
    }

    /// A private key as Vault exports it: base64 of seed and public key for Ed25519, PEM `EC
    /// PRIVATE KEY` for ECDSA, PEM `RSA PRIVATE KEY` for RSA.
    pub fn private_text(self, private: &[u8]) -> Result<Zeroizing<String>, CryptoError> {
        match (self, self.curve()) {
            (_, Some(curve)) => curve.private_pem(private),
            (Self::Rsa(_), _) => rsa_keys::private_pem(private),
            _ => {
                let seed = Key256::from_slice(private).ok_or(CryptoError::InvalidKey("not an Ed25519 seed"))?;
                let public = Self::seed_public(&seed)?;
                Ok(Zeroizing::new(STANDARD.encode(Zeroizing::new([private, &public].concat()))))
            }
        }
    }
}

/// Ed25519 signs the input itself: a prehashed input is refused.
fn ed25519_only(p: &SignParams) -> Result<(), CryptoError> {
    if p.prehashed {
        return Err(CryptoError::Unsupported("ed25519 signs the input itself: prehashed does not apply"));
    }
    Ok(())
}

fn pair(seed: &Key256) -> Result<Ed25519KeyPair, CryptoError> {
    Ed25519KeyPair::from_seed_unchecked(seed.expose()).map_err(|_| CryptoError::InvalidKey("not an Ed25519 seed"))
}

#[cfg(test)]
mod tests {
    use p256::pkcs8::EncodePrivateKey;

    use super::*;

    fn params(hash: HashAlg) -> SignParams {
        SignParams { hash, ..SignParams::default() }
    }

    #[test]
    fn rfc_8032_test_1() {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let public = SigningType::seed_public(&Key256::from_slice(&seed).unwrap()).unwrap();
        assert_eq!(hex::encode(&public), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let ed = SigningType::Ed25519;
        let sig = ed.sign(&seed, &SignParams::default(), b"").unwrap();
        assert_eq!(
            hex::encode(&sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(ed.verify(&public, &SignParams::default(), b"", &sig).unwrap());
        assert!(!ed.verify(&public, &SignParams::default(), b"x", &sig).unwrap());
        let prehashed = SignParams { prehashed: true, ..SignParams::default() };
        assert!(ed.sign(&seed, &prehashed, b"").is_err());
    }

    /// RFC 6979 appendix A.2.5: P-256, message "sample" — deterministic signatures through the
    /// `p256` path (a prehashed SHA-256 digest, and SHA-512, which ring does not pair with P-256).
    #[test]
    fn rfc_6979_p256_vectors() {
        let x = hex::decode("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721").unwrap();
        let private = p256::SecretKey::from_slice(&x).unwrap().to_pkcs8_der().unwrap();
        let p = SigningType::EcdsaP256;
        let jws =
            |hash, prehashed| SignParams { hash, prehashed, marshaling: Marshaling::Jws, ..SignParams::default() };
        let digest = HashAlg::Sha2_256.hash(b"sample");
        let sig = p.sign(private.as_bytes(), &jws(HashAlg::Sha2_256, true), &digest).unwrap();
        assert_eq!(
            hex::encode_upper(&sig),
            "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
             F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
        );
        // The RFC's SHA-512 signature verifies under the RFC's public key (p256 derives its nonces
        // with HMAC-SHA256 whatever the message hash, so its own SHA-512 signatures differ).
        let public = hex::decode(
            "3059301306072a8648ce3d020106082a8648ce3d03010703420004\
             60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6\
             7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        )
        .unwrap();
        let rfc = hex::decode(
            "8496A60B5E9B47C825488827E0495B0E3FA109EC4568FD3F8D1097678EB97F00\
             2362AB1ADBE2B8ADF9CB9EDAB740EA6049C028114F2460F96554F61FAE3302FE",
        )
        .unwrap();
        assert!(p.verify(&public, &jws(HashAlg::Sha2_512, false), b"sample", &rfc).unwrap());
        assert!(!p.verify(&public, &jws(HashAlg::Sha2_512, false), b"samplf", &rfc).unwrap());
        let ours = p.sign(private.as_bytes(), &jws(HashAlg::Sha2_512, false), b"sample").unwrap();
        assert!(p.verify(&public, &jws(HashAlg::Sha2_512, false), b"sample", &ours).unwrap());
    }

    #[test]
    fn ecdsa_signs_and_verifies_every_way() {
        for t in [SigningType::EcdsaP256, SigningType::EcdsaP384] {
            let (private, public) = t.generate().unwrap();
            for hash in [HashAlg::Sha2_256, HashAlg::Sha2_384, HashAlg::Sha2_512, HashAlg::Sha3_256] {
                for marshaling in [Marshaling::Asn1, Marshaling::Jws] {
                    let p = SignParams { hash, marshaling, ..SignParams::default() };
                    let sig = t.sign(&private, &p, b"release.tar.gz").unwrap();
                    assert!(t.verify(&public, &p, b"release.tar.gz", &sig).unwrap(), "{t:?} {hash:?} {marshaling:?}");
                    assert!(!t.verify(&public, &p, b"release.tar.gz!", &sig).unwrap());
                    let mut flipped = sig.clone();
                    let last = flipped.len() - 1;
                    flipped[last] ^= 1;
                    assert!(!t.verify(&public, &p, b"release.tar.gz", &flipped).unwrap());
                    // The same signature under the other encoding does not parse, so is not valid.
                    let other = if marshaling == Marshaling::Asn1 { Marshaling::Jws } else { Marshaling::Asn1 };
                    assert!(!t
                        .verify(&public, &SignParams { marshaling: other, ..p }, b"release.tar.gz", &sig)
                        .unwrap());
                }
                // Prehashed: the digest signed is the digest given.
                let p = SignParams { hash, prehashed: true, ..SignParams::default() };
                let digest = hash.hash(b"artifact");
                let sig = t.sign(&private, &p, &digest).unwrap();
                assert!(t.verify(&public, &params(hash), b"artifact", &sig).unwrap());
            }
            assert!(t.public_text(&public).starts_with("-----BEGIN PUBLIC KEY-----\n"));
            let pem = t.private_text(&private).unwrap();
            assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
            // The document names its curve (what OpenSSL needs to load it) and holds this key.
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64::Engine::decode(&STANDARD, body).unwrap();
            let doc = sec1::EcPrivateKey::try_from(der.as_slice()).unwrap();
            let curve = if t == SigningType::EcdsaP256 { "1.2.840.10045.3.1.7" } else { "1.3.132.0.34" };
            assert_eq!(doc.parameters.and_then(|p| p.named_curve()).map(|o| o.to_string()), Some(curve.to_owned()));
            assert!(public.ends_with(doc.public_key.unwrap()));
        }
    }

    #[test]
    fn rsa_signs_in_ring_and_verifies_in_the_rsa_crate() {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let t = SigningType::Rsa(2048);
        let (private, public) = t.generate().unwrap();
        for hash in [HashAlg::Sha2_256, HashAlg::Sha2_384, HashAlg::Sha2_512] {
            for padding in [Padding::Pss, Padding::Pkcs1v15] {
                let p = SignParams { hash, padding, ..SignParams::default() };
                let sig = t.sign(&private, &p, b"webhook body").unwrap();
                assert_eq!(sig.len(), 256);
                assert!(t.verify(&public, &p, b"webhook body", &sig).unwrap(), "{hash:?} {padding:?}");
                assert!(!t.verify(&public, &p, b"webhook body.", &sig).unwrap());
                let prehashed = SignParams { prehashed: true, ..p };
                assert!(t.verify(&public, &prehashed, &hash.hash(b"webhook body"), &sig).unwrap());
            }
        }
        // Go signs PSS with the longest salt (Vault's `auto`): such signatures verify too.
        let key = rsa::RsaPrivateKey::from_pkcs8_der(&private).unwrap();
        let max_salt = 256 - 32 - 2;
        let signer = rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(key, max_salt);
        let sig = signer.sign_with_rng(&mut rsa::rand_core::OsRng, b"from go").to_vec();
        assert!(t.verify(&public, &params(HashAlg::Sha2_256), b"from go", &sig).unwrap());
        let numeric = SignParams { salt: SaltLength::Bytes(max_salt), ..params(HashAlg::Sha2_256) };
        assert!(t.verify(&public, &numeric, b"from go", &sig).unwrap());
        let wrong = SignParams { salt: SaltLength::Bytes(20), ..params(HashAlg::Sha2_256) };
        assert!(!t.verify(&public, &wrong, b"from go", &sig).unwrap());
        // What ring does not sign is refused with a reason.
        for refused in [
            SignParams { prehashed: true, ..SignParams::default() },
            params(HashAlg::Sha2_224),
            params(HashAlg::Sha3_256),
            SignParams { salt: SaltLength::Bytes(32), ..SignParams::default() },
        ] {
            assert!(matches!(t.sign(&private, &refused, b"x"), Err(CryptoError::Unsupported(_))), "{refused:?}");
        }
        assert!(t.public_text(&public).starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let pem = t.private_text(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        use rsa::pkcs1::DecodeRsaPrivateKey;
        assert!(rsa::RsaPrivateKey::from_pkcs1_pem(&pem).is_ok());
    }
}
