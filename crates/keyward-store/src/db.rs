//! One way to run SQL on either driver: sqlx (pool reads, PostgreSQL transactions) or rusqlite
//! (SQLite write transactions, run synchronously on the caller's thread).
//!
//! The queries are written once, with `$n` parameters both engines and both drivers accept, and
//! run through [`Exec`]; rows come back as [`Row`], read by column name or position.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keyward_core::StoreError;
use rusqlite::types::{FromSql, ToSqlOutput, Value, ValueRef};
use rusqlite::OpenFlags;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::OwnedMutexGuard;

/// A bound parameter; the type of a NULL matters to PostgreSQL. (No `Debug`: parameters are
/// never logged.)
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Blob(Some(v))
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Self::Blob(Some(v.to_vec()))
    }
}
impl From<Option<Vec<u8>>> for Arg {
    fn from(v: Option<Vec<u8>>) -> Self {
        Self::Blob(v)
    }
}

/// `args![a, b, …]`: a statement's parameters, in `$1, $2, …` order.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::db::Arg::from($a)),*] };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Self::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Self::Blob(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Self::Int(None) | Self::Text(None) | Self::Blob(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// Maps a sqlx error. What a concurrent change on another server causes is a
/// [`StoreError::Conflict`], which the writer retries once: a unique-key violation (the same
/// path created twice), a foreign-key violation (a mount deleted while a write into it was in
/// flight, or the reverse), a deadlock or a serialization failure (PostgreSQL).
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d)
            if d.is_unique_violation()
                || d.is_foreign_key_violation()
                || matches!(d.code().as_deref(), Some("40001" | "40P01")) =>
        {
            StoreError::Conflict
        }
        _ => StoreError::Database(e.to_string()),
    }
}

/// Maps a rusqlite error; a unique-key violation is a [`StoreError::Conflict`].
pub(crate) fn lite_err(e: rusqlite::Error) -> StoreError {
    const UNIQUE: i32 = 2067;
    const PRIMARY_KEY: i32 = 1555;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.extended_code, UNIQUE | PRIMARY_KEY) => StoreError::Conflict,
        _ => StoreError::Database(e.to_string()),
    }
}

/// A column, by name or by position.
pub(crate) trait Col: sqlx::ColumnIndex<AnyRow> + Copy + std::fmt::Display {
    fn position(self, names: &[String]) -> Option<usize>;
}

impl Col for &str {
    fn position(self, names: &[String]) -> Option<usize> {
        names.iter().position(|n| n == self)
    }
}

impl Col for usize {
    fn position(self, names: &[String]) -> Option<usize> {
        (self < names.len()).then_some(self)
    }
}

/// A row from either driver.
pub(crate) enum Row {
    Any(AnyRow),
    Lite { names: Arc<[String]>, values: Vec<Value> },
}

impl Row {
    /// The value of column `col`.
    pub(crate) fn get<T>(&self, col: impl Col) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql,
    {
        match self {
            Self::Any(row) => sqlx::Row::try_get(row, col).map_err(db_err),
            Self::Lite { names, values } => {
                let i = col.position(names).ok_or_else(|| StoreError::Database(format!("no column {col}")))?;
                T::column_result(ValueRef::from(&values[i]))
                    .map_err(|e| StoreError::Database(format!("column {col}: {e}")))
            }
        }
    }
}

/// Runs statements: a pool, or a transaction on either driver.
#[async_trait]
pub(crate) trait Exec: Send {
    /// Runs a statement; returns how many rows it changed.
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError>;
    /// Runs a query; returns every row.
    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError>;
    /// Runs a query; returns its first row, if any.
    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>, StoreError>;
    /// Runs one statement once for each set of arguments; returns how many rows they changed.
    async fn execute_each(&mut self, sql: &str, each: Vec<Vec<Arg>>) -> Result<u64, StoreError> {
        let mut changed = 0;
        for args in each {
            changed += self.execute(sql, args).await?;
        }
        Ok(changed)
    }
}

/// Runs `sql` and returns column 0 of its first row (e.g. a `COUNT(*)`).
pub(crate) async fn scalar<T>(db: &mut dyn Exec, sql: &str, args: Vec<Arg>) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql,
{
    match db.fetch_optional(sql, args).await? {
        Some(row) => row.get(0),
        None => Err(StoreError::Database("the query returned no row".into())),
    }
}

