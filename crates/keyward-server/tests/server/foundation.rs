//! The foundation's promises, over real HTTP, on SQLite and PostgreSQL.
use crate::common;

use base64::Engine;
use common::{backends, random_name, second_server_refused_on_sqlite, try_start, TestDb, TestServer, KEY_A, KEY_B};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

const S: &str = "/api/v1/mounts/secret/secrets";

#[tokio::test]
async fn write_mask_reveal_history_rollback_and_envs() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let tricky = "a=b c\nline two\t«ünïcødé» 🔑 \"quoted\" 'single' $HOME \\n";
        let w = srv.set("secret", "production", json!({"STRIPE_KEY": "sk_test_51H8abcdEFGH1234", "DATABASE_URL": "postgres://u:p@h/db", "TRICKY": tricky})).await;
        assert_eq!(w["version"], 1, "{}", db.label);
        assert_eq!(w["added"], json!(["DATABASE_URL", "STRIPE_KEY", "TRICKY"]));

        let resp = srv.call(Method::GET, &format!("{S}/production"), None).await;
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let masked: Value = resp.json().await.unwrap();
        assert_eq!(masked["revealed"], false);
        let stripe = masked["fields"].as_array().unwrap().iter().find(|f| f["name"] == "STRIPE_KEY").unwrap();
        assert_eq!(stripe["value"], "sk_test_....1234");
        assert!(!masked.to_string().contains("51H8abcd"));

        let map = srv.reveal_map("secret", "production").await;
        assert_eq!(map["TRICKY"], tricky);
        assert_eq!(map["STRIPE_KEY"], "sk_test_51H8abcdEFGH1234");

        let (s, one) = srv.json(Method::GET, &format!("{S}/production?reveal=true&field=DATABASE_URL"), None).await;
        assert_eq!(s, 200);
        assert_eq!(one["fields"].as_array().unwrap().len(), 1);
        let (s, _) = srv.json(Method::GET, &format!("{S}/production?field=NOPE"), None).await;
        assert_eq!(s, 404);

        // Setting an unchanged value writes nothing; a change writes version 2.
        let w = srv.set("secret", "production", json!({"STRIPE_KEY": "sk_test_51H8abcdEFGH1234"})).await;
        assert_eq!((w["version"].as_u64(), w["created"].as_bool()), (Some(1), Some(false)));
        let w = srv.set("secret", "production", json!({"STRIPE_KEY": "sk_live_rotated0000000000009999"})).await;
        assert_eq!((w["version"].as_u64(), w["changed"].clone()), (Some(2), json!(["STRIPE_KEY"])));
        let (s, w) = srv.json(Method::PATCH, &format!("{S}/production"), Some(json!({"unset": ["TRICKY"]}))).await;
        assert_eq!((s, w["version"].as_u64(), w["removed"].clone()), (200, Some(3), json!(["TRICKY"])));
        let (s, _) = srv.json(Method::PATCH, &format!("{S}/production"), Some(json!({"unset": ["NEVER_SET"]}))).await;
        assert_eq!(s, 404);

        // Field ages: DATABASE_URL last changed in version 1 even though version 3 is current.
        let (_, masked) = srv.json(Method::GET, &format!("{S}/production"), None).await;
        let db_url = masked["fields"].as_array().unwrap().iter().find(|f| f["name"] == "DATABASE_URL").unwrap();
        assert_eq!(db_url["version"], 1);
        assert_eq!(masked["version"], 3);

        let (s, h) = srv.json(Method::GET, "/api/v1/mounts/secret/history/production", None).await;
        assert_eq!(s, 200);
        let versions = h["versions"].as_array().unwrap();
        assert_eq!(versions.iter().map(|v| v["version"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(versions.iter().all(|v| v["created_by"].as_str().unwrap().starts_with("acc_")));

        let (s, r) =
            srv.json(Method::POST, "/api/v1/mounts/secret/rollback/production", Some(json!({"version": 1}))).await;
        assert_eq!((s, r["version"].as_u64()), (200, Some(4)));
        let map = srv.reveal_map("secret", "production").await;
        assert_eq!(map["STRIPE_KEY"], "sk_test_51H8abcdEFGH1234");
        assert_eq!(map["TRICKY"], tricky);
        let (_, v1) = srv.json(Method::GET, &format!("{S}/production?version=1&reveal=true"), None).await;
        let v1_map: serde_json::Map<String, Value> = v1["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap().to_owned(), f["value"].clone()))
            .collect();
        assert_eq!(v1_map, map);

        // Environments: multi-segment paths, listing with counts, paging, deletion.
        srv.set("secret", "accounts/42", json!({"API_KEY": "k1"})).await;
        srv.set("secret", "staging", json!({"A": "1", "B": "2"})).await;
        let (s, l) = srv.json(Method::GET, &format!("{S}?limit=2"), None).await;
        assert_eq!(s, 200);
        assert_eq!(
            l["items"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect::<Vec<_>>(),
            vec!["accounts/42", "production"]
        );
        assert_eq!(l["next"], "production");
        let (_, l2) = srv.json(Method::GET, &format!("{S}?limit=2&after=production"), None).await;
        assert_eq!(l2["items"][0]["path"], "staging");
        assert_eq!(l2["items"][0]["fields"], 2);
        assert_eq!(l2["next"], Value::Null);
        // The count follows the current version: a field added, then a rollback to version 1.
        let staging_count = |l: &Value| l["items"][0]["fields"].clone();
        srv.set("secret", "staging", json!({"C": "3"})).await;
        let (_, l3) = srv.json(Method::GET, &format!("{S}?limit=2&after=production"), None).await;
        assert_eq!(staging_count(&l3), 3);
        let (s, _) =
            srv.json(Method::POST, "/api/v1/mounts/secret/rollback/staging", Some(json!({"version": 1}))).await;
        assert_eq!(s, 200);
        let (_, l4) = srv.json(Method::GET, &format!("{S}?limit=2&after=production"), None).await;
        assert_eq!(staging_count(&l4), 2);
        assert_eq!(l4["items"][0]["version"], 3);
        let (s, _) = srv.json(Method::DELETE, &format!("{S}/staging"), None).await;
        assert_eq!(s, 204);
        let (s, _) = srv.json(Method::GET, &format!("{S}/staging"), None).await;
        assert_eq!(s, 404);
        srv.stop().await;
    }
}

fn canary_forms(c: &str) -> [String; 3] {
    [c.to_owned(), base64::engine::general_purpose::STANDARD.encode(c), hex::encode(c)]
}

fn find_canaries(haystack: &[u8], canaries: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for c in canaries {
        for form in canary_forms(c) {
            if haystack.windows(form.len()).any(|w| w == form.as_bytes()) {
                hits.push(form);
            }
        }
    }
    hits
}

#[tokio::test]
async fn database_never_holds_plaintext() {
    for db in backends().await {
        let sink_dir = tempfile::tempdir().unwrap();
        let sink = sink_dir.path().join("audit.jsonl");
        let sink_path = sink.clone();
        let srv = TestServer::start_with(&db, KEY_A, move |o| o.audit.sinks.file = Some(sink_path)).await;
        let mut canaries: Vec<String> = (0..200).map(|_| format!("CANARY{}", random_name(26))).collect();
        // Twenty writers at a time (the group-committing writer batches them).
        let srv = std::sync::Arc::new(srv);
        for chunk in canaries.chunks(20).enumerate().map(|(n, c)| (n * 20, c.to_vec())) {
            let mut tasks = Vec::new();
            for (j, c) in chunk.1.into_iter().enumerate() {
                let (srv, i) = (srv.clone(), chunk.0 + j);
                tasks.push(tokio::spawn(async move {
                    srv.set("secret", &format!("env{}", i % 20), json!({ format!("K{i}"): c })).await
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
        let srv = std::sync::Arc::try_unwrap(srv).ok().expect("sole owner");
        assert_eq!(srv.reveal_map("secret", "env3").await["K3"], canaries[3]);
        // Canary tokens presented and refused: the audit log keeps only keyed HMACs of them.
        for _ in 0..5 {
            let token = format!("kw_CANARYTOKEN{}", random_name(32));
            let (s, _) = srv.json_as(&token, Method::GET, "/api/v1/mounts", None).await;
            assert_eq!(s, 401);
            canaries.push(token[3..].to_owned());
        }
        let (_, audit) = srv.json(Method::GET, "/api/v1/audit?operation=auth.failed", None).await;
        assert_eq!(audit["entries"].as_array().unwrap().len(), 5);
        // The extra file sink holds no plaintext either.
        let mut sink_text = String::new();
        for _ in 0..100 {
            sink_text = std::fs::read_to_string(&sink).unwrap_or_default();
            if sink_text.contains("auth.failed") && sink_text.lines().count() >= 205 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(sink_text.lines().count() >= 205, "the sink got every entry");
        assert!(find_canaries(sink_text.as_bytes(), &canaries).is_empty(), "plaintext in the audit file sink");
        let dump: Vec<u8> = match &db.url {
            keyward_store::DatabaseUrl::Sqlite(path) => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let p = format!("{}{suffix}", path.display());
                    if let Ok(bytes) = std::fs::read(&p) {
                        all.extend(bytes);
                    }
                }
                assert!(all.len() > 10_000, "database files were read");
                all
            }
            keyward_store::DatabaseUrl::Postgres(url) => {
                let out =
                    std::process::Command::new("pg_dump").arg("--no-owner").arg(url).output().expect("pg_dump runs");
                assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
                assert!(out.stdout.len() > 10_000);
                out.stdout
            }
        };
        let audit_rows = sqlx::query("SELECT entry FROM audit_log").fetch_all(&db.pool().await).await.unwrap();
        assert!(audit_rows.len() >= 205, "the audit table was written");
        let hits = find_canaries(&dump, &canaries);
        assert!(hits.is_empty(), "{}: plaintext found in the database: {} hits", db.label, hits.len());
        // The check itself works: the canaries are found in what the API returns.
        let body = srv.reveal("secret", "env0").await.1.to_string();
        assert!(!find_canaries(body.as_bytes(), &canaries).is_empty());
        srv.stop().await;
    }
}

async fn blob_of(pool: &sqlx::AnyPool, path: &str, version: i64) -> (String, Vec<u8>) {
    let row = sqlx::query(
        "SELECT v.secret_id, v.blob FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.path = $1 AND v.version = $2",
    )
    .bind(path.to_owned())
    .bind(version)
    .fetch_one(pool)
    .await
    .expect("blob row");
    (row.get::<String, _>(0), row.get::<Vec<u8>, _>(1))
}

async fn put_blob(pool: &sqlx::AnyPool, secret_id: &str, version: i64, blob: Vec<u8>) {
    sqlx::query("UPDATE secret_versions SET blob = $1 WHERE secret_id = $2 AND version = $3")
        .bind(blob)
        .bind(secret_id.to_owned())
        .bind(version)
        .execute(pool)
        .await
        .expect("tamper");
}

async fn assert_integrity_error(srv: &TestServer, url: &str, plaintext: &str) {
    let resp = srv.call(Method::GET, url, None).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(!(200..300).contains(&status), "tampered read succeeded: {text}");
    let body: Value = serde_json::from_str(&text).expect("JSON error body");
    assert_eq!(body["error"]["code"], "integrity_error", "{text}");
    assert!(!text.contains(plaintext));
}

#[tokio::test]
async fn ciphertext_is_bound_to_its_row() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "alpha", json!({"K": "alpha-secret-value-1"})).await;
        srv.set("secret", "alpha", json!({"K": "alpha-secret-value-2"})).await;
        srv.set("secret", "beta", json!({"K": "beta-secret-value-1"})).await;
        let pool = db.pool().await;

        // Another path's blob copied over this one's.
        let (alpha_id, alpha_v1) = blob_of(&pool, "alpha", 1).await;
        let (beta_id, beta_v1) = blob_of(&pool, "beta", 1).await;
        put_blob(&pool, &beta_id, 1, alpha_v1.clone()).await;
        assert_integrity_error(&srv, &format!("{S}/beta?reveal=true"), "alpha-secret-value-1").await;
        assert_integrity_error(&srv, &format!("{S}/beta"), "alpha-secret-value-1").await;
        put_blob(&pool, &beta_id, 1, beta_v1).await;
        assert_eq!(srv.reveal_map("secret", "beta").await["K"], "beta-secret-value-1");

        // The same path's older version copied over the newer one.
        let (_, alpha_v2) = blob_of(&pool, "alpha", 2).await;
        put_blob(&pool, &alpha_id, 2, alpha_v1.clone()).await;
        assert_integrity_error(&srv, &format!("{S}/alpha?reveal=true"), "alpha-secret-value-1").await;

        // Every single flipped byte is detected.
        for i in 0..alpha_v2.len() {
            let mut bad = alpha_v2.clone();
            bad[i] ^= 0x01;
            put_blob(&pool, &alpha_id, 2, bad).await;
            assert_integrity_error(&srv, &format!("{S}/alpha?reveal=true"), "alpha-secret-value-2").await;
        }
        // Truncated blobs are errors, not panics.
        put_blob(&pool, &alpha_id, 2, alpha_v2[..5].to_vec()).await;
        assert_integrity_error(&srv, &format!("{S}/alpha?reveal=true"), "alpha-secret-value-2").await;
        put_blob(&pool, &alpha_id, 2, alpha_v2).await;
        assert_eq!(srv.reveal_map("secret", "alpha").await["K"], "alpha-secret-value-2");
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn wrong_master_key_is_refused_and_right_key_reads_back() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "prod", json!({"K": "persisted-value"})).await;
        let token = srv.token.clone();
        srv.stop().await;

        let err = try_start(&db, KEY_B, false).await.expect_err("wrong key must be refused");
        let msg = err.to_string();
        assert!(msg.contains("does not match the key-check value"), "{msg}");
        assert!(!msg.contains("AgICAgIC"), "the error must not echo the key");

        let other_tag = "v2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
        let err = try_start(&db, other_tag, false).await.expect_err("unknown tag alone must be refused");
        assert!(err.to_string().contains("\"v1\" still wraps"), "{err}");

        let server = try_start(&db, KEY_A, false).await.expect("right key starts");
        let srv = TestServer::wrap(server, token);
        assert_eq!(srv.reveal_map("secret", "prod").await["K"], "persisted-value");
        srv.stop().await;
    }
}

#[tokio::test]
async fn tokens_are_stored_as_keyed_digests_and_bad_tokens_get_401() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let pool = db.pool().await;
        let rows = sqlx::query("SELECT digest FROM tokens").fetch_all(&pool).await.unwrap();
        assert_eq!(rows.len(), 1);
        let digest: String = rows[0].get(0);
        assert_eq!(digest.len(), 64);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
        let body_of_tokens =
            sqlx::query("SELECT accessor, digest, policies, display_name FROM tokens").fetch_all(&pool).await.unwrap();
        for r in body_of_tokens {
            for i in 0..4 {
                assert!(!r.get::<String, _>(i).contains(&srv.token[3..]));
            }
        }

        let url = format!("{}/api/v1/mounts", srv.base);
        let unknown = format!("kw_{}", random_name(43));
        for auth in [
            None,
            Some("Bearer".to_owned()),
            Some("Bearer not-a-token".to_owned()),
            Some(format!("Bearer {unknown}")),
            Some(format!("Basic {}", srv.token)),
        ] {
            let mut req = srv.http.get(&url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{auth:?}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthenticated");
        }
        let (s, _) = srv.json(Method::GET, "/api/v1/mounts", None).await;
        assert_eq!(s, 200);
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "prod", json!({"K": "v"})).await;
        let cases: Vec<(Method, String, Option<Value>, u16)> = vec![
            (Method::PATCH, format!("{S}/a%20b"), Some(json!({"set": {"K": "x"}})), 400),
            (Method::PATCH, format!("{S}/%C3%BC"), Some(json!({"set": {"K": "x"}})), 400),
            (Method::PATCH, format!("{S}/a//b"), Some(json!({"set": {"K": "x"}})), 400),
            (Method::PATCH, format!("{S}/prod"), Some(json!({"set": {"": "x"}})), 400),
            (Method::PATCH, format!("{S}/prod"), Some(json!({"set": {"n".repeat(257): "x"}})), 400),
            (Method::PATCH, format!("{S}/prod"), Some(json!({"set": {}})), 400),
            (Method::PATCH, format!("{S}/prod"), Some(json!({"set": "not a map"})), 400),
            (Method::PATCH, "/api/v1/mounts/nope/secrets/prod".into(), Some(json!({"set": {"K": "x"}})), 404),
            (Method::GET, "/api/v1/mounts/nope/secrets/prod".into(), None, 404),
            (Method::GET, format!("{S}/prod?version=abc"), None, 400),
            (Method::GET, "/api/v1/no/such/route".into(), None, 404),
            (Method::PUT, "/api/v1/mounts".into(), None, 405),
            (Method::POST, "/api/v1/mounts".into(), Some(json!({"path": "../x"})), 400),
            (Method::POST, "/api/v1/mounts".into(), Some(json!({"path": "ok", "kind": "weird"})), 400),
            (Method::POST, "/api/v1/mounts".into(), Some(json!({"path": "secret"})), 409),
        ];
        for (method, url, body, want) in cases {
            let (s, b) = srv.json(method.clone(), &url, body).await;
            assert_eq!(s, want, "{} {method} {url}: {b}", db.label);
            assert!(b["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{url}: {b}");
        }
        // Invalid JSON, wrong content type, oversized body.
        let url = format!("{}{S}/prod", srv.base);
        let resp = srv
            .http
            .patch(&url)
            .bearer_auth(&srv.token)
            .header("content-type", "application/json")
            .body("{\"set\": {\"K\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "invalid_input");
        let resp = srv.http.patch(&url).bearer_auth(&srv.token).body("{}").send().await.unwrap();
        assert_eq!(resp.status(), 415);
        let big = json!({"set": {"BIG": "x".repeat(1 << 20)}});
        let resp = srv.http.patch(&url).bearer_auth(&srv.token).json(&big).send().await.unwrap();
        assert_eq!(resp.status(), 413);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "body_too_large");
        // A raw `..` segment that no HTTP client would send.
        let body = r#"{"set":{"K":"val"}}"#;
        let raw = raw_request(
            srv.addr,
            &format!(
                "PATCH {S}/a/../b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                srv.token,
                body.len()
            ),
        )
        .await;
        assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");

        // Nothing changed.
        let (_, h) = srv.json(Method::GET, "/api/v1/mounts/secret/history/prod", None).await;
        assert_eq!(h["versions"].as_array().unwrap().len(), 1);
        let (_, l) = srv.json(Method::GET, S, None).await;
        assert_eq!(l["items"].as_array().unwrap().len(), 1);
        let (_, m) = srv.json(Method::GET, "/api/v1/mounts", None).await;
        assert_eq!(m["mounts"].as_array().unwrap().len(), 2, "only the dev mounts secret and transit");
        srv.stop().await;
    }
}

async fn raw_request(addr: std::net::SocketAddr, req: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("server answered")
        .unwrap();
    out
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    for db in backends().await {
        let srv = std::sync::Arc::new(TestServer::start(&db, KEY_A).await);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let srv = srv.clone();
            tasks.push(tokio::spawn(async move {
                srv.set("secret", "shared", json!({ format!("F{i:02}"): format!("value-{i}") })).await["version"]
                    .as_u64()
                    .unwrap()
            }));
        }
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap());
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=16).collect::<Vec<_>>(), "{}", db.label);
        let map = srv.reveal_map("secret", "shared").await;
        assert_eq!(map.len(), 16);
        for i in 0..16 {
            assert_eq!(map[&format!("F{i:02}")], format!("value-{i}"));
        }
        let (_, h) = srv.json(Method::GET, "/api/v1/mounts/secret/history/shared", None).await;
        // max_versions (10) keeps the newest ten.
        assert_eq!(
            h["versions"].as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect::<Vec<_>>(),
            (7..=16).collect::<Vec<_>>()
        );
        std::sync::Arc::try_unwrap(srv).ok().expect("sole owner").stop().await;
    }
}

