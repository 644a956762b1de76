//! Upgrading a database written before rows carried MACs: the dumps in `testdata/upgrade` were
//! made by `make-fixture.sh` with the keyward of the commit `fixture.json` names (secrets with
//! history, tokens, policies — one deleted while a token still named it —, a proxy route, a
//! transit key, the audit log). The current binary, started on a copy, gives every row its MAC
//! once, and everything reads back and works as before — on SQLite and PostgreSQL.
use crate::common;

use common::{backends, try_start, TestDb, TestServer};
use keyward_core::{IntegrityReads, KeyReads, Store};
use keyward_crypto::{MasterKeyring, WrappedKeyDomain};
use keyward_store::DatabaseUrl;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;

const SQLITE_DUMP: &str = include_str!("testdata/upgrade/sqlite.sql");
const POSTGRES_DUMP: &str = include_str!("testdata/upgrade/postgres.sql");
const FIXTURE: &str = include_str!("testdata/upgrade/fixture.json");
const MAC_TABLES: [&str; 7] = ["system", "tokens", "policies", "mounts", "secrets", "proxy_routes", "transit_keys"];

fn master_key() -> &'static str {
    include_str!("testdata/upgrade/master-key.txt").trim()
}

/// Loads the engine's dump into the test's empty database.
async fn load(db: &TestDb) {
    sqlx::any::install_default_drivers();
    let (url, dump) = match &db.url {
        DatabaseUrl::Sqlite(path) => (format!("sqlite://{}?mode=rwc", path.display()), SQLITE_DUMP),
        DatabaseUrl::Postgres(u) => (u.clone(), POSTGRES_DUMP),
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(dump).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn count(pool: &sqlx::AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn revealed(srv: &TestServer, token: &str, path: &str) -> (u16, Value) {
    srv.json_as(token, Method::GET, &format!("/api/v1/mounts/{path}"), None).await
}

fn field(body: &Value, name: &str) -> String {
    let fields = body["fields"].as_array().unwrap_or_else(|| panic!("no fields: {body}"));
    fields.iter().find(|f| f["name"] == name).map(|f| f["value"].as_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn an_older_database_reads_back_whole_and_gets_its_macs_once() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    for db in backends().await {
        let label = db.label;
        let facts = &fixture[label];
        let token = |name: &str| facts["tokens"][name].as_str().unwrap().to_owned();
        load(&db).await;
        let srv = TestServer::wrap(try_start(&db, master_key(), false).await.unwrap(), token("root"));

        // Every secret reads back, with its history.
        let (s, b) = revealed(&srv, &token("root"), "app/secrets/prod?reveal=true").await;
        assert_eq!((s, b["version"].as_u64()), (200, Some(3)), "{label}: {b}");
        assert_eq!(field(&b, "STRIPE_KEY"), "sk_test_fixture_v2");
        let (_, b) = revealed(&srv, &token("root"), "app/secrets/prod?reveal=true&version=1").await;
        assert_eq!((field(&b, "STRIPE_KEY"), field(&b, "DB")), ("sk_test_fixture_v1".into(), "postgres://a".into()));
        let (_, b) = revealed(&srv, &token("root"), "app/secrets/dev?reveal=true").await;
        assert_eq!(field(&b, "STRIPE_KEY"), "sk_test_fixture_dev", "{label}");
        // Tokens still work: as granted, a child through its parent, and one naming a policy
        // deleted before deletions left tombstones (it got one: its deny is gone, as it was).
        for (who, path) in
            [("reader", "app/secrets/prod"), ("child", "app/secrets/prod"), ("gone_holder", "app/secrets/dev")]
        {
            let (s, b) = revealed(&srv, &token(who), &format!("{path}?reveal=true")).await;
            assert_eq!(s, 200, "{label}: the {who} token: {b}");
        }
        let (s, _) = revealed(&srv, &token("reader"), "app/secrets/prod?reveal=true").await;
        assert_eq!(s, 200);
        // The transit key decrypts what it encrypted; the proxy route is there.
        let t = &facts["transit"];
        let (s, b) = srv
            .vault(&token("root"), "POST", "transit/decrypt/fixture", Some(json!({"ciphertext": t["ciphertext"]})))
            .await;
        assert_eq!((s, &b["data"]["plaintext"]), (200, &t["plaintext"]), "{label}: {b}");
        let (s, b) = srv.json(Method::GET, "/api/v1/proxy-routes/stripe", None).await;
        assert_eq!(s, 200, "{label}: {b}");
        // The audit chain verifies, and records the upgrade with what it covered.
        let (_, v) = srv.json(Method::GET, "/api/v1/audit/verify", None).await;
        assert_eq!(v["ok"], true, "{label}: {v}");
        let (_, a) = srv.json(Method::GET, "/api/v1/audit?operation=sys.integrity.upgrade", None).await;
        let entries = a["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{label}: {a}");
        assert_eq!(entries[0]["details"]["rows_tokens"], 5, "{label}: {a}");
        // Every row got its MAC, and doctor checks them all.
        let pool = db.pool().await;
        for table in MAC_TABLES {
            assert_eq!(count(&pool, &format!("SELECT COUNT(*) FROM {table} WHERE mac IS NULL")).await, 0, "{label}");
        }
        assert_eq!(count(&pool, "SELECT COUNT(*) FROM policies WHERE name = 'gone' AND deleted = 1").await, 1);
        let (_, d) = srv.json(Method::GET, "/api/v1/doctor", None).await;
        assert_eq!((d["ok"].clone(), d["rows_ok"].clone()), (json!(true), json!(true)), "{label}: {d}");
        srv.stop().await;

        // Once: a restart upgrades nothing.
        let srv = TestServer::wrap(try_start(&db, master_key(), false).await.unwrap(), token("root"));
        let (_, a) = srv.json(Method::GET, "/api/v1/audit?operation=sys.integrity.upgrade", None).await;
        assert_eq!(a["entries"].as_array().unwrap().len(), 1, "{label}: upgraded twice");
        srv.stop().await;

        // Rewound to look like the old database (integrity key and version gone, MACs cleared)
        // with a token given root on the way: the audit chain records the upgrade, so it is
        // refused, not trusted again.
        sqlx::query("DELETE FROM wrapped_keys WHERE domain = 'keyward/integrity-key'").execute(&pool).await.unwrap();
        sqlx::query("DELETE FROM system WHERE key = 'integrity_version'").execute(&pool).await.unwrap();
        for table in MAC_TABLES {
            sqlx::query(&format!("UPDATE {table} SET mac = NULL")).execute(&pool).await.unwrap();
        }
        sqlx::query("UPDATE tokens SET policies = '[\"root\"]'").execute(&pool).await.unwrap();
        let Err(e) = try_start(&db, master_key(), false).await else {
            panic!("{label}: a rewound database was upgraded again")
        };
        let msg = e.to_string();
        assert!(msg.contains("records an earlier integrity upgrade") && !msg.contains('\n'), "{label}: {msg}");
        pool.close().await;
    }
}

/// A binary older than its database — by schema or by integrity version — refuses to start,
/// naming both versions.
#[tokio::test]
async fn an_older_binary_refuses_a_newer_database() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, master_key()).await;
        srv.stop().await;

        // A newer integrity version, written as a newer binary would: under the row keys.
        let store = keyward_store::connect(&db.url, 2).await.unwrap();
        let keyring = MasterKeyring::parse(master_key()).unwrap();
        let d = WrappedKeyDomain::IntegrityKey;
        let (cluster, version, wrapped) = store.wrapped_keys_in(d.label()).await.unwrap().pop().unwrap();
        let key = keyring.unwrap(d, cluster.as_bytes(), version, &wrapped).unwrap();
        store.authenticate_rows(&key, &cluster.to_string());
        let mut tx = store.begin_write(true).await.unwrap();
        tx.set_system_value("integrity_version", "2").await.unwrap();
        tx.commit().await.unwrap();
        let Err(e) = try_start(&db, master_key(), false).await else { panic!("{label}: started on a newer database") };
        let msg = e.to_string();
        assert!(msg.contains("integrity version 2, newer than this binary's 1"), "{label}: {msg}");
        let mut tx = store.begin_write(true).await.unwrap();
        tx.set_system_value("integrity_version", "1").await.unwrap();
        tx.commit().await.unwrap();

        // A newer schema: a migration this binary does not have.
        let pool = store.pool().clone();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99, 'from the future', $1, $2, 0)",
        )
        .bind(true)
        .bind(vec![0u8])
        .execute(&pool)
        .await
        .unwrap_or_else(|_| panic!("{label}: insert"));
        let Err(e) = try_start(&db, master_key(), false).await else { panic!("{label}: started on a newer schema") };
        let msg = e.to_string();
        assert!(msg.contains("schema is at version 99, newer than this binary's"), "{label}: {msg}");
        store.close().await;
    }
}
