//! The store over a pool, and the queries shared by pool reads and transactions.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use keyward_core::WrappedKey;
use keyward_core::{
    AuditAppender, AuditRow, DekUsage, Mount, Policy, SecretMeta, SecretSummary, SecretVersion, Store, StoreError,
    StoreTx, TokenRecord, UnmigratedVersion,
};
use keyward_core::{FieldStamp, KeyJob, ProxyRoute, TransitKey};
use sqlx::AnyPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::db::{args, db_err, scalar, AnyTx, Arg, Exec, LiteTx, Pool, TxConn};
use crate::lite_scan::{now, LiteScanner};
use crate::rows::{self, to_i64, KEY_JOB_COLS, SECRET_COLS, TOKEN_COLS, VERSION_COLS, VERSION_COLS_NO_BLOB};
use crate::sql_tx::SqlTx;
use crate::sqlite_audit::SqliteAuditAppender;
use crate::Backend;

/// A [`Store`] on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// The database file, on SQLite.
    sqlite_path: Option<PathBuf>,
    /// On SQLite, the connection write transactions run on (`None` once closed).
    writer: Option<Arc<Mutex<Option<crate::db::LiteConn>>>>,
    /// On SQLite, the thread re-encryption jobs read their rows on.
    scanner: Option<Arc<LiteScanner>>,
}

impl SqlStore {
    /// A store over `pool`; on SQLite (`sqlite_path` set) it also opens the connection write
    /// transactions run on (each commit synced, unless asked not to) and starts the thread
    /// re-encryption jobs read on (see [`LiteScanner`]).
    pub(crate) fn new(pool: AnyPool, backend: Backend, sqlite_path: Option<PathBuf>) -> Result<Self, StoreError> {
        let (writer, scanner) = match &sqlite_path {
            Some(path) => {
                let conn = crate::db::LiteConn::open(path)?;
                (Some(Arc::new(Mutex::new(Some(conn)))), Some(Arc::new(LiteScanner::start(path)?)))
            }
            None => (None, None),
        };
        Ok(Self { pool, backend, sqlite_path, writer, scanner })
    }

    /// The connection pool (for tests and maintenance tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

pub(crate) async fn system_value(db: &mut dyn Exec, key: &str) -> Result<Option<String>, StoreError> {
    db.fetch_optional("SELECT value FROM system WHERE key = $1", args![key]).await?.map(|r| r.get(0)).transpose()
}

pub(crate) async fn wrapped_key(
    db: &mut dyn Exec,
    domain: &str,
    owner: Uuid,
    version: u32,
) -> Result<Option<WrappedKey>, StoreError> {
    let sql = "SELECT kek_tag, wrapped FROM wrapped_keys WHERE domain = $1 AND owner = $2 AND version = $3";
    let Some(row) = db.fetch_optional(sql, args![domain, owner.to_string(), i64::from(version)]).await? else {
        return Ok(None);
    };
    Ok(Some(WrappedKey { kek_tag: row.get(0)?, bytes: row.get(1)? }))
}

pub(crate) async fn mount(db: &mut dyn Exec, path: &str) -> Result<Option<Mount>, StoreError> {
    let sql = "SELECT id, path, kind, created_at, config FROM mounts WHERE path = $1";
    db.fetch_optional(sql, args![path]).await?.as_ref().map(rows::mount).transpose()
}

pub(crate) async fn version(
    db: &mut dyn Exec,
    secret_id: Uuid,
    version: u64,
) -> Result<Option<SecretVersion>, StoreError> {
    let sql = format!("SELECT {VERSION_COLS} FROM secret_versions WHERE secret_id = $1 AND version = $2");
    db.fetch_optional(&sql, args![secret_id.to_string(), to_i64(version)?])
        .await?
        .as_ref()
        .map(|r| rows::version(r, true))
        .transpose()
}

/// A secret and one of its versions (`version`, else the current one) in one round trip.
pub(crate) async fn secret_version(
    db: &mut dyn Exec,
    mount_id: Uuid,
    path: &str,
    version: Option<u64>,
) -> Result<Option<(SecretMeta, Option<SecretVersion>)>, StoreError> {
    let sql = format!(
        "SELECT {}, v.version, v.blob, v.dek_version, v.created_at AS v_created_at, v.deletion_time, v.destroyed, \
         v.created_by, v.field_versions FROM secrets s LEFT JOIN secret_versions v \
         ON v.secret_id = s.id AND v.version = COALESCE($3, s.current_version) \
         WHERE s.mount_id = $1 AND s.path = $2",
        rows::SECRET_COLS_S
    );
    let version = version.map(to_i64).transpose()?;
    let row = db.fetch_optional(&sql, args![mount_id.to_string(), path, version]).await?;
    let Some(row) = row else { return Ok(None) };
    let meta = rows::secret(&row)?;
    let has_version: Option<i64> = row.get("version")?;
    let v = match has_version {
        Some(_) => Some(rows::joined_version(&row)?),
        None => None,
    };
    Ok(Some((meta, v)))
}

/// A secret's metadata; `lock` is appended to the statement (`FOR UPDATE` in a write transaction).
pub(crate) async fn secret(
    db: &mut dyn Exec,
    mount_id: Uuid,
    path: &str,
    lock: &str,
) -> Result<Option<SecretMeta>, StoreError> {
    let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE mount_id = $1 AND path = $2{lock}");
    db.fetch_optional(&sql, args![mount_id.to_string(), path]).await?.as_ref().map(rows::secret).transpose()
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
        self.pool.close().await;
    }

