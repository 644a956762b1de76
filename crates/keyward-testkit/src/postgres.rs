//! PostgreSQL test databases: one per test, dropped when done.
use sqlx::{Connection, Executor, PgConnection};

/// The server test databases are made on: `KEYWARD_TEST_DATABASE_URL` (its role needs
/// CREATEDB), or `None` when unset — which panics under `CI=true`, where the PostgreSQL tests
/// must run.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("KEYWARD_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but KEYWARD_TEST_DATABASE_URL is not set: the PostgreSQL tests must run (scripts/pg-test-db)"
            );
            None
        }
    }
}

/// A fresh, empty database, dropped with every connection to it when this value is dropped.
#[derive(Debug)]
pub struct TestPostgres {
    admin: String,
    name: String,
    url: String,
}

impl TestPostgres {
    /// Creates `<prefix>_<random>` on the [`postgres_admin_url`] server, or `None` without one.
    pub async fn create(prefix: &str) -> Option<Self> {
        let admin = postgres_admin_url()?;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.expect("connect to KEYWARD_TEST_DATABASE_URL");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("CREATE DATABASE (the role needs CREATEDB)");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(Self { admin, name, url })
    }

    /// [`TestPostgres::create`] for a test that is not async.
    pub fn create_blocking(prefix: &str) -> Option<Self> {
        let prefix = prefix.to_owned();
        std::thread::spawn(move || runtime().block_on(Self::create(&prefix))).join().expect("create a test database")
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a test runtime")
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // On a thread of its own: a drop may run inside an async runtime, which cannot block.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            runtime().block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("note: test database {} was not dropped", self.name);
        }
    }
}