/// Runs `sql` and returns column 0 of every row.
pub(crate) async fn column<T>(db: &mut dyn Exec, sql: &str, args: Vec<Arg>) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql,
{
    db.fetch_all(sql, args).await?.iter().map(|r| r.get(0)).collect()
}

fn query(sql: &str, args: Vec<Arg>) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
    args.into_iter().fold(sqlx::query(sql), |q, a| match a {
        Arg::Int(v) => q.bind(v),
        Arg::Text(v) => q.bind(v),
        Arg::Blob(v) => q.bind(v),
    })
}

/// Pool reads (sqlx).
pub(crate) struct Pool<'a>(pub(crate) &'a AnyPool);

#[async_trait]
impl Exec for Pool<'_> {
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        Ok(query(sql, args).execute(self.0).await.map_err(db_err)?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        Ok(query(sql, args).fetch_all(self.0).await.map_err(db_err)?.into_iter().map(Row::Any).collect())
    }

    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>, StoreError> {
        Ok(query(sql, args).fetch_optional(self.0).await.map_err(db_err)?.map(Row::Any))
    }
}

/// A write transaction on either driver.
#[async_trait]
pub(crate) trait TxConn: Exec {
    /// Commits; dropping the transaction instead rolls it back.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// Commits without waiting for the disk (see [`keyward_core::StoreTx::commit_unsynced`]).
    async fn commit_unsynced(self: Box<Self>) -> Result<(), StoreError>;
}

/// A sqlx transaction (PostgreSQL).
pub(crate) struct AnyTx(pub(crate) Transaction<'static, Any>);

#[async_trait]
impl Exec for AnyTx {
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        Ok(query(sql, args).execute(&mut *self.0).await.map_err(db_err)?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        Ok(query(sql, args).fetch_all(&mut *self.0).await.map_err(db_err)?.into_iter().map(Row::Any).collect())
    }

    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>, StoreError> {
        Ok(query(sql, args).fetch_optional(&mut *self.0).await.map_err(db_err)?.map(Row::Any))
    }
}

#[async_trait]
impl TxConn for AnyTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await.map_err(db_err)
    }

    async fn commit_unsynced(mut self: Box<Self>) -> Result<(), StoreError> {
        self.execute("SET LOCAL synchronous_commit = off", vec![]).await?;
        self.commit().await
    }
}

/// Opens a connection of keyward's own to an already migrated WAL-mode SQLite database, with
/// `synchronous=NORMAL` (see [`LiteConn`]), `secure_delete` and foreign keys on, temporary
/// storage in memory (a savepoint's copies of the pages it changes are never written to a
/// temporary file), and [`wait_for_lock`] as its busy handler.
pub(crate) fn open_lite(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(lite_err)?;
    conn.busy_handler(Some(wait_for_lock)).map_err(lite_err)?;
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
    )
    .map_err(lite_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(lite_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!("expected a WAL-mode database, found journal_mode={mode}")));
    }
    Ok(conn)
}

/// Tries for SQLite's write lock at the short step.
const SHORT_TRIES: i32 = 400;
/// Tries at the long step after those, so the wait ends after about 15 s in all.
const LONG_TRIES: i32 = 15_000;

/// How long to sleep before try `tries + 1` for the write lock; `None`: give up.
fn lock_wait_step(tries: i32) -> Option<Duration> {
    match tries {
        t if (0..SHORT_TRIES).contains(&t) => Some(Duration::from_micros(50)),
        t if (SHORT_TRIES..SHORT_TRIES + LONG_TRIES).contains(&t) => Some(Duration::from_millis(1)),
        _ => None,
    }
}

/// The busy handler of keyward's own SQLite connections, called with the number of tries so far
/// while another connection holds the write lock; `false` gives up (`SQLITE_BUSY`).
///
/// The writer and the audit appender each hold the lock for tens of microseconds to about a
/// millisecond, and an audited request waits for whichever comes second. SQLite's own handler
/// (a busy timeout) sleeps 1, 2, 5, 10, 15… ms between tries, so a waiter would sleep long past
/// the lock's release; this one tries again every 50 µs for the first 20 ms, then every
/// millisecond, up to about 15 s.
fn wait_for_lock(tries: i32) -> bool {
    lock_wait_step(tries).map(std::thread::sleep).is_some()
}

