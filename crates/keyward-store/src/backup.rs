//! Backups: which tables a backup holds (and which it leaves out, and why), the snapshot a
//! backup reads in one read transaction, and the loader a restore writes through in one
//! transaction.
use async_trait::async_trait;
use futures_util::TryStreamExt;
use keyward_core::{BackupReads, Cell, IntegrityReads, SnapshotItem, StoreError};
use sqlx::{Column, Row as _};
use tokio::sync::mpsc;

use crate::db::{db_err, Arg, Exec};
use crate::{Backend, SqlStore};

/// The tables a backup holds, in an order that satisfies their foreign keys.
pub const BACKED_UP: &[&str] = &[
    "system",
    "kek_checks",
    "wrapped_keys",
    "mounts",
    "secrets",
    "secret_versions",
    "tokens",
    "policies",
    "proxy_routes",
    "transit_keys",
    "auth_mounts",
    "approle_roles",
    "approle_secret_ids",
    "userpass_users",
    "auth_items",
    "audit_log",
    "audit_head",
];

/// The tables a backup leaves out, and why.
pub const NOT_BACKED_UP: &[(&str, &str)] = &[
    ("_sqlx_migrations", "which migrations ran: the restored database's own migrations make its schema"),
    ("login_failures", "failed-login counts: a restored server starts with none"),
    ("wrapped_responses", "wrapped responses: one-time hand-overs that must not outlive their minutes in a backup"),
    ("key_jobs", "re-encryption progress: a restored server has no job running (`keys migrate` starts one again)"),
];

/// A cell of a row as read: an integer, text, bytes or NULL (the schema has nothing else).
fn cell(row: &sqlx::any::AnyRow, i: usize) -> Result<Cell, StoreError> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(v.map_or(Cell::Null, Cell::Int));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Ok(v.map_or(Cell::Null, Cell::Text));
    }
    match row.try_get::<Option<Vec<u8>>, _>(i) {
        Ok(v) => Ok(v.map_or(Cell::Null, |b| Cell::bytes(&b))),
        Err(e) => Err(db_err(e)),
    }
}

#[async_trait]
impl BackupReads for SqlStore {
    async fn snapshot(&self, sink: mpsc::Sender<SnapshotItem>) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let begin = match self.backend {
            // The snapshot is taken at the first read, under WAL, and holds for the transaction.
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        sqlx::query(begin).execute(&mut *conn).await.map_err(db_err)?;
        let result = async {
            let mut counts = Vec::new();
            for table in BACKED_UP {
                let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                    .fetch_one(&mut *conn)
                    .await
                    .and_then(|r| r.try_get("n"))
                    .map_err(db_err)?;
                counts.push(((*table).to_owned(), u64::try_from(n).unwrap_or(0)));
            }
            let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>("seq")?, r.try_get::<Vec<u8>, _>("hash")?)))
                .transpose()
                .map_err(db_err)?
                .filter(|(seq, _)| *seq > 0)
                .map(|(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash));
            let kek_tags = sqlx::query("SELECT DISTINCT kek_tag FROM wrapped_keys")
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| r.try_get::<String, _>("kek_tag"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err)?;
            if sink.send(SnapshotItem::Head { counts, audit: head, kek_tags }).await.is_err() {
                return Ok(());
            }
            for table in BACKED_UP {
                let sql = format!("SELECT * FROM {table}");
                let mut rows = sqlx::query(&sql).fetch(&mut *conn);
                let mut started = false;
                while let Some(row) = rows.try_next().await.map_err(db_err)? {
                    if !started {
                        let columns = row.columns().iter().map(|c| c.name().to_owned()).collect();
                        if sink.send(SnapshotItem::Table { name: (*table).to_owned(), columns }).await.is_err() {
                            return Ok(());
                        }
                        started = true;
                    }
                    let cells = (0..row.len()).map(|i| cell(&row, i)).collect::<Result<Vec<_>, _>>()?;
                    if sink.send(SnapshotItem::Row(cells)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        }
        .await;
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        result
    }
}