    async fn begin_write(&self, exclusive: bool) -> Result<Box<dyn StoreTx>, StoreError> {
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
        Ok(Box::new(SqlTx::new(tx, self.backend)))
    }

    async fn system_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        system_value(&mut Pool(&self.pool), key).await
    }

    async fn kek_checks(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        sqlx::query_as("SELECT tag, check_value FROM kek_checks ORDER BY tag")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn kek_usage(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT kek_tag, COUNT(*) FROM wrapped_keys GROUP BY kek_tag ORDER BY kek_tag")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(rows.into_iter().map(|(t, n)| (t, n.unsigned_abs())).collect())
    }

    async fn wrapped_key(&self, domain: &str, owner: Uuid, version: u32) -> Result<Option<WrappedKey>, StoreError> {
        wrapped_key(&mut Pool(&self.pool), domain, owner, version).await
    }

    async fn list_mounts(&self) -> Result<Vec<Mount>, StoreError> {
        let sql = "SELECT id, path, kind, created_at, config FROM mounts ORDER BY path";
        Pool(&self.pool).fetch_all(sql, vec![]).await?.iter().map(rows::mount).collect()
    }

    async fn mount(&self, path: &str) -> Result<Option<Mount>, StoreError> {
        mount(&mut Pool(&self.pool), path).await
    }

    async fn secret(&self, mount_id: Uuid, path: &str) -> Result<Option<SecretMeta>, StoreError> {
        secret(&mut Pool(&self.pool), mount_id, path, "").await
    }

    async fn version(&self, secret_id: Uuid, v: u64) -> Result<Option<SecretVersion>, StoreError> {
        version(&mut Pool(&self.pool), secret_id, v).await
    }

    async fn versions(&self, secret_id: Uuid) -> Result<Vec<SecretVersion>, StoreError> {
        let sql = format!("SELECT {VERSION_COLS_NO_BLOB} FROM secret_versions WHERE secret_id = $1 ORDER BY version");
        Pool(&self.pool)
            .fetch_all(&sql, args![secret_id.to_string()])
            .await?
            .iter()
            .map(|r| rows::version(r, false))
            .collect()
    }

    async fn list_secrets(
        &self,
        mount_id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SecretSummary>, StoreError> {
        let sql = "SELECT path, current_version, updated_at, field_count FROM secrets \
                   WHERE mount_id = $1 AND path > $2 ORDER BY path LIMIT $3";
        Pool(&self.pool)
            .fetch_all(sql, args![mount_id.to_string(), after.unwrap_or(""), i64::from(limit)])
            .await?
            .iter()
            .map(rows::summary)
            .collect()
    }

    async fn paths_with_prefix(
        &self,
        mount_id: Uuid,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        // Paths are ASCII without DEL, so every path under `prefix` sorts below `prefix || DEL`
        // (bytewise on SQLite, COLLATE "C" on PostgreSQL): a range scan of the unique index.
        let lower = if after.is_empty() { prefix } else { after };
        let op = if after.is_empty() { ">=" } else { ">" };
        sqlx::query_scalar(&format!(
            "SELECT path FROM secrets WHERE mount_id = $1 AND path {op} $2 AND path < $3 ORDER BY path LIMIT $4"
        ))
        .bind(mount_id.to_string())
        .bind(lower.to_owned())
        .bind(format!("{prefix}\u{7f}"))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)
    }

    async fn transit_key(&self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError> {
        transit_key(&mut Pool(&self.pool), mount_id, name, false).await
    }

    async fn transit_key_names(&self, mount_id: Uuid) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM transit_keys WHERE mount_id = $1 ORDER BY name")
            .bind(mount_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn proxy_route(&self, name: &str) -> Result<Option<ProxyRoute>, StoreError> {
        let row: Option<String> = sqlx::query_scalar("SELECT route FROM proxy_routes WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| serde_json::from_str(&r).map_err(|_| StoreError::Corrupt("proxy route".into()))).transpose()
    }

    async fn proxy_routes(&self) -> Result<Vec<ProxyRoute>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT route FROM proxy_routes ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| serde_json::from_str(r).map_err(|_| StoreError::Corrupt("proxy route".into()))).collect()
    }

    async fn token_chain(&self, digest: &str) -> Result<Vec<TokenRecord>, StoreError> {
        // One round trip for the token and every ancestor: a recursive walk up `parent_accessor`.
        let cols: Vec<String> = TOKEN_COLS.split(", ").map(|c| format!("t.{c}")).collect();
        let sql = format!(
            "WITH RECURSIVE chain (accessor, parent_accessor, depth) AS ( \
               SELECT accessor, parent_accessor, 0 FROM tokens WHERE digest = $1 \
               UNION ALL \
               SELECT p.accessor, p.parent_accessor, c.depth + 1 FROM tokens p \
               JOIN chain c ON p.accessor = c.parent_accessor WHERE c.depth < {MAX_TOKEN_DEPTH}) \
             SELECT {} FROM chain c JOIN tokens t ON t.accessor = c.accessor ORDER BY c.depth",
            cols.join(", ")
        );
        Pool(&self.pool).fetch_all(&sql, args![digest]).await?.iter().map(rows::token).collect()
    }

    async fn token_by_digest(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE digest = $1");
        Pool(&self.pool).fetch_optional(&sql, args![digest]).await?.as_ref().map(rows::token).transpose()
    }

    async fn token_by_accessor(&self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        token_by_accessor(&mut Pool(&self.pool), accessor).await
    }

    async fn list_tokens(&self, after: Option<&str>, limit: u32) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor > $1 ORDER BY accessor LIMIT $2");
        Pool(&self.pool)
            .fetch_all(&sql, args![after.unwrap_or(""), i64::from(limit)])
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }

    async fn policies(&self, names: &[String]) -> Result<Vec<Policy>, StoreError> {
        if names.is_empty() {
            return Ok(vec![]);
        }
        // One query for all of a token's policies.
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT name, rules, hcl FROM policies WHERE name IN ({})", marks.join(", "));
        let names = names.iter().map(|n| Arg::from(n.as_str())).collect();
        Pool(&self.pool).fetch_all(&sql, names).await?.iter().map(rows::policy).collect()
    }

    async fn secret_version(
        &self,
        mount_id: Uuid,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<(SecretMeta, Option<SecretVersion>)>, StoreError> {
        secret_version(&mut Pool(&self.pool), mount_id, path, version).await
    }

    async fn dek_usage(&self) -> Result<Vec<DekUsage>, StoreError> {
        // One pass over the versions, counted per mount and data-key version (there is no index
        // on `dek_version`: see migration 0007).
        let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT m.path, w.version, w.kek_tag, COALESCE(c.n, 0) \
             FROM wrapped_keys w JOIN mounts m ON w.owner = m.id \
             LEFT JOIN (SELECT s.mount_id AS mount_id, v.dek_version AS dek_version, COUNT(*) AS n \
                        FROM secret_versions v JOIN secrets s ON s.id = v.secret_id \
                        WHERE v.dek_version IS NOT NULL GROUP BY s.mount_id, v.dek_version) c \
             ON c.mount_id = m.id AND c.dek_version = w.version \
             WHERE w.domain = $1 ORDER BY m.path, w.version",
        )
        .bind(DEK_DOMAIN)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|(mount, version, kek_tag, blobs)| {
                let version = u32::try_from(version).map_err(|_| StoreError::Corrupt("key version".into()))?;
                Ok(DekUsage { mount, version, kek_tag, blobs: blobs.unsigned_abs() })
            })
            .collect()
    }

    async fn blobs_page(
        &self,
        after: Option<(Uuid, u64)>,
        limit: u32,
    ) -> Result<Vec<(Uuid, String, Uuid, String, u64, Vec<u8>)>, StoreError> {
        let (sid, ver) = after.map_or((String::new(), 0), |(s, v)| (s.to_string(), v));
        let rows: Vec<(String, String, String, String, i64, Vec<u8>)> = sqlx::query_as(BLOBS_PAGE)
            .bind(sid)
            .bind(to_i64(ver)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(mid, mpath, sid, spath, v, blob)| {
                let bad = |_| StoreError::Corrupt("secret version row".into());
                let v = u64::try_from(v).map_err(|_| StoreError::Corrupt("version".into()))?;
                Ok((Uuid::parse_str(&mid).map_err(bad)?, mpath, Uuid::parse_str(&sid).map_err(bad)?, spath, v, blob))
            })
            .collect()
    }

    async fn current_stamps(
        &self,
        mount_id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, BTreeMap<String, String>, BTreeMap<String, FieldStamp>)>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.path, s.custom_metadata, v.field_versions FROM secrets s \
             JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.current_version \
             WHERE s.mount_id = $1 AND s.path > $2 AND (v.deletion_time IS NULL OR v.deletion_time > $4) \
             AND v.destroyed = 0 ORDER BY s.path LIMIT $3",
        )
        .bind(mount_id.to_string())
        .bind(after.unwrap_or("").to_owned())
        .bind(i64::from(limit))
        // A deletion scheduled by `delete_version_after` has not happened yet: still live.
        .bind(keyward_core::now_nanos())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|(path, custom, fv)| {
                let custom =
                    serde_json::from_str(&custom).map_err(|_| StoreError::Corrupt("custom_metadata".into()))?;
                Ok((path, custom, rows::field_versions(&fv)?))
            })
            .collect()
    }

    async fn data_key_versions(&self) -> Result<Vec<(Uuid, u32)>, StoreError> {
        data_key_versions(&mut Pool(&self.pool)).await
    }

    async fn count_unmigrated(&self, mount_id: Option<Uuid>) -> Result<u64, StoreError> {
        match &self.scanner {
            Some(scanner) => scanner.run(move |db| now(count_unmigrated(db, mount_id))).await,
            None => count_unmigrated(&mut Pool(&self.pool), mount_id).await,
        }
    }

    async fn unmigrated_versions(
        &self,
        mount_id: Option<Uuid>,
        after: &(String, u64),
        limit: u32,
    ) -> Result<(Vec<UnmigratedVersion>, Option<(String, u64)>), StoreError> {
        match &self.scanner {
            Some(scanner) => {
                let after = after.clone();
                scanner.run(move |db| now(unmigrated_versions(db, Backend::Sqlite, mount_id, &after, limit))).await
            }
            None => unmigrated_versions(&mut Pool(&self.pool), self.backend, mount_id, after, limit).await,
        }
    }

    async fn key_job(&self, id: Uuid) -> Result<Option<KeyJob>, StoreError> {
        key_job(&mut Pool(&self.pool), id, false).await
    }

    async fn key_jobs(&self) -> Result<Vec<KeyJob>, StoreError> {
        let sql = format!("SELECT {KEY_JOB_COLS} FROM key_jobs ORDER BY started_at DESC");
        Pool(&self.pool).fetch_all(&sql, vec![]).await?.iter().map(rows::key_job).collect()
    }

    async fn audit_head(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        audit_head(&mut Pool(&self.pool), false).await
    }

    fn audit_appender(&self) -> Result<Option<Box<dyn AuditAppender>>, StoreError> {
        match &self.sqlite_path {
            Some(path) => Ok(Some(Box::new(SqliteAuditAppender::open(path)?))),
            None => Ok(None),
        }
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

    async fn policy_names(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM policies ORDER BY name").fetch_all(&self.pool).await.map_err(db_err)
    }
}

