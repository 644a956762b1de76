//! The store over a pool: opening write transactions, closing. What it reads of each aggregate is
//! in that aggregate's module (`secrets`, `tokens`, `keys`…), beside the transaction's writes and
//! the queries both share.
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use keyward_core::{Store, StoreError, StoreTx};
use sqlx::AnyPool;
use tokio::sync::Mutex;

use crate::checkpoint::Checkpointer;
use crate::db::{args, db_err, AnyTx, Exec, LiteTx, Pool, TxConn};
use crate::integrity::{not_loaded, Integrity, Macs};
use crate::lite_scan::LiteScanner;
use crate::rows::{self, SYSTEM_COLS};
use crate::sql_tx::SqlTx;
use crate::Backend;

/// A [`Store`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// The database file, on SQLite.
    pub(crate) sqlite_path: Option<PathBuf>,
    /// On SQLite, the connection write transactions run on (`None` once closed).
    pub(crate) writer: Option<Arc<Mutex<Option<crate::db::LiteConn>>>>,
    /// On SQLite, the thread re-encryption jobs read their rows on.
    pub(crate) scanner: Option<Arc<LiteScanner>>,
    /// On SQLite, the thread that checkpoints the write-ahead log.
    pub(crate) checkpointer: Option<Arc<Checkpointer>>,
    /// The row keys, once the integrity key is loaded.
    pub(crate) integrity: Arc<Integrity>,
}

impl SqlStore {
    /// A store over `pool`; on SQLite (`sqlite_path` set) it also opens the connection write
    /// transactions run on (each commit synced, unless asked not to) and starts the thread
    /// re-encryption jobs read on (see [`LiteScanner`]).
    pub(crate) fn new(pool: AnyPool, backend: Backend, sqlite_path: Option<PathBuf>) -> Result<Self, StoreError> {
        let (writer, scanner, checkpointer) = match &sqlite_path {
            Some(path) => {
                let conn = crate::db::LiteConn::open(path)?;
                (
                    Some(Arc::new(Mutex::new(Some(conn)))),
                    Some(Arc::new(LiteScanner::start(path)?)),
                    Some(Arc::new(Checkpointer::start(path)?)),
                )
            }
            None => (None, None, None),
        };
        Ok(Self { pool, backend, sqlite_path, writer, scanner, checkpointer, integrity: Arc::default() })
    }

    /// Starts a write transaction (see `Store::begin_write`).
    pub(crate) async fn begin_sql(&self, exclusive: bool) -> Result<SqlTx, StoreError> {
        let tx: Box<dyn TxConn> = match &self.writer {
            Some(writer) => Box::new(LiteTx::begin(writer.clone().lock_owned().await)?),
            None => {
                let mut tx = AnyTx(self.pool.begin().await.map_err(db_err)?);
                if exclusive {
                    tx.execute("SELECT pg_advisory_xact_lock(8200002)", vec![]).await?;
                }
                Box::new(tx)
            }
        };
        Ok(SqlTx::new(tx, self.backend, self.integrity.clone()))
    }

    /// The row keys, to check a MAC'd row read or seal one written.
    pub(crate) fn macs(&self) -> Result<Macs, StoreError> {
        self.integrity.macs().ok_or_else(not_loaded)
    }

    /// The connection pool (for tests and maintenance tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// A system value, checked (a row present before the row keys are loaded cannot be read).
pub(crate) async fn system_value(
    db: &mut dyn Exec,
    macs: Option<&Macs>,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let sql = format!("SELECT {SYSTEM_COLS} FROM system WHERE key = $1");
    let Some(row) = db.fetch_optional(&sql, args![key]).await? else { return Ok(None) };
    rows::system_value(macs.ok_or_else(not_loaded)?, &row).map(Some)
}

#[async_trait]
impl Store for SqlStore {
    fn name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn exclusive(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.lock().await.take();
        }
        if let Some(scanner) = &self.scanner {
            scanner.close();
        }
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close();
        }
        self.pool.close().await;
    }

    async fn begin_write(&self, exclusive: bool) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(Box::new(self.begin_sql(exclusive).await?))
    }

    async fn system_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        system_value(&mut Pool(&self.pool), self.integrity.macs().as_ref(), key).await
    }

    async fn try_lock(
        &self,
        lock: keyward_core::JobLock,
    ) -> Result<Option<Box<dyn keyward_core::HeldLock>>, StoreError> {
        self.take_lock(lock).await
    }

    fn pool_use(&self) -> keyward_core::PoolUse {
        keyward_core::PoolUse {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
