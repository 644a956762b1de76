//! Secret and version rows.
use std::collections::BTreeMap;

use async_trait::async_trait;
use keyward_core::{FieldStamp, Nanos, SecretMeta, SecretReads, SecretSummary, SecretTx, SecretVersion, StoreError};
use uuid::Uuid;

use crate::db::{args, Exec, Pool};
use crate::integrity::{Macs, SECRETS};
use crate::rows::{to_i64, SECRET_COLS, VERSION_COLS, VERSION_COLS_NO_BLOB};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::{rows, Backend};

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
    macs: &Macs,
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
    let meta = rows::secret(macs, &row)?;
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
    macs: &Macs,
    mount_id: Uuid,
    path: &str,
    lock: &str,
) -> Result<Option<SecretMeta>, StoreError> {
    let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE mount_id = $1 AND path = $2{lock}");
    db.fetch_optional(&sql, args![mount_id.to_string(), path]).await?.map(|r| rows::secret(macs, &r)).transpose()
}

#[async_trait]
impl SecretReads for SqlStore {
    async fn secret(&self, mount_id: Uuid, path: &str) -> Result<Option<SecretMeta>, StoreError> {
        secret(&mut Pool(&self.pool), &self.macs()?, mount_id, path, "").await
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
        let macs = self.macs()?;
        let sql = "SELECT id, mount_id, path, created_at, mac, current_version, updated_at, field_count FROM secrets \
                   WHERE mount_id = $1 AND path > $2 ORDER BY path LIMIT $3";
        Pool(&self.pool)
            .fetch_all(sql, args![mount_id.to_string(), after.unwrap_or(""), i64::from(limit)])
            .await?
            .iter()
            .map(|r| rows::summary(&macs, r))
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
        let macs = self.macs()?;
        let sql = format!(
            "SELECT id, mount_id, path, created_at, mac FROM secrets WHERE mount_id = $1 AND path {op} $2 \
             AND path < $3 ORDER BY path LIMIT $4"
        );
        let rows = Pool(&self.pool)
            .fetch_all(&sql, args![mount_id.to_string(), lower, format!("{prefix}\u{7f}"), i64::from(limit)])
            .await?;
        rows.iter()
            .map(|r| {
                macs.check(&SECRETS, r)?;
                r.get("path")
            })
            .collect()
    }

    async fn secret_version(
        &self,
        mount_id: Uuid,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<(SecretMeta, Option<SecretVersion>)>, StoreError> {
        secret_version(&mut Pool(&self.pool), &self.macs()?, mount_id, path, version).await
    }

    async fn current_stamps(
        &self,
        mount_id: Uuid,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, BTreeMap<String, String>, BTreeMap<String, FieldStamp>)>, StoreError> {
        let macs = self.macs()?;
        let sql = "SELECT s.id, s.mount_id, s.path, s.created_at, s.mac, s.custom_metadata, v.field_versions \
                   FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.current_version \
                   WHERE s.mount_id = $1 AND s.path > $2 AND (v.deletion_time IS NULL OR v.deletion_time > $4) \
                   AND v.destroyed = 0 ORDER BY s.path LIMIT $3";
        // A deletion scheduled by `delete_version_after` has not happened yet: still live.
        let now = keyward_core::now_nanos();
        let rows = Pool(&self.pool)
            .fetch_all(sql, args![mount_id.to_string(), after.unwrap_or(""), i64::from(limit), now])
            .await?;
        rows.iter()
            .map(|r| {
                macs.check(&SECRETS, r)?;
                let (custom, fv): (String, String) = (r.get("custom_metadata")?, r.get("field_versions")?);
                let custom =
                    serde_json::from_str(&custom).map_err(|_| StoreError::Corrupt("custom_metadata".into()))?;
                Ok((r.get("path")?, custom, rows::field_versions(&fv)?))
            })
            .collect()
    }
}

#[async_trait]
impl SecretTx for SqlTx {
    async fn secret_for_update(&mut self, mount_id: Uuid, path: &str) -> Result<Option<SecretMeta>, StoreError> {
        if self.backend == Backend::Postgres {
            // Locked alone: its versions are read by later statements. A statement that waited
            // for the lock (a write on another server) returns the other tables' rows as they
            // were when it started, so a joined version could be one that write has replaced.
            let macs = self.macs()?;
            return secret(&mut *self.db, &macs, mount_id, path, " FOR UPDATE").await;
        }
        // SQLite, one writer: the secret with its current version, which the write reads next.
        let macs = self.macs()?;
        let Some((meta, v)) = secret_version(&mut *self.db, &macs, mount_id, path, None).await? else {
            return Ok(None);
        };
        self.seen.version = Some(((meta.id, meta.current_version), v));
        Ok(Some(meta))
    }

    async fn insert_secret(&mut self, s: &SecretMeta) -> Result<(), StoreError> {
        let sql = "INSERT INTO secrets (id, mount_id, path, current_version, oldest_version, max_versions, \
                   cas_required, custom_metadata, created_at, updated_at, delete_version_after, mac) VALUES ($1, $2, \
                   $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        let mut values = args![
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
        ];
        // The path map: which secret a mount and path name (the rest of the row is volatile).
        let covered = [("id", &values[0]), ("mount_id", &values[1]), ("path", &values[2]), ("created_at", &values[8])];
        let mac = self.macs()?.seal(&SECRETS, &covered)?;
        values.push(mac);
        self.db.execute(sql, values).await?;
        Ok(())
    }

    async fn update_secret(&mut self, s: &SecretMeta) -> Result<(), StoreError> {
        // Volatile columns only: the row's MAC, over its path map, stands.
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
        version(&mut *self.db, secret_id, v).await
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
}
