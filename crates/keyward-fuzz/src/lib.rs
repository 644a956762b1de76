//! keyward's fuzz targets: every parser of untrusted bytes, each a function of one byte slice
//! that must never panic, whatever the bytes. `fuzz/` runs them under libFuzzer (`cargo +nightly
//! fuzz`, see `bench/fuzz.sh`); `tests/corpus.rs` replays every committed corpus on stable, so a
//! crash once found stays fixed.
//!
//! Decryption targets use fixed, public keys ([`FUZZ_KEY`]): the corpora hold inputs valid
//! under them, so the fuzzer explores what lies past the format checks.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use keyward_core::KeyBackup;
use keyward_crypto::{
    decrypt_cloak, decrypt_gcm_hex, open_secret_blob, open_transit, parse_transit, verify_jwt, BackupOpener,
    BlobContext, CloakKey, JwsAlg, Kek, KekTag, Key256, MasterKeyring, SigningType, TransitCipher, VerifyingKey,
    WrappedKey, WrappedKeyDomain,
};
use zeroize::Zeroizing;

/// The fixed key of every decryption target (public: these are tests, not secrets).
pub const FUZZ_KEY: [u8; 32] = [0x6b; 32];
/// The owner every wrapped-key input is bound to.
pub const FUZZ_OWNER: [u8; 16] = [0x11; 16];
/// The context every secret-blob input is bound to.
pub const FUZZ_BLOB_CONTEXT: BlobContext = BlobContext { mount: [0x22; 16], secret: [0x33; 16], version: 1 };

/// [`FUZZ_KEY`] as a key.
pub fn key() -> Key256 {
    Key256::from_bytes(Zeroizing::new(FUZZ_KEY))
}

/// A keyring of [`FUZZ_KEY`] tagged `v1`.
pub fn fuzz_keyring() -> Result<MasterKeyring, keyward_crypto::CryptoError> {
    MasterKeyring::new(vec![Kek::new(KekTag::parse("v1")?, key())])
}

/// The PEM public key of the Ed25519 seed [`FUZZ_KEY`], which signs the JWT corpus.
pub fn fuzz_jwt_public_pem() -> String {
    // SubjectPublicKeyInfo of an Ed25519 key: a fixed 12-byte prefix, then the 32-byte key.
    let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    der.extend(SigningType::seed_public(&key()).unwrap_or_default());
    SigningType::EcdsaP256.public_text(&der)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A secret blob (the at-rest format of every secret value).
pub fn secret_blob(data: &[u8]) {
    let _ = keyward_crypto::blob_dek_version(data);
    let _ = open_secret_blob(&key(), &FUZZ_BLOB_CONTEXT, data);
}

/// A wrapped key: its KEK tag on the first line, the wrapped bytes after.
pub fn wrapped_key(data: &[u8]) {
    let (tag, bytes) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let Ok(ring) = fuzz_keyring() else { return };
    let wrapped = WrappedKey { kek_tag: String::from_utf8_lossy(tag).into_owned(), bytes: bytes.to_vec() };
    for domain in WrappedKeyDomain::ALL {
        let _ = ring.unwrap(domain, &FUZZ_OWNER, 1, &wrapped);
    }
}

/// A transit ciphertext string, opened under each cipher.
pub fn transit_ciphertext(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok((_, sealed)) = parse_transit(s) {
        for cipher in [TransitCipher::Aes128Gcm, TransitCipher::Aes256Gcm, TransitCipher::ChaCha20Poly1305] {
            let _ = open_transit(cipher, &key(), b"", &sealed);
        }
    }
}

/// A transit key backup, checked under the fixed MAC key.
pub fn transit_backup(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = KeyBackup::open(s, &key());
    }
}

/// A Cloak ciphertext (Elixir's Cloak.Ecto, imported by `keyward import`).
pub fn cloak(data: &[u8]) {
    let keys = [
        CloakKey { tag: b"AES.GCM.V1".to_vec(), key: Zeroizing::new(FUZZ_KEY), iv_len: 12 },
        CloakKey { tag: b"AES.GCM.V2".to_vec(), key: Zeroizing::new(FUZZ_KEY), iv_len: 16 },
    ];
    let _ = decrypt_cloak(&keys, data);
}

