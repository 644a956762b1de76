//! The audit log: what it records, tamper evidence, fail-closed behaviour and sinks, on SQLite
//! and PostgreSQL.
use crate::common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{backends, break_audit_table, mend_audit_table, random_name, TestServer, KEY_A};
use keyward_server::Rate;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

async fn entries(srv: &TestServer) -> Vec<Value> {
    let (s, b) = srv.json(Method::GET, "/api/v1/audit?limit=1000", None).await;
    assert_eq!(s, 200, "{b}");
    b["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_request_is_recorded_without_secrets() {
    for db in backends().await {
        let srv = TestServer::start_with(&db, KEY_A, |o| {
            o.guard.lockout_failures = 2;
            o.guard.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            o.guard.token_rate = Some(Rate { count: NonZeroU32::new(50).unwrap(), per: Duration::from_secs(60) });
        })
        .await;
        srv.set("secret", "prod", json!({"STRIPE_KEY": "sk_live_canaryvalue0000001234"})).await;
        srv.reveal("secret", "prod").await;
        srv.json(Method::GET, "/api/v1/mounts/secret/secrets/prod", None).await;
        srv.policy("reader", "[[rules]]\npath = \"secret/prod\"\ncapabilities = [\"list\"]\n").await;
        let reader = srv.token_with(&["reader"]).await;
        let (s, _) = srv.json_as(&reader, Method::GET, "/api/v1/mounts/secret/secrets/prod?reveal=true", None).await;
        assert_eq!(s, 403);
        let unknown = format!("kw_{}", random_name(43));
        for _ in 0..2 {
            srv.json_from(&unknown, Some("198.51.100.9"), Method::GET, "/api/v1/mounts", None).await;
        }
        srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "gone"}))).await;
        srv.json(Method::DELETE, "/api/v1/mounts/gone", None).await;
        reqwest::get(format!("{}/v1/sys/health", srv.base)).await.unwrap();
        reqwest::get(format!("{}/v1/sys/seal-status", srv.base)).await.unwrap();
        // A token put in a URL path (Vault's lookup/<token> form) is not recorded.
        let (s, _) = srv.json(Method::GET, &format!("/v1/auth/token/lookup/{}", srv.token), None).await;
        assert_eq!(s, 404, "lookup takes the token in the body, never in the path");

        let all = entries(&srv).await;
        let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{}: gap-free", db.label);
        let find = |op: &str| {
            all.iter().find(|e| e["operation"] == op).unwrap_or_else(|| panic!("no {op} entry in {all:?}")).clone()
        };
        let w = find("secrets.set");
        assert_eq!(
            (w["mount"].as_str(), w["path"].as_str(), w["fields"].clone()),
            (Some("secret"), Some("prod"), json!(["STRIPE_KEY"]))
        );
        assert!(w["accessor"].as_str().unwrap().starts_with("acc_"));
        assert!(!w["request_id"].as_str().unwrap().is_empty());
        assert_eq!(find("secrets.reveal")["fields"], json!(["STRIPE_KEY"]));
        find("secrets.read");
        find("policies.write");
        find("tokens.create");
        let denied = all.iter().find(|e| e["status"] == 403).unwrap();
        assert_eq!(denied["error"], "forbidden");
        let failed: Vec<&Value> = all.iter().filter(|e| e["operation"] == "auth.failed").collect();
        assert_eq!(failed.len(), 2);
        assert_eq!(failed[0]["remote_addr"], "198.51.100.9");
        let h = failed[0]["details"]["presented_token_hmac"].as_str().unwrap();
        assert!(h.starts_with("hmac-sha256:"));
        assert_eq!(failed[1]["details"]["presented_token_hmac"], h, "the same token correlates");
        assert!(failed[1]["details"]["lockout_secs"].as_u64().is_some(), "the lockout is recorded");
        assert_eq!(find("mounts.delete")["details"]["keys_shredded"], 1);
        assert!(!all
            .iter()
            .any(|e| e["path"] == "/v1/sys/health" || e["operation"].as_str().unwrap().contains("sys/health")));
        let text = serde_json::to_string(&all).unwrap();
        for secret in ["sk_live_canaryvalue0000001234", &unknown[3..], &srv.token[3..], &reader[3..]] {
            assert!(!text.contains(secret), "{secret} in the audit log");
        }
        // Filters.
        let (_, page) = srv.json(Method::GET, "/api/v1/audit?failed=true", None).await;
        assert!(page["entries"].as_array().unwrap().iter().all(|e| e["status"].as_u64().unwrap() >= 400));
        let (_, page) = srv.json(Method::GET, "/api/v1/audit?path=secret/*&operation=secrets.reveal", None).await;
        let statuses: Vec<u64> =
            page["entries"].as_array().unwrap().iter().map(|e| e["status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, vec![200, 403], "the reveal and the refused reveal");
        let (_, page) = srv.json(Method::GET, "/api/v1/audit?last=2", None).await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 2);
        let (_, page) = srv.json(Method::GET, "/api/v1/audit?since=1h&accessor=nobody", None).await;
        assert!(page["entries"].as_array().unwrap().is_empty());
        let (s, _) = srv.json_as(&reader, Method::GET, "/api/v1/audit", None).await;
        assert_eq!(s, 403, "reading the log needs sudo on sys/audit");
        srv.stop().await;
    }
}

