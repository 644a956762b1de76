//! Verifying signed JWTs (RFC 7515 compact JWS) against public keys from a JWKS document or PEM
//! — the key decides the algorithm family, never the token's header. Signatures are checked by
//! ring; `none`, every HMAC algorithm, RSA keys under 2048 bits and any `crit` header are
//! refused, and `jku`, `x5u`, `jwk` and `x5c` headers are ignored (keys come only from the
//! configuration). Claims are returned unchecked: time, issuer and audience rules are the
//! caller's.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::CryptoError;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The longest token accepted, in bytes.
const MAX_JWT_LEN: usize = 16 * 1024;

/// A JWS signature algorithm keyward verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

/// Every algorithm keyward verifies, by its JOSE name.
const ALGS: [(&str, JwsAlg); 9] = [
    ("RS256", JwsAlg::Rs256),
    ("RS384", JwsAlg::Rs384),
    ("RS512", JwsAlg::Rs512),
    ("PS256", JwsAlg::Ps256),
    ("PS384", JwsAlg::Ps384),
    ("PS512", JwsAlg::Ps512),
    ("ES256", JwsAlg::Es256),
    ("ES384", JwsAlg::Es384),
    ("EdDSA", JwsAlg::EdDsa),
];

impl JwsAlg {
    /// The algorithm named `name` (JOSE spelling), if keyward verifies it: never `none` or HMAC.
    pub fn parse(name: &str) -> Option<Self> {
        ALGS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    /// Its JOSE name.
    pub fn as_str(self) -> &'static str {
        ALGS.iter().find(|(_, a)| *a == self).map_or("", |(n, _)| n)
    }

    fn family(self) -> Family {
        match self {
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => Family::Rsa,
            Self::Es256 => Family::P256,
            Self::Es384 => Family::P384,
            Self::EdDsa => Family::Ed25519,
        }
    }

    fn rsa_params(self) -> &'static signature::RsaParameters {
        match self {
            Self::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

/// Which kind of key: it decides which algorithms may be verified with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    /// Big-endian modulus and exponent, without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (`04 || x || y`).
    Ec {
        family: Family,
        point: Vec<u8>,
    },
    Ed25519([u8; 32]),
}

/// A public key a token may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    kid: Option<String>,
    /// The one algorithm the JWK names, if it names one.
    alg: Option<JwsAlg>,
    material: Material,
}

fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| CryptoError::InvalidKey(what))
}

fn need<'a>(v: &'a Option<String>, what: &'static str) -> Result<&'a str, CryptoError> {
    v.as_deref().ok_or(CryptoError::InvalidKey(what))
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    b.iter().skip_while(|x| **x == 0).copied().collect()
}

/// One key of a JWKS document, as published.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Value>,
}

