//! The Vault-compatible API over HTTP, on SQLite and PostgreSQL: Vault's shapes and status codes,
//! one authorization path shared with the native API, auditing (fail-closed, no values) and the
//! encryption at rest of transit keys.
use crate::common;

use common::{backends, break_audit_table, mend_audit_table, TestServer, KEY_A};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

const ENVELOPE: [&str; 8] =
    ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"];

fn envelope_ok(b: &Value) {
    for k in ENVELOPE {
        assert!(b.get(k).is_some(), "envelope lacks {k}: {b}");
    }
}

#[tokio::test]
async fn kv_v2_follows_vaults_shapes_and_status_codes() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let t = srv.token.clone();
        let v = |m: &'static str, p: &'static str, b: Option<Value>| {
            let t = t.clone();
            let srv = &srv;
            async move { srv.vault(&t, m, p, b).await }
        };
        // PUT and POST are the same write; the response is the version's metadata in the envelope.
        let (s, b) = v("PUT", "secret/data/app/db", Some(json!({"data": {"user": "u", "n": 1}}))).await;
        assert_eq!(s, 200, "{b}");
        envelope_ok(&b);
        assert_eq!((b["data"]["version"].as_u64(), b["data"]["deletion_time"].as_str()), (Some(1), Some("")));
        let (s, b) =
            v("POST", "secret/data/app/db", Some(json!({"data": {"user": "u2"}, "options": {"cas": 1}}))).await;
        assert_eq!((s, b["data"]["version"].as_u64()), (200, Some(2)));
        // Writing the same map again is still a new version (Vault semantics).
        let (_, b) = v("POST", "secret/data/app/db", Some(json!({"data": {"user": "u2"}}))).await;
        assert_eq!(b["data"]["version"], 3);
        let (s, b) = v("POST", "secret/data/app/db", Some(json!({"data": {"x": 1}, "options": {"cas": 1}}))).await;
        assert_eq!(
            (s, b["errors"][0].as_str()),
            (400, Some("check-and-set parameter did not match the current version"))
        );
        let (s, _) = v("POST", "secret/data/app/db", Some(json!({"data": {"x": 1}, "options": {"cas": 0}}))).await;
        assert_eq!(s, 400, "cas 0 is create-only");
        let (s, b) = v("GET", "secret/data/app/db?version=1", None).await;
        assert_eq!((s, b["data"]["data"].clone()), (200, json!({"user": "u", "n": 1})));
        // Soft delete: 404 that still carries the metadata; destroy; undelete.
        assert_eq!(v("DELETE", "secret/data/app/db", None).await.0, 204);
        let (s, b) = v("GET", "secret/data/app/db", None).await;
        assert_eq!((s, b["errors"].clone(), b["data"]["data"].clone()), (404, json!([]), Value::Null));
        assert_ne!(b["data"]["metadata"]["deletion_time"], "");
        assert_eq!(v("POST", "secret/undelete/app/db", Some(json!({"versions": [3]}))).await.0, 204);
        assert_eq!(v("GET", "secret/data/app/db", None).await.0, 200);
        assert_eq!(v("PUT", "secret/destroy/app/db", Some(json!({"versions": [1, 42]}))).await.0, 204);
        let (s, b) = v("GET", "secret/data/app/db?version=1", None).await;
        assert_eq!((s, b["data"]["metadata"]["destroyed"].as_bool()), (404, Some(true)));
        let (s, b) = v("POST", "secret/delete/app/db", Some(json!({}))).await;
        assert_eq!((s, b["errors"][0].as_str()), (400, Some("no version number provided")));
        // LIST and GET ?list=true agree; folders end in '/'; an empty list is 404.
        v("POST", "secret/data/app/sub/x", Some(json!({"data": {"k": "v"}}))).await;
        let (s, a) = v("LIST", "secret/metadata/app", None).await;
        let (_, b) = v("GET", "secret/metadata/app/?list=true", None).await;
        assert_eq!((s, a["data"].clone()), (200, json!({"keys": ["db", "sub/"]})));
        assert_eq!(a["data"], b["data"]);
        let (s, b) = v("LIST", "secret/metadata/none", None).await;
        assert_eq!((s, b), (404, json!({"errors": []})));
        // PATCH needs merge-patch+json.
        let (s, _) = v("PATCH", "secret/data/app/sub/x", Some(json!({"data": {"k": "w"}}))).await;
        assert_eq!(s, 415);
        let resp = srv
            .http
            .patch(format!("{}/v1/secret/data/app/sub/x", srv.base))
            .header("x-vault-token", &srv.token)
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"data": {"k": null, "j": [1]}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let (_, b) = v("GET", "secret/data/app/sub/x", None).await;
        assert_eq!(
            (b["data"]["data"].clone(), b["data"]["metadata"]["version"].as_u64()),
            (json!({"j": [1]}), Some(2))
        );
        // Metadata: max_versions prunes, custom metadata, delete all.
        let (s, _) = v(
            "POST",
            "secret/metadata/app/m",
            Some(json!({"max_versions": 2, "custom_metadata": {"team": "pay"}, "delete_version_after": "1h"})),
        )
        .await;
        assert_eq!(s, 204);
        for i in 0..4 {
            v("POST", "secret/data/app/m", Some(json!({"data": {"i": i}}))).await;
        }
        let (_, m) = v("GET", "secret/metadata/app/m", None).await;
        assert_eq!((m["data"]["current_version"].as_u64(), m["data"]["oldest_version"].as_u64()), (Some(4), Some(3)));
        assert_eq!(m["data"]["versions"].as_object().unwrap().len(), 2);
        assert_eq!(
            (m["data"]["custom_metadata"].clone(), m["data"]["delete_version_after"].as_str()),
            (json!({"team": "pay"}), Some("1h0m0s"))
        );
        let (_, r) = v("GET", "secret/data/app/m", None).await;
        assert_ne!(r["data"]["metadata"]["deletion_time"], "", "delete_version_after sets a future deletion time");
        assert_eq!(r["data"]["data"], json!({"i": 3}), "and the version is readable until then");
        assert_eq!(v("DELETE", "secret/metadata/app/m", None).await.0, 204);
        assert_eq!(v("GET", "secret/metadata/app/m", None).await.0, 404);
        // Mount-level cas_required.
        assert_eq!(v("POST", "secret/config", Some(json!({"cas_required": true, "max_versions": 7}))).await.0, 204);
        let (s, b) = v("POST", "secret/data/app/c", Some(json!({"data": {"a": "b"}}))).await;
        assert_eq!((s, b["errors"][0].as_str()), (400, Some("check-and-set parameter required for this call")));
        let (_, c) = v("GET", "secret/config", None).await;
        assert_eq!((c["data"]["cas_required"].as_bool(), c["data"]["max_versions"].as_u64()), (Some(true), Some(7)));
        // Malformed input: 4xx JSON, never a panic.
        for (m, p, body, want) in [
            ("POST", "secret/data/a/../b", Some(json!({"data": {}})), 400),
            ("POST", "secret/data/app/x", Some(json!({"data": "not a map"})), 400),
            ("POST", "secret/data/app/x", Some(json!([1])), 400),
            ("POST", "secret/nothing/app/x", Some(json!({})), 404),
            ("GET", "secret/data/app/x?version=abc", None, 400),
            ("PUT", "nomount/data/x", Some(json!({"data": {}})), 404),
            ("TRACE", "secret/data/app/x", None, 405),
        ] {
            let (s, b) = v(m, p, body).await;
            assert_eq!(s, want, "{m} {p}: {b}");
        }
        // An unknown or missing token is 403 "permission denied", as Vault.
        let (s, b) =
            srv.vault("kw_0000000000000000000000000000000000000000000", "GET", "secret/data/app/db", None).await;
        assert_eq!((s, b), (403, json!({"errors": ["permission denied"]})));
        // The UI preflight clients use to detect KV v2.
        let (_, u) = v("GET", "sys/internal/ui/mounts/secret/app/db", None).await;
        assert_eq!(
            (u["data"]["options"]["version"].as_str(), u["data"]["path"].as_str()),
            (Some("2"), Some("secret/"))
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn vault_and_native_apis_share_one_authorization_path() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "app/db", json!({"PASSWORD": "pw-shared-canary-1"})).await;
        srv.set("secret", "admin/root", json!({"K": "never"})).await;
        let hcl = "path \"secret/data/app/*\" {\n  capabilities = [\"read\"]\n}\npath \"secret/metadata/app/*\" { capabilities = [\"list\"] }\n# no access to admin\npath \"secret/data/admin/*\" { capabilities = [\"deny\"] }\n";
        let (s, b) = srv.vault(&srv.token, "PUT", "sys/policies/acl/app-read", Some(json!({"policy": hcl}))).await;
        assert_eq!(s, 204, "{b}");
        let (_, b) = srv.vault(&srv.token, "GET", "sys/policies/acl/app-read", None).await;
        assert_eq!(b["data"], json!({"name": "app-read", "policy": hcl}));
        // The translation is a native policy, visible on the native API.
        let (_, n) = srv.json(Method::GET, "/api/v1/policies/app-read", None).await;
        assert!(n.to_string().contains("secret/app/*"), "{n}");
        let reader = srv.token_with(&["app-read"]).await;
        // Vault API and native API give the same answers.
        let (s, b) = srv.vault(&reader, "GET", "secret/data/app/db", None).await;
        assert_eq!((s, b["data"]["data"]["PASSWORD"].as_str()), (200, Some("pw-shared-canary-1")));
        let (s, _) = srv.json_as(&reader, Method::GET, "/api/v1/mounts/secret/secrets/app/db?reveal=true", None).await;
        assert_eq!(s, 200);
        for (m, p) in
            [("GET", "secret/data/admin/root"), ("POST", "secret/data/app/db"), ("POST", "sys/mounts/secret/tune")]
        {
            let (s, b) = srv.vault(&reader, m, p, Some(json!({"data": {"x": "y"}}))).await;
            assert!(s == 403 || (m == "GET" && p.starts_with("sys/") && s == 404), "{m} {p}: {s} {b}");
        }
        let (s, _) =
            srv.json_as(&reader, Method::GET, "/api/v1/mounts/secret/secrets/admin/root?reveal=true", None).await;
        assert_eq!(s, 403);
        let (s, b) = srv.vault(&reader, "LIST", "secret/metadata/", None).await;
        assert_eq!((s, b["data"]["keys"].clone()), (200, json!(["app/"])), "listing shows only what may be listed");
        // A native policy governs the Vault API the same way.
        srv.policy(
            "native-admin",
            "[[rules]]\npath = \"secret/admin/*\"\ncapabilities = [\"read\", \"create\", \"update\"]\n",
        )
        .await;
        let admin = srv.token_with(&["native-admin"]).await;
        let (s, _) = srv.vault(&admin, "GET", "secret/data/admin/root", None).await;
        assert_eq!(s, 200);
        let (s, _) = srv.vault(&admin, "GET", "secret/data/app/db", None).await;
        assert_eq!(s, 403);
        // What cannot be translated without widening access is refused, with the reason.
        for bad in [
            "path \"secret/metadata/app/*\" { capabilities = [\"update\"] }",
            "path \"sys/policies/acl/*\" { capabilities = [\"update\"] }",
            "path \"secret/data/x\" {\n capabilities = [\"read\"]\n allowed_parameters = { \"a\" = [] }\n}",
        ] {
            let (s, b) = srv.vault(&srv.token, "PUT", "sys/policies/acl/bad", Some(json!({"policy": bad}))).await;
            assert_eq!(s, 400, "{bad}: {b}");
            assert!(
                b["errors"][0].as_str().unwrap().contains("cannot")
                    || b["errors"][0].as_str().unwrap().contains("not supported"),
                "{b}"
            );
        }
        assert_eq!(srv.vault(&srv.token, "GET", "sys/policies/acl/bad", None).await.0, 404);
        // Tokens from the Vault API are ordinary tokens.
        let (s, b) = srv
            .vault(&srv.token, "POST", "auth/token/create", Some(json!({"policies": ["app-read"], "ttl": "10m"})))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!((b["data"].clone(), b["auth"]["policies"].clone()), (Value::Null, json!(["app-read", "default"])));
        let lease = b["auth"]["lease_duration"].as_u64().unwrap();
        assert!((590..=600).contains(&lease), "{lease}");
        let tok = b["auth"]["client_token"].as_str().unwrap().to_owned();
        let (s, _) = srv.json_as(&tok, Method::GET, "/api/v1/mounts/secret/secrets/app/db", None).await;
        assert_eq!(s, 200);
        let (s, b) = srv.vault(&tok, "GET", "auth/token/lookup-self", None).await;
        assert_eq!(
            (s, b["data"]["id"].as_str()),
            (200, Some(tok.as_str())),
            "the caller's own token, as Vault shows it"
        );
        assert_eq!(srv.vault(&tok, "POST", "auth/token/revoke-self", None).await.0, 204);
        assert_eq!(srv.json_as(&tok, Method::GET, "/api/v1/mounts/secret/secrets/app/db", None).await.0, 401);
        srv.stop().await;
    }
}