/// A connection of keyward's own to a SQLite database (see [`open_lite`]) with a descriptor of
/// its write-ahead log. Its commits run with `synchronous=NORMAL` (written to the log, not yet
/// synced) and [`LiteConn::sync`] makes them durable with one `fdatasync` of the log: the
/// guarantee of `synchronous=FULL`, which syncs the log inside each commit, at the cost of one
/// data-only sync (SQLite's own would be a full `fsync`, also writing the file's times), and
/// only where it is asked for. The log is synced in order, so a sync makes every earlier commit
/// durable too. Checkpoints under `NORMAL` sync the log before copying it and the database
/// after, so a reset log never drops a commit that was synced.
#[derive(Debug)]
pub(crate) struct LiteConn {
    pub(crate) conn: rusqlite::Connection,
    /// The database's write-ahead log.
    pub(crate) wal: std::fs::File,
}

impl LiteConn {
    /// Opens the (already migrated, WAL-mode) database; durability comes from [`LiteConn::sync`].
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_lite(path)?;
        // Its commits never checkpoint: the store's checkpointing thread does (see
        // `crate::checkpoint`), so no request waits for a copy of the log.
        conn.execute_batch("PRAGMA wal_autocheckpoint=0").map_err(lite_err)?;
        // The log sits beside the file SQLite actually opened (symbolic links resolved), which
        // is not always `path`: syncing a file of that name elsewhere would sync nothing.
        let db = conn
            .path()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| StoreError::Database("keyward's SQLite connection needs a database file".into()))?;
        let wal_path = std::path::PathBuf::from(format!("{db}-wal"));
        // The log exists while any connection is open (this one stays open as long as it is
        // used), and SQLite takes no locks on it, so holding a descriptor of our own is safe.
        let wal = std::fs::File::open(&wal_path).map_err(|e| {
            StoreError::Database(format!("cannot open the write-ahead log {}: {e}", wal_path.display()))
        })?;
        Ok(Self { conn, wal })
    }

    /// Makes every commit so far durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.wal.sync_data().map_err(|e| StoreError::Database(format!("cannot sync the write-ahead log: {e}")))
    }
}

/// A SQLite write transaction on the store's rusqlite connection, held for the transaction's
/// life. Its statements run synchronously on the caller's thread (each takes microseconds; the
/// single writer has a thread of its own), and their prepared forms are cached on the connection.
pub(crate) struct LiteTx {
    conn: OwnedMutexGuard<Option<LiteConn>>,
}

impl LiteTx {
    /// Takes the write lock (`BEGIN IMMEDIATE`, waiting up to the connection's busy timeout).
    pub(crate) fn begin(conn: OwnedMutexGuard<Option<LiteConn>>) -> Result<Self, StoreError> {
        let tx = Self { conn };
        tx.conn()?.conn.execute_batch("BEGIN IMMEDIATE").map_err(lite_err)?;
        Ok(tx)
    }

    fn conn(&self) -> Result<&LiteConn, StoreError> {
        self.conn.as_ref().ok_or_else(|| StoreError::Database("the database is closed".into()))
    }

    fn rows(&self, sql: &str, args: &[Arg], limit: usize) -> Result<Vec<Row>, StoreError> {
        lite_rows(&self.conn()?.conn, sql, args, limit)
    }
}

/// Runs a query on a rusqlite connection (its prepared form cached there); returns up to `limit`
/// rows.
pub(crate) fn lite_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(lite_err)?;
    let names: Arc<[String]> = st.column_names().into_iter().map(String::from).collect();
    bind(&mut st, args)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next().map_err(lite_err)? else { break };
        let values = (0..names.len()).map(|i| row.get::<_, Value>(i)).collect::<Result<_, _>>().map_err(lite_err)?;
        out.push(Row::Lite { names: names.clone(), values });
    }
    Ok(out)
}

