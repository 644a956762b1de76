//! A write transaction.
use std::collections::HashMap;

use async_trait::async_trait;
use keyward_core::{
    AuditRow, KeyJob, Mount, Nanos, Policy, ProxyRoute, ResealedVersion, SecretMeta, SecretVersion, StoreError,
    StoreTx, TokenRecord, TransitKey, WrappedKey,
};
use uuid::Uuid;

use crate::db::{args, column, scalar, TxConn};
use crate::rows::{self, to_i64, KEY_JOB_COLS};
use crate::sql_store;
use crate::Backend;

use crate::sql_store::DEK_DOMAIN;

/// One write transaction on either engine: sqlx on PostgreSQL, rusqlite on SQLite.
pub(crate) struct SqlTx {
    db: Box<dyn TxConn>,
    backend: Backend,
    seen: Seen,
}

/// What this transaction has read and not changed since, so a batch of writes reads each once
/// (on PostgreSQL each statement is a round trip). Each part is dropped by the statements that
/// change what it holds, and all of it by a rollback to the savepoint.
#[derive(Default)]
struct Seen {
    /// Mounts by path (`None`: no such mount).
    mounts: HashMap<String, Option<Mount>>,
    /// The newest version of a wrapped key, by domain and owner; on PostgreSQL its row is
    /// share-locked by this transaction.
    newest: HashMap<(String, Uuid), Option<u32>>,
    /// The version read with its secret by `secret_for_update` on SQLite (`None`: no such row).
    version: Option<((Uuid, u64), Option<SecretVersion>)>,
}

impl SqlTx {
    pub(crate) fn new(db: Box<dyn TxConn>, backend: Backend) -> Self {
        Self { db, backend, seen: Seen::default() }
    }

    /// How many rows a multi-row statement should carry: many where each statement is a round
    /// trip (PostgreSQL), one where statements are local calls (SQLite).
    fn rows_per_statement(&self, round_trip: usize) -> usize {
        match self.backend {
            Backend::Postgres => round_trip,
            Backend::Sqlite => 1,
        }
    }

    async fn exec(&mut self, sql: &str) -> Result<(), StoreError> {
        self.db.execute(sql, vec![]).await?;
        Ok(())
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

#[async_trait]
impl StoreTx for SqlTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.db.commit().await
    }

    async fn commit_unsynced(self: Box<Self>) -> Result<(), StoreError> {
        self.db.commit_unsynced().await
    }