#[tokio::test]
async fn vault_requests_are_audited_fail_closed_and_without_values() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let t = srv.token.clone();
        srv.vault(&t, "POST", "secret/data/pay", Some(json!({"data": {"STRIPE": "sk_live_auditcanary0000009999"}})))
            .await;
        srv.vault(&t, "GET", "secret/data/pay", None).await;
        srv.vault(&t, "POST", "transit/keys/cards", None).await;
        let (_, e) = srv
            .vault(&t, "POST", "transit/encrypt/cards", Some(json!({"plaintext": "dHJhbnNpdC1hdWRpdC1jYW5hcnk="})))
            .await;
        let ct = e["data"]["ciphertext"].as_str().unwrap().to_owned();
        srv.vault(&t, "POST", "transit/decrypt/cards", Some(json!({"ciphertext": ct}))).await;
        srv.vault("kw_1111111111111111111111111111111111111111111", "GET", "secret/data/pay", None).await;
        let (_, a) = srv.json(Method::GET, "/api/v1/audit?limit=1000", None).await;
        let entries = a["entries"].as_array().unwrap();
        let text = serde_json::to_string(entries).unwrap();
        for canary in ["sk_live_auditcanary0000009999", "dHJhbnNpdC1hdWRpdC1jYW5hcnk=", "transit-audit-canary", &t] {
            assert!(!text.contains(canary), "{} leaked into the audit log", db.label);
        }
        let op =
            |o: &str| entries.iter().find(|e| e["operation"] == o).unwrap_or_else(|| panic!("no {o}: {text}")).clone();
        let w = op("secrets.write");
        assert_eq!(
            (w["mount"].as_str(), w["path"].as_str(), w["fields"].clone()),
            (Some("secret"), Some("pay"), json!(["STRIPE"]))
        );
        assert_eq!(op("secrets.reveal")["fields"], json!(["STRIPE"]));
        assert_eq!(op("transit.encrypt")["details"]["key"], "cards");
        assert_eq!(op("transit.decrypt")["status"], 200);
        assert!(entries.iter().any(|e| e["status"] == 403 && e["details"]["presented_token_hmac"].is_string()));
        let (_, verify) = srv.json(Method::GET, "/api/v1/audit/verify", None).await;
        assert_eq!(verify["ok"], true, "{verify}");

        // With the primary sink broken, nothing is served and nothing is written.
        let pool = db.pool().await;
        break_audit_table(&db, &pool).await;
        let (s, b) = srv.vault(&t, "GET", "secret/data/pay", None).await;
        assert_eq!(s, 503);
        assert!(!b.to_string().contains("auditcanary"), "served unaudited: {b}");
        assert_eq!(srv.vault(&t, "POST", "secret/data/pay", Some(json!({"data": {"STRIPE": "changed"}}))).await.0, 503);
        assert_eq!(srv.vault(&t, "POST", "transit/decrypt/cards", Some(json!({"ciphertext": ct}))).await.0, 503);
        mend_audit_table(&db, &pool).await;
        let (_, r) = srv.vault(&t, "GET", "secret/data/pay", None).await;
        assert_eq!(
            (r["data"]["data"]["STRIPE"].as_str(), r["data"]["metadata"]["version"].as_u64()),
            (Some("sk_live_auditcanary0000009999"), Some(1))
        );
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn transit_keeps_keys_wrapped_and_shreds_them_with_the_mount() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let t = srv.token.clone();
        let (s, k) = srv.vault(&t, "POST", "transit/keys/orders", Some(json!({"type": "aes256-gcm96"}))).await;
        assert_eq!((s, k["data"]["latest_version"].as_u64()), (200, Some(1)));
        let (s, _) = srv.vault(&t, "POST", "transit/keys/rsa", Some(json!({"type": "rsa-1024"}))).await;
        assert_eq!(s, 400, "unsupported key types are refused");
        let plain = "dHJhbnNpdC1hdC1yZXN0LWNhbmFyeQ=="; // "transit-at-rest-canary"
        let (_, e) = srv.vault(&t, "POST", "transit/encrypt/orders", Some(json!({"plaintext": plain}))).await;
        let v1 = e["data"]["ciphertext"].as_str().unwrap().to_owned();
        assert!(v1.starts_with("vault:v1:"));
        srv.vault(&t, "POST", "transit/keys/orders/rotate", None).await;
        let (_, r) = srv.vault(&t, "POST", "transit/rewrap/orders", Some(json!({"ciphertext": v1}))).await;
        assert!(r["data"]["ciphertext"].as_str().unwrap().starts_with("vault:v2:"));
        let (s, b) =
            srv.vault(&t, "POST", "transit/keys/orders/config", Some(json!({"min_decryption_version": 2}))).await;
        assert_eq!((s, b["data"]["min_decryption_version"].as_u64()), (200, Some(2)));
        let (s, b) = srv.vault(&t, "POST", "transit/decrypt/orders", Some(json!({"ciphertext": v1}))).await;
        assert_eq!(
            (s, b["errors"][0].as_str()),
            (400, Some("ciphertext or signature version is disallowed by policy (too old)"))
        );
        // Tampered or foreign ciphertexts: 400, never 500.
        let mut bad = v1.clone();
        bad.pop();
        bad.push(if v1.ends_with('A') { 'B' } else { 'A' });
        for c in [bad.as_str(), "vault:v2:AAAA", "garbage", "vault:v9:AAAA"] {
            let (s, _) = srv.vault(&t, "POST", "transit/decrypt/orders", Some(json!({"ciphertext": c}))).await;
            assert_eq!(s, 400, "{c}");
        }
        // Batch with a partial failure keeps going and says which item failed.
        let (s, b) = srv
            .vault(
                &t,
                "POST",
                "transit/encrypt/orders",
                Some(json!({"batch_input": [{"plaintext": plain}, {"plaintext": "%%%"}]})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert!(
            b["data"]["batch_results"][0]["ciphertext"].is_string()
                && b["data"]["batch_results"][1]["error"].is_string()
        );

        // At rest: two wrapped key versions, no plaintext anywhere in the database.
        let pool = db.pool().await;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM wrapped_keys WHERE domain = 'keyward/transit-key'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 2);
        let rows = sqlx::query("SELECT config FROM transit_keys").fetch_all(&pool).await.unwrap();
        let cfg: String = rows[0].get(0);
        assert!(!cfg.contains("canary"));
        if let Some(dir) = db.sqlite_dir() {
            for f in std::fs::read_dir(dir).unwrap() {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                assert!(!bytes.windows(22).any(|w| w == b"transit-at-rest-canary"));
            }
        }
        // Disabling the mount deletes its keys in the same transaction: old ciphertexts are dead.
        assert_eq!(srv.vault(&t, "DELETE", "sys/mounts/transit", None).await.0, 204);
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM wrapped_keys WHERE domain = 'keyward/transit-key'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{}: transit keys shredded", db.label);
        assert_eq!(srv.vault(&t, "POST", "sys/mounts/transit", Some(json!({"type": "transit"}))).await.0, 204);
        srv.vault(&t, "POST", "transit/keys/orders", None).await;
        let (s, _) =
            srv.vault(&t, "POST", "transit/decrypt/orders", Some(json!({"ciphertext": r["data"]["ciphertext"]}))).await;
        assert_eq!(s, 400, "a ciphertext of the shredded key cannot be decrypted by the new one");
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_vault_api() {
    let db = backends().await.remove(0);
    let srv = TestServer::start(&db, KEY_A).await;
    // Served without a token at Vault's path, as `vault read sys/internal/specs/openapi` reads it.
    let resp = reqwest::get(format!("{}/v1/sys/internal/specs/openapi", srv.base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/sys/health",
        "/v1/sys/mounts",
        "/v1/{mount}/data/{path}",
        "/v1/{mount}/metadata/{path}",
        "/v1/{mount}/encrypt/{name}",
        "/v1/auth/token/create",
        "/v1/sys/policies/acl/{name}",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    srv.stop().await;
}

#[tokio::test]
async fn limits_and_isolation_apply_to_the_vault_api() {
    use std::num::NonZeroU32;
    use std::time::Duration;
    for db in backends().await {
        let srv = TestServer::start_with(&db, KEY_A, |o| {
            o.guard.token_rate =
                Some(keyward_server::Rate { count: NonZeroU32::new(5).unwrap(), per: Duration::from_secs(60) });
        })
        .await;
        srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "tenant-a"}))).await;
        srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "tenant-b"}))).await;
        srv.set("tenant-b", "prod", json!({"K": "tenant-b-only"})).await;
        srv.policy("a", "[[rules]]\npath = \"tenant-a/*\"\ncapabilities = [\"read\", \"create\", \"update\"]\n").await;
        let a = srv.token_with(&["a"]).await;
        // Tenant A sees only its own mount and cannot reach B's data by any Vault path.
        let (s, m) = srv.vault(&a, "GET", "sys/mounts", None).await;
        assert_eq!(s, 200);
        assert_eq!(m["data"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["tenant-a/"]);
        for (verb, path) in
            [("GET", "tenant-b/data/prod"), ("LIST", "tenant-b/metadata/"), ("GET", "sys/internal/ui/mounts/tenant-b")]
        {
            let (s, b) = srv.vault(&a, verb, path, None).await;
            assert_eq!((s, b), (403, json!({"errors": ["permission denied"]})), "{verb} {path}");
        }
        // The per-token rate limit holds here too, in Vault's error shape.
        let mut limited = None;
        for _ in 0..10 {
            let (s, b) = srv.vault(&a, "GET", "tenant-a/data/none", None).await;
            if s == 429 {
                limited = Some(b);
                break;
            }
        }
        let b = limited.expect("the token was never rate limited");
        assert!(b["errors"][0].as_str().unwrap().contains("rate limit"), "{b}");
        srv.stop().await;
    }
}