type Snapshot = (Vec<(i64, String, Vec<u8>)>, (i64, Vec<u8>));

async fn snapshot(pool: &sqlx::AnyPool) -> Snapshot {
    let rows = sqlx::query_as("SELECT seq, entry, hash FROM audit_log ORDER BY seq").fetch_all(pool).await.unwrap();
    let head = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(pool).await.unwrap();
    (rows, head)
}

async fn restore(pool: &sqlx::AnyPool, snap: &Snapshot) {
    sqlx::query("DELETE FROM audit_log").execute(pool).await.unwrap();
    for (seq, entry, hash) in &snap.0 {
        sqlx::query("INSERT INTO audit_log (seq, entry, hash) VALUES ($1, $2, $3)")
            .bind(*seq)
            .bind(entry.clone())
            .bind(hash.clone())
            .execute(pool)
            .await
            .unwrap();
    }
    set_head(pool, snap.1 .0, snap.1 .1.clone()).await;
}

async fn set_head(pool: &sqlx::AnyPool, seq: i64, hash: Vec<u8>) {
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash)
        .execute(pool)
        .await
        .unwrap();
}

async fn verify(srv: &TestServer) -> Value {
    let (s, b) = srv.json(Method::GET, "/api/v1/audit/verify", None).await;
    assert_eq!(s, 200, "{b}");
    b
}

fn assert_broken(report: &Value, seq: u64, kind: &str, label: &str) {
    assert_eq!(report["ok"], false, "{label} {kind}: {report}");
    assert_eq!(report["broken_seq"].as_u64(), Some(seq), "{label} {kind}: {report}");
    assert!(report["reason"].as_str().unwrap().starts_with(kind), "{label} {kind}: {report}");
}

