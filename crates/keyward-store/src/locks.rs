//! Locks that make work run on one server at a time ([`JobLock`]): a PostgreSQL session
//! advisory lock held on a connection of the lock's own — the server dying closes it, which
//! releases the lock for another replica to take — or, on SQLite (one server per database file,
//! see `lock_sqlite`), a lock within the process.
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use async_trait::async_trait;
use keyward_core::{HeldLock, JobLock, StoreError};
use sqlx::{AnyConnection, Connection};

use crate::db::db_err;
use crate::sql_store::SqlStore;
use crate::Backend;

/// The locks held in this process on SQLite databases, by file and lock.
static LITE_HELD: LazyLock<Mutex<HashSet<(PathBuf, JobLock)>>> = LazyLock::new(Mutex::default);

/// A lock held on a PostgreSQL connection of its own.
#[derive(Debug)]
struct PgHeld {
    conn: Option<AnyConnection>,
}

#[async_trait]
impl HeldLock for PgHeld {
    async fn still_held(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else { return false };
        if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
            return true;
        }
        self.conn = None;
        false
    }
}

/// A lock held within this process on a SQLite database.
#[derive(Debug)]
struct LiteHeld {
    key: (PathBuf, JobLock),
}

#[async_trait]
impl HeldLock for LiteHeld {
    async fn still_held(&mut self) -> bool {
        true
    }
}

impl Drop for LiteHeld {
    fn drop(&mut self) {
        LITE_HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.key);
    }
}

impl SqlStore {
    pub(crate) async fn take_lock(&self, lock: JobLock) -> Result<Option<Box<dyn HeldLock>>, StoreError> {
        match (self.backend, &self.sqlite_path) {
            (Backend::Sqlite, Some(path)) => {
                let key = (path.clone(), lock);
                let mut held = LITE_HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(held.insert(key.clone()).then(|| Box::new(LiteHeld { key }) as Box<dyn HeldLock>))
            }
            _ => {
                let mut conn = self.pool.acquire().await.map_err(db_err)?.detach();
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(lock.id())
                    .fetch_one(&mut conn)
                    .await
                    .map_err(db_err)?;
                if taken {
                    return Ok(Some(Box::new(PgHeld { conn: Some(conn) })));
                }
                let _ = conn.close().await;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use keyward_core::Store;

    use crate::DatabaseUrl;

    use super::*;

    async fn one_holder_at_a_time(url: DatabaseUrl) {
        let a = crate::connect::test_store(&url, 2).await;
        let b = crate::connect::test_store(&url, 2).await;
        let mut held = a.try_lock(JobLock::Background).await.unwrap().expect("free at first");
        assert!(held.still_held().await);
        assert!(b.try_lock(JobLock::Background).await.unwrap().is_none(), "taken twice");
        let other = b.try_lock(JobLock::AuditArchive).await.unwrap();
        assert!(other.is_some(), "locks are independent");
        drop(held);
        let again = b.try_lock(JobLock::Background).await.unwrap();
        assert!(again.is_some(), "not released on drop");
        drop((again, other));
        a.close().await;
        b.close().await;
    }

    #[tokio::test]
    async fn a_lock_has_one_holder_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        one_holder_at_a_time(DatabaseUrl::Sqlite(dir.path().join("kw.db"))).await;
    }

    #[tokio::test]
    async fn a_lock_has_one_holder_on_postgres() {
        let Some(pg) = crate::connect::test_postgres().await else { return };
        one_holder_at_a_time(pg.url.clone()).await;
    }
}