/// KV version 1 mounts (Vault's `{"type": "kv"}` without a version): read, write, list, delete at
/// `<mount>/<path>`, encrypted and audited like version 2; tuned to version 2 in place, and never
/// back; the native CLI's history paths refuse them with a clear error.
#[tokio::test]
async fn kv_version_1_mounts_and_tuning_to_version_2() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        let (s, b) = srv.vault(&root, "POST", "sys/mounts/legacy", Some(json!({"type": "kv"}))).await;
        assert_eq!(s, 204, "{label}: {b}");
        let (_, m) = srv.vault(&root, "GET", "sys/mounts/legacy", None).await;
        assert_eq!(m["data"]["options"]["version"], "1", "{label}: {m}");
        let (s, b) =
            srv.vault(&root, "POST", "legacy/apps/db", Some(json!({"password": "hunter2", "user": "app"}))).await;
        assert_eq!(s, 204, "{label}: {b}");
        let (s, b) = srv.vault(&root, "GET", "legacy/apps/db", None).await;
        assert_eq!(
            (s, &b["data"]["password"], &b["lease_duration"]),
            (200, &json!("hunter2"), &json!(2_764_800)),
            "{label}"
        );
        srv.vault(&root, "POST", "legacy/apps/db", Some(json!({"password": "rotated"}))).await;
        let (_, b) = srv.vault(&root, "GET", "legacy/apps/db", None).await;
        assert_eq!(b["data"], json!({"password": "rotated"}), "{label}: a write replaces the whole map");
        let (_, list) = srv.vault(&root, "LIST", "legacy/apps", None).await;
        assert_eq!(list["data"]["keys"], json!(["db"]), "{label}");
        // Version 2 paths do not exist on it: data/x is just a secret named data/x.
        assert_eq!(srv.vault(&root, "GET", "legacy/data/apps/db", None).await.0, 404, "{label}");
        // Encrypted at rest like any value.
        let pool = db.pool().await;
        let blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT blob FROM secret_versions WHERE blob IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(!blobs.is_empty() && blobs.iter().all(|b| !b.windows(7).any(|w| w == b"rotated")), "{label}");
        // The native API reads it; history-keeping commands say why they cannot.
        assert_eq!(srv.reveal_map("legacy", "apps/db").await["password"], "rotated", "{label}");
        let (s, b) = srv.json(Method::GET, "/api/v1/mounts/legacy/history/apps/db", None).await;
        assert!(s == 400 && b.to_string().contains("KV version 1"), "{label}: {s} {b}");
        // A reader with a policy on the path: version 1 paths are the policy paths.
        srv.policy("legacy-read", "[[rules]]\npath = \"legacy/apps/*\"\ncapabilities = [\"read\"]\n").await;
        let reader = srv.token_with(&["legacy-read"]).await;
        assert_eq!(srv.vault(&reader, "GET", "legacy/apps/db", None).await.0, 200, "{label}");
        assert_eq!(srv.vault(&reader, "POST", "legacy/apps/db", Some(json!({"x": "y"}))).await.0, 403, "{label}");
        assert_eq!(srv.vault(&reader, "DELETE", "legacy/apps/db", None).await.0, 403, "{label}");

        // Tuning: description and TTLs, then version 1 → 2 in place.
        let tune = json!({"description": "old apps", "default_lease_ttl": "1h", "options": {"version": "2"}});
        let (s, b) = srv.vault(&root, "POST", "sys/mounts/legacy/tune", Some(tune)).await;
        assert_eq!(s, 204, "{label}: {b}");
        let (_, t) = srv.vault(&root, "GET", "sys/mounts/legacy/tune", None).await;
        assert_eq!(
            (&t["data"]["description"], &t["data"]["default_lease_ttl"], &t["data"]["options"]["version"]),
            (&json!("old apps"), &json!(3600), &json!("2")),
            "{label}: {t}"
        );
        let (s, b) = srv.vault(&root, "GET", "legacy/data/apps/db", None).await;
        assert_eq!(
            (s, &b["data"]["data"]["password"]),
            (200, &json!("rotated")),
            "{label}: the data is version 2's now"
        );
        assert_eq!(srv.vault(&root, "GET", "legacy/apps/db", None).await.0, 404, "{label}: version 1 paths are gone");
        let (s, b) =
            srv.vault(&root, "POST", "sys/mounts/legacy/tune", Some(json!({"options": {"version": "1"}}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("cannot go back"), "{label}: {b}");
        let (s, _) = srv.vault(&root, "POST", "sys/mounts/legacy/tune", Some(json!({"seal_wrap": true}))).await;
        assert_eq!(s, 400, "{label}");
        // kv with version 2, and kv-v2, stay version 2.
        for (path, body) in
            [("v2a", json!({"type": "kv", "options": {"version": "2"}})), ("v2b", json!({"type": "kv-v2"}))]
        {
            srv.vault(&root, "POST", &format!("sys/mounts/{path}"), Some(body)).await;
            let (_, m) = srv.vault(&root, "GET", &format!("sys/mounts/{path}"), None).await;
            assert_eq!(m["data"]["options"]["version"], "2", "{label}: {path}");
        }
        srv.stop().await;
    }
}

