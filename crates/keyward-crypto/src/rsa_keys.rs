//! RSA transit keys. The `rsa` crate generates keys and verifies signatures (public data only);
//! every private-key operation — signing — is ring's, because the `rsa` crate's private-key path
//! has an open timing advisory. So RSA signs SHA-256/384/512 digests of the input it hashes
//! itself, with PSS salts as long as the hash.
use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, RsaKeyPair};
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use zeroize::Zeroizing;

use crate::signing::{Padding, SaltLength, SignParams};
use crate::{CryptoError, HashAlg};

fn invalid() -> CryptoError {
    CryptoError::InvalidKey("not an RSA private key")
}

/// A new `bits`-bit private key (PKCS#8) and its public key (SubjectPublicKeyInfo DER).
pub(crate) fn generate(bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|_| invalid())?;
    let private = Zeroizing::new(key.to_pkcs8_der().map_err(|_| invalid())?.as_bytes().to_vec());
    let public = key.to_public_key().to_public_key_der().map_err(|_| invalid())?.into_vec();
    Ok((private, public))
}

/// The ring scheme signing with `p`, or why there is none.
fn scheme(p: &SignParams) -> Result<&'static dyn ring_sig::RsaEncoding, CryptoError> {
    let refuse = |why| Err(CryptoError::Unsupported(why));
    if p.prehashed {
        return refuse("RSA keys sign the input itself: prehashed input is not supported");
    }
    if let SaltLength::Bytes(_) = p.salt {
        return refuse("RSA-PSS signs with a salt as long as the hash: salt_length must be auto or hash");
    }
    Ok(match (p.padding, p.hash) {
        (Padding::Pss, HashAlg::Sha2_256) => &ring_sig::RSA_PSS_SHA256,
        (Padding::Pss, HashAlg::Sha2_384) => &ring_sig::RSA_PSS_SHA384,
        (Padding::Pss, HashAlg::Sha2_512) => &ring_sig::RSA_PSS_SHA512,
        (Padding::Pkcs1v15, HashAlg::Sha2_256) => &ring_sig::RSA_PKCS1_SHA256,
        (Padding::Pkcs1v15, HashAlg::Sha2_384) => &ring_sig::RSA_PKCS1_SHA384,
        (Padding::Pkcs1v15, HashAlg::Sha2_512) => &ring_sig::RSA_PKCS1_SHA512,
        _ => return refuse("RSA keys sign with sha2-256, sha2-384 or sha2-512"),
    })
}

/// The signature of `input` under `private` (PKCS#8).
pub(crate) fn sign(private: &[u8], p: &SignParams, input: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let scheme = scheme(p)?;
    let pair = RsaKeyPair::from_pkcs8(private).map_err(|_| invalid())?;
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(scheme, &SystemRandom::new(), input, &mut sig).map_err(|_| invalid())?;
    Ok(sig)
}

/// Whether `sig` is a signature of `input` (or of the digest `input`) under `public` (SPKI DER).
/// PSS signatures are accepted with the salt length asked for, or — for `auto` and `hash` —
/// with a salt as long as the hash or the longest the key allows (what Go, and so Vault, signs with).
pub(crate) fn verify(public: &[u8], p: &SignParams, input: &[u8], sig: &[u8]) -> Result<bool, CryptoError> {
    let key = RsaPublicKey::from_public_key_der(public)
        .map_err(|_| CryptoError::InvalidKey("stored public key does not parse"))?;
    let digest = p.digest(input);
    let h = digest.len();
    let em_len = (rsa::traits::PublicKeyParts::size(&key) * 8 - 1).div_ceil(8);
    let salts: Vec<usize> = match p.salt {
        SaltLength::Bytes(n) => vec![n],
        SaltLength::Auto | SaltLength::Hash => vec![h, em_len.saturating_sub(h + 2)],
    };
    macro_rules! check {
        ($d:ty) => {
            match p.padding {
                Padding::Pkcs1v15 => key.verify(Pkcs1v15Sign::new::<$d>(), &digest, sig).is_ok(),
                Padding::Pss => salts.iter().any(|s| key.verify(Pss::new_with_salt::<$d>(*s), &digest, sig).is_ok()),
            }
        };
    }
    Ok(match p.hash {
        HashAlg::Sha2_224 => check!(sha2::Sha224),
        HashAlg::Sha2_256 => check!(sha2::Sha256),
        HashAlg::Sha2_384 => check!(sha2::Sha384),
        HashAlg::Sha2_512 => check!(sha2::Sha512),
        _ => return Err(CryptoError::Unsupported("RSA signatures are checked with sha2-224, -256, -384 or -512")),
    })
}

/// The private key as Vault exports it: PEM `RSA PRIVATE KEY` (PKCS#1), unwrapped from the
/// PKCS#8 document without any arithmetic on it.
pub(crate) fn private_pem(private: &[u8]) -> Result<Zeroizing<String>, CryptoError> {
    let info = rsa::pkcs8::PrivateKeyInfo::try_from(private).map_err(|_| invalid())?;
    let pem = rsa::pkcs8::der::pem::encode_string("RSA PRIVATE KEY", rsa::pkcs8::LineEnding::LF, info.private_key)
        .map_err(|_| invalid())?;
    Ok(Zeroizing::new(pem))
}
