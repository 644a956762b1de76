//! Key rows: key checks, wrapped keys (KEKs, data keys, system keys), key jobs and the re-encryption walks.

use async_trait::async_trait;
use keyward_core::{DekUsage, KeyJob, KeyReads, KeyTx, ResealedVersion, StoreError, UnmigratedVersion, WrappedKey};
use uuid::Uuid;

use crate::db::{args, column, db_err, scalar, Arg, Exec, Pool};
use crate::lite_scan::now;
use crate::rows::{to_i64, KEY_JOB_COLS};
use crate::sql_store::SqlStore;
use crate::sql_tx::SqlTx;
use crate::{rows, Backend};

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
/// choose otherwise: a merge against every secret from the first, whose cost grew with the
/// job's progress, or, without table statistics (as after a bulk import), a hash join over every
/// version and secret of the mount, sorted (a test reads the plan's buffers).
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

pub(crate) async fn key_job(db: &mut dyn Exec, id: Uuid, for_update: bool) -> Result<Option<KeyJob>, StoreError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {KEY_JOB_COLS} FROM key_jobs WHERE id = $1{lock}");
    db.fetch_optional(&sql, args![id.to_string()]).await?.as_ref().map(rows::key_job).transpose()
}

#[async_trait]
impl KeyReads for SqlStore {
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

    async fn wrapped_keys_in(&self, domain: &str) -> Result<Vec<(Uuid, u32, WrappedKey)>, StoreError> {
        let sql = "SELECT owner, version, kek_tag, wrapped FROM wrapped_keys WHERE domain = $1 ORDER BY owner, version";
        let rows = Pool(&self.pool).fetch_all(sql, args![domain]).await?;
        rows.iter()
            .map(|r| {
                let version = u32::try_from(r.get::<i64>("version")?)
                    .map_err(|_| StoreError::Corrupt("wrapped key version".into()))?;
                Ok((
                    rows::uuid(r, "owner")?,
                    version,
                    WrappedKey { kek_tag: r.get("kek_tag")?, bytes: r.get("wrapped")? },
                ))
            })
            .collect()
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
}

#[async_trait]
impl KeyTx for SqlTx {
    async fn kek_checks(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = self.db.fetch_all("SELECT tag, check_value FROM kek_checks ORDER BY tag", vec![]).await?;
        rows.iter().map(|r| Ok((r.get("tag")?, r.get("check_value")?))).collect()
    }

    async fn kek_usage(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = "SELECT kek_tag, COUNT(*) AS n FROM wrapped_keys GROUP BY kek_tag ORDER BY kek_tag";
        let rows = self.db.fetch_all(sql, vec![]).await?;
        rows.iter().map(|r| Ok((r.get("kek_tag")?, r.get::<i64>("n")?.unsigned_abs()))).collect()
    }

    async fn insert_kek_check(&mut self, tag: &str, check: &[u8]) -> Result<(), StoreError> {
        // A plain insert: a value stored meanwhile makes it fail rather than be replaced.
        self.db
            .execute("INSERT INTO kek_checks (tag, check_value) VALUES ($1, $2)", args![tag, check.to_vec()])
            .await?;
        Ok(())
    }

    async fn insert_wrapped_key(
        &mut self,
        domain: &str,
        owner: Uuid,
        version: u32,
        key: &WrappedKey,
    ) -> Result<(), StoreError> {
        self.seen.newest.clear();
        let sql = "INSERT INTO wrapped_keys (domain, owner, version, kek_tag, wrapped, created_at) VALUES ($1, $2, \
                   $3, $4, $5, $6)";
        self.db
            .execute(
                sql,
                args![
                    domain,
                    owner.to_string(),
                    i64::from(version),
                    key.kek_tag.clone(),
                    key.bytes.clone(),
                    keyward_core::now_nanos()
                ],
            )
            .await?;
        Ok(())
    }

    async fn wrapped_key(&mut self, domain: &str, owner: Uuid, version: u32) -> Result<Option<WrappedKey>, StoreError> {
        wrapped_key(&mut *self.db, domain, owner, version).await
    }