/// Runs a statement on a rusqlite connection; returns how many rows it changed.
pub(crate) fn lite_execute(conn: &rusqlite::Connection, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(lite_err)?;
    bind(&mut st, args)?;
    let n = st.raw_execute().map_err(lite_err)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Binds `$n` to `args[n - 1]`. SQLite numbers named parameters in order of first appearance,
/// so `$2` may be its parameter 1 (`SET a = $2 … WHERE id = $1`): each is bound by its name.
fn bind(st: &mut rusqlite::Statement<'_>, args: &[Arg]) -> Result<(), StoreError> {
    bind_as(st, &parameter_args(st), args)
}

/// For each of the statement's parameters in SQLite's order, the `n` of its `$n` name (0 if it
/// has none, which no argument matches).
fn parameter_args(st: &rusqlite::Statement<'_>) -> Vec<usize> {
    (1..=st.parameter_count())
        .map(|i| st.parameter_name(i).and_then(|name| name.strip_prefix('$')?.parse().ok()).unwrap_or(0))
        .collect()
}

/// Binds each parameter to `args[n - 1]`, `n` taken from `order` (see [`parameter_args`]).
fn bind_as(st: &mut rusqlite::Statement<'_>, order: &[usize], args: &[Arg]) -> Result<(), StoreError> {
    for (i, n) in order.iter().enumerate() {
        let arg = n.checked_sub(1).and_then(|n| args.get(n)).ok_or_else(|| {
            StoreError::Database(format!("statement parameter {} is not a bound $n ({} given)", i + 1, args.len()))
        })?;
        st.raw_bind_parameter(i + 1, arg).map_err(lite_err)?;
    }
    Ok(())
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_ref().map(|c| &c.conn).filter(|c| !c.is_autocommit()) {
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "cannot roll back a SQLite write transaction");
            }
        }
    }
}

#[async_trait]
impl Exec for LiteTx {
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        lite_execute(&self.conn()?.conn, sql, &args)
    }

    /// One prepared statement, its parameters' order worked out once.
    async fn execute_each(&mut self, sql: &str, each: Vec<Vec<Arg>>) -> Result<u64, StoreError> {
        let mut st = self.conn()?.conn.prepare_cached(sql).map_err(lite_err)?;
        let order = parameter_args(&st);
        let mut changed = 0;
        for args in each {
            bind_as(&mut st, &order, &args)?;
            changed += u64::try_from(st.raw_execute().map_err(lite_err)?).unwrap_or(u64::MAX);
        }
        Ok(changed)
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<Row>, StoreError> {
        self.rows(sql, &args, usize::MAX)
    }

    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, &args, 1)?.pop())
    }
}

