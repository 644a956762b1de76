//! Conversions between database rows and domain records.
use std::collections::BTreeMap;

use keyward_core::KeyJob;
use keyward_core::{
    FieldStamp, Mount, MountKind, Policy, SecretMeta, SecretSummary, SecretVersion, StoreError, TokenRecord, TransitKey,
};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Database(e.to_string()),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn uuid(row: &AnyRow, col: &str) -> Result<Uuid, StoreError> {
    let s: String = row.try_get(col).map_err(db_err)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

pub(crate) fn u64_of(row: &AnyRow, col: &str) -> Result<u64, StoreError> {
    let v: i64 = row.try_get(col).map_err(db_err)?;
    u64::try_from(v).map_err(|_| corrupt(col))
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| corrupt("number out of range"))
}

pub(crate) fn mount(row: &AnyRow) -> Result<Mount, StoreError> {
    let kind: String = row.try_get("kind").map_err(db_err)?;
    let config: String = row.try_get("config").map_err(db_err)?;
    Ok(Mount {
        id: uuid(row, "id")?,
        path: row.try_get("path").map_err(db_err)?,
        kind: MountKind::parse(&kind).map_err(|_| corrupt("mount kind"))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        config: serde_json::from_str(&config).map_err(|_| corrupt("mount config"))?,
    })
}

pub(crate) fn secret(row: &AnyRow) -> Result<SecretMeta, StoreError> {
    let custom: String = row.try_get("custom_metadata").map_err(db_err)?;
    let max_versions: i64 = row.try_get("max_versions").map_err(db_err)?;
    Ok(SecretMeta {
        id: uuid(row, "id")?,
        mount_id: uuid(row, "mount_id")?,
        path: row.try_get("path").map_err(db_err)?,
        current_version: u64_of(row, "current_version")?,
        oldest_version: u64_of(row, "oldest_version")?,
        max_versions: u32::try_from(max_versions).map_err(|_| corrupt("max_versions"))?,
        cas_required: row.try_get::<i64, _>("cas_required").map_err(db_err)? != 0,
        custom_metadata: serde_json::from_str(&custom).map_err(|_| corrupt("custom_metadata"))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        delete_version_after_secs: row.try_get("delete_version_after").map_err(db_err)?,
    })
}

pub(crate) fn field_versions(json: &str) -> Result<BTreeMap<String, FieldStamp>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt("field_versions"))
}

pub(crate) fn version(row: &AnyRow, with_blob: bool) -> Result<SecretVersion, StoreError> {
    version_from(row, with_blob, "created_at")
}

/// A version joined to its secret (`secret_version`), whose creation time is `v_created_at`.
pub(crate) fn joined_version(row: &AnyRow) -> Result<SecretVersion, StoreError> {
    version_from(row, true, "v_created_at")
}

fn version_from(row: &AnyRow, with_blob: bool, created: &str) -> Result<SecretVersion, StoreError> {
    let fv: String = row.try_get("field_versions").map_err(db_err)?;
    Ok(SecretVersion {
        version: u64_of(row, "version")?,
        blob: if with_blob { row.try_get("blob").map_err(db_err)? } else { None },
        dek_version: row
            .try_get::<Option<i64>, _>("dek_version")
            .map_err(db_err)?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("dek_version")))
            .transpose()?,
        created_at: row.try_get(created).map_err(db_err)?,
        deletion_time: row.try_get("deletion_time").map_err(db_err)?,
        destroyed: row.try_get::<i64, _>("destroyed").map_err(db_err)? != 0,
        created_by: row.try_get("created_by").map_err(db_err)?,
        field_versions: field_versions(&fv)?,
    })
}

