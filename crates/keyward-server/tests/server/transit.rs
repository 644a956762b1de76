//! Transit's key types end to end, on SQLite and PostgreSQL: AES-128-GCM and ChaCha20-Poly1305
//! encryption, ECDSA (P-256, P-384) and RSA signatures checked by ring independently of
//! keyward's verification, signing options Vault names, exports of private keys, and plaintext
//! backups that restore — and are refused when changed.
use crate::common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{backends, TestServer, KEY_A};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{json, Value};

/// The key bits of a PEM `PUBLIC KEY` (an EC point, or an RSA public key in PKCS#1), as ring takes them.
fn key_bits(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    let spki = spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).unwrap();
    spki.subject_public_key.raw_bytes().to_vec()
}

/// The signature bytes of a `vault:vN:` signature.
fn sig_bytes(sig: &Value, url_safe: bool) -> Vec<u8> {
    let text = sig.as_str().unwrap().splitn(3, ':').nth(2).unwrap();
    if url_safe {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    } else {
        STANDARD.decode(text).unwrap()
    }
}

fn ring_verifies(alg: &'static dyn VerificationAlgorithm, public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(alg, public).verify(msg, sig).is_ok()
}

const INPUT: &str = "cmVsZWFzZS0xLjIuMy50YXIuZ3o="; // "release-1.2.3.tar.gz"
const MSG: &[u8] = b"release-1.2.3.tar.gz";