#[async_trait]
impl TxConn for LiteTx {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        // On failure the transaction is still open; dropping `self` rolls it back.
        let conn = self.conn()?;
        conn.conn.execute_batch("COMMIT").map_err(lite_err)?;
        if let Err(e) = conn.sync() {
            // Never retried: the kernel may have dropped the unwritten pages, and a later sync
            // would wrongly succeed. Every write fails from now on, until restart.
            tracing::error!(error = %e, "the database could not be synced to disk; writes fail until keyward restarts");
            self.conn.take();
            return Err(StoreError::Database(format!("{e} (restart keyward once the disk is healthy)")));
        }
        Ok(())
    }

    async fn commit_unsynced(self: Box<Self>) -> Result<(), StoreError> {
        // On failure the transaction is still open; dropping `self` rolls it back.
        self.conn()?.conn.execute_batch("COMMIT").map_err(lite_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short steps first, then long ones, about 15 s in all before `SQLITE_BUSY`.
    #[test]
    fn the_lock_wait_steps_are_short_at_first_and_end_after_about_15_s() {
        let steps: Vec<Duration> = (0..).map_while(lock_wait_step).collect();
        assert_eq!(steps[0], Duration::from_micros(50));
        assert!(steps[..400].iter().all(|s| *s < Duration::from_millis(1)), "the first 20 ms go in short steps");
        let total: Duration = steps.iter().sum();
        assert!((Duration::from_secs(15)..Duration::from_secs(16)).contains(&total), "{total:?}");
        assert_eq!(lock_wait_step(-1), None);
    }

    /// A writer waits for another connection's write lock rather than failing.
    #[tokio::test]
    async fn a_write_waits_for_the_other_connections_lock() {
        let dir = tempfile::tempdir().unwrap();
        let conn = lite_db(dir.path()).await;
        let other = LiteConn::open(&dir.path().join("t.db")).unwrap();
        other.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.conn.execute_batch("COMMIT").unwrap();
        });
        let tx = LiteTx::begin(conn.clone().lock_owned().await).expect("the lock was taken once free");
        drop(tx);
        release.join().unwrap();
    }

    async fn lite_db(dir: &Path) -> Arc<tokio::sync::Mutex<Option<LiteConn>>> {
        let path = dir.join("t.db");
        let setup = rusqlite::Connection::open(&path).unwrap();
        setup
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b BLOB)")
            .unwrap();
        Arc::new(tokio::sync::Mutex::new(Some(LiteConn::open(&path).unwrap())))
    }

    /// `$n` is bound to the n-th argument even where `$2` appears before `$1`, NULLs of every
    /// type go in as NULL, and rows read back by name and by position.
    #[tokio::test]
    async fn parameters_bind_by_number_not_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let conn = lite_db(dir.path()).await;
        let mut tx = LiteTx::begin(conn.clone().lock_owned().await).unwrap();
        tx.execute("INSERT INTO t (id, a, b) VALUES ($1, $2, $3)", args![1, "one", vec![1u8]]).await.unwrap();
        let changed = tx.execute("UPDATE t SET a = $2, b = $3 WHERE id = $1", args![1, "uno", None::<Vec<u8>>]).await;
        assert_eq!(changed.unwrap(), 1);
        let row = tx.fetch_optional("SELECT a, b FROM t WHERE id = $1", args![1]).await.unwrap().unwrap();
        assert_eq!(row.get::<String>("a").unwrap(), "uno");
        assert_eq!(row.get::<Option<Vec<u8>>>(1).unwrap(), None);
        assert!(row.get::<String>("missing").is_err());
        assert!(row.get::<String>(7).is_err());

        let err = tx.execute("UPDATE t SET a = $2 WHERE id = $1", args![1]).await.unwrap_err();
        assert!(err.to_string().contains("not a bound"), "{err}");
        let err = tx.execute("INSERT INTO t (id, a) VALUES ($1, $2)", args![1, "dup"]).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict), "{err:?}");
        Box::new(tx).commit().await.unwrap();
    }

    /// Commits row 1 unsynced, then row 2 synced; returns the synced commit's result.
    async fn unsynced_then_synced(conn: &Arc<tokio::sync::Mutex<Option<LiteConn>>>) -> Result<(), StoreError> {
        let mut tx = LiteTx::begin(conn.clone().lock_owned().await).unwrap();
        tx.execute("INSERT INTO t (id, a) VALUES ($1, $2)", args![1, "lazy"]).await.unwrap();
        Box::new(tx).commit_unsynced().await.unwrap();
        let mut tx = LiteTx::begin(conn.clone().lock_owned().await).unwrap();
        tx.execute("INSERT INTO t (id, a) VALUES ($1, $2)", args![2, "synced"]).await.unwrap();
        Box::new(tx).commit().await
    }

    /// A commit is answered only once the log is synced (a failed sync fails it, and every commit
    /// after it); an unsynced one does not sync at all. The log here is a file that cannot be
    /// synced.
    #[tokio::test]
    async fn a_commit_syncs_the_log_and_an_unsynced_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let conn = lite_db(dir.path()).await;
        conn.lock().await.as_mut().unwrap().wal = std::fs::File::open("/dev/null").unwrap();
        let err = unsynced_then_synced(&conn).await.unwrap_err();
        assert!(err.to_string().contains("cannot sync the write-ahead log"), "{err}");
        // A failed sync is not retried by a later commit: the connection is closed.
        let err = LiteTx::begin(conn.clone().lock_owned().await).err().expect("the writer is closed");
        assert!(err.to_string().contains("closed"), "{err}");
    }

    /// Both kinds of commit are visible to other connections.
    #[tokio::test]
    async fn synced_and_unsynced_commits_both_commit() {
        let dir = tempfile::tempdir().unwrap();
        let conn = lite_db(dir.path()).await;
        unsynced_then_synced(&conn).await.unwrap();
        let other = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        let n: i64 = other.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
    }

    /// A transaction dropped without commit is rolled back, and the connection is free again.
    #[tokio::test]
    async fn a_dropped_transaction_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let conn = lite_db(dir.path()).await;
        let mut tx = LiteTx::begin(conn.clone().lock_owned().await).unwrap();
        tx.execute("INSERT INTO t (id, a) VALUES ($1, $2)", args![1, "gone"]).await.unwrap();
        drop(tx);
        let mut tx = LiteTx::begin(conn.clone().lock_owned().await).unwrap();
        assert!(tx.fetch_all("SELECT id FROM t", vec![]).await.unwrap().is_empty());
        tx.execute("INSERT INTO t (id, a) VALUES ($1, $2)", args![2, "kept"]).await.unwrap();
        Box::new(tx).commit().await.unwrap();
        let mut tx = LiteTx::begin(conn.lock_owned().await).unwrap();
        let ids: Vec<i64> = column(&mut tx, "SELECT id FROM t", vec![]).await.unwrap();
        assert_eq!(ids, vec![2]);
    }
}
