//! Test support: a real server on 127.0.0.1:0 over SQLite or PostgreSQL, and an HTTP client.
#![allow(dead_code)]

use std::net::SocketAddr;

use keyward_crypto::MasterKeyring;
use keyward_server::{start, RunningServer, ServerOptions};
use keyward_store::DatabaseUrl;
use rand::distr::{Alphanumeric, SampleString};
use reqwest::{Method, Response};
use serde_json::Value;

/// A database for one test: a SQLite file in a temp dir, or a fresh PostgreSQL database —
/// both removed when the value is dropped.
pub struct TestDb {
    pub url: DatabaseUrl,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<keyward_testkit::TestPostgres>,
}

impl TestDb {
    pub fn sqlite_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    /// A connection pool on the same database (to inspect or tamper with rows).
    pub async fn pool(&self) -> sqlx::AnyPool {
        keyward_store::connect(&self.url, 2).await.expect("connect test pool").pool().clone()
    }
}

pub fn random_name(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    TestDb { url: DatabaseUrl::Sqlite(dir.path().join("keyward.db")), label: "sqlite", _dir: Some(dir), _pg: None }
}

/// SQLite always; PostgreSQL when KEYWARD_TEST_DATABASE_URL is set (required under CI=true).
pub async fn backends() -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db()];
    match keyward_testkit::TestPostgres::create("kw_test").await {
        Some(pg) => dbs.push(TestDb {
            url: DatabaseUrl::Postgres(pg.url().to_owned()),
            label: "postgres",
            _dir: None,
            _pg: Some(pg),
        }),
        None => eprintln!("PostgreSQL tests skipped: KEYWARD_TEST_DATABASE_URL is not set"),
    }
    dbs
}

pub const KEY_A: &str = "v1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub const KEY_B: &str = "v1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    server: RunningServer,
}

/// Several servers may share a PostgreSQL database; a SQLite database is served by one process,
/// so on SQLite the second start must be refused (and the cross-server part of a test skipped).
pub async fn second_server_refused_on_sqlite(db: &TestDb) -> bool {
    if db.label != "sqlite" {
        return false;
    }
    let Err(err) = try_start(db, KEY_A, false).await else { panic!("a second server on one SQLite database started") };
    let msg = err.to_string();
    assert!(msg.contains("in use by another keyward server") && msg.contains("PostgreSQL"), "{msg}");
    true
}

/// Why a test server did not start: the database could not be opened, or the server refused.
pub type StartFailure = Box<dyn std::error::Error + Send + Sync>;

pub async fn try_start(db: &TestDb, keys: &str, dev: bool) -> Result<RunningServer, StartFailure> {
    try_start_with(db, keys, dev, |_| {}).await
}

/// Starts with options adjusted by `tune` (rate limits are off unless a test turns them on).
pub async fn try_start_with(
    db: &TestDb,
    keys: &str,
    dev: bool,
    tune: impl FnOnce(&mut ServerOptions),
) -> Result<RunningServer, StartFailure> {
    let opened = keyward_store::open_for_server(&db.url, 4, false).await?;
    let mut opts = ServerOptions::new(
        "127.0.0.1:0".parse().expect("addr"),
        std::sync::Arc::new(opened.store),
        MasterKeyring::parse(keys).expect("test keyring"),
    );
    opts.store_lock = opened.lock;
    opts.dev = dev;
    opts.guard.token_rate = None;
    opts.guard.ip_rate = None;
    tune(&mut opts);
    Ok(start(opts).await?)
}

impl TestServer {
    /// A dev-initialised server (root token, mount `secret`) with keyring `keys`.
    pub async fn start(db: &TestDb, keys: &str) -> Self {
        Self::start_with(db, keys, |_| {}).await
    }