/// Writes a backup's rows into an empty database, in one transaction.
pub struct RowLoader {
    tx: crate::db::AnyTx,
    table: Option<(String, Vec<String>)>,
    rows: u64,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl RowLoader {
    /// Begins loading into `store`, which must hold no data (the head row and master-key checks
    /// a fresh database may hold are replaced by the backup's).
    pub async fn begin(store: &SqlStore) -> Result<Self, StoreError> {
        if store.holds_rows().await? {
            return Err(StoreError::Conflict);
        }
        let tx = sqlx::Acquire::begin(&store.pool).await.map_err(db_err)?;
        let mut tx = crate::db::AnyTx(tx);
        for table in ["kek_checks", "audit_head"] {
            tx.execute(&format!("DELETE FROM {table}"), vec![]).await?;
        }
        Ok(Self { tx, table: None, rows: 0 })
    }

    /// Loads one item of a backup.
    pub async fn load(&mut self, item: SnapshotItem) -> Result<(), StoreError> {
        match item {
            SnapshotItem::Head { .. } => Ok(()),
            SnapshotItem::Table { name, columns } => {
                if !BACKED_UP.contains(&name.as_str()) || !columns.iter().all(|c| is_identifier(c)) {
                    return Err(StoreError::Corrupt(format!(
                        "the backup names a table or column keyward does not have ({name})"
                    )));
                }
                self.table = Some((name, columns));
                Ok(())
            }
            SnapshotItem::Row(cells) => {
                let Some((table, columns)) = &self.table else {
                    return Err(StoreError::Corrupt("the backup holds a row before its table".into()));
                };
                if cells.len() != columns.len() {
                    return Err(StoreError::Corrupt(format!("a row of {table} has the wrong number of cells")));
                }
                // NULLs are left out: every nullable column defaults to NULL.
                let (mut names, mut args) = (Vec::new(), Vec::new());
                for (column, cell) in columns.iter().zip(cells) {
                    let arg = match cell {
                        Cell::Null => continue,
                        Cell::Int(v) => Arg::Int(Some(v)),
                        Cell::Text(v) => Arg::Text(Some(v)),
                        Cell::Bytes(b) => Arg::Blob(Some(
                            Cell::decode_bytes(&b).map_err(|_| StoreError::Corrupt("malformed bytes".into()))?,
                        )),
                    };
                    names.push(column.as_str());
                    args.push(arg);
                }
                let params = (1..=args.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                let sql = format!("INSERT INTO {table} ({}) VALUES ({params})", names.join(", "));
                self.tx.execute(&sql, args).await?;
                self.rows += 1;
                Ok(())
            }
        }
    }

    /// Commits every row loaded; returns how many.
    pub async fn commit(self) -> Result<u64, StoreError> {
        self.tx.0.commit().await.map_err(db_err)?;
        Ok(self.rows)
    }
}

/// Reads `from` whole, as a backup would, into `to` (which must be empty), in one transaction.
pub async fn copy_database(from: &SqlStore, to: &SqlStore) -> Result<u64, StoreError> {
    let (tx, mut rx) = mpsc::channel(256);
    let mut loader = RowLoader::begin(to).await?;
    let reading = from.snapshot(tx);
    let writing = async {
        while let Some(item) = rx.recv().await {
            loader.load(item).await?;
        }
        Ok::<_, StoreError>(())
    };
    let (read, written) = tokio::join!(reading, writing);
    read?;
    written?;
    loader.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_backed_up_or_left_out_with_a_reason() {
        let mut named: Vec<&str> = BACKED_UP.to_vec();
        named.extend(NOT_BACKED_UP.iter().map(|(t, _)| *t));
        named.sort_unstable();
        let mut all: Vec<&str> = crate::integrity::TABLES.iter().map(|(t, _)| *t).collect();
        all.sort_unstable();
        assert_eq!(named, all, "a table is in neither list (or in both): decide whether backups hold it");
    }

    #[test]
    fn names_from_a_file_must_be_plain_identifiers() {
        assert!(is_identifier("secret_versions"));
        for bad in ["", "a b", "x;DROP", "Tokens", "a\"b", &"a".repeat(64)] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