/// `sys/capabilities*` answer for any path with what a request would get: the pipeline's own
/// evaluator asked for every operation the path names.
#[tokio::test]
async fn capabilities_answer_for_any_path() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "app/db", json!({"K": "v"})).await;
        let hcl = "path \"secret/data/app/*\" { capabilities = [\"read\", \"create\"] }\n";
        let (s, b) = srv.vault(&srv.token, "PUT", "sys/policies/acl/app", Some(json!({"policy": hcl}))).await;
        assert_eq!(s, 204, "{label}: {b}");
        let reader = srv.token_with(&["app"]).await;
        let paths =
            json!({"paths": ["secret/data/app/db", "secret/data/admin/x", "sys/mounts/secret/tune", "nothing/here"]});
        let (s, b) = srv.vault(&reader, "POST", "sys/capabilities-self", Some(paths.clone())).await;
        assert_eq!(s, 200, "{label}: {b}");
        assert_eq!(b["data"]["secret/data/app/db"], json!(["create", "read"]), "{label}: {b}");
        assert_eq!(b["data"]["secret/data/admin/x"], json!(["deny"]), "{label}");
        assert_eq!(b["data"]["sys/mounts/secret/tune"], json!(["read"]), "{label}: the mount is visible to it");
        assert_eq!(b["data"]["nothing/here"], json!(["deny"]), "{label}");
        // Each answer is what the request gets.
        assert_eq!(srv.vault(&reader, "GET", "secret/data/app/db", None).await.0, 200, "{label}");
        assert_eq!(srv.vault(&reader, "GET", "secret/data/admin/x", None).await.0, 403, "{label}");
        let (_, one) =
            srv.vault(&reader, "POST", "sys/capabilities-self", Some(json!({"path": "auth/token/lookup-self"}))).await;
        assert_eq!(
            one["data"]["capabilities"],
            json!(["read", "update", "create"].iter().copied().collect::<std::collections::BTreeSet<_>>()),
            "{label}: {one}"
        );
        // Another token's, with sudo on sys/tokens; root is root.
        let (s, b) = srv
            .vault(
                &srv.token,
                "POST",
                "sys/capabilities",
                Some(json!({"token": reader, "paths": ["secret/data/app/db"]})),
            )
            .await;
        assert_eq!((s, &b["data"]["capabilities"]), (200, &json!(["create", "read"])), "{label}: {b}");
        let (_, me) = srv.vault(&reader, "GET", "auth/token/lookup-self", None).await;
        let by_accessor = json!({"accessor": me["data"]["accessor"], "paths": ["secret/data/app/db"]});
        let (s, b) = srv.vault(&srv.token, "POST", "sys/capabilities-accessor", Some(by_accessor.clone())).await;
        assert_eq!((s, &b["capabilities"]), (200, &json!(["create", "read"])), "{label}: top-level copy: {b}");
        assert_eq!(srv.vault(&reader, "POST", "sys/capabilities-accessor", Some(by_accessor)).await.0, 403, "{label}");
        let (_, b) = srv.vault(&srv.token, "POST", "sys/capabilities-self", Some(json!({"paths": ["anything"]}))).await;
        assert_eq!(b["data"]["anything"], json!(["root"]), "{label}");
        srv.stop().await;
    }
}