/// The domain of data keys in `wrapped_keys`.
pub(crate) const DEK_DOMAIN: &str = "keyward/dek";

/// Stored versions sealed under an older data key than their mount's newest (`$1` = DEK domain).
const UNMIGRATED: &str = "secret_versions v JOIN secrets s ON s.id = v.secret_id \
    WHERE v.blob IS NOT NULL AND v.dek_version < \
    (SELECT MAX(w.version) FROM wrapped_keys w WHERE w.domain = $1 AND w.owner = s.mount_id)";

pub(crate) async fn count_unmigrated(db: &mut dyn Exec, mount_id: Option<Uuid>) -> Result<u64, StoreError> {
    let scope = if mount_id.is_some() { " AND s.mount_id = $2" } else { "" };
    let sql = format!("SELECT COUNT(*) FROM {UNMIGRATED}{scope}");
    let mut args = args![DEK_DOMAIN];
    args.extend(mount_id.map(|m| Arg::from(m.to_string())));
    Ok(scalar::<i64>(db, &sql, args).await?.unsigned_abs())
}

/// A page of stored blobs after `($1, $2)` = (secret id, version), `$3` rows, for
/// [`Store::blobs_page`]. O(page) wherever the cursor is: the row-value comparison is a range on
/// the versions' primary key, and `s.id >= $1` bounds the secrets side of PostgreSQL's merge join
/// (see [`unmigrated_sql`]).
pub(crate) const BLOBS_PAGE: &str = "SELECT m.id, m.path, s.id, s.path, v.version, v.blob FROM secret_versions v \
     JOIN secrets s ON s.id = v.secret_id JOIN mounts m ON m.id = s.mount_id \
     WHERE v.blob IS NOT NULL AND (v.secret_id, v.version) > ($1, $2) AND s.id >= $1 \
     ORDER BY v.secret_id, v.version LIMIT $3";