#[tokio::test]
async fn aes128_and_chacha20_keys_encrypt() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        assert!(srv.vault(&root, "POST", "transit/keys/aes256", None).await.0 < 300, "{label}");
        for (ty, len) in [("aes128-gcm96", 16), ("chacha20-poly1305", 32)] {
            let (s, b) = srv
                .vault(&root, "POST", &format!("transit/keys/{ty}"), Some(json!({"type": ty, "exportable": true})))
                .await;
            assert!(s < 300 && b["data"]["supports_encryption"] == true, "{label} {ty}: {b}");
            assert_eq!(b["data"]["supports_signing"], false, "{label} {ty}");
            let (s, b) =
                srv.vault(&root, "POST", &format!("transit/encrypt/{ty}"), Some(json!({"plaintext": INPUT}))).await;
            let c = b["data"]["ciphertext"].clone();
            assert!(s == 200 && c.as_str().unwrap().starts_with("vault:v1:"), "{label} {ty}: {b}");
            let (_, b) =
                srv.vault(&root, "POST", &format!("transit/decrypt/{ty}"), Some(json!({"ciphertext": c}))).await;
            assert_eq!(b["data"]["plaintext"], INPUT, "{label} {ty}");
            // A ciphertext of one key type does not open under another's key.
            let (s, b) = srv.vault(&root, "POST", "transit/decrypt/aes256", Some(json!({"ciphertext": c}))).await;
            assert!(
                s == 400 && b["errors"][0].as_str().unwrap().contains("authentication failed"),
                "{label} {ty}: {b}"
            );
            let (s, b) = srv.vault(&root, "GET", &format!("transit/export/encryption-key/{ty}/1"), None).await;
            let key = STANDARD.decode(b["data"]["keys"]["1"].as_str().unwrap_or_default()).unwrap_or_default();
            assert_eq!((s, key.len()), (200, len), "{label} {ty}: {b}");
            let (s, _) = srv.vault(&root, "POST", &format!("transit/sign/{ty}"), Some(json!({"input": INPUT}))).await;
            assert_eq!(s, 400, "{label} {ty}: encryption keys do not sign");
        }
        let (s, b) = srv.vault(&root, "POST", "transit/keys/unknown", Some(json!({"type": "des"}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("chacha20-poly1305"), "{label}: {b}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn ecdsa_keys_sign_as_vault_and_ring_agrees() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        for (ty, asn1, fixed, asn1_384) in [
            (
                "ecdsa-p256",
                &signature::ECDSA_P256_SHA256_ASN1,
                &signature::ECDSA_P256_SHA256_FIXED,
                &signature::ECDSA_P256_SHA384_ASN1,
            ),
            (
                "ecdsa-p384",
                &signature::ECDSA_P384_SHA256_ASN1,
                &signature::ECDSA_P384_SHA384_FIXED,
                &signature::ECDSA_P384_SHA384_ASN1,
            ),
        ] {
            let (s, b) = srv.vault(&root, "POST", &format!("transit/keys/{ty}"), Some(json!({"type": ty}))).await;
            assert!(s < 300 && b["data"]["supports_signing"] == true, "{label} {ty}: {b}");
            assert_eq!(b["data"]["supports_encryption"], false, "{label} {ty}");
            let pem = b["data"]["keys"]["1"]["public_key"].as_str().unwrap_or_default().to_owned();
            assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{label} {ty}: {b}");
            let public = key_bits(&pem);
            let sign = |path: String, body: Value| {
                let srv = &srv;
                let root = root.clone();
                async move { srv.vault(&root, "POST", &path, Some(body)).await }
            };
            // Default: SHA-256, DER.
            let (s, b) = sign(format!("transit/sign/{ty}"), json!({"input": INPUT})).await;
            assert!(s == 200 && b["data"]["key_version"] == 1, "{label} {ty}: {b}");
            let sig = b["data"]["signature"].clone();
            assert!(ring_verifies(asn1, &public, MSG, &sig_bytes(&sig, false)), "{label} {ty}: ring verifies");
            // The hash in the route, and JWS marshaling (r || s, URL-safe base64).
            let (s, b) = sign(format!("transit/sign/{ty}/sha2-384"), json!({"input": INPUT})).await;
            assert_eq!(s, 200, "{label} {ty}: {b}");
            let sig384 = b["data"]["signature"].clone();
            assert!(ring_verifies(asn1_384, &public, MSG, &sig_bytes(&sig384, false)), "{label} {ty}: sha2-384");
            let own = if ty == "ecdsa-p256" { "sha2-256" } else { "sha2-384" };
            let (_, b) = sign(
                format!("transit/sign/{ty}"),
                json!({"input": INPUT, "hash_algorithm": own, "marshaling_algorithm": "jws"}),
            )
            .await;
            let jws = b["data"]["signature"].clone();
            assert!(ring_verifies(fixed, &public, MSG, &sig_bytes(&jws, true)), "{label} {ty}: jws {b}");
            // Prehashed: the input is the digest.
            let digest = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, MSG));
            let (_, b) = sign(format!("transit/sign/{ty}"), json!({"input": digest, "prehashed": true})).await;
            let pre = b["data"]["signature"].clone();
            assert!(ring_verifies(asn1, &public, MSG, &sig_bytes(&pre, false)), "{label} {ty}: prehashed {b}");

            // keyward verifies each, with the same options, and refuses another input or encoding.
            let verify = |extra: Value, sig: &Value, input: &str| {
                let mut body = json!({"input": input, "signature": sig});
                body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
                sign(format!("transit/verify/{ty}"), body)
            };
            let valid = |r: (u16, Value)| r.1["data"]["valid"].as_bool();
            assert_eq!(valid(verify(json!({}), &sig, INPUT).await), Some(true), "{label} {ty}");
            assert_eq!(valid(verify(json!({}), &sig, "YWJj").await), Some(false), "{label} {ty}");
            assert_eq!(valid(verify(json!({"hash_algorithm": "sha2-384"}), &sig384, INPUT).await), Some(true));
            assert_eq!(valid(verify(json!({}), &sig384, INPUT).await), Some(false), "{label} {ty}: other hash");
            let jws_opts = json!({"hash_algorithm": own, "marshaling_algorithm": "jws"});
            assert_eq!(valid(verify(jws_opts, &jws, INPUT).await), Some(true), "{label} {ty}");
            // Read as standard base64, a JWS signature does not even parse.
            let (s, _) = verify(json!({"hash_algorithm": own}), &jws, INPUT).await;
            assert_eq!(s, 400, "{label} {ty}");
            assert_eq!(valid(verify(json!({"prehashed": true}), &pre, &digest).await), Some(true), "{label} {ty}");

            // A batch with a bad item: that item's error, the rest signed.
            let batch = json!({"batch_input": [{"input": INPUT}, {"input": "%%%"}, {"input": "YWJj"}]});
            let (s, b) = sign(format!("transit/sign/{ty}"), batch).await;
            let items = b["data"]["batch_results"].as_array().cloned().unwrap_or_default();
            assert!(s == 200 && items.len() == 3 && items[1]["error"].is_string(), "{label} {ty}: {b}");
            assert!(ring_verifies(asn1, &public, MSG, &sig_bytes(&items[0]["signature"], false)), "{label} {ty}");

            // Export: the public key always; the private key only when exportable.
            let (s, b) = srv.vault(&root, "GET", &format!("transit/export/public-key/{ty}"), None).await;
            assert_eq!((s, b["data"]["keys"]["1"].as_str()), (200, Some(pem.as_str())), "{label} {ty}: {b}");
            let (s, b) = srv.vault(&root, "GET", &format!("transit/export/signing-key/{ty}"), None).await;
            assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("not exportable"), "{label} {ty}: {b}");
            // Rotation makes a new key pair; the old signature still verifies.
            let (_, b) = srv.vault(&root, "POST", &format!("transit/keys/{ty}/rotate"), None).await;
            let pem2 = b["data"]["keys"]["2"]["public_key"].as_str().unwrap_or_default();
            assert!(pem2.starts_with("-----BEGIN PUBLIC KEY-----") && pem2 != pem, "{label} {ty}: {b}");
            assert_eq!(valid(verify(json!({}), &sig, INPUT).await), Some(true), "{label} {ty}: after rotation");
            let (_, b) = sign(format!("transit/sign/{ty}"), json!({"input": INPUT})).await;
            assert!(b["data"]["signature"].as_str().unwrap().starts_with("vault:v2:"), "{label} {ty}: {b}");
        }
        // Exportable ECDSA keys export SEC1 PEM private keys; encryption and derivation are refused.
        srv.vault(&root, "POST", "transit/keys/portable-ec", Some(json!({"type": "ecdsa-p256", "exportable": true})))
            .await;
        let (s, b) = srv.vault(&root, "GET", "transit/export/signing-key/portable-ec/latest", None).await;
        let private = b["data"]["keys"]["1"].as_str().unwrap_or_default();
        assert!(s == 200 && private.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{label}: {b}");
        assert_eq!(srv.vault(&root, "GET", "transit/export/encryption-key/portable-ec", None).await.0, 400);
        let (s, _) = srv.vault(&root, "POST", "transit/encrypt/portable-ec", Some(json!({"plaintext": INPUT}))).await;
        assert_eq!(s, 400, "{label}");
        let derived = json!({"type": "ecdsa-p256", "derived": true});
        assert_eq!(srv.vault(&root, "POST", "transit/keys/derived-ec", Some(derived)).await.0, 400, "{label}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn rsa_keys_sign_in_ring_with_what_ring_offers() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        let (s, b) = srv.vault(&root, "POST", "transit/keys/rsa", Some(json!({"type": "rsa-2048"}))).await;
        assert!(s < 300 && b["data"]["supports_signing"] == true, "{label}: {b}");
        assert_eq!(b["data"]["keys"]["1"]["name"], "rsa-2048", "{label}");
        let public = key_bits(b["data"]["keys"]["1"]["public_key"].as_str().unwrap_or_default());
        let cases: [(&str, &str, &'static dyn VerificationAlgorithm); 4] = [
            ("sha2-256", "pss", &signature::RSA_PSS_2048_8192_SHA256),
            ("sha2-512", "pss", &signature::RSA_PSS_2048_8192_SHA512),
            ("sha2-256", "pkcs1v15", &signature::RSA_PKCS1_2048_8192_SHA256),
            ("sha2-384", "pkcs1v15", &signature::RSA_PKCS1_2048_8192_SHA384),
        ];
        for (hash, padding, alg) in cases {
            let opts = json!({"input": INPUT, "hash_algorithm": hash, "signature_algorithm": padding});
            let (s, b) = srv.vault(&root, "POST", "transit/sign/rsa", Some(opts.clone())).await;
            assert_eq!(s, 200, "{label} {hash} {padding}: {b}");
            let sig = b["data"]["signature"].clone();
            assert!(ring_verifies(alg, &public, MSG, &sig_bytes(&sig, false)), "{label} {hash} {padding}");
            let mut check = opts.clone();
            check["signature"] = sig.clone();
            let (_, b) = srv.vault(&root, "POST", "transit/verify/rsa", Some(check.clone())).await;
            assert_eq!(b["data"]["valid"], true, "{label} {hash} {padding}: {b}");
            check["input"] = json!("YWJj");
            let (_, b) = srv.vault(&root, "POST", "transit/verify/rsa", Some(check)).await;
            assert_eq!(b["data"]["valid"], false, "{label} {hash} {padding}");
        }
        // What RSA signing in ring cannot do is refused, naming why.
        for (body, why) in [
            (json!({"input": INPUT, "prehashed": true}), "prehashed"),
            (json!({"input": INPUT, "hash_algorithm": "sha2-224"}), "sha2-256, sha2-384 or sha2-512"),
            (json!({"input": INPUT, "hash_algorithm": "sha3-256"}), "sha2-256, sha2-384 or sha2-512"),
            (json!({"input": INPUT, "salt_length": 20}), "salt"),
            (json!({"input": INPUT, "signature_algorithm": "raw"}), "signature_algorithm"),
        ] {
            let (s, b) = srv.vault(&root, "POST", "transit/sign/rsa", Some(body)).await;
            assert!(s == 400 && b["errors"][0].as_str().unwrap().contains(why), "{label} {why}: {b}");
        }
        let (s, b) = srv.vault(&root, "POST", "transit/encrypt/rsa", Some(json!({"plaintext": INPUT}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("does not support encryption"), "{label}: {b}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn backups_restore_and_refuse_tampering() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        let portable = json!({"type": "ecdsa-p256", "exportable": true, "allow_plaintext_backup": true});
        srv.vault(&root, "POST", "transit/keys/signer", Some(portable)).await;
        srv.vault(&root, "POST", "transit/keys/signer/rotate", None).await;
        let (_, b) =
            srv.vault(&root, "POST", "transit/sign/signer", Some(json!({"input": INPUT, "key_version": 1}))).await;
        let sig = b["data"]["signature"].clone();
        let (_, before) = srv.vault(&root, "GET", "transit/keys/signer", None).await;
        let (s, b) = srv.vault(&root, "GET", "transit/backup/signer", None).await;
        let backup = b["data"]["backup"].as_str().unwrap_or_default().to_owned();
        assert!(s == 200 && !backup.is_empty(), "{label}: {b}");

        // Restore under a new name: the same key pairs, so old signatures verify and keys match.
        let (s, b) = srv.vault(&root, "POST", "transit/restore/copy", Some(json!({"backup": backup}))).await;
        assert!(s < 300, "{label}: {b}");
        let (_, after) = srv.vault(&root, "GET", "transit/keys/copy", None).await;
        assert_eq!(after["data"]["keys"], before["data"]["keys"], "{label}: the same public keys");
        assert_eq!(after["data"]["latest_version"], 2, "{label}");
        let (_, b) =
            srv.vault(&root, "POST", "transit/verify/copy", Some(json!({"input": INPUT, "signature": sig}))).await;
        assert_eq!(b["data"]["valid"], true, "{label}: {b}");
        let (s, b) = srv.vault(&root, "POST", "transit/sign/copy", Some(json!({"input": INPUT}))).await;
        assert_eq!(s, 200, "{label}: the restored private keys sign: {b}");

        // An existing name is replaced only with force.
        let (s, b) = srv.vault(&root, "POST", "transit/restore", Some(json!({"backup": backup}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("force"), "{label}: {b}");
        let (s, b) = srv.vault(&root, "POST", "transit/restore", Some(json!({"backup": backup, "force": true}))).await;
        assert!(s < 300, "{label}: {b}");

        // A changed backup is refused: a flipped public key, a raised min_decryption_version.
        let json_of = |text: &str| -> Value { serde_json::from_slice(&STANDARD.decode(text).unwrap()).unwrap() };
        let encode = |v: &Value| STANDARD.encode(serde_json::to_vec(v).unwrap());
        let mut changed = json_of(&backup);
        changed["backup"]["config"]["min_decryption_version"] = json!(2);
        let (s, b) = srv.vault(&root, "POST", "transit/restore/evil", Some(json!({"backup": encode(&changed)}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("integrity"), "{label}: {b}");
        let mut swapped = json_of(&backup);
        let keys = swapped["backup"]["keys"].clone();
        swapped["backup"]["keys"]["1"] = keys["2"].clone();
        let (s, _) = srv.vault(&root, "POST", "transit/restore/evil", Some(json!({"backup": encode(&swapped)}))).await;
        assert_eq!(s, 400, "{label}");
        assert_eq!(srv.vault(&root, "POST", "transit/restore/evil", Some(json!({"backup": "@@"}))).await.0, 400);
        assert_eq!(srv.vault(&root, "GET", "transit/keys/evil", None).await.0, 404, "{label}: nothing restored");

        // Keys that do not allow a plaintext backup have none; an AES key round-trips too.
        srv.vault(&root, "POST", "transit/keys/locked", Some(json!({"exportable": true}))).await;
        let (s, b) = srv.vault(&root, "GET", "transit/backup/locked", None).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("allow_plaintext_backup"), "{label}: {b}");
        let aes = json!({"exportable": true, "allow_plaintext_backup": true});
        srv.vault(&root, "POST", "transit/keys/files", Some(aes)).await;
        let (_, b) = srv.vault(&root, "POST", "transit/encrypt/files", Some(json!({"plaintext": INPUT}))).await;
        let c = b["data"]["ciphertext"].clone();
        let (_, b) = srv.vault(&root, "GET", "transit/backup/files", None).await;
        let files = b["data"]["backup"].as_str().unwrap_or_default().to_owned();
        assert!(srv.vault(&root, "POST", "transit/restore/files2", Some(json!({"backup": files}))).await.0 < 300);
        let (_, b) = srv.vault(&root, "POST", "transit/decrypt/files2", Some(json!({"ciphertext": c}))).await;
        assert_eq!(b["data"]["plaintext"], INPUT, "{label}: {b}");

        // Backups are audited as key disclosures; the audit never holds the backup itself.
        let pool = db.pool().await;
        let rows: Vec<String> = sqlx::query_scalar("SELECT entry FROM audit_log").fetch_all(&pool).await.unwrap();
        let all = rows.join("\n");
        assert!(all.contains("\"transit.backup\"") && all.contains("\"transit.restore.name\""), "{label}");
        let disclosures = rows.iter().filter(|r| r.contains("\"disclosure\":\"backup\"")).count();
        assert_eq!(disclosures, 2, "{label}: each backup is recorded as a key disclosure");
        assert!(!all.contains(&backup[..40]) && !all.contains(&files[..40]), "{label}: no backup in the audit");
        srv.stop().await;
    }
}

/// A database writer who copies another key's settings — its public keys and sealed private
/// keys — onto a key, to make it accept their signatures, is refused: the row's MAC binds it.
#[tokio::test]
async fn a_key_pair_swapped_in_through_sql_is_refused() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        for name in ["victim", "attacker"] {
            srv.vault(&root, "POST", &format!("transit/keys/{name}"), Some(json!({"type": "ecdsa-p256"}))).await;
        }
        let (_, b) = srv.vault(&root, "POST", "transit/sign/attacker", Some(json!({"input": INPUT}))).await;
        let forged = json!({"input": INPUT, "signature": b["data"]["signature"]});
        let (_, b) = srv.vault(&root, "POST", "transit/verify/victim", Some(forged.clone())).await;
        assert_eq!(b["data"]["valid"], false, "{label}: {b}");
        let pool = db.pool().await;
        let config: String = sqlx::query_scalar("SELECT config FROM transit_keys WHERE name = 'attacker'")
            .fetch_one(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE transit_keys SET config = $1 WHERE name = 'victim'")
            .bind(config)
            .execute(&pool)
            .await
            .unwrap();
        let (s, b) = srv.vault(&root, "POST", "transit/verify/victim", Some(forged)).await;
        assert!(s >= 400 && b["data"]["valid"] != true, "{label}: the swapped key pair was used: {s} {b}");
        let (s, b) = srv.vault(&root, "POST", "transit/sign/victim", Some(json!({"input": INPUT}))).await;
        assert!(s >= 400 && b["data"]["signature"].is_null(), "{label}: {s} {b}");
        srv.stop().await;
    }
}