#[tokio::test]
async fn deleting_a_mount_shreds_its_data_keys() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let (s, m) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "careflex"}))).await;
        assert_eq!(s, 201, "{m}");
        let mount_id = m["id"].as_str().unwrap().to_owned();
        srv.set("careflex", "production", json!({"K": "tenant-secret"})).await;
        let pool = db.pool().await;
        let count = |sql: &'static str| {
            let pool = pool.clone();
            let id = mount_id.clone();
            async move { sqlx::query(sql).bind(id).fetch_one(&pool).await.unwrap().get::<i64, _>(0) }
        };
        assert_eq!(count("SELECT COUNT(*) FROM wrapped_keys WHERE owner = $1").await, 1);
        let (s, d) = srv.json(Method::DELETE, "/api/v1/mounts/careflex", None).await;
        assert_eq!((s, d["keys_shredded"].as_u64()), (200, Some(1)));
        assert_eq!(count("SELECT COUNT(*) FROM wrapped_keys WHERE owner = $1").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM secrets WHERE mount_id = $1").await, 0);
        let (s, _) = srv.json(Method::GET, "/api/v1/mounts/careflex/secrets/production", None).await;
        assert_eq!(s, 404);
        // A new mount of the same name is a new tenant with a new key and nothing of the old.
        let (_, m2) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "careflex"}))).await;
        assert_ne!(m2["id"], m["id"]);
        let (s, _) = srv.json(Method::GET, "/api/v1/mounts/careflex/secrets/production", None).await;
        assert_eq!(s, 404);
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn initialization_happens_once_across_servers() {
    for db in backends().await {
        let a = try_start(&db, KEY_A, false).await.expect("a starts");
        if second_server_refused_on_sqlite(&db).await {
            continue;
        }
        let b = try_start(&db, KEY_A, false).await.expect("b starts");
        let http = reqwest::Client::new();
        let health = http.get(format!("http://{}/v1/sys/health", a.addr)).send().await.unwrap();
        assert_eq!(health.status(), 501);
        assert_eq!(health.json::<Value>().await.unwrap()["initialized"], false);
        let resp = http
            .get(format!("http://{}/api/v1/mounts", a.addr))
            .bearer_auth(format!("kw_{}", random_name(43)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "not_initialized");

        let (ra, rb) = tokio::join!(
            http.put(format!("http://{}/v1/sys/init", a.addr)).json(&json!({})).send(),
            http.put(format!("http://{}/v1/sys/init", b.addr)).json(&json!({})).send(),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let mut statuses = vec![ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 400], "{}", db.label);
        let winner = if ra.status() == 200 { ra } else { rb };
        let token = winner.json::<Value>().await.unwrap()["root_token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("kw_") && token.len() == 46);
        // The token works on both servers (state is in the database).
        for addr in [a.addr, b.addr] {
            let resp = http.get(format!("http://{addr}/api/v1/mounts")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        let health = http.get(format!("http://{}/v1/sys/health", b.addr)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let h: Value = health.json().await.unwrap();
        assert_eq!((h["initialized"].as_bool(), h["sealed"].as_bool()), (Some(true), Some(false)));
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn openapi_document_describes_the_native_api() {
    let db: TestDb = backends().await.remove(0);
    let srv = TestServer::start(&db, KEY_A).await;
    let resp = reqwest::get(format!("{}/api/v1/openapi.json", srv.base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in ["/api/v1/mounts", "/api/v1/mounts/{mount}/secrets/{path}", "/api/v1/mounts/{mount}/history/{path}"] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
    assert!(doc["components"]["schemas"].get("SecretView").is_some());
    srv.stop().await;
}
