//! Opening a database: SQLite with durable pragmas, or PostgreSQL; then migrations.
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_core::StoreError;
use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use crate::{Backend, SqlStore};

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

/// Whether a PostgreSQL host is on this machine: a unix socket, `localhost`, 127/8 or ::1. Only
/// there may a connection go without verifying the server's certificate and name.
fn local_host(host: &str) -> bool {
    host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL to reach PostgreSQL with, secured: for a host that is not local, TLS with the
/// server's certificate checked against the CA (`sslrootcert`, or the public roots) *and* its
/// host name — `sslmode=verify-full`, which is added when the URL (and `PGSSLMODE`) set no mode —
/// and anything weaker is refused unless `insecure` (`--database-insecure`). sqlx's `verify-ca`
/// trusts the public roots besides `sslrootcert` and ignores the host name, so any publicly
/// trusted certificate would pass it. A local host (unix socket, `localhost`, loopback) takes any
/// mode. Errors never hold the URL (it may hold a password).
pub fn secure_postgres_url(url: &str, insecure: bool) -> Result<String, StoreError> {
    use sqlx::postgres::{PgConnectOptions, PgSslMode};
    let parse = |u: &str| {
        u.parse::<PgConnectOptions>()
            .map_err(|_| db_err("invalid PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…)"))
    };
    let opts = parse(url)?;
    let local = opts.get_socket().is_some() || local_host(opts.get_host());
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let explicit = query.split('&').any(|p| matches!(p.split_once('=').map_or(p, |(k, _)| k), "sslmode" | "ssl-mode"))
        || std::env::var_os("PGSSLMODE").is_some_and(|m| !m.is_empty());
    let url = match (local, explicit) {
        (false, false) => format!("{url}{}sslmode=verify-full", if url.contains('?') { '&' } else { '?' }),
        _ => url.to_owned(),
    };
    let mode = parse(&url)?.get_ssl_mode();
    if !local && !matches!(mode, PgSslMode::VerifyFull) && !insecure {
        let name = match mode {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        };
        return Err(db_err(format!(
            "PostgreSQL at {} is not on this machine, and sslmode={name} does not check both its certificate and its \
             name: use sslmode=verify-full (with sslrootcert=CA.pem for a private CA), or --database-insecure to \
             accept the risk",
            opts.get_host()
        )));
    }
    Ok(url)
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Creates `dir` and its missing parents readable by this user only (0700). A directory that
/// exists is left as it is (it may be shared, such as `/var/lib`): the files keyward keeps in it
/// are 0600 whatever the directory's mode.
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| db_err(format!("cannot create {}: {e}", dir.display())))
}

/// Makes a file of keyward's readable and writable by this user only (0600): created so if
/// `create` and missing, tightened if it exists with a wider mode. SQLite gives the write-ahead
/// log and shared-memory files the database file's mode, so a 0600 database keeps them 0600.
pub fn private_file(path: &Path, create: bool) -> Result<(), StoreError> {
    let fail = |e: std::io::Error| db_err(format!("cannot secure {}: {e}", path.display()));
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(path)
                .map_err(fail)?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

/// `path` with `suffix` appended (`keyward.db` → `keyward.db-wal`).
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Takes the lock that makes a server the only process serving a SQLite database (`<file>.lock`,
/// held while the returned file is open; the OS releases it if the process dies). Every change
/// then passes through that server's single writer, which keeps its in-memory read path coherent;
/// several servers need PostgreSQL.
pub fn lock_sqlite(path: &Path) -> Result<std::fs::File, StoreError> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let lock_path = suffixed(path, ".lock");
    private_file(&lock_path, true)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
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
/// the migrations; PostgreSQL is reached as [`secure_postgres_url`] says, never insecurely.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<SqlStore, StoreError> {
    connect_with(url, max_connections, false).await
}

/// [`connect`], where `insecure_tls` lets a PostgreSQL host that is not local be reached without
/// verifying its certificate and name (`--database-insecure`).
pub async fn connect_with(url: &DatabaseUrl, max_connections: u32, insecure_tls: bool) -> Result<SqlStore, StoreError> {
    sqlx::any::install_default_drivers();
    let (backend, pool, sqlite_path) = match url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                private_dir(dir)?;
            }
            // The database file exists 0600 before SQLite opens it; its log files follow its mode.
            private_file(path, true)?;
            for suffix in ["-wal", "-shm", "-journal"] {
                private_file(&suffixed(path, suffix), false)?;
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
            let migrator = sqlx::migrate!("migrations/sqlite");
            refuse_newer_schema(&mut *pool.acquire().await.map_err(db_err)?, &migrator).await?;
            migrator.run(&pool).await.map_err(db_err)?;
            (Backend::Sqlite, pool, Some(path.clone()))
        }
        DatabaseUrl::Postgres(u) => {
            let u = secure_postgres_url(u, insecure_tls)?;
            let pool = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect(&u)
                .await
                .map_err(db_err)?;
            let mut conn = pool.acquire().await.map_err(db_err)?;
            // Two servers starting at once must not both migrate.
            conn.execute("SELECT pg_advisory_lock(8200001)").await.map_err(db_err)?;
            let migrator = sqlx::migrate!("migrations/postgres");
            let migrated = match refuse_newer_schema(&mut conn, &migrator).await {
                Ok(()) => migrator.run(&mut *conn).await.map_err(db_err),
                Err(e) => Err(e),
            };
            conn.execute("SELECT pg_advisory_unlock(8200001)").await.map_err(db_err)?;
            migrated?;
            drop(conn);
            (Backend::Postgres, pool, None)
        }
    };
    SqlStore::new(pool, backend, sqlite_path)
}

