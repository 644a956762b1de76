//! Opening a database: SQLite with durable pragmas, or PostgreSQL; then migrations.
use std::path::PathBuf;
use std::time::Duration;

use keyward_core::{Backend, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use crate::SqlStore;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file (created if missing).
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl DatabaseUrl {
    /// Reads `--database`: a `postgres://`/`postgresql://` URL, a `sqlite://` URL or a file path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::Postgres(s.to_owned())
        } else {
            Self::Sqlite(PathBuf::from(s.strip_prefix("sqlite://").unwrap_or(s)))
        }
    }

    /// A description safe to print (no password).
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres(u) => match (u.find("://"), u.rfind('@')) {
                (Some(s), Some(at)) if at > s => format!("{}://…@{}", &u[..s], &u[at + 1..]),
                _ => u.clone(),
            },
        }
    }
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Takes the lock that makes a server the only process serving a SQLite database (`<file>.lock`,
/// held while the returned file is open; the OS releases it if the process dies). Every change
/// then passes through that server's single writer, which keeps its in-memory read path coherent;
/// several servers need PostgreSQL.
pub fn lock_sqlite(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| db_err(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| db_err(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(db_err(format!(
            "{} is in use by another keyward server (it holds {}); one process serves a SQLite \
             database — run several replicas on PostgreSQL",
            path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(db_err(format!("cannot lock {}: {e}", lock_path.display()))),
    }
}

/// Connects, applies the pragmas (SQLite: WAL, `synchronous=FULL`, `secure_delete=ON`) and runs
/// the migrations.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<SqlStore, StoreError> {
    sqlx::any::install_default_drivers();
    let (backend, pool, sqlite_path) = match url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| db_err(format!("cannot create {}: {e}", dir.display())))?;
            }
            let conn_url = format!("sqlite://{}?mode=rwc", path.display());
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                // An embedded database has no network link to go stale: no ping per acquire.
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; \
                             PRAGMA busy_timeout=15000; PRAGMA foreign_keys=ON;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect(&conn_url)
                .await
                .map_err(db_err)?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await.map_err(db_err)?;
            (Backend::Sqlite, pool, Some(path.clone()))
        }
        DatabaseUrl::Postgres(u) => {
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect(u)
                .await
                .map_err(db_err)?;
            let mut conn = pool.acquire().await.map_err(db_err)?;
            // Two servers starting at once must not both migrate.
            conn.execute("SELECT pg_advisory_lock(8200001)").await.map_err(db_err)?;
            let migrated = sqlx::migrate!("migrations/postgres").run(&mut *conn).await.map_err(db_err);
            conn.execute("SELECT pg_advisory_unlock(8200001)").await.map_err(db_err)?;
            migrated?;
            drop(conn);
            (Backend::Postgres, pool, None)
        }
    };
    Ok(SqlStore::new(pool, backend, sqlite_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_database_is_served_by_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kw.db");
        let held = lock_sqlite(&db).unwrap();
        let err = lock_sqlite(&db).unwrap_err().to_string();
        assert!(err.contains("in use by another keyward server"), "{err}");
        drop(held);
        lock_sqlite(&db).expect("free again once the holder is gone");
    }

    #[test]
    fn parses_and_redacts() {
        assert_eq!(DatabaseUrl::parse("./x.db"), DatabaseUrl::Sqlite("./x.db".into()));
        assert_eq!(DatabaseUrl::parse("sqlite:///tmp/a.db"), DatabaseUrl::Sqlite("/tmp/a.db".into()));
        let pg = DatabaseUrl::parse("postgres://u:hunter2@db:5432/kw");
        assert_eq!(pg.redacted(), "postgres://…@db:5432/kw");
        assert!(!pg.redacted().contains("hunter2"));
    }
}