impl VerifyingKey {
    /// The signature keys of a JWKS document (`{"keys": […]}`). Keys for encryption, symmetric
    /// keys and key types keyward does not verify with are skipped; a malformed signature key
    /// makes the whole document an error.
    pub fn from_jwks(json: &[u8]) -> Result<Vec<Self>, CryptoError> {
        let set: Jwks = serde_json::from_slice(json).map_err(|_| CryptoError::InvalidKey("not a JWKS document"))?;
        let mut keys = Vec::new();
        for raw in set.keys {
            let jwk: Jwk = serde_json::from_value(raw).map_err(|_| CryptoError::InvalidKey("malformed JWK"))?;
            if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            if let Some(key) = Self::from_jwk(&jwk)? {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    fn from_jwk(jwk: &Jwk) -> Result<Option<Self>, CryptoError> {
        let material = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => Material::Rsa {
                n: strip_zeros(&b64(need(&jwk.n, "RSA JWK without n")?, "RSA JWK n")?),
                e: strip_zeros(&b64(need(&jwk.e, "RSA JWK without e")?, "RSA JWK e")?),
            },
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (family, len) = if crv == "P-256" { (Family::P256, 32) } else { (Family::P384, 48) };
                let x = b64(need(&jwk.x, "EC JWK without x")?, "EC JWK x")?;
                let y = b64(need(&jwk.y, "EC JWK without y")?, "EC JWK y")?;
                if x.len() != len || y.len() != len {
                    return Err(CryptoError::InvalidKey("EC JWK coordinates of the wrong length"));
                }
                Material::Ec { family, point: [&[4u8][..], &x, &y].concat() }
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64(need(&jwk.x, "OKP JWK without x")?, "OKP JWK x")?;
                Material::Ed25519(x.try_into().map_err(|_| CryptoError::InvalidKey("Ed25519 JWK of the wrong length"))?)
            }
            // Symmetric ("oct") keys are never used: HMAC tokens are refused.
            _ => return Ok(None),
        };
        let alg = match jwk.alg.as_deref() {
            None => None,
            Some(name) => match JwsAlg::parse(name) {
                Some(a) => Some(a),
                // A key published for an algorithm keyward does not verify is not a key for it.
                None => return Ok(None),
            },
        };
        let key = Self { kid: jwk.kid.clone(), alg, material };
        if alg.is_some_and(|a| a.family() != key.family()) {
            return Err(CryptoError::InvalidKey("a JWK's alg does not fit its key type"));
        }
        Ok(Some(key))
    }

    /// The keys of PEM `PUBLIC KEY` blocks (SubjectPublicKeyInfo: RSA, P-256, P-384, Ed25519).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        use spki::der::{Decode, Reader, SliceReader};
        const RSA: &str = "1.2.840.113549.1.1.1";
        const EC: &str = "1.2.840.10045.2.1";
        const ED25519: &str = "1.3.101.112";
        const P256: &str = "1.2.840.10045.3.1.7";
        const P384: &str = "1.3.132.0.34";
        let (label, der) = spki::der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|_| CryptoError::InvalidKey("not a PEM block"))?;
        if label != "PUBLIC KEY" {
            return Err(CryptoError::InvalidKey("expected a PEM PUBLIC KEY block"));
        }
        let info = spki::SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|_| CryptoError::InvalidKey("malformed SubjectPublicKeyInfo"))?;
        let bits = info.subject_public_key.as_bytes().ok_or(CryptoError::InvalidKey("malformed public key bits"))?;
        let param = info.algorithm.parameters_oid().ok().map(|o| o.to_string());
        let material = match (info.algorithm.oid.to_string().as_str(), param.as_deref()) {
            (RSA, _) => {
                let mut r = SliceReader::new(bits).map_err(|_| CryptoError::InvalidKey("malformed RSA key"))?;
                let (n, e) = r
                    .sequence(|r| Ok((spki::der::asn1::UintRef::decode(r)?, spki::der::asn1::UintRef::decode(r)?)))
                    .map_err(|_| CryptoError::InvalidKey("malformed RSA key"))?;
                Material::Rsa { n: strip_zeros(n.as_bytes()), e: strip_zeros(e.as_bytes()) }
            }
            (EC, Some(P256)) => Material::Ec { family: Family::P256, point: bits.to_vec() },
            (EC, Some(P384)) => Material::Ec { family: Family::P384, point: bits.to_vec() },
            (ED25519, _) => Material::Ed25519(
                bits.try_into().map_err(|_| CryptoError::InvalidKey("Ed25519 key of the wrong length"))?,
            ),
            _ => return Err(CryptoError::InvalidKey("unsupported public key type (RSA, P-256, P-384, Ed25519)")),
        };
        Ok(Self { kid: None, alg: None, material })
    }

    fn family(&self) -> Family {
        match &self.material {
            Material::Rsa { .. } => Family::Rsa,
            Material::Ec { family, .. } => *family,
            Material::Ed25519(_) => Family::Ed25519,
        }
    }

    /// Its key ID, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    fn verify(&self, alg: JwsAlg, message: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let ok = match &self.material {
            Material::Rsa { n, e } => {
                if n.len() * 8 < MIN_RSA_BITS {
                    return Err(CryptoError::InvalidJwt("the signing key is an RSA key under 2048 bits"));
                }
                RsaPublicKeyComponents { n, e }.verify(alg.rsa_params(), message, sig).is_ok()
            }
            Material::Ec { family, point } => {
                let algorithm = if *family == Family::P256 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                UnparsedPublicKey::new(algorithm, point).verify(message, sig).is_ok()
            }
            Material::Ed25519(k) => UnparsedPublicKey::new(&signature::ED25519, k).verify(message, sig).is_ok(),
        };
        ok.then_some(()).ok_or(CryptoError::InvalidJwt("signature does not verify"))
    }
}