#[tokio::test]
async fn tampering_is_detected_and_located() {
    for db in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let anchor_file = dir.path().join("anchors.jsonl");
        let af = anchor_file.clone();
        let srv = TestServer::start_with(&db, KEY_A, move |o| o.audit.anchor_file = Some(af)).await;
        for i in 0..10 {
            srv.set("secret", &format!("e{i}"), json!({"K": format!("v{i}")})).await;
        }
        let (s, a) = srv.json(Method::POST, "/api/v1/audit/anchor", None).await;
        assert_eq!(s, 200);
        let anchored = a["seq"].as_i64().unwrap();
        assert!(std::fs::read_to_string(&anchor_file).unwrap().contains(&format!("\"seq\":{anchored}")));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&anchor_file).unwrap().permissions().mode() & 0o777,
            0o600,
            "the anchor file is private"
        );
        assert_eq!(verify(&srv).await["ok"], true, "{}", db.label);
        let pool = db.pool().await;
        let snap = snapshot(&pool).await;
        let label = db.label;

        // Modified: one field of one row (the write of e2; the server's own start wrote the first
        // entries: initialisation and the dev mounts).
        let e2 = snap.0.iter().find(|r| r.1.contains("\"path\":\"e2\"")).unwrap().0;
        sqlx::query("UPDATE audit_log SET entry = replace(entry, '\"path\":\"e2\"', '\"path\":\"e9\"') WHERE seq = $1")
            .bind(e2)
            .execute(&pool)
            .await
            .unwrap();
        assert_broken(&verify(&srv).await, e2 as u64, "modified", label);
        restore(&pool, &snap).await;

        // Deleted: a row in the middle.
        sqlx::query("DELETE FROM audit_log WHERE seq = 4").execute(&pool).await.unwrap();
        assert_broken(&verify(&srv).await, 4, "deleted", label);
        restore(&pool, &snap).await;

        // Reordered: two rows swapped.
        let (r5, r6) = (snap.0[4].clone(), snap.0[5].clone());
        for (seq, (_, entry, hash)) in [(5i64, r6), (6i64, r5)] {
            sqlx::query("UPDATE audit_log SET entry = $1, hash = $2 WHERE seq = $3")
                .bind(entry)
                .bind(hash)
                .bind(seq)
                .execute(&pool)
                .await
                .unwrap();
        }
        assert_broken(&verify(&srv).await, 5, "reordered", label);
        restore(&pool, &snap).await;

        // Inserted: a forged row appended (and the head moved to it), without the chain key.
        let last = snap.1 .0;
        let mut forged: Value = serde_json::from_str(&snap.0.last().unwrap().1).unwrap();
        forged["seq"] = json!(last + 1);
        forged["operation"] = json!("secrets.read");
        let forged = serde_jcs_free(&forged);
        sqlx::query("INSERT INTO audit_log (seq, entry, hash) VALUES ($1, $2, $3)")
            .bind(last + 1)
            .bind(forged)
            .bind(vec![7u8; 32])
            .execute(&pool)
            .await
            .unwrap();
        set_head(&pool, last + 1, vec![7u8; 32]).await;
        assert_broken(&verify(&srv).await, (last + 1) as u64, "inserted", label);
        restore(&pool, &snap).await;

        // Truncated: the tail cut off and the head rewound to match; the anchor still knows.
        sqlx::query("DELETE FROM audit_log WHERE seq > 2").execute(&pool).await.unwrap();
        set_head(&pool, 2, snap.0[1].2.clone()).await;
        let report = verify(&srv).await;
        assert_broken(&report, 3, "truncated", label);
        assert!(report["reason"].as_str().unwrap().contains(&format!("entry {anchored}")), "{report}");
        restore(&pool, &snap).await;

        assert_eq!(verify(&srv).await["ok"], true, "{label}: intact again");
        // That verification's own entry was appended after the head had been rewound behind the
        // server's back: it must continue the stored chain, not the writer's stale copy of it.
        assert_eq!(srv.reveal("secret", "e1").await.0, 200);
        assert_eq!(verify(&srv).await["ok"], true, "{label}: the chain forked after a rewound head");
        pool.close().await;
        srv.stop().await;
    }
}