    /// A dev-initialised server with adjusted options.
    pub async fn start_with(db: &TestDb, keys: &str, tune: impl FnOnce(&mut ServerOptions)) -> Self {
        let server = try_start_with(db, keys, true, tune).await.expect("server starts");
        let token = server.root_token.as_ref().map(|t| t.expose().to_owned()).unwrap_or_default();
        Self::wrap(server, token)
    }

    pub fn wrap(server: RunningServer, token: String) -> Self {
        Self { addr: server.addr, base: format!("http://{}", server.addr), token, http: reqwest::Client::new(), server }
    }

    pub async fn stop(self) {
        self.server.shutdown().await.expect("clean shutdown");
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    /// Calls and returns (status, JSON body or Null).
    pub async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.token.clone();
        self.json_as(&token, method, path, body).await
    }

    /// Calls with another token and returns (status, JSON body or Null).
    pub async fn json_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.json_from(token, None, method, path, body).await
    }

    /// Calls with a token and an `X-Forwarded-For` header.
    pub async fn json_from(
        &self,
        token: &str,
        forwarded_for: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(f) = forwarded_for {
            req = req.header("x-forwarded-for", f);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") })
    }

    pub async fn set(&self, mount: &str, path: &str, set: Value) -> Value {
        let (s, body) = self
            .json(
                Method::PATCH,
                &format!("/api/v1/mounts/{mount}/secrets/{path}"),
                Some(serde_json::json!({ "set": set })),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        body
    }

    pub async fn reveal(&self, mount: &str, path: &str) -> (u16, Value) {
        self.json(Method::GET, &format!("/api/v1/mounts/{mount}/secrets/{path}?reveal=true"), None).await
    }

    /// The revealed map as `{name: value}`.
    pub async fn reveal_map(&self, mount: &str, path: &str) -> serde_json::Map<String, Value> {
        let (s, body) = self.reveal(mount, path).await;
        assert_eq!(s, 200, "{body}");
        body["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| (f["name"].as_str().expect("name").to_owned(), f["value"].clone()))
            .collect()
    }
}

impl TestServer {
    /// Calls the Vault API with `X-Vault-Token` (any method, including `LIST`): (status, body).
    pub async fn vault(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}/v1/{path}", self.base)).header("x-vault-token", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        if status >= 400 {
            let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            assert_eq!(ct, "application/json", "errors are JSON");
        }
        let text = resp.text().await.expect("body");
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") })
    }

    /// Writes a policy from a TOML document.
    pub async fn policy(&self, name: &str, toml: &str) {
        let (s, b) = self
            .json(Method::PUT, &format!("/api/v1/policies/{name}"), Some(serde_json::json!({ "document": toml })))
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Creates a token with these policies (as root) and returns it.
    pub async fn token_with(&self, policies: &[&str]) -> String {
        let (s, b) = self.json(Method::POST, "/api/v1/tokens", Some(serde_json::json!({ "policies": policies }))).await;
        assert_eq!(s, 201, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }
}

/// Makes every insert into the audit table fail (the primary sink is broken).
pub async fn break_audit_table(db: &TestDb, pool: &sqlx::AnyPool) {
    match db.label {
        "sqlite" => {
            sqlx::query("CREATE TRIGGER kw_break BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit sink broken'); END")
                .execute(pool)
                .await
                .unwrap();
        }
        _ => {
            sqlx::query("CREATE FUNCTION kw_break() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit sink broken'; END $$ LANGUAGE plpgsql")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("CREATE TRIGGER kw_break BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION kw_break()")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

/// Undoes [`break_audit_table`].
pub async fn mend_audit_table(db: &TestDb, pool: &sqlx::AnyPool) {
    let sql = if db.label == "sqlite" { "DROP TRIGGER kw_break" } else { "DROP TRIGGER kw_break ON audit_log" };
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// An audit entry for a change a test makes through the core API directly.
pub fn test_entry() -> keyward_core::AuditEntry {
    keyward_core::AuditEntry { operation: "test.change".into(), status: 200, ..Default::default() }
}