/// An `iv:tag:data` hex ciphertext (Node-style stores, imported by `keyward import`).
pub fn iv_tag_data(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = decrypt_gcm_hex(&FUZZ_KEY, s);
    }
}

/// A `.env` file or flat JSON object (`keyward secrets import`, `keyward run --env-file`).
pub fn dotenv(data: &[u8]) {
    if let Some(s) = text(data) {
        let parsed = keyward_cli::dotenv::parse(s);
        // What parses renders back and parses to the same map — for names dotenv can hold (JSON
        // keys may be anything; `secrets export` refuses the rest, naming them).
        if let Some(map) = parsed.ok().filter(|m| m.keys().all(|k| keyward_cli::dotenv::valid_dotenv_name(k))) {
            let again = keyward_cli::dotenv::parse(&keyward_cli::dotenv::render_dotenv(&map));
            assert_eq!(again.ok().as_ref(), Some(&map), "a parsed .env renders back to itself");
        }
    }
}

/// A native policy document (TOML or JSON).
pub fn policy_document(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = keyward_core::parse_policy_document(s);
    }
}

/// A Vault HCL policy, and the rules it translates to.
pub fn hcl_policy(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = keyward_core::parse_hcl_policy(s);
    }
}

/// Path rules and targets: validation and matching (the first line a pattern, the rest targets).
pub fn policy_paths(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let mut lines = s.lines();
    let pattern = lines.next().unwrap_or_default();
    let _ = keyward_core::validate_rule_path(pattern);
    for target in lines {
        let _ = keyward_core::rule_matches(pattern, target);
    }
}

/// A Vault request body: a JSON object whose fields go through the parsers the handlers use
/// (durations, numbers, booleans, base64).
pub fn vault_body(data: &[u8]) {
    let Ok(serde_json::Value::Object(body)) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for value in body.values() {
        match value {
            serde_json::Value::String(s) => {
                let _ = keyward_core::parse_duration(s);
                let _ = keyward_crypto::HashAlg::parse(s);
                let _ = keyward_crypto::SigningType::parse(s);
            }
            serde_json::Value::Array(items) => {
                let _: BTreeMap<usize, &serde_json::Value> = items.iter().enumerate().collect();
            }
            _ => {}
        }
    }
}

/// A JWT, verified against the fixed Ed25519 key (login with `auth/jwt`).
pub fn jwt(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let Ok(key) = VerifyingKey::from_pem(&fuzz_jwt_public_pem()) else { return };
    let _ = verify_jwt(s, &[key], &[JwsAlg::EdDsa, JwsAlg::Es256, JwsAlg::Rs256]);
}

/// A JWKS document (`jwks_url`, `jwt_validation_pubkeys`).
pub fn jwks(data: &[u8]) {
    let _ = VerifyingKey::from_jwks(data);
    if let Some(s) = text(data) {
        let _ = VerifyingKey::from_pem(s);
    }
}

/// A frame of an encrypted backup file (`keyward operator restore`).
pub fn backup_frame(data: &[u8]) {
    let mut opener = BackupOpener::new(key(), b"keyward-fuzz");
    let _ = opener.open(data);
}

/// A fuzz target: a function of the bytes it is given.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`).
pub const TARGETS: [(&str, Target); 15] = [
    ("secret_blob", secret_blob),
    ("wrapped_key", wrapped_key),
    ("transit_ciphertext", transit_ciphertext),
    ("transit_backup", transit_backup),
    ("cloak", cloak),
    ("iv_tag_data", iv_tag_data),
    ("dotenv", dotenv),
    ("policy_document", policy_document),
    ("hcl_policy", hcl_policy),
    ("policy_paths", policy_paths),
    ("vault_body", vault_body),
    ("jwt", jwt),
    ("jwks", jwks),
    ("backup_frame", backup_frame),
    ("token", token),
];

/// A token or secret ID as presented.
pub fn token(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = keyward_crypto::Token::parse(s);
        let _ = keyward_crypto::SecretId::parse(s);
    }
}