/// Vault policies for any path: rules on paths keyward serves under other names take effect,
/// rules on paths it serves nowhere are kept inert (with a warning, listed by doctor), and rules
/// it cannot enforce without widening are refused by name.
#[tokio::test]
async fn vault_policies_cover_any_path_and_keep_the_rest_inert() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        let hcl = "path \"sys/mounts/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n\
                   path \"sys/health\" { capabilities = [\"read\"] }\n\
                   path \"pki/issue/web\" { capabilities = [\"update\"] }\n";
        let (s, b) = srv.vault(&root, "PUT", "sys/policies/acl/ops", Some(json!({"policy": hcl}))).await;
        assert_eq!(s, 200, "{label}: warnings come back with a 200: {b}");
        let warnings = b["warnings"].to_string();
        assert!(warnings.matches("inert in this version").count() == 2, "{label}: {warnings}");
        let (_, read) = srv.vault(&root, "GET", "sys/policies/acl/ops", None).await;
        assert_eq!(read["data"]["policy"], hcl, "{label}: read back exactly as written");
        let ops = srv.token_with(&["ops"]).await;
        // The sys/mounts rule took effect: enable, tune and disable.
        assert_eq!(srv.vault(&ops, "POST", "sys/mounts/team", Some(json!({"type": "kv-v2"}))).await.0, 204, "{label}");
        assert_eq!(srv.vault(&ops, "DELETE", "sys/mounts/team", None).await.0, 204, "{label}");
        // …and nothing more.
        assert_eq!(srv.vault(&ops, "PUT", "sys/policies/acl/x", Some(json!({"policy": hcl}))).await.0, 403, "{label}");
        // A rule granting part of what keyward guards with one grant is refused, by name.
        let partial = "path \"sys/mounts/*\" { capabilities = [\"create\", \"update\"] }";
        let (s, b) = srv.vault(&root, "PUT", "sys/policies/acl/half", Some(json!({"policy": partial}))).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("sys/mounts/*"), "{label}: {b}");
        // Identity paths are checked as named.
        srv.vault(&root, "POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await;
        srv.vault(&root, "POST", "auth/approle/role/ci", Some(json!({"token_policies": "default"}))).await;
        let hcl = "path \"auth/approle/role/ci/secret-id\" { capabilities = [\"update\"] }";
        let (s, b) = srv.vault(&root, "PUT", "sys/policies/acl/ci-issuer", Some(json!({"policy": hcl}))).await;
        assert_eq!(s, 204, "{label}: {b}");
        let issuer = srv.token_with(&["ci-issuer"]).await;
        assert_eq!(
            srv.vault(&issuer, "POST", "auth/approle/role/ci/secret-id", Some(json!({}))).await.0,
            200,
            "{label}"
        );
        assert_eq!(srv.vault(&issuer, "GET", "auth/approle/role/ci", None).await.0, 403, "{label}");
        // A policy of inert rules alone is kept; doctor lists every inert rule.
        let (s, b) = srv
            .vault(
                &root,
                "PUT",
                "sys/policies/acl/later",
                Some(json!({"policy": "path \"sys/leases/*\" { capabilities = [\"read\"] }"})),
            )
            .await;
        assert_eq!(s, 200, "{label}: {b}");
        let (_, doctor) = srv.json(Method::GET, "/api/v1/doctor", None).await;
        let inert = doctor["inert_rules"].to_string();
        assert!(
            inert.contains("ops: \\\"sys/health\\\"") && inert.contains("later: \\\"sys/leases/*\\\""),
            "{label}: {inert}"
        );
        assert_eq!(doctor["ok"], true, "{label}: inert rules are not a failure");
        srv.stop().await;
    }
}