/// The walk of [`unmigrated_versions`], O(batch) wherever the cursor is.
///
/// On SQLite: after row id `$1`, `$2` rows (`scoped`: of the mount `$3`). The walk follows
/// storage order (the row id, kept in the cursor as `("", rowid)`): versions sit in insertion
/// order, so a key-order batch touched a random table page per row and its commit wrote each of
/// them to the log while holding the database's one write lock; `CROSS JOIN` makes SQLite drive
/// from the versions.
///
/// On PostgreSQL: after `($1, $2)` = (secret id, version), `$3` rows of every mount (a scoped
/// job skips the others' rows itself). The walk follows the primary key, and nothing but the key
/// range filters or orders it, so the planner has one sensible plan: the key's index, stopped
/// at the limit; each row's mount is looked up by a subquery. A join (or a mount filter) let it
/// choose otherwise: merged against every secret from the first (6.6 ms instead of 0.9 ms a
/// batch halfway through 50,000 versions), or, without table statistics (as after a bulk
/// import), a hash join over every version and secret of the mount, sorted (29 ms a batch).
pub(crate) fn unmigrated_sql(backend: Backend, scoped: bool) -> &'static str {
    match (backend, scoped) {
        (Backend::Sqlite, false) => {
            "SELECT v.secret_id, s.mount_id, v.version, v.blob, v.dek_version, v.rowid FROM secret_versions v \
             CROSS JOIN secrets s \
             WHERE s.id = v.secret_id AND v.rowid > $1 AND v.blob IS NOT NULL ORDER BY v.rowid LIMIT $2"
        }
        (Backend::Sqlite, true) => {
            "SELECT v.secret_id, s.mount_id, v.version, v.blob, v.dek_version, v.rowid FROM secret_versions v \
             CROSS JOIN secrets s \
             WHERE s.id = v.secret_id AND v.rowid > $1 AND v.blob IS NOT NULL AND s.mount_id = $3 \
             ORDER BY v.rowid LIMIT $2"
        }
        (Backend::Postgres, _) => {
            "SELECT v.secret_id, (SELECT s.mount_id FROM secrets s WHERE s.id = v.secret_id), v.version, v.blob, \
             v.dek_version, 0 FROM secret_versions v \
             WHERE (v.secret_id, v.version) > ($1, $2) AND v.blob IS NOT NULL \
             ORDER BY v.secret_id, v.version LIMIT $3"
        }
    }
}

