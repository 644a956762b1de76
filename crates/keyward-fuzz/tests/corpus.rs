//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/*`) through its target on stable:
//! an input that once crashed a parser stays a test. With `KEYWARD_WRITE_CORPUS=1`, first
//! (re)writes the seed inputs — valid under the fixed fuzz keys — that start each corpus.
#![allow(clippy::unwrap_used)] // test code panics on purpose

use std::path::{Path, PathBuf};

use keyward_crypto::{seal_secret_blob, seal_transit, BackupSealer, SignParams, SigningType, TransitCipher};
use keyward_fuzz::{fuzz_keyring, key, FUZZ_BLOB_CONTEXT, FUZZ_KEY, FUZZ_OWNER, TARGETS};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A transit key backup MAC'd under the fuzz key: keys written in sorted order with no spaces
/// are the canonical (RFC 8785) JSON the MAC covers.
fn transit_backup_seed() -> Vec<u8> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let backup = serde_json::json!({
        "config": {
            "allow_plaintext_backup": true, "auto_rotate_period_secs": 0, "deletion_allowed": false,
            "derived": false, "exportable": true, "latest_version": 2, "min_decryption_version": 1,
            "min_encryption_version": 0, "type": "aes256-gcm96", "versions": {"1": 1700000000, "2": 1700000100}
        },
        "format": "keyward-transit-backup/1",
        "keys": {"1": {"key": b64(&[1; 32])}, "2": {"key": b64(&[2; 32])}},
        "name": "orders"
    });
    let mac = hex::encode(key().hmac(&serde_json::to_vec(&backup).unwrap()));
    let envelope = serde_json::json!({ "backup": backup, "mac": mac });
    b64(&serde_json::to_vec(&envelope).unwrap()).into_bytes()
}

/// The seed inputs of each target: valid inputs, and a few near misses.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let k = key();
    let blob = seal_secret_blob(&k, 3, &FUZZ_BLOB_CONTEXT, b"sk_live_51H8example");
    let wrapped = fuzz_keyring().unwrap().wrap(keyward_crypto::WrappedKeyDomain::Dek, &FUZZ_OWNER, 1, &k);
    let mut wrapped_input = b"v1\n".to_vec();
    wrapped_input.extend(&wrapped.bytes);
    let header = br#"{"alg":"EdDSA","typ":"JWT"}"#;
    let claims = br#"{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/app:ref:refs/heads/main","aud":"keyward","exp":4102444800}"#;
    let signing_input = format!("{}.{}", b64url(header), b64url(claims));
    let sig = SigningType::Ed25519.sign(&FUZZ_KEY, &SignParams::default(), signing_input.as_bytes()).unwrap();
    let jwt = format!("{signing_input}.{}", b64url(&sig));
    let mut sealer = BackupSealer::new(key(), b"keyward-fuzz");
    let frame = sealer.seal(b"{\"table\":\"secrets\",\"rows\":[]}", true);
    vec![
        ("secret_blob", "valid", blob.clone()),
        ("secret_blob", "truncated", blob[..blob.len() / 2].to_vec()),
        ("wrapped_key", "valid", wrapped_input),
        ("transit_ciphertext", "aes256", seal_transit(TransitCipher::Aes256Gcm, &k, 2, b"", b"4242").into_bytes()),
        ("transit_ciphertext", "chacha", seal_transit(TransitCipher::ChaCha20Poly1305, &k, 1, b"", b"x").into_bytes()),
        ("transit_ciphertext", "bad-version", b"vault:v0:AAAA".to_vec()),
        ("transit_backup", "aes", transit_backup_seed()),
        ("cloak", "v1", [&[1u8, 10][..], b"AES.GCM.V1", &[0u8; 12], &[0u8; 16], b"ciphertext"].concat()),
        ("iv_tag_data", "shape", b"000102030405060708090a0b:000102030405060708090a0b0c0d0e0f:deadbeef".to_vec()),
        ("dotenv", "env", b"# app\nexport DATABASE_URL=\"postgres://u:p@db/app\"\nSTRIPE_KEY='sk_test_1234'\nMULTI=\"a\\nb\"\n".to_vec()),
        ("dotenv", "json", br#"{"API_KEY": "abc", "PORT": "8080"}"#.to_vec()),
        ("policy_document", "toml", b"[[rules]]\npath = \"app/secrets/*\"\ncapabilities = [\"read\", \"list\"]\n".to_vec()),
        ("policy_document", "json", br#"{"rules": [{"path": "app/secrets/+/db", "capabilities": ["reveal"]}]}"#.to_vec()),
        ("hcl_policy", "vault", b"path \"secret/data/app/*\" {\n  capabilities = [\"read\", \"list\"]\n}\npath \"sys/*\" { capabilities = [\"deny\"] }\n".to_vec()),
        ("policy_paths", "glob", b"secret/data/+/db*\nsecret/data/app/db\nsecret/data/app/x/db\n".to_vec()),
        ("vault_body", "token", br#"{"ttl": "1h30m", "num_uses": 3, "policies": ["a", "b"], "renewable": true}"#.to_vec()),
        ("vault_body", "sign", br#"{"input": "YWJj", "hash_algorithm": "sha2-512", "marshaling_algorithm": "jws"}"#.to_vec()),
        ("jwt", "valid", jwt.into_bytes()),
        ("jwks", "ec", br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#.to_vec()),
        ("jwks", "pem", keyward_fuzz::fuzz_jwt_public_pem().into_bytes()),
        ("backup_frame", "last", frame),
        ("token", "token", b"kw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_vec()),
    ]
}

#[test]
fn every_corpus_replays_without_a_crash() {
    if std::env::var_os("KEYWARD_WRITE_CORPUS").is_some() {
        for (target, name, bytes) in seeds() {
            let dir = corpus().join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    let mut total = 0;
    for (name, target) in TARGETS {
        let dir = corpus().join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target has a corpus)", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!entries.is_empty(), "{name}: empty corpus");
        for path in entries {
            target(&std::fs::read(&path).unwrap());
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

/// The seeds the corpora start from are what they claim: valid inputs open under the fuzz keys.
#[test]
fn the_seeds_are_valid_inputs() {
    let seeds = seeds();
    let seed = |t: &str, n: &str| seeds.iter().find(|(a, b, _)| *a == t && *b == n).map(|s| s.2.clone()).unwrap();
    let k = key();
    assert_eq!(
        &*keyward_crypto::open_secret_blob(&k, &FUZZ_BLOB_CONTEXT, &seed("secret_blob", "valid")).unwrap(),
        b"sk_live_51H8example"
    );
    let jwt = String::from_utf8(seed("jwt", "valid")).unwrap();
    let verifying = keyward_crypto::VerifyingKey::from_pem(&keyward_fuzz::fuzz_jwt_public_pem()).unwrap();
    assert!(keyward_crypto::verify_jwt(&jwt, &[verifying], &[keyward_crypto::JwsAlg::EdDsa]).is_ok());
    let backup = String::from_utf8(seed("transit_backup", "aes")).unwrap();
    assert_eq!(keyward_core::KeyBackup::open(&backup, &k).unwrap().name(), "orders");
    assert!(keyward_cli::dotenv::parse(std::str::from_utf8(&seed("dotenv", "env")).unwrap()).is_ok());
    assert!(keyward_core::parse_hcl_policy(std::str::from_utf8(&seed("hcl_policy", "vault")).unwrap()).is_ok());
}
