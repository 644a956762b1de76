//! The database is untrusted storage (DESIGN §8): every row that decides who may do what carries
//! a MAC, so rows changed through SQL — while the server runs, and while it is stopped — grant
//! nothing, on SQLite and PostgreSQL.
use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::any;
use axum::Router;
use common::{backends, try_start, try_start_with, TestDb, TestServer, KEY_A};
use reqwest::Method;
use serde_json::json;

const PRIVATE: &str = "sk_live_private_canary_0000000000042";

/// An upstream that counts the calls it gets.
async fn counting_upstream() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(any(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

async fn sql(pool: &sqlx::AnyPool, statement: &str) {
    sqlx::query(statement).execute(pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn one(pool: &sqlx::AnyPool, statement: &str) -> String {
    sqlx::query_scalar(statement).fetch_one(pool).await.unwrap_or_else(|e| panic!("{statement}: {e}"))
}

/// A token with these policies (and TTL), as `(token, accessor)`, made by `creator`.
async fn token(srv: &TestServer, creator: &str, policies: &[&str], ttl: &str) -> (String, String) {
    let body = json!({"policies": policies, "ttl": ttl});
    let (s, b) = srv.json_as(creator, Method::POST, "/api/v1/tokens", Some(body)).await;
    assert_eq!(s, 201, "{b}");
    (b["token"].as_str().unwrap().to_owned(), b["info"]["accessor"].as_str().unwrap().to_owned())
}

/// What the tokens and routes of the test are.
struct Cast {
    widened: String,
    rooted: String,
    unrevoked: String,
    extended: String,
    copied: String,
    undenied: String,
    orphaned: String,
    reader: String,
}

/// Nothing a token might now claim is granted: not the private value, not the blocked one.
async fn grants_nothing(srv: &TestServer, label: &str, who: &str, token: &str) {
    for path in ["private/secrets/db", "public/secrets/blocked"] {
        let (s, b) = srv.json_as(token, Method::GET, &format!("/api/v1/mounts/{path}?reveal=true"), None).await;
        assert_ne!(s, 200, "{label}: {who} read {path}: {b}");
        let text = b.to_string();
        assert!(!text.contains(PRIVATE) && !text.contains("blocked-value"), "{label}: {who}: {b}");
    }
}

/// Whether a token is refused outright: it cannot even read what it was once granted.
async fn refused(srv: &TestServer, label: &str, who: &str, token: &str) {
    let (s, b) = srv.json_as(token, Method::GET, "/api/v1/mounts/public/secrets/app?reveal=true", None).await;
    assert!(matches!(s, 401 | 403), "{label}: {who} was not refused: {s} {b}");
}

/// Every tampered token grants nothing; those whose own row, ancestry or policies were changed
/// are refused outright once read from the database (a running single-process server may still
/// hold the authentic rows it read before, granting what they granted); the route's new
/// upstream is never called.
async fn check(srv: &TestServer, label: &str, cast: &Cast, evil_hits: &AtomicU64, fresh: bool) {
    let tampered = [
        ("a token with a widened policy", &cast.widened),
        ("a token given root by SQL", &cast.rooted),
        ("a token whose digest was copied onto a root token's row", &cast.copied),
        ("a token whose deny policy was deleted", &cast.undenied),
    ];
    let never_cached = [
        ("a revoked token un-revoked", &cast.unrevoked),
        ("an expired token extended", &cast.extended),
        ("a token whose parent row was deleted", &cast.orphaned),
    ];
    for (who, t) in tampered.iter().chain(&never_cached) {
        grants_nothing(srv, label, who, t).await;
    }
    for (who, t) in &never_cached {
        refused(srv, label, who, t).await;
    }
    if fresh {
        for (who, t) in &tampered {
            refused(srv, label, who, t).await;
        }
    }
    let (s, b) = srv.json_as(&cast.reader, Method::POST, "/api/v1/proxy/r1/v1/charges", Some(json!({}))).await;
    assert_ne!(s, 200, "{label}: a repointed route was called: {b}");
    assert_eq!(evil_hits.load(Ordering::SeqCst), 0, "{label}: the repointed upstream was called");
}

#[tokio::test]
async fn rows_changed_through_sql_grant_nothing() {
    for db in backends().await {
        rows_changed_through_sql_grant_nothing_on(&db).await;
    }
}

async fn rows_changed_through_sql_grant_nothing_on(db: &TestDb) {
    let label = db.label;
    let srv = TestServer::start_with(db, KEY_A, |o| o.proxy.allow_insecure = true).await;
    let root = srv.token.clone();
    for m in ["public", "private", "left", "right"] {
        let (s, b) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": m}))).await;
        assert_eq!(s, 201, "{b}");
    }
    srv.set("public", "app", json!({"K": "public-value"})).await;
    srv.set("public", "blocked", json!({"K": "blocked-value"})).await;
    srv.set("private", "db", json!({"K": PRIVATE})).await;
    srv.set("left", "x", json!({"K": "left-value"})).await;
    srv.set("right", "x", json!({"K": PRIVATE})).await;
    let reader = "[[rules]]\npath = \"public/*\"\ncapabilities = [\"read\", \"list\", \"use\"]\n\
                  [[rules]]\npath = \"left/*\"\ncapabilities = [\"read\"]\n";
    for name in ["reader", "reader2"] {
        srv.policy(name, reader).await;
    }
    srv.policy("denier", "[[rules]]\npath = \"public/blocked\"\ncapabilities = [\"deny\"]\n").await;
    srv.policy("minter", "[[rules]]\npath = \"sys/tokens\"\ncapabilities = [\"sudo\"]\n").await;
    let (widened, _) = token(&srv, &root, &["reader2"], "1h").await;
    let (rooted, rooted_acc) = token(&srv, &root, &["reader"], "1h").await;
    let (unrevoked, unrevoked_acc) = token(&srv, &root, &["reader"], "1h").await;
    let (extended, extended_acc) = token(&srv, &root, &["reader"], "1s").await;
    let (copied, copied_acc) = token(&srv, &root, &["reader"], "1h").await;
    let (_, admin_acc) = token(&srv, &root, &["root"], "1h").await;
    let (undenied, _) = token(&srv, &root, &["reader", "denier"], "1h").await;
    let (parent, parent_acc) = token(&srv, &root, &["reader", "minter"], "1h").await;
    let (orphaned, _) = token(&srv, &parent, &["reader"], "1h").await;
    let (reader_token, _) = token(&srv, &root, &["reader"], "1h").await;
    let (good, _) = counting_upstream().await;
    let (evil, evil_hits) = counting_upstream().await;
    let route = json!({"upstream": good, "secret": "public/app", "inject": ["bearer:K"], "allow_insecure": true});
    assert_eq!(srv.json(Method::PUT, "/api/v1/proxy-routes/r1", Some(route)).await.0, 200);
    // Before: each works as granted (and the running server may have cached it).
    for t in [&widened, &rooted, &unrevoked, &copied, &undenied, &orphaned, &reader_token] {
        let (s, b) = srv.json_as(t, Method::GET, "/api/v1/mounts/public/secrets/app?reveal=true", None).await;
        assert_eq!(s, 200, "{label}: {b}");
    }
    let (s, _) = srv.json_as(&undenied, Method::GET, "/api/v1/mounts/public/secrets/blocked?reveal=true", None).await;
    assert_eq!(s, 403, "{label}: the deny holds before");
    let (s, b) = srv.json(Method::DELETE, &format!("/api/v1/tokens/accessors/{unrevoked_acc}"), None).await;
    assert_eq!(s, 200, "{label}: revoke: {b}");
    tokio::time::sleep(Duration::from_millis(1100)).await; // `extended` expires

    // The attacks, through SQL on the running server.
    let pool = db.pool().await;
    let everything =
        r#"[{"path":"*","capabilities":["create","read","update","patch","delete","list","sudo","destroy","use"]}]"#;
    sql(&pool, &format!("UPDATE policies SET rules = '{everything}' WHERE name = 'reader2'")).await;
    sql(&pool, &format!("UPDATE tokens SET policies = '[\"root\"]' WHERE accessor = '{rooted_acc}'")).await;
    sql(&pool, &format!("UPDATE tokens SET revoked = 0 WHERE accessor = '{unrevoked_acc}'")).await;
    sql(&pool, &format!("UPDATE tokens SET expires_at = 9000000000000000000 WHERE accessor = '{extended_acc}'")).await;
    let digest = one(&pool, &format!("SELECT digest FROM tokens WHERE accessor = '{copied_acc}'")).await;
    sql(&pool, &format!("UPDATE tokens SET digest = 'moved-away' WHERE accessor = '{copied_acc}'")).await;
    sql(&pool, &format!("UPDATE tokens SET digest = '{digest}' WHERE accessor = '{admin_acc}'")).await;
    sql(&pool, "DELETE FROM policies WHERE name = 'denier'").await;
    sql(&pool, &format!("DELETE FROM tokens WHERE accessor = '{parent_acc}'")).await;
    let repointed = one(&pool, "SELECT route FROM proxy_routes WHERE name = 'r1'").await.replace(&good, &evil);
    sql(&pool, &format!("UPDATE proxy_routes SET route = '{repointed}' WHERE name = 'r1'")).await;
    // Two mounts' paths swapped: `left/x`, which the reader may read, would name right's secret.
    sql(&pool, "UPDATE mounts SET path = 'swap' WHERE path = 'left'").await;
    sql(&pool, "UPDATE mounts SET path = 'left' WHERE path = 'right'").await;
    sql(&pool, "UPDATE mounts SET path = 'right' WHERE path = 'swap'").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the mount and route caches

    let cast = Cast { widened, rooted, unrevoked, extended, copied, undenied, orphaned, reader: reader_token.clone() };
    check(&srv, &format!("{label}, running"), &cast, &evil_hits, db.label == "postgres").await;
    let (s, b) = srv.json_as(&reader_token, Method::GET, "/api/v1/mounts/left/secrets/x?reveal=true", None).await;
    assert!(s != 200 && !b.to_string().contains(PRIVATE), "{label}: swapped mounts: {b}");
    srv.stop().await;

    // The same rows, read afresh by a restarted server: every one is refused.
    let restarted = try_start(db, KEY_A, false).await.unwrap();
    let srv = TestServer::wrap(restarted, root.clone());
    check(&srv, &format!("{label}, restarted"), &cast, &evil_hits, true).await;
    let (s, b) = srv.json_as(&reader_token, Method::GET, "/api/v1/mounts/left/secrets/x?reveal=true", None).await;
    assert!(s != 200 && !b.to_string().contains(PRIVATE), "{label}: swapped mounts: {b}");
    // Every refusal was counted, and `doctor` names each tampered row (never a value).
    let (_, health) = srv.json(Method::GET, "/v1/sys/health", None).await;
    assert!(health["audit"]["tampered_rows"].as_u64().unwrap() > 0, "{label}: {health}");
    let (_, doctor) = srv.json(Method::GET, "/api/v1/doctor", None).await;
    assert_eq!(doctor["rows_ok"], false, "{label}: {doctor}");
    let problems = doctor["problems"].to_string();
    for row in [
        "policies/reader2".to_owned(),
        format!("tokens/{rooted_acc}"),
        format!("tokens/{unrevoked_acc}"),
        format!("tokens/{admin_acc}"),
        "proxy_routes/r1".to_owned(),
    ] {
        assert!(problems.contains(&row), "{label}: doctor misses {row}: {problems}");
    }
    assert!(!problems.contains(&good) && !problems.contains(&evil), "{label}: doctor shows values");

    // The `initialized` marker and the key rows deleted: `sys/init` is refused while running…
    sql(&pool, "DELETE FROM system WHERE key = 'initialized'").await;
    sql(&pool, "DELETE FROM wrapped_keys WHERE owner = '00000000-0000-0000-0000-000000000000'").await;
    sql(&pool, "DELETE FROM wrapped_keys WHERE domain = 'keyward/integrity-key'").await;
    let (s, b) = srv.vault("", "PUT", "sys/init", Some(json!({"secret_shares": 1, "secret_threshold": 1}))).await;
    assert_ne!(s, 200, "{label}: sys/init over a tampered database: {b}");
    assert!(b.get("root_token").is_none(), "{label}: {b}");
    srv.stop().await;
    // …and the start is refused, in one line.
    let Err(e) = try_start_with(db, KEY_A, true, |_| {}).await else {
        panic!("{label}: a database with rows but no integrity key or marker was started")
    };
    let msg = e.to_string();
    assert!(msg.contains("changed outside keyward") && !msg.contains('\n'), "{label}: {msg}");
    pool.close().await;
}
