//! Response wrapping end to end: `X-Vault-Wrap-TTL` on reads and creates, one-time unwrap,
//! lookup, rewrap, wrap, expiry, shredding with the mount, a wrapping token good for nothing
//! else, and rows that are sealed and MAC'd — on SQLite and PostgreSQL.
use crate::common;

use common::{backends, TestServer, KEY_A};
use serde_json::{json, Value};

/// A Vault request with `X-Vault-Wrap-TTL`.
async fn wrapped(
    srv: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    ttl: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = srv
        .http
        .request(method, format!("{}/v1/{path}", srv.base))
        .header("x-vault-token", token)
        .header("x-vault-wrap-ttl", ttl);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

fn wrapping_token(b: &Value) -> String {
    b["wrap_info"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_wrapped_read_is_unwrapped_once_and_holds_nothing_in_the_clear() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        srv.set("secret", "app", json!({"DB_PASSWORD": "wrapped-canary-7"})).await;
        let (s, b) = wrapped(&srv, &root, "GET", "secret/data/app", "5m", None).await;
        assert_eq!(s, 200, "{label}: {b}");
        assert!(!b.to_string().contains("wrapped-canary-7"), "{label}: the value came back unwrapped: {b}");
        let info = &b["wrap_info"];
        assert_eq!(
            (&info["ttl"], &info["creation_path"], &b["data"]),
            (&json!(300), &json!("secret/data/app"), &Value::Null)
        );
        let wrap = wrapping_token(&b);
        // Stored sealed: the database holds no plaintext of it.
        let pool = db.pool().await;
        let sealed: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM wrapped_responses").fetch_all(&pool).await.unwrap();
        assert!(sealed.len() == 1 && !sealed[0].windows(16).any(|w| w == b"wrapped-canary-7"), "{label}");
        // The wrapping token is good for nothing but the wrapping paths.
        assert_eq!(srv.vault(&wrap, "GET", "secret/data/app", None).await.0, 403, "{label}");
        assert_eq!(srv.vault(&wrap, "GET", "auth/token/lookup-self", None).await.0, 403, "{label}");
        // Lookup does not consume; anyone holding it may look (with any token, or itself).
        let (s, l) = srv.vault(&root, "POST", "sys/wrapping/lookup", Some(json!({"token": wrap}))).await;
        assert_eq!(
            (s, &l["data"]["creation_path"], &l["data"]["creation_ttl"]),
            (200, &json!("secret/data/app"), &json!(300))
        );
        let (s, _) = srv.vault(&wrap, "POST", "sys/wrapping/lookup", None).await;
        assert_eq!(s, 200, "{label}");
        // Unwrap: the response as it was answered, once.
        let (s, u) = srv.vault(&wrap, "POST", "sys/wrapping/unwrap", None).await;
        assert_eq!((s, &u["data"]["data"]["DB_PASSWORD"]), (200, &json!("wrapped-canary-7")), "{label}: {u}");
        let (s, again) = srv.vault(&root, "POST", "sys/wrapping/unwrap", Some(json!({"token": wrap}))).await;
        assert!(s == 400 && again["errors"][0].as_str().unwrap().contains("not valid"), "{label}: {again}");
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wrapped_responses").fetch_one(&pool).await.unwrap();
        assert_eq!(left, 0, "{label}: unwrapping deletes the row");
        // Audited: the wrap and the unwrap, never the value.
        let (_, page) = srv.json(reqwest::Method::GET, "/api/v1/audit?limit=1000", None).await;
        let ops: Vec<&str> =
            page["entries"].as_array().unwrap().iter().filter_map(|e| e["operation"].as_str()).collect();
        assert!(ops.contains(&"sys.wrapping.wrap") && ops.contains(&"sys.wrapping.unwrap"), "{label}: {ops:?}");
        assert!(!page.to_string().contains("wrapped-canary-7"), "{label}");

        // Rewrap: a new token for the same response; the old one dies.
        let (_, b) = wrapped(&srv, &root, "GET", "secret/data/app", "10m", None).await;
        let first = wrapping_token(&b);
        let (s, r) = srv.vault(&root, "POST", "sys/wrapping/rewrap", Some(json!({"token": first}))).await;
        assert_eq!((s, &r["wrap_info"]["ttl"]), (200, &json!(600)), "{label}: {r}");
        let second = wrapping_token(&r);
        assert_eq!(
            srv.vault(&first, "POST", "sys/wrapping/unwrap", None).await.0,
            403,
            "{label}: the old token is revoked"
        );
        let (s, u) = srv.vault(&second, "POST", "sys/wrapping/unwrap", None).await;
        assert_eq!((s, &u["data"]["data"]["DB_PASSWORD"]), (200, &json!("wrapped-canary-7")), "{label}");

        // sys/wrapping/wrap: arbitrary data, with the header only.
        let (s, b) =
            wrapped(&srv, &root, "POST", "sys/wrapping/wrap", "1m", Some(json!({"handover": "for-alice"}))).await;
        assert_eq!((s, &b["wrap_info"]["creation_path"]), (200, &json!("sys/wrapping/wrap")), "{label}: {b}");
        let (_, u) = srv.vault(&wrapping_token(&b), "POST", "sys/wrapping/unwrap", None).await;
        assert_eq!(u["data"], json!({"handover": "for-alice"}), "{label}");
        let (s, _) = srv.vault(&root, "POST", "sys/wrapping/wrap", Some(json!({"x": "y"}))).await;
        assert_eq!(s, 400, "{label}: no header");
        let reader = srv.token_with(&["default"]).await;
        let (s, _) = wrapped(&srv, &reader, "POST", "sys/wrapping/wrap", "1m", Some(json!({"x": "y"}))).await;
        assert_eq!(s, 403, "{label}: wrapping data needs update on sys/wrapping/wrap");
        // A TTL past --max-wrap-ttl (24 h) runs nothing.
        let (s, b) = wrapped(&srv, &root, "POST", "auth/token/create", "48h", Some(json!({}))).await;
        assert!(s == 400 && b.to_string().contains("max-wrap-ttl"), "{label}: {b}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn wrapped_responses_expire_die_with_their_mount_and_resist_tampering() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let root = srv.token.clone();
        let pool = db.pool().await;
        srv.set("secret", "app", json!({"K": "v"})).await;
        // Expiry.
        let (_, b) = wrapped(&srv, &root, "GET", "secret/data/app", "1", None).await;
        let short = wrapping_token(&b);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(srv.vault(&short, "POST", "sys/wrapping/unwrap", None).await.0, 403, "{label}: expired");
        assert_eq!(
            srv.vault(&root, "POST", "sys/wrapping/unwrap", Some(json!({"token": short}))).await.0,
            400,
            "{label}"
        );
        // Shredding the mount deletes what was wrapped from it.
        let (s, _) = srv.vault(&root, "POST", "sys/mounts/doomed", Some(json!({"type": "kv-v2"}))).await;
        assert_eq!(s, 204, "{label}");
        srv.set("doomed", "x", json!({"K": "gone"})).await;
        let (_, b) = wrapped(&srv, &root, "GET", "doomed/data/x", "10m", None).await;
        let doomed = wrapping_token(&b);
        assert_eq!(srv.vault(&root, "DELETE", "sys/mounts/doomed", None).await.0, 204, "{label}");
        assert_eq!(srv.vault(&doomed, "POST", "sys/wrapping/unwrap", None).await.0, 400, "{label}: outlived its mount");
        // A row whose expiry was pushed out through SQL fails its MAC.
        let (_, b) = wrapped(&srv, &root, "GET", "secret/data/app", "10m", None).await;
        let tampered = wrapping_token(&b);
        sqlx::query("UPDATE wrapped_responses SET expires_at = expires_at + 1").execute(&pool).await.unwrap();
        let (s, _) = srv.vault(&tampered, "POST", "sys/wrapping/unwrap", None).await;
        assert_eq!(s, 500, "{label}: a tampered row is refused");
        // An AppRole secret ID handed over wrapped.
        srv.vault(&root, "POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await;
        srv.vault(&root, "POST", "auth/approle/role/ci", Some(json!({"token_policies": "default"}))).await;
        let (_, rid) = srv.vault(&root, "GET", "auth/approle/role/ci/role-id", None).await;
        let (s, b) = wrapped(&srv, &root, "POST", "auth/approle/role/ci/secret-id", "5m", Some(json!({}))).await;
        assert!(s == 200 && b["data"].is_null(), "{label}: {b}");
        let (_, u) = srv.vault(&wrapping_token(&b), "POST", "sys/wrapping/unwrap", None).await;
        let login = json!({"role_id": rid["data"]["role_id"], "secret_id": u["data"]["secret_id"]});
        assert_eq!(srv.vault("", "POST", "auth/approle/login", Some(login)).await.0, 200, "{label}");
        srv.stop().await;
    }
}