/// Transit's hash, random and HMAC endpoints (Vault's shapes), HMACs verified per key version.
#[tokio::test]
async fn transit_hashes_random_bytes_and_hmacs() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        let abc = json!({"input": "YWJj"}); // "abc"
        let (s, b) = srv.vault(&root, "POST", "transit/hash", Some(abc.clone())).await;
        assert_eq!(
            (s, &b["data"]["sum"]),
            (200, &json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")),
            "{label}: {b}"
        );
        let (_, b) =
            srv.vault(&root, "POST", "transit/hash/sha3-256", Some(json!({"input": "YWJj", "format": "base64"}))).await;
        assert_eq!(b["data"]["sum"], "Ophdp0/iJbIEXBcta9OQvYVfCG4+nVJbRr/iRRFDFTI=", "{label}");
        assert_eq!(srv.vault(&root, "POST", "transit/hash/md5", Some(abc.clone())).await.0, 400, "{label}");
        let (s, b) = srv.vault(&root, "POST", "transit/random/16", Some(json!({"format": "hex"}))).await;
        assert_eq!((s, b["data"]["random_bytes"].as_str().map(str::len)), (200, Some(32)), "{label}: {b}");
        assert_eq!(srv.vault(&root, "POST", "transit/random", Some(json!({"source": "seal"}))).await.0, 400, "{label}");
        assert_eq!(srv.vault(&root, "POST", "transit/random/0", None).await.0, 400, "{label}");

        assert!(srv.vault(&root, "POST", "transit/keys/webhooks", None).await.0 < 300, "{label}");
        let (s, b) = srv.vault(&root, "POST", "transit/hmac/webhooks", Some(abc.clone())).await;
        let v1 = b["data"]["hmac"].as_str().unwrap_or_default().to_owned();
        assert!(s == 200 && v1.starts_with("vault:v1:"), "{label}: {b}");
        let check = |input: &str, mac: &str| json!({"input": input, "hmac": mac});
        let (_, b) = srv.vault(&root, "POST", "transit/verify/webhooks", Some(check("YWJj", &v1))).await;
        assert_eq!(b["data"]["valid"], true, "{label}: {b}");
        let (_, b) = srv.vault(&root, "POST", "transit/verify/webhooks", Some(check("YWJk", &v1))).await;
        assert_eq!(b["data"]["valid"], false, "{label}: another input");
        let (_, b) = srv.vault(&root, "POST", "transit/verify/webhooks/sha2-512", Some(check("YWJj", &v1))).await;
        assert_eq!(b["data"]["valid"], false, "{label}: another algorithm");
        // After a rotation, old HMACs verify until min_decryption_version passes them.
        assert!(srv.vault(&root, "POST", "transit/keys/webhooks/rotate", None).await.0 < 300, "{label}");
        let (_, b) = srv.vault(&root, "POST", "transit/hmac/webhooks", Some(abc.clone())).await;
        assert!(b["data"]["hmac"].as_str().unwrap().starts_with("vault:v2:"), "{label}");
        let (_, b) = srv.vault(&root, "POST", "transit/verify/webhooks", Some(check("YWJj", &v1))).await;
        assert_eq!(b["data"]["valid"], true, "{label}");
        srv.vault(&root, "POST", "transit/keys/webhooks/config", Some(json!({"min_decryption_version": 2}))).await;
        assert_eq!(
            srv.vault(&root, "POST", "transit/verify/webhooks", Some(check("YWJj", &v1))).await.0,
            400,
            "{label}"
        );
        // Trim: version 1 is deleted for good, and no version past min_decryption_version can be.
        let pool = db.pool().await;
        let versions = |pool: sqlx::AnyPool| async move {
            let q =
                "SELECT COUNT(*) FROM wrapped_keys w JOIN transit_keys t ON w.owner = t.id WHERE t.name = 'webhooks'";
            sqlx::query_scalar::<_, i64>(q).fetch_one(&pool).await.unwrap()
        };
        assert_eq!(versions(pool.clone()).await, 2, "{label}");
        let trim = |v: u32| json!({ "min_available_version": v });
        let (s, b) = srv.vault(&root, "POST", "transit/keys/webhooks/trim", Some(trim(2))).await;
        assert_eq!((s, &b["data"]["min_available_version"]), (200, &json!(2)), "{label}: {b}");
        assert!(b["data"]["keys"].get("1").is_none(), "{label}: {b}");
        assert_eq!(versions(pool).await, 1, "{label}: the wrapped key of version 1 is gone");
        let (s, _) = srv.vault(&root, "POST", "transit/keys/webhooks/trim", Some(trim(3))).await;
        assert_eq!(s, 400, "{label}: past the latest version");
        // Ed25519 signing keys: sign, verify, public keys, and nothing to encrypt with.
        let (s, b) = srv.vault(&root, "POST", "transit/keys/releases", Some(json!({"type": "ed25519"}))).await;
        assert!(s < 300 && b["data"]["supports_signing"] == true, "{label}: {b}");
        let public = b["data"]["keys"]["1"]["public_key"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            base64::engine::Engine::decode(&base64::engine::general_purpose::STANDARD, &public).map(|k| k.len()).ok(),
            Some(32),
            "{label}: {b}"
        );
        let (s, b) = srv.vault(&root, "POST", "transit/sign/releases", Some(abc.clone())).await;
        let sig = b["data"]["signature"].as_str().unwrap_or_default().to_owned();
        assert!(s == 200 && sig.starts_with("vault:v1:"), "{label}: {b}");
        let signed = |input: &str, sig: &str| json!({"input": input, "signature": sig});
        let (_, b) = srv.vault(&root, "POST", "transit/verify/releases", Some(signed("YWJj", &sig))).await;
        assert_eq!(b["data"]["valid"], true, "{label}: {b}");
        let (_, b) = srv.vault(&root, "POST", "transit/verify/releases", Some(signed("YWJk", &sig))).await;
        assert_eq!(b["data"]["valid"], false, "{label}");
        let plain = json!({"plaintext": "YWJj"});
        let (s, b) = srv.vault(&root, "POST", "transit/encrypt/releases", Some(plain)).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("does not support encryption"), "{label}: {b}");
        assert_eq!(
            srv.vault(&root, "POST", "transit/sign/webhooks", Some(abc.clone())).await.0,
            400,
            "{label}: an AES key"
        );
        let prehashed = json!({"input": "YWJj", "hash_algorithm": "sha2-512"});
        assert_eq!(srv.vault(&root, "POST", "transit/sign/releases", Some(prehashed)).await.0, 400, "{label}");
        assert!(srv.vault(&root, "POST", "transit/keys/releases/rotate", None).await.0 < 300, "{label}");
        let (_, b) = srv.vault(&root, "POST", "transit/sign/releases", Some(abc.clone())).await;
        assert!(b["data"]["signature"].as_str().unwrap().starts_with("vault:v2:"), "{label}");
        let (_, b) = srv.vault(&root, "POST", "transit/verify/releases", Some(signed("YWJj", &sig))).await;
        assert_eq!(b["data"]["valid"], true, "{label}: a v1 signature still verifies");

        // Batches: HMACs, signatures and verifications of several inputs, an item's failure its own.
        let batch = json!({"batch_input": [{"input": "YWJj"}, {"input": "not base64!"}, {"input": "YWJk"}]});
        let (s, b) = srv.vault(&root, "POST", "transit/hmac/webhooks", Some(batch.clone())).await;
        let results = b["data"]["batch_results"].as_array().cloned().unwrap_or_default();
        assert!(s == 200 && results.len() == 3 && results[1]["error"].is_string(), "{label}: {b}");
        let (s, b) = srv.vault(&root, "POST", "transit/sign/releases", Some(batch)).await;
        let sigs = b["data"]["batch_results"].as_array().cloned().unwrap_or_default();
        assert!(s == 200 && sigs[0]["signature"].as_str().unwrap_or_default().starts_with("vault:v2:"), "{label}: {b}");
        let checks = json!({"batch_input": [
            {"input": "YWJj", "signature": sigs[0]["signature"]},
            {"input": "YWJj", "signature": sigs[2]["signature"]},
            {"input": "YWJj", "hmac": results[0]["hmac"]},
        ]});
        let (_, b) = srv.vault(&root, "POST", "transit/verify/releases", Some(checks)).await;
        let valid: Vec<&Value> = b["data"]["batch_results"].as_array().unwrap().iter().map(|r| &r["valid"]).collect();
        assert_eq!(valid, [&json!(true), &json!(false), &json!(false)], "{label}: the HMAC is another key's: {b}");

        // Export: what a key holds leaves only when it was created exportable (public keys always).
        let b64d = |t: &Value| {
            base64::engine::Engine::decode(&base64::engine::general_purpose::STANDARD, t.as_str().unwrap_or_default())
                .unwrap_or_default()
        };
        let (s, b) = srv.vault(&root, "GET", "transit/export/hmac-key/webhooks", None).await;
        assert!(s == 400 && b["errors"][0].as_str().unwrap().contains("not exportable"), "{label}: {b}");
        let (s, b) = srv.vault(&root, "GET", "transit/export/public-key/releases/1", None).await;
        assert_eq!(s, 200, "{label}: {b}");
        let public = b64d(&b["data"]["keys"]["1"]);
        let msg = b"artifact";
        let (_, signed_b) = srv
            .vault(&root, "POST", "transit/sign/releases", Some(json!({"input": "YXJ0aWZhY3Q=", "key_version": 1})))
            .await;
        let sig = signed_b["data"]["signature"].as_str().unwrap().trim_start_matches("vault:v1:").to_owned();
        let sig = b64d(&json!(sig));
        let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
        assert!(pk.verify(msg, &sig).is_ok(), "{label}: the exported public key verifies the signature");
        srv.vault(&root, "POST", "transit/keys/portable", Some(json!({"exportable": true}))).await;
        let (s, b) = srv.vault(&root, "GET", "transit/export/hmac-key/portable/latest", None).await;
        assert_eq!(s, 200, "{label}: {b}");
        let hkey = b64d(&b["data"]["keys"]["1"]);
        let (_, m) = srv.vault(&root, "POST", "transit/hmac/portable", Some(abc.clone())).await;
        let ours = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hkey), b"abc");
        let theirs = m["data"]["hmac"].as_str().unwrap().trim_start_matches("vault:v1:").to_owned();
        assert_eq!(b64d(&json!(theirs)), ours.as_ref().to_vec(), "{label}: the exported HMAC key is the one used");
        let (s, b) = srv.vault(&root, "GET", "transit/export/encryption-key/portable", None).await;
        assert!(s == 200 && b64d(&b["data"]["keys"]["1"]).len() == 32, "{label}: {b}");
        assert_eq!(srv.vault(&root, "GET", "transit/export/signing-key/portable", None).await.0, 400, "{label}");

        // A token may HMAC with a key without being able to encrypt with it.
        let hcl = "path \"transit/hmac/webhooks\" { capabilities = [\"update\"] }";
        srv.vault(&root, "PUT", "sys/policies/acl/signer", Some(json!({"policy": hcl}))).await;
        let signer = srv.token_with(&["signer"]).await;
        assert_eq!(srv.vault(&signer, "POST", "transit/hmac/webhooks", Some(abc.clone())).await.0, 200, "{label}");
        let plain = json!({"plaintext": "YWJj"});
        assert_eq!(srv.vault(&signer, "POST", "transit/encrypt/webhooks", Some(plain)).await.0, 403, "{label}");
        srv.stop().await;
    }
}