/// The header fields keyward reads; the rest (`jku`, `x5u`, `jwk`, `x5c`, `typ` …) is ignored.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Verifies a compact JWS against `keys` and returns its claims. The header's `alg` must be in
/// `allowed` and fit the key; with a `kid` only that key is tried (none matching is
/// [`CryptoError::UnknownJwtKey`], so the caller may refetch once), without one every key of the
/// fitting type is.
pub fn verify_jwt(jwt: &str, keys: &[VerifyingKey], allowed: &[JwsAlg]) -> Result<Map<String, Value>, CryptoError> {
    let malformed = CryptoError::InvalidJwt("not a compact JWS (header.payload.signature)");
    if jwt.len() > MAX_JWT_LEN {
        return Err(CryptoError::InvalidJwt("token too long"));
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(CryptoError::InvalidJwt("malformed header"))?;
    if header.crit.is_some() {
        return Err(CryptoError::InvalidJwt("a crit header is not supported"));
    }
    let name = header.alg.ok_or(CryptoError::InvalidJwt("no alg in the header"))?;
    let alg = JwsAlg::parse(&name).ok_or(CryptoError::InvalidJwt("algorithm refused (none and HMAC never are)"))?;
    if !allowed.contains(&alg) {
        return Err(CryptoError::InvalidJwt("algorithm not in jwt_supported_algs"));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| CryptoError::InvalidJwt("malformed signature"))?;
    let candidates: Vec<&VerifyingKey> = match &header.kid {
        Some(kid) => keys.iter().filter(|k| k.kid.as_deref() == Some(kid.as_str())).collect(),
        None => keys.iter().filter(|k| k.family() == alg.family()).collect(),
    };
    if candidates.is_empty() {
        return Err(if header.kid.is_some() {
            CryptoError::UnknownJwtKey
        } else {
            CryptoError::InvalidJwt("no configured key fits the token's algorithm")
        });
    }
    let message = &jwt.as_bytes()[..h.len() + 1 + p.len()];
    let mut last = CryptoError::InvalidJwt("signature does not verify");
    for key in candidates {
        if key.family() != alg.family() || key.alg.is_some_and(|a| a != alg) {
            last = CryptoError::InvalidJwt("the token's alg does not fit its key");
            continue;
        }
        match key.verify(alg, message, &sig) {
            Ok(()) => {
                let claims = URL_SAFE_NO_PAD.decode(p).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
                return match claims {
                    Some(Value::Object(m)) => Ok(m),
                    _ => Err(CryptoError::InvalidJwt("the payload is not a JSON object")),
                };
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn enc(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn ed25519() -> (Ed25519KeyPair, VerifyingKey) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}]});
        let key = VerifyingKey::from_jwks(jwks.to_string().as_bytes()).unwrap().remove(0);
        (pair, key)
    }

    fn signed(pair: &Ed25519KeyPair, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", enc(header), enc(claims));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref()))
    }

    #[test]
    fn a_token_signed_by_a_configured_key_verifies_and_nothing_else_does() {
        let (pair, key) = ed25519();
        let keys = [key];
        let claims = serde_json::json!({"sub": "repo:acme/app", "exp": 1});
        let jwt = signed(&pair, &serde_json::json!({"alg": "EdDSA", "kid": "k1"}), &claims);
        assert_eq!(Value::Object(verify_jwt(&jwt, &keys, &[JwsAlg::EdDsa]).unwrap()), claims);
        // Not allowed, unknown kid, none, HMAC, crit, tampered payload.
        assert!(matches!(verify_jwt(&jwt, &keys, &[JwsAlg::Rs256]), Err(CryptoError::InvalidJwt(_))));
        let other = signed(&pair, &serde_json::json!({"alg": "EdDSA", "kid": "k2"}), &claims);
        assert_eq!(verify_jwt(&other, &keys, &[JwsAlg::EdDsa]), Err(CryptoError::UnknownJwtKey));
        for alg in ["none", "HS256"] {
            let t = signed(&pair, &serde_json::json!({"alg": alg}), &claims);
            assert!(verify_jwt(&t, &keys, &[JwsAlg::EdDsa]).is_err(), "{alg}");
        }
        let crit = signed(&pair, &serde_json::json!({"alg": "EdDSA", "crit": ["exp"]}), &claims);
        assert!(verify_jwt(&crit, &keys, &[JwsAlg::EdDsa]).is_err());
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let forged = enc(&serde_json::json!({"sub": "repo:evil/app", "exp": 1}));
        parts[1] = &forged;
        assert!(verify_jwt(&parts.join("."), &keys, &[JwsAlg::EdDsa]).is_err());
    }

    #[test]
    fn the_key_decides_the_algorithm_family() {
        // An EC key does not verify a token whose header says EdDSA, even with no kid.
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = ec.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])}]});
        let keys = VerifyingKey::from_jwks(jwks.to_string().as_bytes()).unwrap();
        let input = format!("{}.{}", enc(&serde_json::json!({"alg": "ES256"})), enc(&serde_json::json!({"a": 1})));
        let sig = ec.sign(&rng, input.as_bytes()).unwrap();
        let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
        assert!(verify_jwt(&jwt, &keys, &[JwsAlg::Es256]).is_ok());
        let (pair, _) = ed25519();
        let ed = signed(&pair, &serde_json::json!({"alg": "EdDSA"}), &serde_json::json!({"a": 1}));
        assert!(verify_jwt(&ed, &keys, &[JwsAlg::Es256, JwsAlg::EdDsa]).is_err());
        // Symmetric keys in a JWKS are skipped, never used for HMAC.
        let oct = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(VerifyingKey::from_jwks(oct.to_string().as_bytes()).unwrap().is_empty());
    }

    proptest::proptest! {
        /// Any input is an error or claims, never a panic.
        #[test]
        fn arbitrary_tokens_never_panic(s in "[A-Za-z0-9_.=-]{0,300}") {
            let (_, key) = ed25519();
            let _ = verify_jwt(&s, &[key], &[JwsAlg::EdDsa, JwsAlg::Rs256]);
        }

        #[test]
        fn arbitrary_jwks_never_panic(s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = VerifyingKey::from_jwks(&s);
        }
    }
}