    async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("SAVEPOINT kw_op").await
    }

    async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("RELEASE SAVEPOINT kw_op").await
    }

    async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.seen = Seen::default();
        self.exec("ROLLBACK TO SAVEPOINT kw_op").await
    }

    async fn system_value(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        sql_store::system_value(&mut *self.db, key).await
    }

    async fn set_system_value(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = \
                   excluded.value";
        self.db.execute(sql, args![key, value]).await?;
        Ok(())
    }

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
        sql_store::wrapped_key(&mut *self.db, domain, owner, version).await
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

    async fn mount(&mut self, path: &str) -> Result<Option<Mount>, StoreError> {
        if let Some(m) = self.seen.mounts.get(path) {
            return Ok(m.clone());
        }
        let m = sql_store::mount(&mut *self.db, path).await?;
        self.seen.mounts.insert(path.to_owned(), m.clone());
        Ok(m)
    }

    async fn insert_mount(&mut self, m: &Mount) -> Result<(), StoreError> {
        self.seen.mounts.clear();
        self.db
            .execute(
                "INSERT INTO mounts (id, path, kind, created_at, config) VALUES ($1, $2, $3, $4, $5)",
                args![m.id.to_string(), m.path.clone(), m.kind.as_str(), m.created_at, m.config.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn delete_mount(&mut self, mount_id: Uuid) -> Result<u64, StoreError> {
        self.seen = Seen::default();
        let id = mount_id.to_string();
        self.db
            .execute(
                "DELETE FROM secret_versions WHERE secret_id IN (SELECT id FROM secrets WHERE mount_id = $1)",
                args![id.clone()],
            )
            .await?;
        self.db.execute("DELETE FROM secrets WHERE mount_id = $1", args![id.clone()]).await?;
        let mut shredded = self.db.execute("DELETE FROM wrapped_keys WHERE owner = $1", args![id.clone()]).await?;
        shredded += self
            .db
            .execute(
                "DELETE FROM wrapped_keys WHERE owner IN (SELECT id FROM transit_keys WHERE mount_id = $1)",
                args![id.clone()],
            )
            .await?;
        self.db.execute("DELETE FROM transit_keys WHERE mount_id = $1", args![id.clone()]).await?;
        self.db.execute("DELETE FROM mounts WHERE id = $1", args![id]).await?;
        Ok(shredded)
    }

    async fn secret_for_update(&mut self, mount_id: Uuid, path: &str) -> Result<Option<SecretMeta>, StoreError> {
        if self.backend == Backend::Postgres {
            // Locked alone: its versions are read by later statements. A statement that waited
            // for the lock (a write on another server) returns the other tables' rows as they
            // were when it started, so a joined version could be one that write has replaced.
            return sql_store::secret(&mut *self.db, mount_id, path, " FOR UPDATE").await;
        }
        // SQLite, one writer: the secret with its current version, which the write reads next.
        let Some((meta, v)) = sql_store::secret_version(&mut *self.db, mount_id, path, None).await? else {
            return Ok(None);
        };
        self.seen.version = Some(((meta.id, meta.current_version), v));
        Ok(Some(meta))
    }

    async fn insert_secret(&mut self, s: &SecretMeta) -> Result<(), StoreError> {
        let sql = "INSERT INTO secrets (id, mount_id, path, current_version, oldest_version, max_versions, \
                   cas_required, custom_metadata, created_at, updated_at, delete_version_after) VALUES ($1, $2, $3, \
                   $4, $5, $6, $7, $8, $9, $10, $11)";
        self.db
            .execute(
                sql,
                args![
                    s.id.to_string(),
                    s.mount_id.to_string(),
                    s.path.clone(),
                    to_i64(s.current_version)?,
                    to_i64(s.oldest_version)?,
                    i64::from(s.max_versions),
                    i64::from(s.cas_required),
                    json(&s.custom_metadata),
                    s.created_at,
                    s.updated_at,
                    s.delete_version_after_secs
                ],
            )
            .await?;
        Ok(())
    }

    async fn update_secret(&mut self, s: &SecretMeta) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE secrets SET current_version = $2, oldest_version = $3, max_versions = $4, cas_required = $5, \
             custom_metadata = $6, updated_at = $7, delete_version_after = $8 WHERE id = $1",
                args![
                    s.id.to_string(),
                    to_i64(s.current_version)?,
                    to_i64(s.oldest_version)?,
                    i64::from(s.max_versions),
                    i64::from(s.cas_required),
                    json(&s.custom_metadata),
                    s.updated_at,
                    s.delete_version_after_secs
                ],
            )
            .await?;
        Ok(())
    }

    async fn delete_secret(&mut self, secret_id: Uuid) -> Result<(), StoreError> {
        self.seen.version = None;
        let id = secret_id.to_string();
        self.db.execute("DELETE FROM secret_versions WHERE secret_id = $1", args![id.clone()]).await?;
        self.db.execute("DELETE FROM secrets WHERE id = $1", args![id]).await?;
        Ok(())
    }

    async fn version(&mut self, secret_id: Uuid, v: u64) -> Result<Option<SecretVersion>, StoreError> {
        if let Some((key, seen)) = &self.seen.version {
            if *key == (secret_id, v) {
                return Ok(seen.clone());
            }
        }
        sql_store::version(&mut *self.db, secret_id, v).await
    }

    async fn insert_version(&mut self, secret_id: Uuid, v: &SecretVersion) -> Result<(), StoreError> {
        self.seen.version = None;
        let sql = "INSERT INTO secret_versions (secret_id, version, blob, dek_version, created_at, deletion_time, \
                   destroyed, created_by, field_versions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        self.db
            .execute(
                sql,
                args![
                    secret_id.to_string(),
                    to_i64(v.version)?,
                    v.blob.clone(),
                    v.dek_version.map(i64::from),
                    v.created_at,
                    v.deletion_time,
                    i64::from(v.destroyed),
                    v.created_by.clone(),
                    json(&v.field_versions)
                ],
            )
            .await?;
        Ok(())
    }

    async fn set_deletion_time(&mut self, secret_id: Uuid, version: u64, at: Option<Nanos>) -> Result<(), StoreError> {
        self.seen.version = None;
        self.db
            .execute(
                "UPDATE secret_versions SET deletion_time = $3 WHERE secret_id = $1 AND version = $2",
                args![secret_id.to_string(), to_i64(version)?, at],
            )
            .await?;
        Ok(())
    }

    async fn destroy_version(&mut self, secret_id: Uuid, version: u64) -> Result<(), StoreError> {
        self.seen.version = None;
        self.db
            .execute(
                "UPDATE secret_versions SET blob = NULL, dek_version = NULL, destroyed = 1 \
             WHERE secret_id = $1 AND version = $2",
                args![secret_id.to_string(), to_i64(version)?],
            )
            .await?;
        Ok(())
    }

    async fn update_mount_config(&mut self, mount_id: Uuid, config: &serde_json::Value) -> Result<(), StoreError> {
        self.seen.mounts.clear();
        self.db
            .execute("UPDATE mounts SET config = $2 WHERE id = $1", args![mount_id.to_string(), config.to_string()])
            .await?;
        Ok(())
    }

    async fn transit_key_for_update(&mut self, mount_id: Uuid, name: &str) -> Result<Option<TransitKey>, StoreError> {
        let lock = self.backend == Backend::Postgres;
        sql_store::transit_key(&mut *self.db, mount_id, name, lock).await
    }

    async fn insert_transit_key(&mut self, k: &TransitKey) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO transit_keys (id, mount_id, name, config) VALUES ($1, $2, $3, $4)",
                args![k.id.to_string(), k.mount_id.to_string(), k.name.clone(), json(&k.config)],
            )
            .await?;
        Ok(())
    }

    async fn update_transit_key(&mut self, k: &TransitKey) -> Result<(), StoreError> {
        self.db
            .execute("UPDATE transit_keys SET config = $2 WHERE id = $1", args![k.id.to_string(), json(&k.config)])
            .await?;
        Ok(())
    }

    async fn delete_transit_key(&mut self, id: Uuid) -> Result<u64, StoreError> {
        self.seen.newest.clear();
        let n = self.db.execute("DELETE FROM wrapped_keys WHERE owner = $1", args![id.to_string()]).await?;
        self.db.execute("DELETE FROM transit_keys WHERE id = $1", args![id.to_string()]).await?;
        Ok(n)
    }

    async fn proxy_route(&mut self, name: &str) -> Result<Option<ProxyRoute>, StoreError> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT route FROM proxy_routes WHERE name = $1{lock}");
        let row = self.db.fetch_optional(&sql, args![name]).await?;
        row.map(|r| {
            let text: String = r.get("route")?;
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("proxy route".into()))
        })
        .transpose()
    }

    async fn put_proxy_route(&mut self, route: &ProxyRoute, replace: bool) -> Result<bool, StoreError> {
        let sql = match replace {
            true => "UPDATE proxy_routes SET route = $2 WHERE name = $1",
            false => "INSERT INTO proxy_routes (name, route) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        };
        Ok(self.db.execute(sql, args![route.name.clone(), json(route)]).await? == 1)
    }

    async fn delete_proxy_route(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.db.execute("DELETE FROM proxy_routes WHERE name = $1", args![name]).await?;
        Ok(n > 0)
    }

    async fn delete_versions_below(&mut self, secret_id: Uuid, version: u64) -> Result<(), StoreError> {
        self.seen.version = None;
        self.db
            .execute(
                "DELETE FROM secret_versions WHERE secret_id = $1 AND version < $2",
                args![secret_id.to_string(), to_i64(version)?],
            )
            .await?;
        Ok(())
    }

    async fn insert_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO tokens (accessor, digest, policies, parent_accessor, display_name, created_at, ttl_secs, \
             expires_at, last_used, revoked, allowed_cidrs, rate_limit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                args![
                    t.accessor.clone(),
                    t.digest.clone(),
                    json(&t.policies),
                    t.parent_accessor.clone(),
                    t.display_name.clone(),
                    t.created_at,
                    to_i64(t.ttl_secs)?,
                    t.expires_at,
                    t.last_used,
                    i64::from(t.revoked),
                    json(&t.allowed_cidrs),
                    t.rate_limit.clone()
                ],
            )
            .await?;
        Ok(())
    }

    async fn token_by_accessor(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        sql_store::token_by_accessor(&mut *self.db, accessor).await
    }

    async fn token_locked(&mut self, accessor: &str) -> Result<Option<TokenRecord>, StoreError> {
        if self.backend == Backend::Postgres {
            let sql = format!("SELECT {} FROM tokens WHERE accessor = $1 FOR SHARE", rows::TOKEN_COLS);
            return self.db.fetch_optional(&sql, args![accessor]).await?.as_ref().map(rows::token).transpose();
        }
        // SQLite: the one writer holds the database's write lock already.
        sql_store::token_by_accessor(&mut *self.db, accessor).await
    }

    async fn child_accessors(&mut self, accessor: &str) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT accessor FROM tokens WHERE parent_accessor = $1 AND revoked = 0";
        column(&mut *self.db, sql, args![accessor]).await
    }

    async fn revoke_token(&mut self, accessor: &str) -> Result<(), StoreError> {
        self.db.execute("UPDATE tokens SET revoked = 1 WHERE accessor = $1", args![accessor]).await?;
        Ok(())
    }

    async fn set_token_expiry(&mut self, accessor: &str, expires_at: Nanos) -> Result<(), StoreError> {
        self.db.execute("UPDATE tokens SET expires_at = $2 WHERE accessor = $1", args![accessor, expires_at]).await?;
        Ok(())
    }

    async fn touch_token(&mut self, accessor: &str, at: Nanos) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE tokens SET last_used = $2 WHERE accessor = $1 AND (last_used IS NULL OR last_used < $2)",
                args![accessor, at],
            )
            .await?;
        Ok(())
    }

    async fn put_policy(&mut self, p: &Policy) -> Result<(), StoreError> {
        let now = keyward_core::now_nanos();
        let sql = "INSERT INTO policies (name, rules, created_at, updated_at, hcl) VALUES ($1, $2, $3, $3, $4) ON \
                   CONFLICT (name) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at, hcl = \
                   excluded.hcl";
        self.db.execute(sql, args![p.name.clone(), json(&p.rules), now, p.hcl.clone()]).await?;
        Ok(())
    }

    async fn delete_policy(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = self.db.execute("DELETE FROM policies WHERE name = $1", args![name]).await?;
        Ok(n > 0)
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
        sql_store::key_job(&mut *self.db, id, lock).await
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
        sql_store::count_unmigrated(&mut *self.db, mount_id).await
    }

    async fn data_key_versions(&mut self) -> Result<Vec<(Uuid, u32)>, StoreError> {
        sql_store::data_key_versions(&mut *self.db).await
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

    async fn audit_head_for_update(&mut self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let lock = self.backend == Backend::Postgres;
        sql_store::audit_head(&mut *self.db, lock).await
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keyward_core::{MountKind, Store};

    use super::*;

    fn wrapped() -> WrappedKey {
        WrappedKey { kek_tag: "v1".into(), bytes: vec![1; 61] }
    }

    fn kv_mount() -> Mount {
        Mount {
            id: Uuid::new_v4(),
            path: "kv".into(),
            kind: MountKind::Kv,
            created_at: 0,
            config: serde_json::json!({}),
        }
    }

    fn version(n: u64, dek: u32) -> SecretVersion {
        SecretVersion {
            version: n,
            blob: Some(vec![n as u8; 40]),
            dek_version: Some(dek),
            created_at: 0,
            deletion_time: None,
            destroyed: false,
            created_by: "test".into(),
            field_versions: BTreeMap::new(),
        }
    }

    /// A store on a new PostgreSQL database with one kv mount and its data key v1, or `None`
    /// when `KEYWARD_TEST_DATABASE_URL` is unset.
    async fn postgres_with_mount() -> Option<(crate::SqlStore, Mount)> {
        let Some(url) = crate::connect::test_postgres().await else {
            eprintln!("PostgreSQL test skipped: KEYWARD_TEST_DATABASE_URL is not set");
            return None;
        };
        let store = crate::connect(&url, 4).await.unwrap();
        let mount = kv_mount();
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        tx.commit().await.unwrap();
        Some((store, mount))
    }

    /// Two servers on one PostgreSQL: a write on one has read data key v1 as its mount's newest
    /// and not committed; v2 is added, and `keys prune` on the other counts v1 unused. v1 must
    /// not be deleted under that write, nor after it committed a blob sealed under v1. Then a
    /// version destroyed while a re-encryption batch holds its old blob stays destroyed.
    #[tokio::test]
    async fn a_write_or_destroy_on_another_server_is_respected_by_prune_and_reencryption() {
        let Some((store, mount)) = postgres_with_mount().await else { return };

        let mut write = store.begin_write(false).await.unwrap();
        assert_eq!(write.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));
        let mut rotate = store.begin_write(false).await.unwrap();
        rotate.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        rotate.commit().await.unwrap();

        let mut prune = store.begin_write(false).await.unwrap();
        assert_eq!(prune.unused_data_keys(mount.id, &[1]).await.unwrap(), Vec::<u32>::new(), "v1 is in use");
        drop(prune);

        let meta = SecretMeta::new(mount.id, "a", 0);
        write.insert_secret(&meta).await.unwrap();
        write.insert_version(meta.id, &version(1, 1)).await.unwrap();
        write.commit().await.unwrap();

        let mut prune = store.begin_write(false).await.unwrap();
        assert_eq!(prune.unused_data_keys(mount.id, &[1]).await.unwrap(), Vec::<u32>::new(), "a blob uses v1");
        drop(prune);

        // A re-encryption batch reads the version; another server destroys it and commits; the
        // batch's re-sealed blob must not bring it back.
        let (rows, _) = store.unmigrated_versions(Some(mount.id), &(String::new(), 0), 10).await.unwrap();
        let mut batch = store.begin_write(false).await.unwrap();
        assert_eq!(rows.iter().map(|r| (r.secret, r.version)).collect::<Vec<_>>(), vec![(meta.id, 1)]);
        let mut destroy = store.begin_write(false).await.unwrap();
        destroy.destroy_version(meta.id, 1).await.unwrap();
        destroy.commit().await.unwrap();
        let resealed =
            |b: u8| ResealedVersion { secret: meta.id, version: 1, row: 0, blob: vec![b; 40], dek_version: 2 };
        for rows in [vec![resealed(2)], vec![resealed(2), resealed(3)]] {
            batch.update_version_blobs(&rows).await.unwrap();
        }
        batch.commit().await.unwrap();
        let mut read = store.begin_write(false).await.unwrap();
        let v = read.version(meta.id, 1).await.unwrap().unwrap();
        assert!(v.destroyed && v.blob.is_none() && v.dek_version.is_none(), "the destroyed version came back");
        drop(read);
        store.close().await;
    }

    /// Shared buffers (hit or read) the first plan node of `EXPLAIN (ANALYZE, BUFFERS) sql` used.
    async fn buffers_used(pool: &sqlx::AnyPool, sql: &str, after: &str, limit: i64) -> u64 {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
            .bind(after)
            .bind(0_i64)
            .bind(limit)
            .fetch_all(pool)
            .await
            .unwrap();
        let line = plan.iter().find(|l| l.trim_start().starts_with("Buffers: shared")).expect("a Buffers line");
        let count = |what: &str| {
            line.split(&format!("{what}="))
                .nth(1)
                .map_or(0, |rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<u64>().unwrap())
        };
        count("hit") + count("read")
    }

    /// On PostgreSQL, a page of the re-encryption walk and of `doctor --verify-all` reads a few
    /// buffers per row wherever the cursor is, even with no table statistics: not every secret
    /// from the first (a merge join), nor every version (a hash join and a sort).
    #[tokio::test]
    async fn a_walk_page_reads_a_few_buffers_per_row_wherever_it_is() {
        let Some(url) = crate::connect::test_postgres().await else { return };
        let store = crate::connect(&url, 2).await.unwrap();
        let mount = kv_mount();
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..6000 {
            let meta = SecretMeta::new(mount.id, &format!("s{i}"), 0);
            tx.insert_secret(&meta).await.unwrap();
            tx.insert_version(meta.id, &version(1, 1)).await.unwrap();
            ids.push(meta.id.to_string());
        }
        tx.commit().await.unwrap();
        ids.sort();
        let crate::DatabaseUrl::Postgres(url) = url else { unreachable!() };
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        // No ANALYZE: without statistics, as after a bulk import, is when planners guess worst.
        let walk = sql_store::unmigrated_sql(Backend::Postgres, true);
        for (name, sql) in [("re-encryption walk", walk), ("blob page", sql_store::BLOBS_PAGE)] {
            for (at, cursor) in [("at the start", &ids[0]), ("two thirds in", &ids[4000])] {
                let used = buffers_used(&pool, sql, cursor, 20).await;
                assert!(used <= 100, "{name}: {used} buffers for a page of 20 {at}");
            }
        }
        pool.close().await;
        store.close().await;
    }

    /// A mount deletion on one server meets a write into that mount on another: the deletion
    /// waits for the write (its share lock on the data key), then fails as a conflict — which the
    /// writer retries, deleting the new secret too — not as a database error.
    #[tokio::test]
    async fn a_mount_deleted_during_a_write_into_it_is_a_conflict_then_goes() {
        let Some((store, mount)) = postgres_with_mount().await else { return };
        let store = std::sync::Arc::new(store);
        let mut write = store.begin_write(false).await.unwrap();
        assert_eq!(write.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));
        let delete = |store: std::sync::Arc<crate::SqlStore>| async move {
            let mut tx = store.begin_write(false).await?;
            tx.delete_mount(mount.id).await?;
            tx.commit().await
        };
        let deleting = tokio::spawn(delete(store.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!deleting.is_finished(), "the deletion did not wait for the write");
        write.insert_secret(&SecretMeta::new(mount.id, "a", 0)).await.unwrap();
        write.commit().await.unwrap();
        let first = deleting.await.unwrap();
        assert!(matches!(first, Err(StoreError::Conflict)), "{first:?}");
        delete(store.clone()).await.unwrap();
        assert!(store.mount("kv").await.unwrap().is_none());
        store.close().await;
    }

    /// Two servers write one secret at once: the second waits for the first's lock on it and
    /// must then see the version the first wrote, not the one current when it began to wait
    /// (a write builds on it: a stale one would drop the first write's fields).
    #[tokio::test]
    async fn a_write_that_waited_for_another_reads_what_that_one_wrote() {
        let Some((store, mount)) = postgres_with_mount().await else { return };
        let store = std::sync::Arc::new(store);
        let mut meta = SecretMeta::new(mount.id, "a", 0);
        meta.current_version = 1;
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_secret(&meta).await.unwrap();
        tx.insert_version(meta.id, &version(1, 1)).await.unwrap();
        tx.commit().await.unwrap();

        let mut first = store.begin_write(false).await.unwrap();
        assert!(first.secret_for_update(mount.id, "a").await.unwrap().is_some());
        let second = tokio::spawn({
            let store = store.clone();
            async move {
                let mut tx = store.begin_write(false).await.unwrap();
                let meta = tx.secret_for_update(mount.id, "a").await.unwrap().unwrap();
                let current = tx.version(meta.id, meta.current_version).await.unwrap();
                (meta.current_version, current)
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!second.is_finished(), "the second write did not wait for the first");
        first.insert_version(meta.id, &version(2, 1)).await.unwrap();
        meta.current_version = 2;
        first.update_secret(&meta).await.unwrap();
        first.commit().await.unwrap();
        let (current, read) = second.await.unwrap();
        assert_eq!((current, read), (2, Some(version(2, 1))));
        store.close().await;
    }

    /// What a transaction has read is served again only while it holds: each change made in the
    /// same transaction, and a rollback to the savepoint, shows through on the next read.
    async fn sees_its_own_changes(store: &dyn Store) {
        let mut tx = store.begin_write(false).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap(), None);
        let mount = kv_mount();
        tx.insert_mount(&mount).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap(), Some(mount.clone()));
        tx.update_mount_config(mount.id, &serde_json::json!({"max_versions": 3})).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap().unwrap().config, serde_json::json!({"max_versions": 3}));

        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), None);
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));

        let mut meta = SecretMeta::new(mount.id, "a", 0);
        tx.insert_secret(&meta).await.unwrap();
        meta.current_version = 1;
        tx.update_secret(&meta).await.unwrap();
        tx.insert_version(meta.id, &version(1, 1)).await.unwrap();
        assert_eq!(tx.secret_for_update(mount.id, "a").await.unwrap(), Some(meta.clone()));
        assert_eq!(tx.version(meta.id, 1).await.unwrap(), Some(version(1, 1)));
        tx.destroy_version(meta.id, 1).await.unwrap();
        assert!(tx.version(meta.id, 1).await.unwrap().unwrap().destroyed, "a destroyed version read as it was");

        // A job that rotates the key and writes, then fails: what it did is forgotten.
        tx.savepoint().await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(2));
        assert!(tx.secret_for_update(mount.id, "a").await.unwrap().is_some());
        tx.delete_mount(mount.id).await.unwrap();
        assert_eq!(tx.mount("kv").await.unwrap(), None);
        tx.rollback_to_savepoint().await.unwrap();
        tx.release_savepoint().await.unwrap();
        assert_eq!(tx.latest_key_version(DEK_DOMAIN, mount.id).await.unwrap(), Some(1));
        assert_eq!(tx.mount("kv").await.unwrap().map(|m| m.id), Some(mount.id));
        tx.commit().await.unwrap();
    }

    /// The re-encryption walk visits every version under an older data key once, across batches,
    /// and skips those already under the newest. On SQLite it goes in storage (insertion) order,
    /// so a batch's rows share table pages; a cursor of the other kind starts it again.
    async fn walks_every_unmigrated_version_once(store: &dyn Store, sqlite: bool) {
        let mount = kv_mount();
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        let secrets: Vec<SecretMeta> = ["a", "b", "c"].iter().map(|p| SecretMeta::new(mount.id, p, 0)).collect();
        let mut inserted = Vec::new();
        for meta in &secrets {
            tx.insert_secret(meta).await.unwrap();
        }
        for n in 1..=3 {
            for meta in &secrets {
                tx.insert_version(meta.id, &version(n, 1)).await.unwrap();
                inserted.push((meta.id, n));
            }
        }
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        tx.insert_version(secrets[0].id, &version(4, 2)).await.unwrap();
        // Another mount's unmigrated version: outside the scoped walk, inside the whole one.
        let other = Mount { path: "other".into(), ..kv_mount() };
        let theirs = SecretMeta::new(other.id, "z", 0);
        tx.insert_mount(&other).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, other.id, 1, &wrapped()).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, other.id, 2, &wrapped()).await.unwrap();
        tx.insert_secret(&theirs).await.unwrap();
        tx.insert_version(theirs.id, &version(1, 1)).await.unwrap();
        tx.commit().await.unwrap();
        let (all, _) = store.unmigrated_versions(None, &(String::new(), 0), 100).await.unwrap();
        assert_eq!(all.len(), inserted.len() + 1, "the whole walk misses a mount");
        assert!(all.iter().any(|r| r.secret == theirs.id && r.mount == other.id));

        let (mut seen, mut cursor, mut batches) = (Vec::new(), (String::new(), 0), 0);
        loop {
            let (rows, next) = store.unmigrated_versions(Some(mount.id), &cursor, 2).await.unwrap();
            seen.extend(rows.iter().map(|r| (r.secret, r.version)));
            batches += 1;
            match next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        if sqlite {
            assert_eq!(seen, inserted, "not in storage order");
            let stale = (secrets[2].id.to_string(), 3);
            let (rows, _) = store.unmigrated_versions(Some(mount.id), &stale, 2).await.unwrap();
            assert_eq!(rows.iter().map(|r| (r.secret, r.version)).collect::<Vec<_>>(), inserted[..2].to_vec());
        } else {
            let mut sorted = inserted.clone();
            sorted.sort_by_key(|(id, n)| (id.to_string(), *n));
            assert_eq!(seen, sorted, "not in key order");
        }
        // Five full batches of two (the last scans the v2 row) and an empty one; on PostgreSQL the
        // walk also scans the other mount's row, which the store skips itself: one batch more.
        assert_eq!(batches, if sqlite { 6 } else { 7 });
    }

    /// On SQLite a re-sealed blob goes back to its row by row id; a row deleted after it was read
    /// can give its id to a new version, which must keep its own blob.
    #[tokio::test]
    async fn a_resealed_blob_never_lands_on_a_row_that_took_its_row_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::connect(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await.unwrap();
        let mount = kv_mount();
        let (a, b) = (SecretMeta::new(mount.id, "a", 0), SecretMeta::new(mount.id, "b", 0));
        let mut tx = store.begin_write(false).await.unwrap();
        tx.insert_mount(&mount).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 1, &wrapped()).await.unwrap();
        tx.insert_secret(&a).await.unwrap();
        tx.insert_secret(&b).await.unwrap();
        tx.insert_version(a.id, &version(1, 1)).await.unwrap();
        tx.insert_wrapped_key(DEK_DOMAIN, mount.id, 2, &wrapped()).await.unwrap();
        tx.commit().await.unwrap();
        let (rows, _) = store.unmigrated_versions(None, &(String::new(), 0), 10).await.unwrap();
        let read = rows.into_iter().next().unwrap();

        let mut tx = store.begin_write(false).await.unwrap();
        tx.delete_versions_below(a.id, 2).await.unwrap();
        tx.insert_version(b.id, &version(1, 2)).await.unwrap();
        let resealed = ResealedVersion { secret: a.id, version: 1, row: read.row, blob: vec![9; 40], dek_version: 2 };
        tx.update_version_blobs(&[resealed]).await.unwrap();
        tx.commit().await.unwrap();
        let (rows, _) = store.unmigrated_versions(None, &(String::new(), 0), 10).await.unwrap();
        assert!(rows.is_empty());
        let mut tx = store.begin_write(false).await.unwrap();
        assert_eq!(tx.version(b.id, 1).await.unwrap().unwrap().blob, version(1, 2).blob, "b's blob was overwritten");
        drop(tx);
        let reused: i64 = sqlx::query_scalar("SELECT rowid FROM secret_versions WHERE secret_id = $1")
            .bind(b.id.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(reused, read.row, "the row id was not reused: this test shows nothing");
        store.close().await;
    }

    #[tokio::test]
    async fn the_reencryption_walk_visits_every_unmigrated_version_once() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = crate::connect(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await.unwrap();
        walks_every_unmigrated_version_once(&sqlite, true).await;
        sqlite.close().await;
        if let Some(url) = crate::connect::test_postgres().await {
            let pg = crate::connect(&url, 2).await.unwrap();
            walks_every_unmigrated_version_once(&pg, false).await;
            pg.close().await;
        }
    }

    #[tokio::test]
    async fn a_transaction_sees_its_own_changes_through_what_it_has_read() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = crate::connect(&crate::DatabaseUrl::Sqlite(dir.path().join("kw.db")), 2).await.unwrap();
        sees_its_own_changes(&sqlite).await;
        sqlite.close().await;
        if let Some(url) = crate::connect::test_postgres().await {
            let pg = crate::connect(&url, 2).await.unwrap();
            sees_its_own_changes(&pg).await;
            pg.close().await;
        }
    }
}