/// `auto_rotate_period` rotates a key once its latest version is that old (the leader's pass,
/// asked here with a clock two hours ahead), audited; other keys are left alone.
#[tokio::test]
async fn transit_keys_rotate_on_their_period() {
    for db in backends().await {
        let label = db.label;
        let store = keyward_store::connect(&db.url, 4).await.unwrap();
        let kw = keyward_core::Keyward::open(
            std::sync::Arc::new(store),
            keyward_crypto::MasterKeyring::parse(KEY_A).unwrap(),
            keyward_core::KeywardConfig::default(),
            None,
        )
        .await
        .unwrap();
        kw.initialize(common::test_entry()).await.unwrap();
        kw.create_mount("transit", keyward_core::MountKind::Transit, None, common::test_entry()).await.unwrap();
        for (name, period) in [("hourly", 3600), ("manual", 0)] {
            let options = keyward_core::TransitKeyOptions { auto_rotate_period_secs: period, ..Default::default() };
            let op = keyward_core::TransitOp::Create { mount: "transit".into(), name: name.into(), options };
            kw.transit_change(op, common::test_entry()).await.unwrap();
        }
        let now = keyward_core::now_nanos() / 1_000_000_000;
        assert_eq!(kw.rotate_due_transit_keys(now).await.unwrap(), 0, "{label}: not due yet");
        assert_eq!(kw.rotate_due_transit_keys(now + 7200).await.unwrap(), 1, "{label}");
        assert_eq!(kw.transit_key("transit", "hourly").await.unwrap().config.latest_version, 2, "{label}");
        assert_eq!(kw.transit_key("transit", "manual").await.unwrap().config.latest_version, 1, "{label}");
        let rows = kw.audit_rows(0, 1000).await.unwrap();
        let on_record = rows.iter().filter(|r| r.entry.contains("\"transit.keys.auto-rotate\"")).count();
        assert_eq!(on_record, 1, "{label}: the rotation is on record");
    }
}