/// See [`Store::unmigrated_versions`].
pub(crate) async fn unmigrated_versions(
    db: &mut dyn Exec,
    backend: Backend,
    mount_id: Option<Uuid>,
    after: &(String, u64),
    limit: u32,
) -> Result<(Vec<UnmigratedVersion>, Option<(String, u64)>), StoreError> {
    // A cursor of the other kind (a job started by an older build) starts the walk again: rows
    // done are skipped below. Rows already under their mount's newest key are skipped here
    // rather than by a per-row subquery in SQL.
    let sqlite = backend == Backend::Sqlite;
    let sql = unmigrated_sql(backend, mount_id.is_some());
    let args = if sqlite {
        let after = if after.0.is_empty() { to_i64(after.1)? } else { 0 };
        let mut args = args![after, i64::from(limit)];
        args.extend(mount_id.map(|m| Arg::from(m.to_string())));
        args
    } else {
        args![after.0.as_str(), to_i64(after.1)?, i64::from(limit)]
    };
    let rows = db
        .fetch_all(sql, args)
        .await?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .collect::<Result<Vec<(String, Option<String>, i64, Vec<u8>, Option<i64>, i64)>, StoreError>>()?;
    let position = |v: i64| u64::try_from(v).map_err(|_| StoreError::Corrupt("version".into()));
    let last = match rows.last() {
        Some((_, _, _, _, _, rowid)) if sqlite => Some((String::new(), position(*rowid)?)),
        Some((sid, _, v, _, _, _)) => Some((sid.clone(), position(*v)?)),
        None => None,
    };
    let mut newest: std::collections::HashMap<String, Option<i64>> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    let scope = mount_id.map(|m| m.to_string());
    for (sid, mid, v, blob, dek, row) in rows {
        // Another mount's (PostgreSQL walks them all), or no secret row (the foreign key forbids it).
        let Some(mid) = mid.filter(|m| scope.as_ref().is_none_or(|s| s == m)) else { continue };
        if !newest.contains_key(&mid) {
            let sql = "SELECT MAX(version) FROM wrapped_keys WHERE domain = $1 AND owner = $2";
            let n: Option<i64> = scalar(db, sql, args![DEK_DOMAIN, mid.as_str()]).await?;
            newest.insert(mid.clone(), n);
        }
        let bad = |_| StoreError::Corrupt("secret version row".into());
        let version = u64::try_from(v).map_err(|_| StoreError::Corrupt("version".into()))?;
        // A mount with no data key left was deleted after its rows were read: they are gone.
        let Some(newest) = newest.get(&mid).copied().flatten() else { continue };
        if Some(newest) != dek {
            let (secret, mount) = (Uuid::parse_str(&sid).map_err(bad)?, Uuid::parse_str(&mid).map_err(bad)?);
            let newest = u32::try_from(newest).map_err(|_| StoreError::Corrupt("key version".into()))?;
            out.push(UnmigratedVersion { secret, mount, version, row, blob, newest });
        }
    }
    Ok((out, last))
}