/// Canonical JSON of a flat-enough value: serde_json sorts object keys (BTreeMap) and prints
/// compactly, which matches RFC 8785 for the ASCII keys and strings used here.
fn serde_jcs_free(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

#[tokio::test]
async fn nothing_is_served_or_written_unaudited() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "prod", json!({"K": "fail-closed-secret-1"})).await;
        let pool = db.pool().await;
        break_audit_table(&db, &pool).await;

        let resp = srv.call(Method::GET, "/api/v1/mounts/secret/secrets/prod?reveal=true", None).await;
        assert_eq!(resp.status(), 503, "{}", db.label);
        assert!(resp.headers().contains_key("retry-after"));
        let text = resp.text().await.unwrap();
        assert!(!text.contains("fail-closed-secret-1"), "a secret was served unaudited: {text}");
        assert!(text.contains("audit_unavailable"), "{text}");
        let (s, b) =
            srv.json(Method::PATCH, "/api/v1/mounts/secret/secrets/prod", Some(json!({"set": {"K": "changed"}}))).await;
        assert_eq!(s, 503, "{b}");
        let health: Value = reqwest::get(format!("{}/v1/sys/health", srv.base)).await.unwrap().json().await.unwrap();
        assert_eq!(health["audit"]["primary"], "failing");
        assert!(health["audit"]["counters"]["audit_primary_failures"].as_u64().unwrap() >= 1);

        mend_audit_table(&db, &pool).await;
        let map = srv.reveal_map("secret", "prod").await;
        assert_eq!(map["K"], "fail-closed-secret-1", "the unaudited write was not applied");
        let (_, h) = srv.json(Method::GET, "/api/v1/mounts/secret/history/prod", None).await;
        assert_eq!(h["versions"].as_array().unwrap().len(), 1);
        let health: Value = reqwest::get(format!("{}/v1/sys/health", srv.base)).await.unwrap().json().await.unwrap();
        assert_eq!(health["audit"]["primary"], "ok");
        assert_eq!(verify(&srv).await["ok"], true);
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM secret_versions").fetch_one(&pool).await.unwrap().get(0);
        assert_eq!(count, 1);
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn extra_sinks_copy_entries_and_their_failures_are_counted() {
    let db = backends().await.remove(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    // An audit file left readable by others is made private when keyward opens it.
    std::fs::write(&file, "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = file.clone();
    let srv = TestServer::start_with(&db, KEY_A, move |o| o.audit.sinks.file = Some(f)).await;
    srv.set("secret", "prod", json!({"K": "sink-secret-value"})).await;
    srv.reveal("secret", "prod").await;
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&file).unwrap_or_default();
        // Shipped to the sink after its commit: wait for the last request's entry.
        if text.contains("\"secrets.reveal\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "the audit file is private");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2);
    assert!(lines.iter().any(|e| e["operation"] == "secrets.reveal"));
    assert!(!text.contains("sink-secret-value"));

    // A sink that cannot write (a full disk) is counted and reported; requests still succeed.
    let db = backends().await.remove(0);
    let srv = TestServer::start_with(&db, KEY_A, |o| o.audit.sinks.file = Some("/dev/full".into())).await;
    srv.set("secret", "prod", json!({"K": "v"})).await;
    assert_eq!(srv.reveal_map("secret", "prod").await["K"], "v");
    let mut failures = 0;
    for _ in 0..50 {
        let health: Value = reqwest::get(format!("{}/v1/sys/health", srv.base)).await.unwrap().json().await.unwrap();
        failures = health["audit"]["counters"]["audit_sink_failures"].as_u64().unwrap();
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failures > 0, "the failing sink was not counted");
    srv.stop().await;
}

/// Everything that decides who may do what, where secrets live and under which keys, as text
/// (volatile `tokens.last_used` aside): two equal fingerprints mean no change was committed.
async fn state(pool: &sqlx::AnyPool) -> Vec<String> {
    let mut out = Vec::new();
    type TokenRow = (String, String, String, Option<String>, Option<i64>, i64, Option<String>);
    let tokens: Vec<TokenRow> = sqlx::query_as(
        "SELECT accessor, digest, policies, parent_accessor, expires_at, revoked, rate_limit FROM tokens ORDER BY accessor",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(tokens.iter().map(|t| format!("token {t:?}")));
    let named: Vec<(String, String)> = sqlx::query_as(
        "SELECT 'policy ' || name, rules FROM policies UNION ALL SELECT 'mount ' || path, kind || ' ' || config FROM mounts \
         UNION ALL SELECT 'route ' || name, route FROM proxy_routes UNION ALL SELECT 'transit ' || name, config FROM transit_keys \
         UNION ALL SELECT 'job ' || id, status FROM key_jobs UNION ALL SELECT 'system ' || key, value FROM system",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(named.iter().map(|n| format!("{n:?}")));
    let keys: Vec<(String, String, i64, String, Vec<u8>)> =
        sqlx::query_as("SELECT domain, owner, version, kek_tag, wrapped FROM wrapped_keys")
            .fetch_all(pool)
            .await
            .unwrap();
    out.extend(keys.iter().map(|k| format!("key {} {} {} {} {}", k.0, k.1, k.2, k.3, hex::encode(&k.4))));
    out.sort();
    out
}

/// Every kind of change commits with its audit entry or not at all: with the audit table broken,
/// each is refused with 503 and leaves the state exactly as it was.
#[tokio::test]
async fn no_change_commits_without_its_audit_entry() {
    for db in backends().await {
        let srv = TestServer::start_with(&db, KEY_A, |o| o.proxy.allow_insecure = true).await;
        srv.set("secret", "prod", json!({"K": "v1"})).await;
        srv.set("secret", "prod", json!({"K": "v2"})).await;
        let (s, _) = srv.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
        assert_eq!(s, 200);
        srv.policy("p1", "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"read\"]\n").await;
        let (_, child) = srv.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["p1"], "ttl": "1h"}))).await;
        let child_token = child["token"].as_str().unwrap().to_owned();
        let child_accessor = child["info"]["accessor"].as_str().unwrap().to_owned();
        let (s, _) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "doomed"}))).await;
        assert_eq!(s, 201);
        srv.set("doomed", "x", json!({"K": "still-here"})).await;
        let route = json!({"upstream": "http://127.0.0.1:9", "secret": "secret/prod", "inject": ["bearer:K"], "allow_insecure": true});
        assert_eq!(srv.json(Method::PUT, "/api/v1/proxy-routes/r1", Some(route.clone())).await.0, 200);
        assert_eq!(srv.vault(&srv.token, "POST", "transit/keys/k1", None).await.0, 200);
        let pool = db.pool().await;
        let before = state(&pool).await;
        break_audit_table(&db, &pool).await;

        let root = srv.token.clone();
        let repointed = json!({"upstream": "http://127.0.0.1:10", "secret": "secret/prod", "inject": ["bearer:K"], "allow_insecure": true});
        let native: Vec<(&str, Method, String, Option<Value>)> = vec![
            ("token create", Method::POST, "/api/v1/tokens".into(), Some(json!({"policies": ["p1"]}))),
            ("token revoke", Method::DELETE, format!("/api/v1/tokens/accessors/{child_accessor}"), None),
            (
                "policy write",
                Method::PUT,
                "/api/v1/policies/p2".into(),
                Some(json!({"document": "[[rules]]\npath = \"x/*\"\ncapabilities = [\"list\"]\n"})),
            ),
            (
                "policy change",
                Method::PUT,
                "/api/v1/policies/p1".into(),
                Some(json!({"document": "[[rules]]\npath = \"*\"\ncapabilities = [\"sudo\"]\n"})),
            ),
            ("policy delete", Method::DELETE, "/api/v1/policies/p1".into(), None),
            ("mount create", Method::POST, "/api/v1/mounts".into(), Some(json!({"path": "newmount"}))),
            ("mount delete (crypto-shred)", Method::DELETE, "/api/v1/mounts/doomed".into(), None),
            ("data-key rotation", Method::POST, "/api/v1/mounts/secret/keys/rotate".into(), None),
            ("data-key prune", Method::POST, "/api/v1/mounts/secret/keys/prune".into(), None),
            ("rewrap", Method::POST, "/api/v1/keys/rewrap".into(), None),
            ("migration start", Method::POST, "/api/v1/keys/migrate".into(), Some(json!({"mount": "secret"}))),
            ("proxy route create", Method::PUT, "/api/v1/proxy-routes/r2".into(), Some(route.clone())),
            ("proxy route repoint", Method::PUT, "/api/v1/proxy-routes/r1".into(), Some(repointed)),
            ("proxy route delete", Method::DELETE, "/api/v1/proxy-routes/r1".into(), None),
            (
                "secret write",
                Method::PATCH,
                "/api/v1/mounts/secret/secrets/prod".into(),
                Some(json!({"set": {"K": "v3"}})),
            ),
        ];
        for (what, method, path, body) in native {
            let (s, b) = srv.json(method, &path, body).await;
            assert_eq!(s, 503, "{} {what}: {b}", db.label);
            assert_eq!(state(&pool).await, before, "{} {what} was committed without its entry", db.label);
        }
        let vault: Vec<(&str, &str, &str, Option<Value>, &str)> = vec![
            ("transit key create", "POST", "transit/keys/k2", None, &root),
            ("transit key rotate", "POST", "transit/keys/k1/rotate", None, &root),
            ("transit key config", "POST", "transit/keys/k1/config", Some(json!({"deletion_allowed": true})), &root),
            ("kv config", "POST", "secret/config", Some(json!({"max_versions": 3})), &root),
            ("vault mount create", "POST", "sys/mounts/other", Some(json!({"type": "kv"})), &root),
            ("vault mount delete", "DELETE", "sys/mounts/doomed", None, &root),
            (
                "vault policy write",
                "PUT",
                "sys/policies/acl/p3",
                Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
                &root,
            ),
            ("vault token create", "POST", "auth/token/create", Some(json!({"policies": ["p1"]})), &root),
            ("token renew", "POST", "auth/token/renew-self", None, &child_token),
            ("token revoke-self", "POST", "auth/token/revoke-self", None, &child_token),
        ];
        for (what, method, path, body, token) in vault {
            let (s, b) = srv.vault(token, method, path, body).await;
            assert_eq!(s, 503, "{} {what}: {b}", db.label);
            assert_eq!(state(&pool).await, before, "{} {what} was committed without its entry", db.label);
        }

        mend_audit_table(&db, &pool).await;
        assert_eq!(srv.reveal_map("doomed", "x").await["K"], "still-here", "{}: the mount was not shredded", db.label);
        assert_eq!(srv.json_as(&child_token, Method::GET, "/api/v1/tokens/self", None).await.0, 200);
        assert_eq!(verify(&srv).await["ok"], true);
        // With the log writable again, each kind commits — with its entry.
        let (s, _) = srv.json(Method::DELETE, "/api/v1/mounts/doomed", None).await;
        assert_eq!(s, 200);
        let (_, a) = srv.json(Method::GET, "/api/v1/audit?operation=mounts.delete", None).await;
        assert_eq!(a["entries"][0]["details"]["keys_shredded"], 1, "{a}");
        pool.close().await;
        srv.stop().await;
    }
}