pub(crate) fn summary(row: &AnyRow) -> Result<SecretSummary, StoreError> {
    Ok(SecretSummary {
        path: row.try_get("path").map_err(db_err)?,
        current_version: u64_of(row, "current_version")?,
        field_count: usize::try_from(u64_of(row, "field_count")?).map_err(|_| corrupt("field_count"))?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

pub(crate) fn token(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let policies: String = row.try_get("policies").map_err(db_err)?;
    let cidrs: String = row.try_get("allowed_cidrs").map_err(db_err)?;
    Ok(TokenRecord {
        accessor: row.try_get("accessor").map_err(db_err)?,
        digest: row.try_get("digest").map_err(db_err)?,
        policies: serde_json::from_str(&policies).map_err(|_| corrupt("token policies"))?,
        parent_accessor: row.try_get("parent_accessor").map_err(db_err)?,
        display_name: row.try_get("display_name").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        ttl_secs: u64_of(row, "ttl_secs")?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        last_used: row.try_get("last_used").map_err(db_err)?,
        revoked: row.try_get::<i64, _>("revoked").map_err(db_err)? != 0,
        allowed_cidrs: serde_json::from_str(&cidrs).map_err(|_| corrupt("token allowed_cidrs"))?,
    })
}

pub(crate) fn policy(row: &AnyRow) -> Result<Policy, StoreError> {
    let rules: String = row.try_get("rules").map_err(db_err)?;
    Ok(Policy {
        name: row.try_get("name").map_err(db_err)?,
        rules: serde_json::from_str(&rules).map_err(|_| corrupt("policy rules"))?,
        hcl: row.try_get("hcl").map_err(db_err)?,
    })
}

pub(crate) const TOKEN_COLS: &str = "accessor, digest, policies, parent_accessor, display_name, created_at, ttl_secs, \
    expires_at, last_used, revoked, allowed_cidrs";
pub(crate) fn key_job(row: &AnyRow) -> Result<KeyJob, StoreError> {
    let mount_id: Option<String> = row.try_get("mount_id").map_err(db_err)?;
    Ok(KeyJob {
        id: uuid(row, "id")?,
        kind: row.try_get("kind").map_err(db_err)?,
        mount_id: mount_id.map(|m| Uuid::parse_str(&m).map_err(|_| corrupt("job mount_id"))).transpose()?,
        mount: row.try_get("mount_path").map_err(db_err)?,
        status: row.try_get("status").map_err(db_err)?,
        total: u64_of(row, "total")?,
        done: u64_of(row, "done")?,
        cursor: (row.try_get("cursor_secret").map_err(db_err)?, u64_of(row, "cursor_version")?),
        owner: row.try_get("owner").map_err(db_err)?,
        started_at: row.try_get("started_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        error: row.try_get("error").map_err(db_err)?,
    })
}

pub(crate) const KEY_JOB_COLS: &str =
    "id, kind, mount_id, mount_path, status, total, done, cursor_secret, cursor_version, owner, started_at, updated_at, error";

pub(crate) const SECRET_COLS: &str = "id, mount_id, path, current_version, oldest_version, max_versions, \
    cas_required, custom_metadata, created_at, updated_at, delete_version_after";
/// [`SECRET_COLS`] qualified by the alias `s` (for joins).
pub(crate) const SECRET_COLS_S: &str = "s.id, s.mount_id, s.path, s.current_version, s.oldest_version, \
    s.max_versions, s.cas_required, s.custom_metadata, s.created_at, s.updated_at, s.delete_version_after";
pub(crate) const VERSION_COLS: &str =
    "version, blob, dek_version, created_at, deletion_time, destroyed, created_by, field_versions";
pub(crate) const VERSION_COLS_NO_BLOB: &str =
    "version, dek_version, created_at, deletion_time, destroyed, created_by, field_versions";

pub(crate) fn transit_key(row: &AnyRow) -> Result<TransitKey, StoreError> {
    let config: String = row.try_get("config").map_err(db_err)?;
    Ok(TransitKey {
        id: uuid(row, "id")?,
        mount_id: uuid(row, "mount_id")?,
        name: row.try_get("name").map_err(db_err)?,
        config: serde_json::from_str(&config).map_err(|_| corrupt("transit key config"))?,
    })
}