pub(crate) async fn data_key_versions(db: &mut dyn Exec) -> Result<Vec<(Uuid, u32)>, StoreError> {
    let sql = "SELECT owner, version FROM wrapped_keys WHERE domain = $1 ORDER BY owner, version";
    db.fetch_all(sql, args![DEK_DOMAIN])
        .await?
        .iter()
        .map(|r| {
            let version = u32::try_from(r.get::<i64>(1)?).map_err(|_| StoreError::Corrupt("key version".into()))?;
            Ok((rows::uuid(r, "owner")?, version))
        })
        .collect()
}

pub(crate) async fn audit_head(db: &mut dyn Exec, for_update: bool) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let Some(row) = db.fetch_optional(&format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"), vec![]).await?
    else {
        return Ok(None);
    };
    Ok(Some((rows::u64_of(&row, "seq")?, row.get("hash")?)))
}

pub(crate) async fn key_job(db: &mut dyn Exec, id: Uuid, for_update: bool) -> Result<Option<KeyJob>, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {KEY_JOB_COLS} FROM key_jobs WHERE id = $1{lock}");
    db.fetch_optional(&sql, args![id.to_string()]).await?.as_ref().map(rows::key_job).transpose()
}

/// Ancestors a token chain is followed through (a deeper chain reads as one missing an ancestor).
const MAX_TOKEN_DEPTH: u32 = 64;

pub(crate) async fn token_by_accessor(db: &mut dyn Exec, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLS} FROM tokens WHERE accessor = $1");
    db.fetch_optional(&sql, args![accessor]).await?.as_ref().map(rows::token).transpose()
}

pub(crate) async fn transit_key(
    db: &mut dyn Exec,
    mount_id: Uuid,
    name: &str,
    lock: bool,
) -> Result<Option<TransitKey>, StoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT id, mount_id, name, config FROM transit_keys WHERE mount_id = $1 AND name = $2{lock}");
    db.fetch_optional(&sql, args![mount_id.to_string(), name]).await?.as_ref().map(rows::transit_key).transpose()
}