/// A database opened for a server: the store, and on SQLite the lock file held while it serves
/// (no other server may open the same file).
#[derive(Debug)]
pub struct Opened {
    /// The store.
    pub store: SqlStore,
    /// Held until the server stops.
    pub lock: Option<std::fs::File>,
}

/// Why a database could not be opened for a server: one line naming it (without a password).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the database {database}: {error}")]
pub struct OpenError {
    /// The database, redacted.
    pub database: String,
    /// What went wrong.
    pub error: StoreError,
}

/// Opens a database for a server: takes the lock of a SQLite file, then connects, migrates and
/// checks the schema as [`connect_with`] does.
pub async fn open_for_server(url: &DatabaseUrl, max_connections: u32, insecure_tls: bool) -> Result<Opened, OpenError> {
    let fail = |error| OpenError { database: url.redacted(), error };
    let lock = match url {
        DatabaseUrl::Sqlite(path) => Some(lock_sqlite(path).map_err(fail)?),
        DatabaseUrl::Postgres(_) => None,
    };
    let store = connect_with(url, max_connections, insecure_tls).await.map_err(fail)?;
    Ok(Opened { store, lock })
}

/// Refuses a database whose schema is newer than this binary's: an older replica must not run
/// against a schema (or rows) it does not understand.
async fn refuse_newer_schema(
    conn: &mut sqlx::AnyConnection,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), StoreError> {
    let mine = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    // No bookkeeping table yet: a new database.
    let theirs: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&mut *conn).await.unwrap_or(None);
    match theirs {
        Some(v) if v > mine => Err(StoreError::Database(format!(
            "the database's schema is at version {v}, newer than this binary's {mine}: run the newer keyward (every \
             replica upgrades together)"
        ))),
        _ => Ok(()),
    }
}

/// A store whose row keys are installed (a fixed test integrity key), as a server's are once
/// its keyring loads.
#[cfg(test)]
pub(crate) async fn test_store(url: &DatabaseUrl, max_connections: u32) -> SqlStore {
    use keyward_core::IntegrityReads;
    let store = connect(url, max_connections).await.expect("test store");
    store.authenticate_rows(&keyward_crypto::Key256::from_slice(&[9; 32]).expect("key"), "test-cluster");
    store
}

/// A new, empty PostgreSQL test database (see `keyward_testkit::TestPostgres`: dropped with the
/// value), or `None` without `KEYWARD_TEST_DATABASE_URL` (a failure under `CI=true`).
#[cfg(test)]
pub(crate) struct TestPg {
    /// Its URL.
    pub url: DatabaseUrl,
    _db: keyward_testkit::TestPostgres,
}

