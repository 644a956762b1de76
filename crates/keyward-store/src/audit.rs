//! Audit chain rows, inside write transactions and out.
use async_trait::async_trait;
use keyward_core::{AuditAppender, AuditReads, AuditRow, AuditTx, SpaceReclaimed, StoreError};

use crate::db::{args, db_err, Exec, Pool};
use crate::rows::to_i64;
use crate::sql_store::SqlStore;
use crate::sql_tx::SqlTx;
use crate::sqlite_audit::SqliteAuditAppender;
use crate::{rows, Backend};

pub(crate) async fn audit_head(db: &mut dyn Exec, for_update: bool) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let Some(row) = db.fetch_optional(&format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"), vec![]).await?
    else {
        return Ok(None);
    };
    Ok(Some((rows::u64_of(&row, "seq")?, row.get("hash")?)))
}

#[async_trait]
impl AuditReads for SqlStore {
    async fn audit_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        audit_head(&mut Pool(&self.pool), false).await
    }

    fn audit_appender(&self) -> Result<Option<Box<dyn AuditAppender>>, StoreError> {
        match &self.sqlite_path {
            Some(path) => Ok(Some(Box::new(SqliteAuditAppender::open(path)?))),
            None => Ok(None),
        }
    }

    async fn reclaim_space(&self, switch: bool) -> Result<SpaceReclaimed, StoreError> {
        let (Some(writer), Some(path)) = (&self.writer, &self.sqlite_path) else {
            return Ok(SpaceReclaimed {
                action: "PostgreSQL: autovacuum makes the space of archived rows reusable".into(),
                ..SpaceReclaimed::default()
            });
        };
        // On the writer's connection: writes wait while it runs.
        let guard = writer.clone().lock_owned().await;
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let lite = guard.as_ref().ok_or_else(|| StoreError::Database("the store is closed".into()))?;
            reclaim_sqlite(&lite.conn, &path, switch)
        })
        .await
        .map_err(|e| StoreError::Database(format!("space reclaim stopped: {e}")))?
    }

    async fn audit_rows(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let rows: Vec<(i64, String, Vec<u8>)> =
            sqlx::query_as("SELECT seq, entry, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(to_i64(after_seq)?)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.into_iter()
            .map(|(seq, entry, hash)| {
                let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit seq".into()))?;
                Ok(AuditRow { seq, entry, hash })
            })
            .collect()
    }
}

/// SQLite's `auto_vacuum` mode that frees pages on request.
const INCREMENTAL: i64 = 2;

fn reclaim_sqlite(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    switch: bool,
) -> Result<SpaceReclaimed, StoreError> {
    let lite = |e: rusqlite::Error| StoreError::Database(format!("space reclaim: {e}"));
    let size = || std::fs::metadata(path).map(|m| m.len()).ok();
    let before = size();
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).map_err(lite)?;
    let action = if mode == INCREMENTAL {
        // Each step of the pragma frees one page: run it to the end.
        let mut freeing = conn.prepare("PRAGMA incremental_vacuum").map_err(lite)?;
        let mut pages = freeing.query([]).map_err(lite)?;
        while pages.next().map_err(lite)?.is_some() {}
        "incremental vacuum: the free pages were given back"
    } else if switch {
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM").map_err(lite)?;
        "switched to auto_vacuum=INCREMENTAL (one VACUUM); each archive now gives its space back"
    } else {
        "nothing given back: the database is not in incremental-vacuum mode (run `keyward audit archive --vacuum` once)"
    };
    // The pages moved go back to the main file, which is then cut to its new size.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(lite)?;
    Ok(SpaceReclaimed { action: action.into(), bytes_before: before, bytes_after: size() })
}

#[async_trait]
impl AuditTx for SqlTx {
    async fn delete_audit_rows(&mut self, after: u64, through: u64) -> Result<u64, StoreError> {
        self.db
            .execute("DELETE FROM audit_log WHERE seq > $1 AND seq <= $2", args![to_i64(after)?, to_i64(through)?])
            .await
    }

    async fn audit_head_for_update(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let lock = self.backend == Backend::Postgres;
        audit_head(&mut *self.db, lock).await
    }

    async fn append_audit(&mut self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let Some(last) = rows.last() else { return Ok(()) };
        // PostgreSQL: one multi-row INSERT per batch, a handful of round trips per group commit;
        // SQLite: one cached statement per row.
        for chunk in rows.chunks(self.rows_per_statement(256)) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
            let sql = format!("INSERT INTO audit_log (seq, entry, hash) VALUES {}", values.join(", "));
            let mut args = Vec::with_capacity(3 * chunk.len());
            for row in chunk {
                args.extend(args![to_i64(row.seq)?, row.entry.as_str(), row.hash.as_slice()]);
            }
            self.db.execute(&sql, args).await?;
        }
        self.db
            .execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                args![to_i64(last.seq)?, last.hash.clone()],
            )
            .await?;
        Ok(())
    }
}