    async fn latest_key_version(&mut self, domain: &str, owner: Uuid) -> Result<Option<u32>, StoreError> {
        let key = (domain.to_owned(), owner);
        if let Some(v) = self.seen.newest.get(&key) {
            return Ok(*v);
        }
        let lock = if self.backend == Backend::Postgres { " FOR SHARE" } else { "" };
        let sql = format!(
            "SELECT version FROM wrapped_keys WHERE domain = $1 AND owner = $2 ORDER BY version DESC LIMIT 1{lock}"
        );
        let row = self.db.fetch_optional(&sql, args![domain, owner.to_string()]).await?;
        let v: Option<i64> = row.map(|r| r.get(0)).transpose()?;
        let v = v.map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))).transpose()?;
        self.seen.newest.insert(key, v);
        Ok(v)
    }

    async fn wrapped_keys(&mut self) -> Result<Vec<(String, Uuid, u32, WrappedKey)>, StoreError> {
        let sql = "SELECT domain, owner, version, kek_tag, wrapped FROM wrapped_keys ORDER BY domain, owner, version";
        self.db
            .fetch_all(sql, vec![])
            .await?
            .iter()
            .map(|r| {
                let version = u32::try_from(r.get::<i64>(2)?).map_err(|_| StoreError::Corrupt("key version".into()))?;
                Ok((r.get(0)?, rows::uuid(r, "owner")?, version, WrappedKey { kek_tag: r.get(3)?, bytes: r.get(4)? }))
            })
            .collect()
    }

    async fn update_wrapped_key(
        &mut self,
        domain: &str,
        owner: Uuid,
        version: u32,
        key: &WrappedKey,
    ) -> Result<(), StoreError> {
        self.seen.newest.clear();
        self.db
            .execute(
                "UPDATE wrapped_keys SET kek_tag = $4, wrapped = $5 WHERE domain = $1 AND owner = $2 AND version = $3",
                args![domain, owner.to_string(), i64::from(version), key.kek_tag.clone(), key.bytes.clone()],
            )
            .await?;
        Ok(())
    }

    async fn delete_wrapped_key(&mut self, domain: &str, owner: Uuid, version: u32) -> Result<(), StoreError> {
        self.seen.newest.clear();
        self.db
            .execute(
                "DELETE FROM wrapped_keys WHERE domain = $1 AND owner = $2 AND version = $3",
                args![domain, owner.to_string(), i64::from(version)],
            )
            .await?;
        Ok(())
    }

    async fn key_versions(&mut self, domain: &str, owner: Uuid) -> Result<Vec<u32>, StoreError> {
        let sql = "SELECT version FROM wrapped_keys WHERE domain = $1 AND owner = $2 ORDER BY version";
        let rows: Vec<i64> = column(&mut *self.db, sql, args![domain, owner.to_string()]).await?;
        rows.into_iter().map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))).collect()
    }

    async fn unused_data_keys(&mut self, mount_id: Uuid, candidates: &[u32]) -> Result<Vec<u32>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(candidates.to_vec());
        }
        let mut unused = Vec::with_capacity(candidates.len());
        let owner = mount_id.to_string();
        for &v in candidates {
            // A version a write still holds is skipped (kept): waiting could deadlock on the
            // audit head, which that write locks next.
            let lock = "SELECT version FROM wrapped_keys WHERE domain = $1 AND owner = $2 AND version = $3 \
                        FOR UPDATE SKIP LOCKED";
            if self.db.fetch_optional(lock, args![DEK_DOMAIN, owner.as_str(), i64::from(v)]).await?.is_none() {
                continue;
            }
            // Counted again: a write sealing under it may have committed since the count.
            let used = "SELECT COUNT(*) FROM secret_versions v JOIN secrets s ON s.id = v.secret_id \
                        WHERE s.mount_id = $1 AND v.dek_version = $2";
            if scalar::<i64>(&mut *self.db, used, args![owner.as_str(), i64::from(v)]).await? == 0 {
                unused.push(v);
            }
        }
        Ok(unused)
    }

    async fn insert_key_job(&mut self, j: &KeyJob) -> Result<(), StoreError> {
        let sql = "INSERT INTO key_jobs (id, kind, mount_id, mount_path, status, total, done, cursor_secret, \
                   cursor_version, owner, started_at, updated_at, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                   $9, $10, $11, $12, $13)";
        self.db
            .execute(
                sql,
                args![
                    j.id.to_string(),
                    j.kind.clone(),
                    j.mount_id.map(|m| m.to_string()),
                    j.mount.clone(),
                    j.status.clone(),
                    to_i64(j.total)?,
                    to_i64(j.done)?,
                    j.cursor.0.clone(),
                    to_i64(j.cursor.1)?,
                    j.owner.clone(),
                    j.started_at,
                    j.updated_at,
                    j.error.clone()
                ],
            )
            .await?;
        Ok(())
    }

    async fn key_job_for_update(&mut self, id: Uuid) -> Result<Option<KeyJob>, StoreError> {
        let lock = self.backend == Backend::Postgres;
        key_job(&mut *self.db, id, lock).await
    }

    async fn lock_key_jobs(&mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            self.exec("SELECT pg_advisory_xact_lock(8200003)").await?;
        }
        Ok(())
    }

    async fn running_key_job(&mut self) -> Result<Option<KeyJob>, StoreError> {
        let sql = format!("SELECT {KEY_JOB_COLS} FROM key_jobs WHERE status = 'running' ORDER BY started_at LIMIT 1");
        self.db.fetch_optional(&sql, vec![]).await?.as_ref().map(rows::key_job).transpose()
    }

    async fn update_key_job(&mut self, j: &KeyJob) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE key_jobs SET status = $2, total = $3, done = $4, owner = $5, updated_at = $6, error = $7, \
             cursor_secret = $8, cursor_version = $9 WHERE id = $1",
                args![
                    j.id.to_string(),
                    j.status.clone(),
                    to_i64(j.total)?,
                    to_i64(j.done)?,
                    j.owner.clone(),
                    j.updated_at,
                    j.error.clone(),
                    j.cursor.0.clone(),
                    to_i64(j.cursor.1)?
                ],
            )
            .await?;
        Ok(())
    }

    async fn count_unmigrated(&mut self, mount_id: Option<Uuid>) -> Result<u64, StoreError> {
        count_unmigrated(&mut *self.db, mount_id).await
    }

    async fn data_key_versions(&mut self) -> Result<Vec<(Uuid, u32)>, StoreError> {
        data_key_versions(&mut *self.db).await
    }

    async fn update_version_blobs(&mut self, rows: &[ResealedVersion]) -> Result<(), StoreError> {
        self.seen.version = None;
        // On SQLite, one prepared UPDATE run for each row costs no round trip, and the row is found by
        // its row id rather than through the primary-key index (the secret id and version
        // confirm it is still that version: a deleted row's id can be given to a new one). On
        // PostgreSQL, one statement per chunk of 100 rows (400 parameters) saves round trips:
        // `WITH u(…) AS (VALUES …) UPDATE … FROM u` (sqlx's binding cost grows with a statement's
        // parameters, so larger ones were slower). `blob IS NOT NULL`: a destroyed version must
        // not get its blob back.
        if self.backend == Backend::Sqlite {
            let sql = "UPDATE secret_versions SET blob = $3, dek_version = $4 \
                       WHERE rowid = $5 AND secret_id = $1 AND version = $2 AND blob IS NOT NULL";
            let each = rows
                .iter()
                .map(|r| {
                    Ok(args![
                        r.secret.to_string(),
                        to_i64(r.version)?,
                        r.blob.as_slice(),
                        i64::from(r.dek_version),
                        r.row
                    ])
                })
                .collect::<Result<_, StoreError>>()?;
            self.db.execute_each(sql, each).await?;
            return Ok(());
        }
        for chunk in rows.chunks(100) {
            let sql = if chunk.len() == 1 {
                "UPDATE secret_versions SET blob = $3, dek_version = $4 \
                 WHERE secret_id = $1 AND version = $2 AND blob IS NOT NULL"
                    .to_owned()
            } else {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                    .collect();
                format!(
                    "WITH u (secret_id, version, blob, dek_version) AS (VALUES {}) \
                     UPDATE secret_versions SET blob = u.blob, dek_version = u.dek_version FROM u \
                     WHERE secret_versions.secret_id = u.secret_id AND secret_versions.version = u.version \
                     AND secret_versions.blob IS NOT NULL",
                    values.join(", ")
                )
            };
            let mut args = Vec::with_capacity(4 * chunk.len());
            for r in chunk {
                args.extend(args![
                    r.secret.to_string(),
                    to_i64(r.version)?,
                    r.blob.as_slice(),
                    i64::from(r.dek_version)
                ]);
            }
            self.db.execute(&sql, args).await?;
        }
        Ok(())
    }
}