#[cfg(test)]
pub(crate) async fn test_postgres() -> Option<TestPg> {
    let db = keyward_testkit::TestPostgres::create("kw_test_store").await?;
    Some(TestPg { url: DatabaseUrl::Postgres(db.url().to_owned()), _db: db })
}

#[cfg(test)]
mod tests {
    use keyward_core::{KeyReads, SecretReads};

    use super::*;

    #[tokio::test]
    async fn the_data_directory_and_database_files_are_private() {
        use keyward_core::Store;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("deep").join("data");
        let db = data.join("kw.db");
        let _lock = lock_sqlite(&db).unwrap();
        let store = connect(&DatabaseUrl::Sqlite(db.clone()), 2).await.unwrap();
        sqlx::query("INSERT INTO system (key, value) VALUES ('probe', 'x')").execute(store.pool()).await.unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("deep")), 0o700);
        for f in ["kw.db", "kw.db-wal", "kw.db-shm", "kw.db.lock"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
        store.close().await;
        // A database left readable by an older version is tightened at the next start.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = connect(&DatabaseUrl::Sqlite(db.clone()), 2).await.unwrap();
        assert_eq!(mode(&db), 0o600);
        store.close().await;
    }

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

    /// A database made before the field count existed gets it filled in by the migration, on
    /// SQLite and (when `KEYWARD_TEST_DATABASE_URL` names a server) on PostgreSQL.
    #[tokio::test]
    async fn the_field_count_is_filled_in_for_secrets_written_before_it_existed() {
        use keyward_core::Store;

        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let mut engines = vec![(DatabaseUrl::Sqlite(dir.path().join("kw.db")), "sqlite", "0005")];
        let pg = test_postgres().await;
        if let Some(pg) = &pg {
            engines.push((pg.url.clone(), "postgres", "0004"));
        }
        for (url, engine, first_new) in engines {
            // The schema as it was: every migration before the one that adds the count.
            let older = dir.path().join(format!("older-{engine}"));
            std::fs::create_dir(&older).unwrap();
            let migrations = format!("{}/migrations/{engine}", env!("CARGO_MANIFEST_DIR"));
            for m in std::fs::read_dir(migrations).unwrap() {
                let m = m.unwrap().path();
                if m.file_name().unwrap().to_str().unwrap() < first_new {
                    std::fs::copy(&m, older.join(m.file_name().unwrap())).unwrap();
                }
            }
            let conn_url = match &url {
                DatabaseUrl::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
                DatabaseUrl::Postgres(u) => u.clone(),
            };
            let pool = AnyPoolOptions::new().connect(&conn_url).await.unwrap();
            sqlx::migrate::Migrator::new(older.as_path()).await.unwrap().run(&pool).await.unwrap();
            let mount = uuid::Uuid::new_v4();
            sqlx::query("INSERT INTO mounts (id, path, kind, created_at, config) VALUES ($1, 'kv', 'kv', 0, '{}')")
                .bind(mount.to_string())
                .execute(&pool)
                .await
                .unwrap();
            // Two versions of `a` (the current one has three fields) and `b`, with none stored.
            for (id, path, current) in [("s1", "a", 2_i64), ("s2", "b", 0)] {
                sqlx::query(
                    "INSERT INTO secrets (id, mount_id, path, current_version, oldest_version, max_versions, \
                     cas_required, custom_metadata, created_at, updated_at, delete_version_after) \
                     VALUES ($1, $2, $3, $4, 1, 10, 0, '{}', 0, 0, 0)",
                )
                .bind(id)
                .bind(mount.to_string())
                .bind(path)
                .bind(current)
                .execute(&pool)
                .await
                .unwrap();
            }
            let stamp = r#"{"version":1,"changed_at":0}"#;
            for (version, fields) in
                [(1_i64, format!(r#"{{"X":{stamp}}}"#)), (2, format!(r#"{{"X":{stamp},"Y":{stamp},"Z":{stamp}}}"#))]
            {
                sqlx::query(
                    "INSERT INTO secret_versions (secret_id, version, blob, created_at, deletion_time, destroyed, \
                     created_by, field_versions, dek_version) VALUES ('s1', $1, NULL, 0, NULL, 0, 'test', $2, NULL)",
                )
                .bind(version)
                .bind(fields)
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;

            // Rows from before MACs get theirs once, as a server's upgrade gives them.
            let store = test_store(&url, 2).await;
            let mut tx = store.begin_write(true).await.unwrap();
            tx.authenticate_existing_rows().await.unwrap();
            tx.commit().await.unwrap();
            let counts: Vec<(String, usize)> = store
                .list_secrets(mount, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.path, s.field_count))
                .collect();
            assert_eq!(counts, vec![("a".to_owned(), 3), ("b".to_owned(), 0)], "{engine}");
            store.close().await;
        }
    }

    /// Two servers started at once on a new database, with different keys under the same tag:
    /// one records its key-check value, the other is refused — never both "accepted" with the
    /// later value silently replacing the earlier one.
    #[tokio::test]
    async fn racing_key_check_values_are_inserted_once() {
        use keyward_core::{CoreError, KeyManager, Store};
        use keyward_crypto::MasterKeyring;
        let dir = tempfile::tempdir().unwrap();
        let mut urls = vec![DatabaseUrl::Sqlite(dir.path().join("kw.db"))];
        let pg = test_postgres().await;
        urls.extend(pg.as_ref().map(|p| p.url.clone()));
        for url in urls {
            for _ in 0..5 {
                let store = connect(&url, 4).await.unwrap();
                sqlx::query("DELETE FROM kek_checks").execute(store.pool()).await.unwrap();
                let a =
                    KeyManager::new(MasterKeyring::parse("v1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap());
                let b =
                    KeyManager::new(MasterKeyring::parse("v1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=").unwrap());
                let (ra, rb) = tokio::join!(a.check_keyring(&store), b.check_keyring(&store));
                let refused = [&ra, &rb].iter().filter(|r| matches!(r, Err(CoreError::KeyMismatch(_)))).count();
                assert_eq!((refused, ra.is_ok() || rb.is_ok()), (1, true), "{url:?}: {ra:?} {rb:?}");
                // Whoever won, it is its value that is stored, and it still verifies.
                let winner = if ra.is_ok() { &a } else { &b };
                winner.check_keyring(&store).await.unwrap();
                assert_eq!(store.kek_checks().await.unwrap().len(), 1);
                store.close().await;
            }
        }
    }

    #[test]
    fn remote_postgres_needs_verify_full() {
        let ok = |u: &str| secure_postgres_url(u, false);
        // Local hosts: any mode, the URL as given.
        for u in [
            "postgres://kw:pw@localhost/kw",
            "postgres://kw:pw@127.0.0.1:5432/kw?sslmode=disable",
            "postgres://kw:pw@127.9.9.9/kw?sslmode=require",
            "postgres://kw:pw@[::1]/kw",
            "postgres:///kw?host=/var/run/postgresql&user=kw",
            "postgres://kw@%2Fvar%2Frun%2Fpostgresql/kw",
        ] {
            assert_eq!(ok(u).unwrap(), u, "{u}");
        }
        // A remote host without a mode gets verify-full; with one below it, it is refused.
        assert_eq!(
            ok("postgres://kw:pw@db.internal/kw").unwrap(),
            "postgres://kw:pw@db.internal/kw?sslmode=verify-full"
        );
        assert_eq!(
            ok("postgres://kw@10.0.0.5/kw?sslrootcert=/ca.pem").unwrap(),
            "postgres://kw@10.0.0.5/kw?sslrootcert=/ca.pem&sslmode=verify-full"
        );
        let full = "postgres://kw@db.example.com/kw?sslmode=verify-full&sslrootcert=/etc/kw/ca.pem";
        assert_eq!(ok(full).unwrap(), full);
        for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let u = format!("postgres://kw:hunter2@db.example.com/kw?sslmode={mode}");
            let err = ok(&u).unwrap_err().to_string();
            assert!(err.contains("verify-full") && err.contains("--database-insecure") && err.contains(mode), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            assert_eq!(secure_postgres_url(&u, true).unwrap(), u, "--database-insecure accepts it");
        }
        assert!(!ok("postgres://kw:hunter2@db:notaport/kw").unwrap_err().to_string().contains("hunter2"));
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