/// An initialised server that cannot load its audit or token key serves nothing but health.
#[tokio::test]
async fn a_server_that_cannot_load_its_keys_serves_nothing() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "prod", json!({"K": "unaudited-canary"})).await;
        let root = srv.token.clone();
        srv.stop().await;
        for domain in ["keyward/audit-key", "keyward/token-key"] {
            let pool = db.pool().await;
            let saved: (Vec<u8>,) = sqlx::query_as("SELECT wrapped FROM wrapped_keys WHERE domain = $1")
                .bind(domain)
                .fetch_one(&pool)
                .await
                .unwrap();
            let mut bad = saved.0.clone();
            bad[20] ^= 1;
            sqlx::query("UPDATE wrapped_keys SET wrapped = $1 WHERE domain = $2")
                .bind(bad)
                .bind(domain)
                .execute(&pool)
                .await
                .unwrap();
            let srv = TestServer::wrap(common::try_start_with(&db, KEY_A, false, |_| {}).await.unwrap(), root.clone());
            let (s, b) = srv.json(Method::GET, "/api/v1/mounts/secret/secrets/prod?reveal=true", None).await;
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (503, Some("audit_unavailable")),
                "{} {domain}: {b}",
                db.label
            );
            assert!(!b.to_string().contains("unaudited-canary"));
            let (s, _) = srv.vault(&root, "GET", "secret/data/prod", None).await;
            assert_eq!(s, 503);
            let (s, _) = srv.json(Method::POST, "/api/v1/tokens", Some(json!({"policies": ["default"]}))).await;
            assert_eq!(s, 503);
            let resp = reqwest::get(format!("{}/v1/sys/health", srv.base)).await.unwrap();
            assert_eq!(resp.status(), 503, "{domain}: health says so");
            let h: Value = resp.json().await.unwrap();
            assert_eq!(h["sealed"], true);
            assert!(h["audit"]["keys"].as_str().unwrap().contains("cannot be loaded"), "{h}");
            srv.stop().await;
            sqlx::query("UPDATE wrapped_keys SET wrapped = $1 WHERE domain = $2")
                .bind(saved.0)
                .bind(domain)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let srv = TestServer::wrap(common::try_start_with(&db, KEY_A, false, |_| {}).await.unwrap(), root.clone());
        assert_eq!(srv.reveal_map("secret", "prod").await["K"], "unaudited-canary", "{}: serves again", db.label);
        srv.stop().await;
    }
}
