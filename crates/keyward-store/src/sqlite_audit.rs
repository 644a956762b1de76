//! The SQLite audit appender: a connection of its own, used synchronously by the audit
//! appender's thread, so an audited read waits for one transaction and one fsync rather than for
//! a chain of async round trips to a pool connection's worker thread.
//!
//! Its commits are made durable by `sync` (one `fdatasync` of the log, see [`LiteConn`]) before
//! any request they audit is answered.
use std::path::Path;

use keyward_core::{AuditAppender, AuditRow, StoreError};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::db::LiteConn;
use crate::rows::to_i64;

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Appends audit rows to a SQLite database through its own connection.
#[derive(Debug)]
pub(crate) struct SqliteAuditAppender {
    lite: LiteConn,
}

impl SqliteAuditAppender {
    /// Opens the (already migrated, WAL-mode) database; durability comes from `sync`.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { lite: LiteConn::open(path)? })
    }
}

fn head(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err)?;
    row.map(|(seq, hash)| Ok((u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit head".into()))?, hash)))
        .transpose()
}

impl AuditAppender for SqliteAuditAppender {
    fn head(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        head(&self.lite.conn)
    }

    fn append_after(&mut self, expected: &(u64, Vec<u8>), rows: &[AuditRow]) -> Result<bool, StoreError> {
        // `BEGIN IMMEDIATE` takes the write lock before the head is read, so the check, the
        // inserts and the head's move to the last row see one state.
        let tx = self.lite.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        if head(&tx)?.as_ref() != Some(expected) {
            return Ok(false);
        }
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO audit_log (seq, entry, hash) VALUES (?1, ?2, ?3)").map_err(db_err)?;
            for row in rows {
                insert.execute((to_i64(row.seq)?, &row.entry, &row.hash)).map_err(db_err)?;
            }
        }
        if let Some(last) = rows.last() {
            let seq = to_i64(last.seq)?;
            tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
                .and_then(|mut st| st.execute((seq, &last.hash)))
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(true)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.lite.sync()
    }
}

#[cfg(test)]
mod tests {
    use keyward_core::AuditReads;
    use keyward_core::Store;

    use crate::DatabaseUrl;

    use std::os::fd::AsRawFd;

    use super::*;

    fn row(seq: u64) -> AuditRow {
        AuditRow { seq, entry: format!("{{\"seq\":{seq}}}"), hash: vec![seq as u8; 32] }
    }

    /// Rows go in only on top of the head the writer expects, the head moves with them, and a
    /// failing row takes the whole append back.
    #[tokio::test]
    async fn an_append_lands_only_on_the_expected_head() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::connect::test_store(&DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await;
        let mut app = store.audit_appender().unwrap().expect("SQLite has an appender");
        let genesis = (0u64, vec![0u8; 32]);
        assert_eq!(app.head().unwrap(), Some(genesis.clone()));

        assert!(!app.append_after(&(5, vec![5; 32]), &[row(6)]).unwrap(), "a stale head was accepted");
        assert!(store.audit_rows(0, 10).await.unwrap().is_empty(), "a refused append wrote rows");
        assert!(app.append_after(&genesis, &[row(1), row(2), row(3)]).unwrap());
        assert_eq!(app.head().unwrap(), Some((3, vec![3; 32])));
        assert_eq!(store.audit_head().await.unwrap(), Some((3, vec![3; 32])), "the pool sees the commit");
        assert!(!app.append_after(&genesis, &[row(1)]).unwrap(), "the head moved");

        let err = app.append_after(&(3, vec![3; 32]), &[row(4), row(4)]).unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");
        assert_eq!(app.head().unwrap(), Some((3, vec![3; 32])), "a failed append moved the head");
        assert!(app.append_after(&(3, vec![3; 32]), &[row(4)]).unwrap());
        let seqs: Vec<u64> = store.audit_rows(0, 10).await.unwrap().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        store.close().await;
    }

    /// Through a symbolic link, the log synced is the one beside the real file.
    #[tokio::test]
    async fn the_synced_log_is_the_real_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("data").join("kw.db");
        let store = crate::connect::test_store(&DatabaseUrl::Sqlite(real.clone()), 2).await;
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut app = SqliteAuditAppender::open(&link).unwrap();
        let synced = std::fs::read_link(format!("/proc/self/fd/{}", app.lite.wal.as_raw_fd())).unwrap();
        assert_eq!(synced, real.with_file_name("kw.db-wal"), "{}", synced.display());
        app.sync().unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn a_database_not_in_wal_mode_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.db");
        rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let err = SqliteAuditAppender::open(&path).unwrap_err().to_string();
        assert!(err.contains("WAL"), "{err}");
    }
}
